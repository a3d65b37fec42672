//! Resource usage and limits from the container cgroups: ContainerStats,
//! ListContainerStats, PodSandboxStats (the sum of the pod's containers) and
//! UpdateContainerResources.

use crate::container::ContainerRecord;
use crate::error::{Error, Result};
use crate::server::Server;
use k8s_cri::v1;

fn cgroup(rec: &ContainerRecord) -> Result<cgroups::Cgroup> {
    let h = cgroups::Hierarchy::detect().map_err(cg_err)?;
    cgroups::Cgroup::new(&h, Some(&rec.cgroups_path), &rec.id).map_err(cg_err)
}

fn cg_err(e: cgroups::Error) -> Error {
    Error::Failed(format!("cgroups: {e}"))
}

fn u64v(value: u64) -> Option<v1::UInt64Value> {
    Some(v1::UInt64Value { value })
}

/// Usage of one container; zeros when its cgroup is gone (exited, removed).
pub(crate) fn container_stats(rec: &ContainerRecord) -> v1::ContainerStats {
    let timestamp = crate::now_nanos();
    let stats = cgroup(rec)
        .ok()
        .filter(|c| c.exists())
        .and_then(|c| c.stats().ok())
        .unwrap_or_default();
    v1::ContainerStats {
        attributes: Some(v1::ContainerAttributes {
            id: rec.id.clone(),
            metadata: Some(v1::ContainerMetadata {
                name: rec.name.clone(),
                attempt: rec.attempt,
            }),
            labels: rec.labels.clone(),
            annotations: rec.annotations.clone(),
        }),
        cpu: Some(v1::CpuUsage {
            timestamp,
            usage_core_nano_seconds: u64v(stats.cpu.usage_ns),
            usage_nano_cores: None,
        }),
        memory: Some(v1::MemoryUsage {
            timestamp,
            working_set_bytes: u64v(stats.memory.working_set()),
            available_bytes: stats
                .memory
                .limit
                .map(|l| l.saturating_sub(stats.memory.working_set()))
                .and_then(u64v),
            usage_bytes: u64v(stats.memory.usage),
            rss_bytes: u64v(stats.memory.rss),
            page_faults: None,
            major_page_faults: None,
        }),
        writable_layer: None,
        swap: None,
    }
}

fn sum(items: &[v1::ContainerStats], f: impl Fn(&v1::ContainerStats) -> Option<u64>) -> u64 {
    items.iter().filter_map(f).sum()
}

impl Server {
    pub(crate) async fn list_container_stats(
        &self,
        f: Option<v1::ContainerStatsFilter>,
    ) -> Vec<v1::ContainerStats> {
        let f = f.unwrap_or_default();
        let map = self.inner.containers.lock().await;
        map.values()
            .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
            .filter(|c| f.pod_sandbox_id.is_empty() || c.sandbox_id.starts_with(&f.pod_sandbox_id))
            .filter(|c| crate::pods::labels_match(&c.labels, &f.label_selector))
            .filter(|c| c.running())
            .map(container_stats)
            .collect()
    }

    pub(crate) async fn pod_sandbox_stats(&self, id: &str) -> Result<v1::PodSandboxStats> {
        let rec = self.sandbox(id).await.ok_or_else(|| Error::NotFound {
            what: "pod sandbox",
            id: id.to_string(),
        })?;
        let filter = v1::ContainerStatsFilter {
            pod_sandbox_id: rec.id.clone(),
            ..Default::default()
        };
        let containers = self.list_container_stats(Some(filter)).await;
        let timestamp = crate::now_nanos();
        let cpu = sum(&containers, |c| {
            c.cpu
                .as_ref()?
                .usage_core_nano_seconds
                .as_ref()
                .map(|v| v.value)
        });
        let mem = |pick: fn(&v1::MemoryUsage) -> Option<&v1::UInt64Value>| {
            sum(&containers, |c| pick(c.memory.as_ref()?).map(|v| v.value))
        };
        Ok(v1::PodSandboxStats {
            attributes: Some(v1::PodSandboxAttributes {
                id: rec.id.clone(),
                metadata: Some(v1::PodSandboxMetadata {
                    name: rec.name.clone(),
                    uid: rec.uid.clone(),
                    namespace: rec.namespace.clone(),
                    attempt: rec.attempt,
                }),
                labels: rec.labels.clone(),
                annotations: rec.annotations.clone(),
            }),
            linux: Some(v1::LinuxPodSandboxStats {
                cpu: Some(v1::CpuUsage {
                    timestamp,
                    usage_core_nano_seconds: u64v(cpu),
                    usage_nano_cores: None,
                }),
                memory: Some(v1::MemoryUsage {
                    timestamp,
                    working_set_bytes: u64v(mem(|m| m.working_set_bytes.as_ref())),
                    usage_bytes: u64v(mem(|m| m.usage_bytes.as_ref())),
                    rss_bytes: u64v(mem(|m| m.rss_bytes.as_ref())),
                    ..Default::default()
                }),
                network: None,
                process: None,
                containers,
            }),
            windows: None,
        })
    }

    /// Applies new limits to a running container's cgroup.
    pub(crate) async fn update_resources(
        &self,
        id: &str,
        r: Option<v1::LinuxContainerResources>,
    ) -> Result<()> {
        let rec = self.container(id).await?;
        let json = crate::spec::resources(r.as_ref());
        let res: oci_spec::runtime::LinuxResources =
            serde_json::from_value(json).map_err(|e| Error::Invalid(format!("resources: {e}")))?;
        cgroup(&rec)?.apply(&res).map_err(cg_err)
    }
}

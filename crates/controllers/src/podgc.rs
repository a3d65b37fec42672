//! Pod garbage collection, as upstream's podgc controller: terminated pods
//! (Succeeded/Failed) beyond a threshold, oldest first; pods bound to nodes
//! that no longer exist (force-deleted, grace 0); and terminating pods that
//! were never scheduled.

use crate::context::{cache, Context};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::DeleteParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Upstream's --terminated-pod-gc-threshold default.
pub const DEFAULT_THRESHOLD: usize = 12500;
/// How often a pass runs (upstream: 20 s).
const PERIOD: Duration = Duration::from_secs(10);

/// Which pods one pass collects, and why.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Doomed {
    /// Oldest terminated pods beyond the threshold.
    pub terminated: Vec<(String, String)>,
    /// Pods bound to nodes that are not in the cache (to be confirmed live).
    pub orphaned: Vec<(String, String, String)>,
    /// Terminating pods never scheduled.
    pub unscheduled: Vec<(String, String)>,
}

fn key(p: &Pod) -> (String, String) {
    (
        p.metadata.namespace.clone().unwrap_or_default(),
        p.metadata.name.clone().unwrap_or_default(),
    )
}

fn terminated(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Decides one pass from snapshots of pods and node names.
pub fn plan(pods: &[Arc<Pod>], nodes: &HashSet<String>, threshold: usize) -> Doomed {
    let mut d = Doomed::default();
    let mut done: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| terminated(p) && p.metadata.deletion_timestamp.is_none())
        .collect();
    if done.len() > threshold {
        done.sort_by(|a, b| {
            let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            t(a).cmp(&t(b)).then_with(|| key(a).cmp(&key(b)))
        });
        let n = done.len() - threshold;
        d.terminated = done.into_iter().take(n).map(|p| key(p)).collect();
    }
    for p in pods {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if node.is_empty() {
            if p.metadata.deletion_timestamp.is_some() {
                d.unscheduled.push(key(p));
            }
        } else if !nodes.contains(&node) {
            let (ns, name) = key(p);
            d.orphaned.push((ns, name, node));
        }
    }
    d
}

/// Runs pod GC until the process ends.
pub async fn run(ctx: Arc<Context>, threshold: usize) {
    let client = ctx.client.clone();
    let nodes: Store<Node> = cache::<Node>(&client);
    let _ = nodes.wait_until_ready().await;
    loop {
        tokio::time::sleep(PERIOD).await;
        let names: HashSet<String> = nodes
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let d = plan(&ctx.pods.store.state(), &names, threshold);
        for (ns, name) in &d.terminated {
            force_delete(&client, ns, name, "terminated pod beyond the threshold").await;
        }
        let mut gone_nodes: HashSet<String> = HashSet::new();
        for (ns, name, node) in &d.orphaned {
            if gone_nodes.contains(node) || node_gone(&client, node).await {
                gone_nodes.insert(node.clone());
                force_delete(&client, ns, name, "bound to a node that no longer exists").await;
            }
        }
        for (ns, name) in &d.unscheduled {
            force_delete(&client, ns, name, "terminating and never scheduled").await;
        }
    }
}

/// Confirms with a live read that a node the cache lacks is really gone.
async fn node_gone(client: &Client, name: &str) -> bool {
    matches!(
        Api::<Node>::all(client.clone()).get_opt(name).await,
        Ok(None)
    )
}

async fn force_delete(client: &Client, ns: &str, name: &str, why: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    match api
        .delete(name, &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => tracing::info!(namespace = ns, pod = name, "podgc: deleted: {why}"),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(namespace = ns, pod = name, error = %e, "podgc: delete failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(name: &str, node: &str, phase: &str, age_s: i64) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("ns".into());
        let at =
            k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 - age_s).unwrap_or_default();
        p.metadata.creation_timestamp = Some(Time(at));
        p.spec = Some(PodSpec {
            node_name: (!node.is_empty()).then(|| node.to_string()),
            ..PodSpec::default()
        });
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            ..PodStatus::default()
        });
        Arc::new(p)
    }

    #[test]
    fn oldest_terminated_pods_beyond_the_threshold_go_first() {
        let nodes: HashSet<String> = ["n1".to_string()].into();
        let pods = vec![
            pod("new", "n1", "Succeeded", 10),
            pod("old", "n1", "Failed", 300),
            pod("mid", "n1", "Succeeded", 100),
            pod("running", "n1", "Running", 1000),
        ];
        let d = plan(&pods, &nodes, 1);
        let names: Vec<&str> = d.terminated.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, vec!["old", "mid"]);
        assert!(plan(&pods, &nodes, 3).terminated.is_empty());
    }

    #[test]
    fn pods_of_missing_nodes_and_unscheduled_terminating_pods_are_found() {
        let nodes: HashSet<String> = ["n1".to_string()].into();
        let mut stuck = (*pod("stuck", "", "Pending", 5)).clone();
        stuck.metadata.deletion_timestamp = stuck.metadata.creation_timestamp.clone();
        let pods = vec![
            pod("ok", "n1", "Running", 1),
            pod("lost", "n9", "Running", 1),
            pod("pending", "", "Pending", 1),
            Arc::new(stuck),
        ];
        let d = plan(&pods, &nodes, 100);
        assert_eq!(d.orphaned, vec![("ns".into(), "lost".into(), "n9".into())]);
        assert_eq!(d.unscheduled, vec![("ns".into(), "stuck".into())]);
    }
}

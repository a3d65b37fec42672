//! Defaulting as upstream's `SetDefaults_*` functions do it, on the typed
//! k8s-openapi structs: Pod specs (also inside every workload template),
//! workloads, Services, Namespaces, Secrets, Jobs and CronJobs.

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetUpdateStrategy, Deployment, DeploymentStrategy, ReplicaSet,
    RollingUpdateDaemonSet, RollingUpdateDeployment, RollingUpdateStatefulSetStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, Namespace, NamespaceSpec, NamespaceStatus, Pod, PodSpec, PodTemplateSpec, Secret,
    Service, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn set<T>(field: &mut Option<T>, value: T) {
    if field.is_none() {
        *field = Some(value);
    }
}

fn str(field: &mut Option<String>, value: &str) {
    set(field, value.to_string());
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
fn pull_policy(image: &str) -> &'static str {
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match name.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn container(c: &mut Container) {
    let image = c.image.clone().unwrap_or_default();
    str(&mut c.image_pull_policy, pull_policy(&image));
    str(&mut c.termination_message_path, "/dev/termination-log");
    str(&mut c.termination_message_policy, "File");
    for p in c.ports.iter_mut().flatten() {
        str(&mut p.protocol, "TCP");
    }
    set(&mut c.resources, Default::default());
}

/// Pod spec defaults (also applied to templates).
pub fn pod_spec(s: &mut PodSpec) {
    str(&mut s.restart_policy, "Always");
    str(&mut s.dns_policy, "ClusterFirst");
    set(&mut s.termination_grace_period_seconds, 30);
    str(&mut s.scheduler_name, "default-scheduler");
    set(&mut s.security_context, Default::default());
    set(&mut s.enable_service_links, true);
    for c in s.containers.iter_mut() {
        container(c);
    }
    for c in s.init_containers.iter_mut().flatten() {
        container(c);
    }
    for c in s.ephemeral_containers.iter_mut().flatten() {
        let image = c.image.clone().unwrap_or_default();
        str(&mut c.image_pull_policy, pull_policy(&image));
        str(&mut c.termination_message_path, "/dev/termination-log");
        str(&mut c.termination_message_policy, "File");
    }
}

/// A created Pod also gets a service account and priority (the
/// not-ready/unreachable tolerations come from admission, `rest/admit.rs`).
pub fn pod(p: &mut Pod) {
    let Some(spec) = p.spec.as_mut() else { return };
    pod_spec(spec);
    str(&mut spec.service_account_name, "default");
    str(&mut spec.preemption_policy, "PreemptLowerPriority");
    set(&mut spec.priority, 0);
}

fn template(t: &mut PodTemplateSpec) {
    if let Some(s) = t.spec.as_mut() {
        pod_spec(s);
    }
}

fn pct(p: &str) -> IntOrString {
    IntOrString::String(p.into())
}

pub fn deployment(d: &mut Deployment) {
    let Some(s) = d.spec.as_mut() else { return };
    set(&mut s.replicas, 1);
    let strategy = s.strategy.get_or_insert_with(DeploymentStrategy::default);
    str(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        set(&mut ru.max_surge, pct("25%"));
        set(&mut ru.max_unavailable, pct("25%"));
    }
    set(&mut s.revision_history_limit, 10);
    set(&mut s.progress_deadline_seconds, 600);
    template(&mut s.template);
}

pub fn replica_set(r: &mut ReplicaSet) {
    let Some(s) = r.spec.as_mut() else { return };
    set(&mut s.replicas, 1);
    if let Some(t) = s.template.as_mut() {
        template(t);
    }
}

pub fn stateful_set(r: &mut StatefulSet) {
    let Some(s) = r.spec.as_mut() else { return };
    set(&mut s.replicas, 1);
    str(&mut s.pod_management_policy, "OrderedReady");
    let us = s
        .update_strategy
        .get_or_insert_with(StatefulSetUpdateStrategy::default);
    str(&mut us.type_, "RollingUpdate");
    if us.type_.as_deref() == Some("RollingUpdate") {
        let ru = us
            .rolling_update
            .get_or_insert_with(RollingUpdateStatefulSetStrategy::default);
        set(&mut ru.partition, 0);
    }
    set(&mut s.revision_history_limit, 10);
    let p = s
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
    str(&mut p.when_deleted, "Retain");
    str(&mut p.when_scaled, "Retain");
    template(&mut s.template);
}

pub fn daemon_set(d: &mut DaemonSet) {
    let Some(s) = d.spec.as_mut() else { return };
    let us = s
        .update_strategy
        .get_or_insert_with(DaemonSetUpdateStrategy::default);
    str(&mut us.type_, "RollingUpdate");
    if us.type_.as_deref() == Some("RollingUpdate") {
        let ru = us
            .rolling_update
            .get_or_insert_with(RollingUpdateDaemonSet::default);
        set(&mut ru.max_unavailable, IntOrString::Int(1));
        set(&mut ru.max_surge, IntOrString::Int(0));
    }
    set(&mut s.revision_history_limit, 10);
    template(&mut s.template);
}

fn job_spec(s: &mut JobSpec) {
    set(&mut s.parallelism, 1);
    set(&mut s.completions, 1);
    set(&mut s.backoff_limit, 6);
    str(&mut s.completion_mode, "NonIndexed");
    set(&mut s.suspend, false);
    set(&mut s.manual_selector, false);
    str(&mut s.pod_replacement_policy, "TerminatingOrFailed");
    template(&mut s.template);
}

pub fn job(j: &mut Job) {
    if let Some(s) = j.spec.as_mut() {
        job_spec(s);
    }
}

pub fn cron_job(c: &mut CronJob) {
    let Some(s) = c.spec.as_mut() else { return };
    str(&mut s.concurrency_policy, "Allow");
    set(&mut s.suspend, false);
    set(&mut s.successful_jobs_history_limit, 3);
    set(&mut s.failed_jobs_history_limit, 1);
    if let Some(js) = s.job_template.spec.as_mut() {
        js.template.spec.as_mut().map(pod_spec);
        set(&mut js.backoff_limit, 6);
        str(&mut js.completion_mode, "NonIndexed");
        set(&mut js.suspend, false);
        str(&mut js.pod_replacement_policy, "TerminatingOrFailed");
    }
}

pub fn service(svc: &mut Service) {
    let s = svc.spec.get_or_insert_with(ServiceSpec::default);
    str(&mut s.type_, "ClusterIP");
    str(&mut s.session_affinity, "None");
    if s.type_.as_deref() != Some("ExternalName") {
        str(&mut s.internal_traffic_policy, "Cluster");
        set(&mut s.ip_families, vec!["IPv4".to_string()]);
        str(&mut s.ip_family_policy, "SingleStack");
    }
    if matches!(s.type_.as_deref(), Some("NodePort" | "LoadBalancer")) {
        str(&mut s.external_traffic_policy, "Cluster");
    }
    for p in s.ports.iter_mut().flatten() {
        str(&mut p.protocol, "TCP");
        set(&mut p.target_port, IntOrString::Int(p.port));
    }
}

pub fn namespace(ns: &mut Namespace) {
    let spec = ns.spec.get_or_insert_with(NamespaceSpec::default);
    set(&mut spec.finalizers, vec!["kubernetes".to_string()]);
    let status = ns.status.get_or_insert_with(NamespaceStatus::default);
    str(&mut status.phase, "Active");
    if let Some(name) = ns.metadata.name.clone() {
        ns.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("kubernetes.io/metadata.name".into(), name);
    }
}

pub fn secret(s: &mut Secret) {
    str(&mut s.type_, "Opaque");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_follows_the_tag() {
        assert_eq!(pull_policy("busybox"), "Always");
        assert_eq!(pull_policy("busybox:latest"), "Always");
        assert_eq!(pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(pull_policy("localhost:5000/busybox:1"), "IfNotPresent");
    }

    #[test]
    fn deployment_gets_rolling_update_25_percent() {
        let mut d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}}
        }))
        .unwrap();
        deployment(&mut d);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(v["spec"]["replicas"], 1);
        assert_eq!(v["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(v["spec"]["progressDeadlineSeconds"], 600);
        let c = &v["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(v["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }
}

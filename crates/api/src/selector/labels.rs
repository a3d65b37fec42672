//! The field labels upstream supports in field selectors, per kind, and
//! the object path each one reads. Every kind supports `metadata.name` and
//! `metadata.namespace`; anything else not listed is refused with
//! `field label not supported`.

/// Field labels beyond `metadata.name`/`metadata.namespace`, by kind.
fn extra(group: &str, kind: &str) -> &'static [&'static str] {
    match (group, kind) {
        ("", "Pod") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "Event") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("", "Secret") => &["type"],
        ("", "Node") => &["spec.unschedulable"],
        ("", "Namespace") => &["status.phase"],
        ("", "ReplicationController") | ("apps", "ReplicaSet") => &["status.replicas"],
        ("batch", "Job") => &["status.successful"],
        ("certificates.k8s.io", "CertificateSigningRequest") => &["spec.signerName"],
        _ => &[],
    }
}

/// Whether upstream accepts `field` in a field selector for this kind.
pub fn supported(group: &str, kind: &str, field: &str) -> bool {
    matches!(field, "metadata.name" | "metadata.namespace") || extra(group, kind).contains(&field)
}

/// The object path a field label reads (`source` on core Events reads
/// `source.component`); the label itself otherwise.
pub fn object_path<'a>(group: &str, kind: &str, field: &'a str) -> &'a str {
    match (group, kind, field) {
        ("", "Event", "source") => "source.component",
        _ => field,
    }
}

//! `as=Table` output: upstream's columns per resource (with `priority: 1`
//! for the `-o wide` ones) and one row per object, each row carrying the
//! object's metadata (or the full object with `includeObject=Object`).

use serde_json::{json, Value};

/// Which object goes into `rows[].object`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(v: Option<&str>) -> Self {
        match v {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

type Col = (&'static str, &'static str, u8);

fn columns(plural: &str) -> &'static [Col] {
    const AGE: Col = ("Age", "string", 0);
    match plural {
        "pods" => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            AGE,
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        "deployments" => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "replicasets" => &[
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "statefulsets" => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
        ],
        "daemonsets" => &[
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Node Selector", "string", 0),
            AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "services" => &[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            AGE,
            ("Selector", "string", 1),
        ],
        "nodes" => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            AGE,
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        "namespaces" => &[("Name", "string", 0), ("Status", "string", 0), AGE],
        "events" => &[
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "string", 1),
            ("Name", "string", 1),
        ],
        "jobs" => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "cronjobs" => &[
            ("Name", "string", 0),
            ("Schedule", "string", 0),
            ("Timezone", "string", 0),
            ("Suspend", "boolean", 0),
            ("Active", "integer", 0),
            ("Last Schedule", "string", 0),
            AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "secrets" => &[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Data", "string", 0),
            AGE,
        ],
        "configmaps" => &[("Name", "string", 0), ("Data", "string", 0), AGE],
        "serviceaccounts" => &[("Name", "string", 0), ("Secrets", "string", 0), AGE],
        "endpoints" => &[("Name", "string", 0), ("Endpoints", "string", 0), AGE],
        "leases" => &[("Name", "string", 0), ("Holder", "string", 0), AGE],
        "endpointslices" => &[
            ("Name", "string", 0),
            ("AddressType", "string", 0),
            ("Ports", "string", 0),
            ("Endpoints", "string", 0),
            AGE,
        ],
        _ => &[("Name", "string", 0), AGE],
    }
}

/// The `columnDefinitions` of a resource.
pub fn column_definitions(plural: &str) -> Value {
    let cols: Vec<Value> = columns(plural)
        .iter()
        .map(|(name, ty, prio)| {
            json!({"name": name, "type": ty, "format": if *name == "Name" { "name" } else { "" },
                   "description": description(name), "priority": prio})
        })
        .collect();
    Value::Array(cols)
}

fn description(col: &str) -> &'static str {
    match col {
        "Name" => "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "Age" => "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.",
        _ => "",
    }
}

/// Upstream's `HumanDuration` ("42m", "3h5m", "2d").
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{}d", h / 24)
        } else {
            format!("{}d{}h", h / 24, h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{}d", h / 24)
    } else if h < 24 * 365 * 8 {
        format!("{}y{}d", h / 24 / 365, (h / 24) % 365)
    } else {
        format!("{}y", h / 24 / 365)
    }
}

fn since(ts: Option<&str>) -> String {
    match ts.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => {
            human_duration((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
        }
        None => "<unknown>".into(),
    }
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    path.split('.')
        .try_fold(v, |cur, p| cur.get(p))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn i(v: &Value, path: &str) -> i64 {
    path.split('.')
        .try_fold(v, |cur, p| cur.get(p))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn arr<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    path.split('.')
        .try_fold(v, |cur, p| cur.get(p))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s
    }
}

fn containers_images(spec: &Value) -> (String, String) {
    let cs = arr(spec, "containers");
    let names: Vec<&str> = cs.iter().map(|c| s(c, "name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| s(c, "image")).collect();
    (names.join(","), images.join(","))
}

fn selector_text(sel: &Value) -> String {
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    for e in arr(sel, "matchExpressions") {
        let vals: Vec<&str> = arr(e, "values").iter().filter_map(Value::as_str).collect();
        let key = s(e, "key");
        parts.push(match s(e, "operator") {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    or_none(parts.join(","))
}

fn pod_cells(p: &Value) -> Vec<Value> {
    let statuses = arr(p, "status.containerStatuses");
    let total = arr(p, "spec.containers").len();
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let mut reason = match s(p, "status.reason") {
        "" => s(p, "status.phase").to_string(),
        r => r.to_string(),
    };
    for c in statuses.iter().rev() {
        let w = s(c, "state.waiting.reason");
        let t = s(c, "state.terminated.reason");
        if !w.is_empty() {
            reason = w.to_string();
        } else if !t.is_empty() {
            reason = t.to_string();
        }
    }
    if !s(p, "metadata.deletionTimestamp").is_empty() {
        reason = if s(p, "status.reason") == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    let gates = arr(p, "spec.readinessGates");
    vec![
        json!(s(p, "metadata.name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts.to_string()),
        json!(since(Some(s(p, "metadata.creationTimestamp")))),
        json!(or_none(s(p, "status.podIP").into())),
        json!(or_none(s(p, "spec.nodeName").into())),
        json!(or_none(s(p, "status.nominatedNodeName").into())),
        json!(if gates.is_empty() {
            "<none>".to_string()
        } else {
            format!("0/{}", gates.len())
        }),
    ]
}

fn service_cells(v: &Value) -> Vec<Value> {
    let ports: Vec<String> = arr(v, "spec.ports")
        .iter()
        .map(|p| {
            let np = p["nodePort"]
                .as_i64()
                .map(|n| format!(":{n}"))
                .unwrap_or_default();
            format!("{}{np}/{}", i(p, "port"), s(p, "protocol"))
        })
        .collect();
    let ext = match s(v, "spec.type") {
        "ExternalName" => s(v, "spec.externalName").to_string(),
        "LoadBalancer" => "<pending>".to_string(),
        _ => "<none>".to_string(),
    };
    let sel = v["spec"]["selector"].as_object().map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(",")
    });
    vec![
        json!(s(v, "metadata.name")),
        json!(s(v, "spec.type")),
        json!(or_none(s(v, "spec.clusterIP").into())),
        json!(ext),
        json!(or_none(ports.join(","))),
        json!(age(v)),
        json!(or_none(sel.unwrap_or_default())),
    ]
}

fn age(v: &Value) -> String {
    since(Some(s(v, "metadata.creationTimestamp")))
}

fn node_cells(v: &Value) -> Vec<Value> {
    let ready = arr(v, "status.conditions")
        .iter()
        .find(|c| s(c, "type") == "Ready");
    let mut status = match ready.map(|c| s(c, "status")) {
        Some("True") => "Ready".to_string(),
        _ => "NotReady".to_string(),
    };
    if v["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    let roles: Vec<&str> = v["metadata"]["labels"]
        .as_object()
        .map(|l| {
            l.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .collect()
        })
        .unwrap_or_default();
    let addr = |t: &str| {
        arr(v, "status.addresses")
            .iter()
            .find(|a| s(a, "type") == t)
            .map(|a| s(a, "address").to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    vec![
        json!(s(v, "metadata.name")),
        json!(status),
        json!(or_none(roles.join(","))),
        json!(age(v)),
        json!(s(v, "status.nodeInfo.kubeletVersion")),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(s(v, "status.nodeInfo.osImage")),
        json!(s(v, "status.nodeInfo.kernelVersion")),
        json!(s(v, "status.nodeInfo.containerRuntimeVersion")),
    ]
}

fn event_cells(v: &Value) -> Vec<Value> {
    let last = [
        s(v, "lastTimestamp"),
        s(v, "eventTime"),
        s(v, "metadata.creationTimestamp"),
    ]
    .into_iter()
    .find(|t| !t.is_empty());
    let first = [s(v, "firstTimestamp"), s(v, "eventTime")]
        .into_iter()
        .find(|t| !t.is_empty());
    let obj = format!(
        "{}/{}",
        s(v, "involvedObject.kind").to_lowercase(),
        s(v, "involvedObject.name")
    );
    let source = match (s(v, "source.component"), s(v, "source.host")) {
        ("", _) => s(v, "reportingComponent").to_string(),
        (c, "") => c.to_string(),
        (c, h) => format!("{c}, {h}"),
    };
    vec![
        json!(since(last)),
        json!(s(v, "type")),
        json!(s(v, "reason")),
        json!(obj),
        json!(s(v, "involvedObject.fieldPath")),
        json!(source),
        json!(s(v, "message")),
        json!(since(first)),
        json!(i(v, "count").max(1).to_string()),
        json!(s(v, "metadata.name")),
    ]
}

fn job_cells(v: &Value) -> Vec<Value> {
    let conds = arr(v, "status.conditions");
    let has = |t: &str| {
        conds
            .iter()
            .any(|c| s(c, "type") == t && s(c, "status") == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if has("Suspended") {
        "Suspended"
    } else {
        "Running"
    };
    let duration = match (s(v, "status.startTime"), s(v, "status.completionTime")) {
        ("", _) => String::new(),
        (st, "") => since(Some(st)),
        (st, ct) => match (
            chrono::DateTime::parse_from_rfc3339(st),
            chrono::DateTime::parse_from_rfc3339(ct),
        ) {
            (Ok(a), Ok(b)) => human_duration((b - a).num_seconds()),
            _ => String::new(),
        },
    };
    let (c, im) = containers_images(&v["spec"]["template"]["spec"]);
    vec![
        json!(s(v, "metadata.name")),
        json!(status),
        json!(format!(
            "{}/{}",
            i(v, "status.succeeded"),
            v["spec"]["completions"].as_i64().unwrap_or(1)
        )),
        json!(duration),
        json!(age(v)),
        json!(c),
        json!(im),
        json!(selector_text(&v["spec"]["selector"])),
    ]
}

fn workload_cells(plural: &str, v: &Value) -> Vec<Value> {
    let (c, im) = containers_images(&v["spec"]["template"]["spec"]);
    let sel = selector_text(&v["spec"]["selector"]);
    let name = json!(s(v, "metadata.name"));
    let want = v["spec"]["replicas"].as_i64().unwrap_or(1);
    match plural {
        "deployments" => vec![
            name,
            json!(format!("{}/{want}", i(v, "status.readyReplicas"))),
            json!(i(v, "status.updatedReplicas")),
            json!(i(v, "status.availableReplicas")),
            json!(age(v)),
            json!(c),
            json!(im),
            json!(sel),
        ],
        "replicasets" => vec![
            name,
            json!(want),
            json!(i(v, "status.replicas")),
            json!(i(v, "status.readyReplicas")),
            json!(age(v)),
            json!(c),
            json!(im),
            json!(sel),
        ],
        "statefulsets" => vec![
            name,
            json!(format!("{}/{want}", i(v, "status.readyReplicas"))),
            json!(age(v)),
            json!(c),
            json!(im),
        ],
        _ => {
            let ns = v["spec"]["template"]["spec"]["nodeSelector"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                });
            vec![
                name,
                json!(i(v, "status.desiredNumberScheduled")),
                json!(i(v, "status.currentNumberScheduled")),
                json!(i(v, "status.numberReady")),
                json!(i(v, "status.updatedNumberScheduled")),
                json!(i(v, "status.numberAvailable")),
                json!(or_none(ns.unwrap_or_default())),
                json!(age(v)),
                json!(c),
                json!(im),
                json!(sel),
            ]
        }
    }
}

fn count(v: &Value, field: &str) -> usize {
    v.get(field)
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
}

/// The cells of one row.
pub fn cells(plural: &str, v: &Value) -> Vec<Value> {
    let name = json!(s(v, "metadata.name"));
    match plural {
        "pods" => pod_cells(v),
        "deployments" | "replicasets" | "statefulsets" | "daemonsets" => workload_cells(plural, v),
        "services" => service_cells(v),
        "nodes" => node_cells(v),
        "namespaces" => vec![name, json!(s(v, "status.phase")), json!(age(v))],
        "events" => event_cells(v),
        "jobs" => job_cells(v),
        "cronjobs" => {
            let (c, im) = containers_images(&v["spec"]["jobTemplate"]["spec"]["template"]["spec"]);
            let last = s(v, "status.lastScheduleTime");
            vec![
                name,
                json!(s(v, "spec.schedule")),
                json!(or_none(s(v, "spec.timeZone").into())),
                json!(v["spec"]["suspend"] == true),
                json!(arr(v, "status.active").len()),
                json!(if last.is_empty() {
                    "<none>".into()
                } else {
                    since(Some(last))
                }),
                json!(age(v)),
                json!(c),
                json!(im),
                json!(selector_text(&v["spec"]["jobTemplate"]["spec"]["selector"])),
            ]
        }
        "secrets" => vec![
            name,
            json!(s(v, "type")),
            json!(count(v, "data").to_string()),
            json!(age(v)),
        ],
        "configmaps" => vec![
            name,
            json!((count(v, "data") + count(v, "binaryData")).to_string()),
            json!(age(v)),
        ],
        "serviceaccounts" => vec![
            name,
            json!(arr(v, "secrets").len().to_string()),
            json!(age(v)),
        ],
        "endpoints" => {
            let eps: Vec<String> = arr(v, "subsets")
                .iter()
                .flat_map(|ss| {
                    let ports: Vec<i64> = arr(ss, "ports").iter().map(|p| i(p, "port")).collect();
                    arr(ss, "addresses")
                        .iter()
                        .flat_map(move |a| {
                            let ip = s(a, "ip").to_string();
                            let ports = ports.clone();
                            if ports.is_empty() {
                                vec![ip]
                            } else {
                                ports.iter().map(|p| format!("{ip}:{p}")).collect()
                            }
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            vec![name, json!(or_none(eps.join(","))), json!(age(v))]
        }
        "leases" => vec![
            name,
            json!(or_none(s(v, "spec.holderIdentity").into())),
            json!(age(v)),
        ],
        "endpointslices" => {
            let ports: Vec<String> = arr(v, "ports")
                .iter()
                .map(|p| i(p, "port").to_string())
                .collect();
            let eps: Vec<&str> = arr(v, "endpoints")
                .iter()
                .flat_map(|e| arr(e, "addresses").iter().filter_map(Value::as_str))
                .collect();
            vec![
                name,
                json!(s(v, "addressType")),
                json!(or_none(ports.join(","))),
                json!(or_none(eps.join(","))),
                json!(age(v)),
            ]
        }
        _ => vec![name, json!(age(v))],
    }
}

/// One table row.
pub fn row(plural: &str, v: &Value, include: Include) -> Value {
    let mut r = json!({"cells": cells(plural, v)});
    match include {
        Include::None => {}
        Include::Object => r["object"] = v.clone(),
        Include::Metadata => {
            r["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": v.get("metadata").cloned().unwrap_or(json!({}))})
        }
    }
    r
}

/// A whole Table.
pub fn table(
    plural: &str,
    objs: &[Value],
    rv: &str,
    cont: Option<&str>,
    include: Include,
    with_columns: bool,
) -> Value {
    let rows: Vec<Value> = objs.iter().map(|o| row(plural, o, include)).collect();
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
           "columnDefinitions": if with_columns { column_definitions(plural) } else { Value::Null },
           "rows": rows})
}

/// True when the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .any(|p| p.contains("as=Table") && p.contains("g=meta.k8s.io"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(42 * 60), "42m");
        assert_eq!(human_duration(5 * 3600 + 60), "5h1m");
        assert_eq!(human_duration(3 * 86400), "3d");
    }

    #[test]
    fn pod_row_has_wide_columns_and_metadata() {
        let p = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}], "nodeName": "n1"},
            "status": {"phase": "Pending"}});
        let r = row("pods", &p, Include::Metadata);
        assert_eq!(r["cells"][0], "web");
        assert_eq!(r["cells"][1], "0/1");
        assert_eq!(r["cells"][2], "Pending");
        assert_eq!(r["cells"][6], "n1");
        assert_eq!(r["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(column_definitions("pods")[5]["priority"], 1);
    }
}

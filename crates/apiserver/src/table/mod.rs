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

mod cells;

pub use cells::cells;

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

//! Admission: small per-resource steps around writes that need server
//! state — ClusterIP/NodePort allocation, initial pod status and the
//! DefaultTolerationSeconds tolerations, Job selectors from the Job's uid,
//! the `default` ServiceAccount of a new namespace.

use super::{Api, Req};
use crate::meta;
use crate::status::{ApiError, ApiResult, Cause};
use serde_json::{json, Value};

fn qos_class(pod: &Value) -> &'static str {
    let cs = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let has = |c: &Value, part: &str| {
        c["resources"][part]
            .as_object()
            .is_some_and(|m| !m.is_empty())
    };
    if cs.iter().all(|c| !has(c, "requests") && !has(c, "limits")) {
        return "BestEffort";
    }
    let guaranteed = cs.iter().all(|c| {
        let l = &c["resources"]["limits"];
        let r = &c["resources"]["requests"];
        ["cpu", "memory"]
            .iter()
            .all(|k| !l[k].is_null() && (r[k].is_null() || r[k] == l[k]))
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Upstream's DefaultTolerationSeconds admission: how long new pods
/// tolerate the `not-ready` and `unreachable` NoExecute taints.
#[derive(Debug, Clone, Copy)]
pub struct DefaultTolerations {
    pub not_ready_seconds: i64,
    pub unreachable_seconds: i64,
}

impl Default for DefaultTolerations {
    fn default() -> Self {
        DefaultTolerations {
            not_ready_seconds: 300,
            unreachable_seconds: 300,
        }
    }
}

impl DefaultTolerations {
    /// Adds the two tolerations to a pod unless it already tolerates the taint.
    pub fn apply(&self, pod: &mut Value) {
        let spec = &mut pod["spec"];
        if !spec["tolerations"].is_array() {
            spec["tolerations"] = json!([]);
        }
        let Some(list) = spec["tolerations"].as_array_mut() else {
            return;
        };
        for (key, secs) in [
            ("node.kubernetes.io/not-ready", self.not_ready_seconds),
            ("node.kubernetes.io/unreachable", self.unreachable_seconds),
        ] {
            if !list.iter().any(|t| tolerates_no_execute(t, key)) {
                list.push(json!({"key": key, "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": secs}));
            }
        }
    }
}

/// Whether a toleration covers the `key:NoExecute` taint.
fn tolerates_no_execute(t: &Value, key: &str) -> bool {
    let effect = t["effect"].as_str().unwrap_or("");
    let tkey = t["key"].as_str().unwrap_or("");
    let exists = t["operator"].as_str() == Some("Exists");
    (effect.is_empty() || effect == "NoExecute") && (tkey == key || (tkey.is_empty() && exists))
}

impl Api {
    fn plural(&self, req: &Req<'_>) -> &'static str {
        self.strategy(req.idx).resource.plural
    }

    pub(super) fn admit_create(&self, req: &Req<'_>, obj: &mut Value) -> ApiResult<()> {
        match self.plural(req) {
            "services" => self.alloc.allocate(obj, None).map_err(|m| {
                ApiError::invalid(
                    "",
                    "Service",
                    meta::name(obj),
                    &[Cause::invalid("spec.clusterIPs", "", m)],
                )
            }),
            "pods" => {
                obj["status"] = json!({"phase": "Pending", "qosClass": qos_class(obj)});
                self.default_tolerations.apply(obj);
                Ok(())
            }
            "jobs" if self.strategy(req.idx).resource.group == "batch" => {
                if obj["spec"]["manualSelector"] != true {
                    let uid = meta::uid(obj).to_string();
                    let name = meta::name(obj).to_string();
                    obj["spec"]["selector"] =
                        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
                    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
                    if !labels.is_object() {
                        *labels = json!({});
                    }
                    for (k, v) in [
                        ("batch.kubernetes.io/controller-uid", &uid),
                        ("controller-uid", &uid),
                        ("batch.kubernetes.io/job-name", &name),
                        ("job-name", &name),
                    ] {
                        labels[k] = json!(v);
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub(super) fn admit_update(
        &self,
        req: &Req<'_>,
        new: &mut Value,
        old: &Value,
    ) -> ApiResult<()> {
        if self.plural(req) == "services" {
            return self.alloc.allocate(new, Some(old)).map_err(|m| {
                ApiError::invalid(
                    "",
                    "Service",
                    meta::name(new),
                    &[Cause::invalid("spec.clusterIPs", "", m)],
                )
            });
        }
        Ok(())
    }

    pub(super) async fn after_create(&self, req: &Req<'_>, obj: &Value) {
        if self.plural(req) == "namespaces" && self.strategy(req.idx).resource.group.is_empty() {
            let ns = meta::name(obj);
            let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": ns, "uid": uuid::Uuid::new_v4().to_string(),
                             "creationTimestamp": meta::now()}});
            let key = format!("/registry/serviceaccounts/{ns}/default");
            let _ = self
                .store
                .create(&key, serde_json::to_vec(&sa).unwrap_or_default())
                .await;
        }
    }

    pub(super) async fn after_delete(&self, req: &Req<'_>, kv: &store::KeyValue) {
        if self.plural(req) == "services" {
            if let Ok(v) = serde_json::from_slice::<Value>(&kv.value) {
                self.alloc.release(&v);
            }
        }
    }

    pub(super) fn release_on_failure(&self, req: &Req<'_>, obj: &Value) {
        if self.plural(req) == "services" {
            self.alloc.release(obj);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tolerations_are_added_once() {
        let d = DefaultTolerations {
            not_ready_seconds: 5,
            unreachable_seconds: 7,
        };
        let mut pod = json!({"spec": {"containers": [], "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]}});
        d.apply(&mut pod);
        let ts = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[0]["tolerationSeconds"], 1);
        assert_eq!(ts[1]["key"], "node.kubernetes.io/unreachable");
        assert_eq!(ts[1]["tolerationSeconds"], 7);
        let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        d.apply(&mut all);
        assert_eq!(all["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }
}

//! Server-side apply and managedFields tests, starting from the body real
//! kubectl 1.33 sends for `kubectl apply --server-side` of a Deployment.

use serde_json::{json, Value};

use super::*;
use crate::GroupVersionKind;

fn deployment() -> GroupVersionKind {
    GroupVersionKind::new("apps", "v1", "Deployment")
}

fn kubectl_body() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/patch/deployment-apply-ssa.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

fn apply(
    live: Option<&Value>,
    cfg: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApplyError> {
    server_side_apply(live, cfg, manager, force, &deployment())
}

#[test]
fn apply_creates_with_managed_fields_like_upstream() {
    let cfg = kubectl_body();
    let obj = apply(None, &cfg, "kubectl", false).unwrap();
    assert_eq!(obj["spec"]["replicas"], 4);
    let e = entry(&obj, "kubectl").unwrap();
    assert_eq!(e["operation"], "Apply");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(e["apiVersion"], "apps/v1");
    let f = &e["fieldsV1"];
    assert_eq!(f["f:spec"]["f:replicas"], json!({}));
    assert_eq!(f["f:spec"]["f:selector"], json!({}), "selectors are atomic");
    let app = &f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"];
    assert_eq!(app["."], json!({}));
    assert_eq!(app["f:image"], json!({}));
    assert_eq!(
        app["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]["."],
        json!({})
    );
    assert_eq!(app["f:env"]["k:{\"name\":\"A\"}"]["f:value"], json!({}));
    assert_eq!(
        f["f:metadata"]["f:finalizers"]["v:\"example.com/b\""],
        json!({})
    );
    assert!(f["f:metadata"].get("f:name").is_none());
    assert!(f.get("f:apiVersion").is_none());
}

#[test]
fn second_apply_with_changes_updates_and_prunes() {
    let first = apply(None, &kubectl_body(), "kubectl", false).unwrap();
    // The server defaults fields after the apply; they must survive.
    let mut live = first.clone();
    live["spec"]["template"]["spec"]["containers"][1]["ports"][0]["protocol"] = json!("TCP");
    live["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let mut cfg = kubectl_body();
    cfg["spec"]["replicas"] = json!(5);
    let containers = cfg["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap();
    containers.remove(0); // drop the sidecar
    containers[0]["env"] = json!([{"name": "A", "value": "9"}]);
    cfg["metadata"]["labels"] = json!({"app": "web"});
    let out = apply(Some(&live), &cfg, "kubectl", false).unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web"}),
        "tier was dropped"
    );
    let pod = &out["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
    assert_eq!(pod["containers"][0]["name"], "app");
    assert_eq!(
        pod["containers"][0]["env"],
        json!([{"name": "A", "value": "9"}])
    );
    assert_eq!(
        pod["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    let f = &entry(&out, "kubectl").unwrap()["fieldsV1"];
    assert!(f["f:spec"]["f:template"]["f:spec"]["f:containers"]
        .get("k:{\"name\":\"sidecar\"}")
        .is_none());
    assert_eq!(
        out["metadata"]["managedFields"].as_array().unwrap().len(),
        1
    );
    // Applying the same configuration again changes nothing but the time.
    let again = apply(Some(&out), &cfg, "kubectl", false).unwrap();
    assert_eq!(again["spec"], out["spec"]);
}

#[test]
fn conflicts_name_the_manager_and_field_and_force_takes_over() {
    let live = apply(None, &kubectl_body(), "kubectl", false).unwrap();
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 7}});
    let err = apply(Some(&live), &other, "hpa", false).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts {
            conflicts: vec![Conflict {
                manager: "kubectl".into(),
                field: ".spec.replicas".into()
            }]
        }
    );
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"
    );
    // Same value: shared ownership, no conflict.
    let same = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 4}});
    assert!(apply(Some(&live), &same, "hpa", false).is_ok());
    // Force moves the field to the new manager ...
    let forced = apply(Some(&live), &other, "hpa", true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 7);
    assert!(entry(&forced, "kubectl").unwrap()["fieldsV1"]["f:spec"]
        .get("f:replicas")
        .is_none());
    // ... so kubectl no longer applying replicas leaves hpa's value alone.
    let mut cfg = kubectl_body();
    cfg["spec"].as_object_mut().unwrap().remove("replicas");
    let out = apply(Some(&forced), &cfg, "kubectl", false).unwrap();
    assert_eq!(out["spec"]["replicas"], 7);
}

#[test]
fn update_operations_take_ownership_and_conflict_with_apply() {
    let created = managed_fields_update(None, &kubectl_body(), "kubectl-create");
    let e = entry(&created, "kubectl-create").unwrap();
    assert_eq!(e["operation"], "Update");
    assert_eq!(e["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(2);
    let scaled = managed_fields_update(Some(&created), &scaled, "kubectl-scale");
    assert!(
        entry(&scaled, "kubectl-create").unwrap()["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    assert_eq!(
        entry(&scaled, "kubectl-scale").unwrap()["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    let err = apply(Some(&scaled), &kubectl_body(), "kubectl", false).unwrap_err();
    let ApplyError::Conflicts { conflicts } = err else {
        panic!("{err}")
    };
    assert!(conflicts.contains(&Conflict {
        manager: "kubectl-scale".into(),
        field: ".spec.replicas".into()
    }));
    // A write that changes nothing adds no entry.
    let same = managed_fields_update(Some(&scaled), &scaled, "kubectl-edit");
    assert!(entry(&same, "kubectl-edit").is_none());
}

#[test]
fn fields_v1_round_trips_and_bad_items_are_named() {
    let set = super::fields::extract(&kubectl_body(), super::schema::TypeRef::root("Deployment"))
        .unwrap();
    let tree = super::fields::to_fields_v1(&set);
    assert_eq!(super::fields::from_fields_v1(&tree), set);
    let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [{"image": "nginx"}]}}}});
    let err = apply(None, &bad, "kubectl", false).unwrap_err();
    assert!(err.to_string().contains("containers"), "{err}");
    assert!(err.to_string().contains("\"name\""), "{err}");
}

#[test]
fn fields_set_by_client_side_apply_change_hands_without_conflict() {
    let mut csa = kubectl_body();
    let last = csa.to_string();
    csa["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": last});
    let live = managed_fields_update(None, &csa, "kubectl-client-side-apply");
    let mut cfg = kubectl_body();
    cfg["spec"]["replicas"] = json!(8);
    let out = apply(Some(&live), &cfg, "kubectl", false).unwrap();
    assert_eq!(out["spec"]["replicas"], 8);
    let csa_fields = &entry(&out, "kubectl-client-side-apply").unwrap()["fieldsV1"];
    assert!(csa_fields["f:spec"].get("f:replicas").is_none());
    // A field client-side apply did not set (no annotation entry) still conflicts.
    let mut scaled = live.clone();
    scaled["spec"]["paused"] = json!(true);
    let scaled = managed_fields_update(Some(&live), &scaled, "kubectl-client-side-apply");
    let mut cfg = kubectl_body();
    cfg["spec"]["paused"] = json!(false);
    let err = apply(Some(&scaled), &cfg, "kubectl", false).unwrap_err();
    assert!(err.to_string().contains(".spec.paused"), "{err}");
}

#[test]
fn status_writes_are_tracked_per_subresource() {
    let live = managed_fields_update(None, &kubectl_body(), "kubectl-create");
    let mut updated = live.clone();
    updated["status"] =
        json!({"replicas": 4, "conditions": [{"type": "Available", "status": "True"}]});
    let out = managed_fields_update_subresource(
        Some(&live),
        &updated,
        "kube-controller-manager",
        "status",
    );
    let e = entry(&out, "kube-controller-manager").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"]["f:status"]["f:replicas"], json!({}));
    assert_eq!(
        e["fieldsV1"]["f:status"]["f:conditions"]["k:{\"type\":\"Available\"}"]["f:status"],
        json!({})
    );
    assert!(e["fieldsV1"].get("f:spec").is_none());
    // The spec owner is untouched.
    assert_eq!(
        entry(&out, "kubectl-create").unwrap()["fieldsV1"],
        entry(&live, "kubectl-create").unwrap()["fieldsV1"]
    );
}

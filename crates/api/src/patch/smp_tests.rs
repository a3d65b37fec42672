//! Strategic merge patch tests with the patches real kubectl 1.33 sends
//! (captured from a recording listener into `testdata/patch/`).

use serde_json::{json, Value};

use super::*;
use crate::GroupVersionKind;

fn testdata(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/patch/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn deployment() -> GroupVersionKind {
    GroupVersionKind::new("apps", "v1", "Deployment")
}

fn smp(target: &Value, patch: Value) -> Value {
    strategic_merge_patch(target, patch.to_string().as_bytes(), &deployment()).unwrap()
}

#[test]
fn second_kubectl_apply_of_a_deployment_patches_like_upstream() {
    let live: Value = serde_json::from_slice(&testdata("deployment-live.json")).unwrap();
    let patch = testdata("deployment-apply-smp.json");
    let out = strategic_merge_patch(&live, &patch, &deployment()).unwrap();
    let meta = &out["metadata"];
    assert_eq!(meta["finalizers"], json!(["example.com/b"]));
    assert_eq!(meta["labels"], json!({"app": "web", "tier": "front"}));
    assert_eq!(meta["uid"], "u1");
    let last = meta["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap();
    assert!(last.contains("\"replicas\":4"));
    assert_eq!(out["spec"]["replicas"], 4);
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    let pod = &out["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"],
        json!([
            {"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]},
            {"name": "app", "image": "nginx:1.27", "args": ["c"],
             "ports": [{"containerPort": 80, "protocol": "TCP"}],
             "env": [{"name": "A", "value": "2"}, {"name": "C", "value": "3"}],
             "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
        ])
    );
    assert_eq!(
        pod["volumes"],
        json!([{"name": "data", "configMap": {"name": "cfg"}}])
    );
    assert!(pod.get("tolerations").is_none());
    assert_eq!(pod["restartPolicy"], "Always", "server-set fields survive");
}

#[test]
fn adding_and_removing_a_sidecar_as_kubectl_does() {
    let live = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
    let added = smp(
        &live,
        json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "containers": [{"image": "busybox", "name": "sidecar"}]}}}}),
    );
    let names: Vec<_> = added["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, vec!["app", "sidecar"]);
    let removed = smp(
        &added,
        json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"$patch": "delete", "name": "sidecar"}]}}}}),
    );
    assert_eq!(removed, live);
}

#[test]
fn directives_replace_delete_and_primitive_lists() {
    let live = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1"}},
                      "spec": {"template": {"spec": {"containers": [
                          {"name": "a", "env": [{"name": "K", "value": "1"}]},
                          {"name": "b"}]}}}});
    let out = smp(
        &live,
        json!({
            "metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"$patch": "replace", "y": "2"}},
            "spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "z"}]}}}
        }),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
    assert_eq!(out["metadata"]["labels"], json!({"y": "2"}));
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "z"}])
    );
    let out = smp(&live, json!({"metadata": {"labels": {"$patch": "delete"}}}));
    assert!(out["metadata"].get("labels").is_none());
    // Lists without a merge key (args, tolerations) are replaced.
    let out = smp(&json!({"spec": {"x": [1, 2]}}), json!({"spec": {"x": [3]}}));
    assert_eq!(out["spec"]["x"], json!([3]));
}

#[test]
fn cordon_and_unknown_kinds() {
    let node = json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0/24"}});
    let gvk = GroupVersionKind::new("", "v1", "Node");
    let out = strategic_merge_patch(&node, br#"{"spec":{"unschedulable":true}}"#, &gvk).unwrap();
    assert_eq!(
        out["spec"],
        json!({"podCIDR": "10.0.0.0/24", "unschedulable": true})
    );
    let widget = GroupVersionKind::new("example.com", "v1", "Widget");
    let out = strategic_merge_patch(
        &json!({"l": [{"name": "a"}]}),
        br#"{"l":[{"name":"b"}]}"#,
        &widget,
    )
    .unwrap();
    assert_eq!(out["l"], json!([{"name": "b"}]));
}

#[test]
fn smp_errors_name_the_path() {
    let live = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}});
    let err = strategic_merge_patch(
        &live,
        br#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#,
        &deployment(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(".spec.template.spec.containers[0]"),
        "{err}"
    );
    assert!(err.to_string().contains("merge key: name"), "{err}");
    let err =
        strategic_merge_patch(&live, br#"{"spec":{"$patch":"frob"}}"#, &deployment()).unwrap_err();
    assert!(err.to_string().contains(".spec"), "{err}");
    assert!(matches!(
        strategic_merge_patch(&live, b"[]", &deployment()),
        Err(PatchError::Shape { .. })
    ));
}

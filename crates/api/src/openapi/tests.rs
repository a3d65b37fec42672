//! OpenAPI document structure as kubectl reads it.

use serde_json::Value;

use super::*;

fn res(
    group: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    subs: &[&str],
) -> ResourceDescriptor {
    ResourceDescriptor {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
        subresources: subs.iter().map(|s| s.to_string()).collect(),
    }
}

pub(crate) fn table() -> Vec<ResourceDescriptor> {
    vec![
        res("", "Pod", "pods", true, &["status", "log", "exec"]),
        res("", "Namespace", "namespaces", false, &["status"]),
        res("", "ConfigMap", "configmaps", true, &[]),
        res(
            "apps",
            "Deployment",
            "deployments",
            true,
            &["status", "scale"],
        ),
        res("example.com", "Widget", "widgets", true, &[]),
    ]
}

#[test]
fn index_lists_each_group_version_with_its_hash() {
    let index = v3_index(&table());
    let paths = index["paths"].as_object().unwrap();
    let keys: Vec<_> = paths.keys().cloned().collect();
    assert_eq!(keys, vec!["api/v1", "apis/apps/v1", "apis/example.com/v1"]);
    let apps = v3_group_version("apps", "v1", &table());
    assert_eq!(
        paths["apis/apps/v1"]["serverRelativeURL"],
        format!("/openapi/v3/apis/apps/v1?hash={}", hash(&apps))
    );
    let cache = OpenApiV3::build(&table());
    assert_eq!(
        serde_json::from_slice::<Value>(cache.index()).unwrap(),
        index
    );
    let (body, etag) = cache.document("/apis/apps/v1").unwrap();
    assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), apps);
    assert_eq!(etag, hash(&apps));
    assert!(cache.document("apis/nope/v1").is_none());
}

#[test]
fn patch_operation_declares_gvk_and_field_validation() {
    let doc = v3_group_version("apps", "v1", &table());
    let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    let patch = &item["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    let params: Vec<_> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert!(params.contains(&"fieldValidation".into()), "{params:?}");
    assert!(params.contains(&"force".into()));
    let content = patch["requestBody"]["content"].as_object().unwrap();
    assert!(content.contains_key("application/apply-patch+yaml"));
    assert!(!content.contains_key("application/strategic-merge-patch+json"));
    for verb in ["get", "put", "delete"] {
        assert!(item[verb].is_object(), "{verb}");
    }
    let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "Scale"
    );
    let core = v3_group_version("", "v1", &table());
    assert!(core["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object());
    assert!(core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"].is_object());
}

#[test]
fn schemas_are_complete_with_descriptions_for_explain() {
    let doc = v3_group_version("apps", "v1", &table());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let dep = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        dep["x-kubernetes-group-version-kind"],
        serde_json::json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
    );
    let spec_ref = dep["properties"]["spec"]["allOf"][0]["$ref"]
        .as_str()
        .unwrap();
    assert_eq!(
        spec_ref,
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    let replicas = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"];
    assert_eq!(replicas["type"], "integer");
    assert!(replicas["description"]
        .as_str()
        .unwrap()
        .contains("desired pods"));
    assert!(schemas.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    assert!(schemas.contains_key("io.k8s.api.core.v1.PodSpec"));
    assert!(schemas.contains_key("io.k8s.api.autoscaling.v1.Scale"));
    // Every $ref resolves inside the document.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = r.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
    // Documents are deterministic.
    assert_eq!(hash(&doc), hash(&v3_group_version("apps", "v1", &table())));
}

#[test]
fn unknown_kinds_get_a_permissive_schema() {
    let doc = v3_group_version("example.com", "v1", &table());
    let get = &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["get"];
    let schema = &get["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(schema["x-kubernetes-preserve-unknown-fields"], true);
}

#[test]
fn strict_validation_names_unknown_and_mistyped_fields() {
    let dep = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}},
        "spec": {"replica": 3, "replicas": "3", "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "app", "image": "nginx", "imagee": "x", "ports": [{"containerPort": 80}],
                 "resources": {"limits": {"cpu": 1, "memory": "64Mi"}}}]}}},
        "status": null});
    let issues = check_object("apps", "v1", "Deployment", &dep).unwrap();
    let shown: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "unknown field \"spec.replica\"",
            "spec.replicas: expected integer",
            "unknown field \"spec.template.spec.containers[0].imagee\"",
        ]
    );
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
        "managedFields": [{"manager": "m", "fieldsV1": {"f:data": {}}}]}, "data": {"k": "v"}});
    assert_eq!(check_object("", "v1", "ConfigMap", &cm), Some(vec![]));
    assert_eq!(check_object("example.com", "v1", "Widget", &cm), None);
}

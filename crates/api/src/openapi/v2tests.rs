//! The v2 document as kubectl 1.27/1.28 read it: the protobuf decodes,
//! every definition parses under kube-openapi's rules, and PATCH
//! operations carry the GVK and `fieldValidation` parameter.

use prost::Message;
use serde_json::Value;

use super::tests::table;
use super::v2proto::{Document, NamedAny, Operation, Schema};
use super::*;

fn decoded() -> Document {
    let v2 = OpenApiV2::build(&table());
    Document::decode(v2.protobuf().0).expect("the protobuf decodes")
}

fn patch_of<'a>(doc: &'a Document, path: &str) -> &'a Operation {
    doc.paths
        .as_ref()
        .and_then(|p| p.path.iter().find(|n| n.name == path))
        .and_then(|n| n.value.as_ref())
        .and_then(|item| item.patch.as_ref())
        .unwrap_or_else(|| panic!("no PATCH operation at {path}"))
}

/// The `x-kubernetes-group-version-kind` extension's value (YAML = JSON here).
fn gvk_of(extensions: &[NamedAny]) -> Value {
    let any = extensions
        .iter()
        .find(|e| e.name == "x-kubernetes-group-version-kind")
        .and_then(|e| e.value.as_ref())
        .expect("the GVK extension");
    serde_json::from_str(&any.yaml).expect("JSON text")
}

/// The query parameter names of an operation, as kubectl's verifier reads them.
fn query_names(op: &Operation) -> Vec<String> {
    op.parameters
        .iter()
        .filter_map(|p| p.parameter.as_ref()?.non_body_parameter.as_ref())
        .filter_map(|n| n.query_parameter_sub_schema.as_ref())
        .map(|q| q.name.clone())
        .collect()
}

#[test]
fn patch_operations_advertise_field_validation_with_their_gvk() {
    let doc = decoded();
    assert_eq!(doc.swagger, "2.0");
    let op = patch_of(
        &doc,
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    );
    assert_eq!(
        gvk_of(&op.vendor_extension),
        serde_json::json!({"group": "apps", "version": "v1", "kind": "Deployment"})
    );
    assert!(query_names(op).contains(&"fieldValidation".to_string()));
    assert!(query_names(op).contains(&"dryRun".to_string()));
    let op = patch_of(&doc, "/api/v1/namespaces/{namespace}/configmaps/{name}");
    assert!(query_names(op).contains(&"fieldValidation".to_string()));
    assert!(op
        .consumes
        .contains(&"application/merge-patch+json".to_string()));
    // Listing it would make kubectl compute patches from these schemas,
    // which have no merge keys.
    assert!(!op
        .consumes
        .contains(&"application/strategic-merge-patch+json".to_string()));
}

#[test]
fn json_and_protobuf_describe_the_same_paths() {
    let v2 = OpenApiV2::build(&table());
    let json: Value = serde_json::from_slice(v2.json().0).unwrap();
    let v3 = v3_group_version("apps", "v1", &table());
    for path in v3["paths"].as_object().unwrap().keys() {
        assert!(json["paths"].get(path).is_some(), "{path} missing from v2");
    }
    let post = &json["paths"]["/api/v1/namespaces/{namespace}/configmaps"]["post"];
    assert_eq!(post["x-kubernetes-action"], "post");
    assert_eq!(post["parameters"][0]["in"], "body");
    assert_eq!(
        post["parameters"][0]["schema"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.ConfigMap"
    );
    let names = decoded().paths.unwrap().path.len();
    assert_eq!(names, json["paths"].as_object().unwrap().len());
    assert_ne!(v2.json().1, v2.protobuf().1);
}

/// kube-openapi's `NewOpenAPIData` rules: `$ref`s name a definition, one
/// type at most, arrays have exactly one item schema, known primitives.
fn check(schema: &Schema, defs: &[String], at: &str) {
    if !schema.xref.is_empty() {
        let name = schema.xref.trim_start_matches("#/definitions/");
        assert!(
            defs.iter().any(|d| d == name),
            "{at}: dangling {}",
            schema.xref
        );
        return;
    }
    let types = schema.r#type.as_ref().map(|t| t.value.clone());
    let types = types.unwrap_or_default();
    assert!(types.len() <= 1, "{at}: several types {types:?}");
    match types.first().map(String::as_str) {
        Some("array") => {
            let items = schema.items.as_ref().map(|i| i.schema.len());
            assert_eq!(items, Some(1), "{at}: array without one item schema");
        }
        Some("object") | None => {}
        Some(t) => assert!(
            ["string", "integer", "number", "boolean"].contains(&t),
            "{at}: unknown primitive {t}"
        ),
    }
    for p in schema
        .properties
        .iter()
        .flat_map(|p| &p.additional_properties)
    {
        if let Some(s) = &p.value {
            check(s, defs, &format!("{at}.{}", p.name));
        }
    }
    for s in schema.items.iter().flat_map(|i| &i.schema) {
        check(s, defs, &format!("{at}[]"));
    }
    if let Some(s) = schema
        .additional_properties
        .as_ref()
        .and_then(|a| a.schema.as_ref())
    {
        check(s, defs, &format!("{at}{{}}"));
    }
}

#[test]
fn every_definition_parses_and_kinds_carry_their_gvk() {
    let doc = decoded();
    let defs = doc.definitions.unwrap().additional_properties;
    let names: Vec<String> = defs.iter().map(|d| d.name.clone()).collect();
    for name in [
        "io.k8s.api.apps.v1.Deployment",
        "io.k8s.api.core.v1.ConfigMap",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing");
    }
    for d in &defs {
        let schema = d.value.as_ref().expect("a schema");
        check(schema, &names, &d.name);
    }
    let deployment = defs
        .iter()
        .find(|d| d.name == "io.k8s.api.apps.v1.Deployment")
        .and_then(|d| d.value.as_ref())
        .expect("the Deployment schema");
    assert_eq!(
        gvk_of(&deployment.vendor_extension)[0]["kind"],
        "Deployment"
    );
}

#[test]
fn v2_schemas_use_upstream_v2_shapes() {
    let doc = v2_document(&table());
    let spec = &doc["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
    assert_eq!(
        spec["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(spec.get("allOf").is_none(), "{spec}");
    assert!(spec["description"].is_string());
    let text = doc.to_string();
    assert!(!text.contains("\"allOf\""));
    assert!(!text.contains("#/components/"));
    let ios = &doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["type"], "string");
    assert_eq!(ios["format"], "int-or-string");
}

//! JSON patch (RFC 6902) and JSON merge patch (RFC 7386).

use serde_json::Value;

use super::{decode, PatchError};

/// Applies an RFC 6902 JSON patch (a JSON array of operations) to `target`.
/// Errors name the failing operation's index and path.
pub fn json_patch(target: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let body = decode(patch)?;
    let ops = body
        .as_array()
        .ok_or(PatchError::Shape { expected: "array" })?;
    let mut parsed = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let op = serde_json::from_value::<json_patch::PatchOperation>(op.clone()).map_err(|e| {
            PatchError::JsonPatch {
                index,
                reason: e.to_string(),
            }
        })?;
        parsed.push(op);
    }
    let mut doc = target.clone();
    json_patch::patch(&mut doc, &parsed).map_err(|e| PatchError::JsonPatch {
        index: e.operation,
        reason: format!("{} at {:?}", e.kind, e.path.as_str()),
    })?;
    Ok(doc)
}

/// Applies an RFC 7386 JSON merge patch (a JSON object) to `target`:
/// objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let body = decode(patch)?;
    if !body.is_object() {
        return Err(PatchError::Shape { expected: "object" });
    }
    let mut doc = target.clone();
    json_patch::merge(&mut doc, &body);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_patch_applies_kubectl_patch_type_json() {
        let dep = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let patch = br#"[{"op":"replace","path":"/spec/replicas","value":3},
            {"op":"add","path":"/spec/template/spec/containers/0/env","value":[{"name":"K","value":"V"}]},
            {"op":"test","path":"/spec/template/spec/containers/0/name","value":"a"}]"#;
        let out = json_patch(&dep, patch).unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"],
            "K"
        );
    }

    #[test]
    fn json_patch_errors_name_the_operation() {
        let obj = json!({"a": 1});
        let err = json_patch(
            &obj,
            br#"[{"op":"add","path":"/a","value":2},{"op":"remove","path":"/b"}]"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, PatchError::JsonPatch { index: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("/b"), "{err}");
        let err = json_patch(&obj, br#"[{"op":"frob","path":"/a"}]"#).unwrap_err();
        assert!(
            matches!(err, PatchError::JsonPatch { index: 0, .. }),
            "{err}"
        );
        assert!(matches!(
            json_patch(&obj, b"{}"),
            Err(PatchError::Shape { .. })
        ));
        assert!(matches!(
            json_patch(&obj, b"[{"),
            Err(PatchError::Decode(_))
        ));
    }

    #[test]
    fn merge_patch_from_kubectl_label_and_scale() {
        let pod = json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2]}});
        let out = merge_patch(
            &pod,
            br#"{"metadata":{"labels":{"a":null,"c":"3"}},"spec":{"x":[3]}}"#,
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        assert_eq!(out["spec"]["x"], json!([3]));
        assert!(matches!(
            merge_patch(&pod, b"[1]"),
            Err(PatchError::Shape { .. })
        ));
    }
}

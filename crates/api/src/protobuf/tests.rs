//! Decoding the bodies the real kubectl 1.33 and 1.32 post for `kubectl create
//! <generator>` (captured from a recording listener, `testdata/protobuf/*.bin`)
//! and comparing with the JSON the same command prints with
//! `--dry-run=client -o json` (`*.json`).

use serde_json::{json, Value};

use super::*;

/// Drops what Go's JSON writes but a request body does not need: `null`s
/// (the zero `creationTimestamp`) and the top-level `status`.
fn normalize(mut v: Value) -> Value {
    fn drop_nulls(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                m.values_mut().for_each(drop_nulls);
            }
            Value::Array(a) => a.iter_mut().for_each(drop_nulls),
            _ => {}
        }
    }
    drop_nulls(&mut v);
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    v
}

fn fixture(name: &str) -> (Vec<u8>, Value) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/protobuf/");
    let bin = std::fs::read(format!("{dir}{name}.bin")).unwrap();
    let json = std::fs::read(format!("{dir}{name}.json")).unwrap();
    (bin, serde_json::from_slice(&json).unwrap())
}

#[test]
fn kubectl_create_bodies_decode_to_the_json_kubectl_prints() {
    let names = [
        "secret",
        "dockercfg",
        "configmap",
        "namespace",
        "deployment",
        "deployment0",
        "serviceaccount",
        "job",
        "cronjob",
        "service",
        "nodeport",
        "externalname",
        "loadbalancer",
        "priorityclass",
        "quota",
        "pdb",
        "pdb2",
        "ingress",
    ];
    let mut failures = Vec::new();
    for name in names {
        let (bin, expected) = fixture(name);
        let decoded = decode(&bin).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (got, want) = (normalize(decoded), normalize(expected));
        if got != want {
            failures.push(format!("{name}:\n got  {got}\n want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pointer_zeros_are_kept_and_plain_zeros_dropped() {
    let (bin, _) = fixture("deployment0");
    let dep = decode(&bin).unwrap();
    assert_eq!(dep["spec"]["replicas"], 0);
    assert!(dep["spec"]["template"]["spec"]["containers"][0]
        .get("terminationMessagePath")
        .is_none());
    let (bin, _) = fixture("pdb");
    assert_eq!(decode(&bin).unwrap()["spec"]["minAvailable"], 0);
    let (bin, _) = fixture("pdb2");
    assert_eq!(decode(&bin).unwrap()["spec"]["maxUnavailable"], "50%");
}

#[test]
fn envelope_errors_are_named() {
    assert_eq!(decode(b"{\"kind\":1}"), Err(ProtobufError::Magic));
    assert_eq!(decode(b"k8s\0"), Err(ProtobufError::NoType));
    // typeMeta {apiVersion "v9", kind "Nope"}
    let body = b"k8s\0\x0a\x0a\x0a\x02v9\x12\x04Nope";
    assert_eq!(
        decode(body),
        Err(ProtobufError::Unsupported {
            api_version: "v9".into(),
            kind: "Nope".into()
        })
    );
    let (mut bin, _) = fixture("secret");
    bin.truncate(bin.len() - 3);
    let err = decode(&bin).unwrap_err();
    assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
}

#[test]
fn times_and_raw_fields_become_json() {
    // A Secret whose metadata has creationTimestamp {seconds: 1700000000}
    // (field 8) and managedFields[0].fieldsV1.raw = {"f:data":{}} (17 → 7 → 1).
    let raw = br#"{"f:data":{}}"#;
    let fields_v1 = [&[0x0a, raw.len() as u8][..], raw].concat();
    let mfe = [&[0x3a, fields_v1.len() as u8][..], &fields_v1].concat();
    let ts = [0x08, 0x80, 0xe2, 0xcf, 0xaa, 0x06];
    let meta = [
        &[0x0a, 0x01, b's', 0x42, ts.len() as u8][..],
        &ts,
        &[0x8a, 0x01, mfe.len() as u8],
        &mfe,
    ]
    .concat();
    let raw_obj = [&[0x0a, meta.len() as u8][..], &meta].concat();
    let body = [
        &b"k8s\0"[..],
        &[0x0a, 0x0c, 0x0a, 0x02, b'v', b'1', 0x12, 0x06],
        b"Secret",
        &[0x12, raw_obj.len() as u8],
        &raw_obj,
    ]
    .concat();
    let secret = decode(&body).unwrap();
    assert_eq!(
        secret["metadata"]["creationTimestamp"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        secret["metadata"]["managedFields"],
        json!([{"fieldsV1": {"f:data": {}}}])
    );
    assert!(is_supported("v1", "Secret"));
    assert!(is_supported("apps/v1", "Deployment"));
    assert!(!is_supported("example.com/v1", "Widget"));
}

#[test]
fn deployment_body_decodes_in_full() {
    let (bin, _) = fixture("deployment");
    let dep = decode(&bin).unwrap();
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(dep["kind"], "Deployment");
    assert_eq!(dep["spec"]["replicas"], 3);
    assert_eq!(c["image"], "nginx:1.27");
    assert_eq!(c["ports"], json!([{"containerPort": 80}]));
    assert_eq!(
        dep["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );
}

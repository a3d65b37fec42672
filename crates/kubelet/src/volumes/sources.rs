//! What a secret, configMap, downwardAPI or projected volume should contain,
//! computed from the objects already fetched: pure functions from (volume
//! source, Secret/ConfigMap/Pod) to an atomic-writer payload, with
//! upstream's rules for `items`, `defaultMode`, per-item `mode` and
//! `optional`.

use super::atomic::{FileEntry, Payload};
use super::downward::{self, Allocatable, DownwardError};
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, ProjectedVolumeSource, Secret,
};
use std::collections::{BTreeMap, HashMap};

/// Mode of a projected file when neither the item nor the volume sets one.
pub const DEFAULT_MODE: i32 = 0o644;

/// The Secrets and ConfigMaps of one namespace a pod's volumes read;
/// `None` records an object that does not exist.
#[derive(Debug, Default, Clone)]
pub struct Fetched {
    pub secrets: HashMap<String, Option<Secret>>,
    pub config_maps: HashMap<String, Option<ConfigMap>>,
}

/// Why a volume's content could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} references non-existent {kind} key: {key}")]
    MissingKey { kind: &'static str, key: String },
    #[error("downward API: {0}")]
    Downward(#[from] DownwardError),
}

/// The key → bytes view of a Secret's data.
pub fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    // stringData is write-only upstream; honour it if a server kept it.
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.as_bytes().to_vec());
    }
    out
}

/// The key → bytes view of a ConfigMap's data and binaryData.
pub fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

/// One secret or configMap projection, described uniformly.
pub struct KeySource<'a> {
    pub kind: &'static str,
    pub name: &'a str,
    pub data: Option<BTreeMap<String, Vec<u8>>>,
    pub items: Option<&'a [KeyToPath]>,
    pub default_mode: Option<i32>,
    pub optional: bool,
}

/// Adds a secret/configMap projection to `out`.
pub fn project_keys(src: KeySource<'_>, out: &mut Payload) -> Result<(), SourceError> {
    let Some(data) = src.data else {
        if src.optional {
            return Ok(());
        }
        return Err(SourceError::NotFound {
            kind: src.kind,
            name: src.name.to_string(),
        });
    };
    let default_mode = src.default_mode.unwrap_or(DEFAULT_MODE);
    let Some(items) = src.items.filter(|i| !i.is_empty()) else {
        for (key, bytes) in data {
            out.insert(key, entry(bytes, default_mode));
        }
        return Ok(());
    };
    for item in items {
        let Some(bytes) = data.get(&item.key) else {
            if src.optional {
                continue;
            }
            return Err(SourceError::MissingKey {
                kind: src.kind,
                key: item.key.clone(),
            });
        };
        let mode = item.mode.unwrap_or(default_mode);
        out.insert(item.path.clone(), entry(bytes.clone(), mode));
    }
    Ok(())
}

fn entry(data: Vec<u8>, mode: i32) -> FileEntry {
    FileEntry {
        data,
        mode: u32::try_from(mode).unwrap_or(0o644) & 0o7777,
    }
}

/// Adds downwardAPI items to `out`.
pub fn project_downward(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: Option<i32>,
    node: &Allocatable,
    out: &mut Payload,
) -> Result<(), SourceError> {
    let default_mode = default_mode.unwrap_or(DEFAULT_MODE);
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            downward::field_value(pod, f)?
        } else if let Some(r) = &item.resource_field_ref {
            downward::resource_value(pod, r, None, node)?
        } else {
            continue;
        };
        let mode = item.mode.unwrap_or(default_mode);
        out.insert(item.path.clone(), entry(value.into_bytes(), mode));
    }
    Ok(())
}

/// A secret in `fetched`, as a key source (None when it does not exist).
fn secret_in(fetched: &Fetched, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    fetched
        .secrets
        .get(name)
        .and_then(Option::as_ref)
        .map(secret_data)
}

fn config_map_in(fetched: &Fetched, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    fetched
        .config_maps
        .get(name)
        .and_then(Option::as_ref)
        .map(config_map_data)
}

/// The payload of a `secret` volume.
pub fn secret_payload(
    src: &k8s_openapi::api::core::v1::SecretVolumeSource,
    fetched: &Fetched,
) -> Result<Payload, SourceError> {
    let name = src.secret_name.as_deref().unwrap_or_default();
    let mut out = Payload::new();
    let keys = KeySource {
        kind: "secret",
        name,
        data: secret_in(fetched, name),
        items: src.items.as_deref(),
        default_mode: src.default_mode,
        optional: src.optional.unwrap_or(false),
    };
    project_keys(keys, &mut out)?;
    Ok(out)
}

/// The payload of a `configMap` volume.
pub fn config_map_payload(
    src: &k8s_openapi::api::core::v1::ConfigMapVolumeSource,
    fetched: &Fetched,
) -> Result<Payload, SourceError> {
    let mut out = Payload::new();
    let keys = KeySource {
        kind: "configmap",
        name: &src.name,
        data: config_map_in(fetched, &src.name),
        items: src.items.as_deref(),
        default_mode: src.default_mode,
        optional: src.optional.unwrap_or(false),
    };
    project_keys(keys, &mut out)?;
    Ok(out)
}

/// The payload of a `projected` volume. serviceAccountToken and
/// clusterTrustBundle sources are skipped: bosun's API server serves no
/// TokenRequest yet.
pub fn projected_payload(
    src: &ProjectedVolumeSource,
    fetched: &Fetched,
    pod: &Pod,
    node: &Allocatable,
) -> Result<Payload, SourceError> {
    let mut out = Payload::new();
    for s in src.sources.iter().flatten() {
        if let Some(sec) = &s.secret {
            let keys = KeySource {
                kind: "secret",
                name: &sec.name,
                data: secret_in(fetched, &sec.name),
                items: sec.items.as_deref(),
                default_mode: src.default_mode,
                optional: sec.optional.unwrap_or(false),
            };
            project_keys(keys, &mut out)?;
        }
        if let Some(cm) = &s.config_map {
            let keys = KeySource {
                kind: "configmap",
                name: &cm.name,
                data: config_map_in(fetched, &cm.name),
                items: cm.items.as_deref(),
                default_mode: src.default_mode,
                optional: cm.optional.unwrap_or(false),
            };
            project_keys(keys, &mut out)?;
        }
        if let Some(d) = &s.downward_api {
            let items = d.items.as_deref().unwrap_or_default();
            project_downward(pod, items, src.default_mode, node, &mut out)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMapVolumeSource, SecretVolumeSource};

    fn fetched() -> Fetched {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s"},
            "data": {"user": "YWRtaW4=", "bin": "AP8="}
        }))
        .expect("secret json");
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c"},
            "data": {"a": "1"}, "binaryData": {"b": "AAE="}
        }))
        .expect("configmap json");
        let mut f = Fetched::default();
        f.secrets.insert("s".into(), Some(secret));
        f.secrets.insert("gone".into(), None);
        f.config_maps.insert("c".into(), Some(cm));
        f
    }

    fn secret_vol(v: serde_json::Value) -> SecretVolumeSource {
        serde_json::from_value(v).expect("secret volume json")
    }

    #[test]
    fn secret_all_keys_binary_and_default_mode() {
        let src = secret_vol(serde_json::json!({"secretName": "s", "defaultMode": 0o400}));
        let p = secret_payload(&src, &fetched()).expect("payload");
        assert_eq!(p["user"].data, b"admin");
        assert_eq!(p["bin"].data, [0u8, 0xff]);
        assert_eq!(p["user"].mode, 0o400);
    }

    #[test]
    fn items_select_rename_and_set_modes() {
        let src = secret_vol(serde_json::json!({"secretName": "s",
            "items": [{"key": "user", "path": "cfg/u", "mode": 0o600}]}));
        let p = secret_payload(&src, &fetched()).expect("payload");
        assert_eq!(p.keys().collect::<Vec<_>>(), ["cfg/u"]);
        assert_eq!(p["cfg/u"].mode, 0o600);
        let src = secret_vol(serde_json::json!({"secretName": "s",
            "items": [{"key": "nope", "path": "x"}]}));
        let err = secret_payload(&src, &fetched()).expect_err("missing key");
        assert_eq!(
            err.to_string(),
            "secret references non-existent secret key: nope"
        );
    }

    #[test]
    fn missing_object_is_an_error_unless_optional() {
        let src = secret_vol(serde_json::json!({"secretName": "gone"}));
        let err = secret_payload(&src, &fetched()).expect_err("missing");
        assert_eq!(err.to_string(), "secret \"gone\" not found");
        let src = secret_vol(serde_json::json!({"secretName": "gone", "optional": true}));
        assert!(secret_payload(&src, &fetched())
            .expect("optional")
            .is_empty());
    }

    #[test]
    fn config_map_data_and_binary_data() {
        let src: ConfigMapVolumeSource =
            serde_json::from_value(serde_json::json!({"name": "c"})).expect("json");
        let p = config_map_payload(&src, &fetched()).expect("payload");
        assert_eq!(p["a"].data, b"1");
        assert_eq!(p["b"].data, [0u8, 1]);
        assert_eq!(p["a"].mode, 0o644);
    }

    #[test]
    fn projected_merges_sources() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": []}
        }))
        .expect("pod json");
        let src: ProjectedVolumeSource = serde_json::from_value(serde_json::json!({
            "defaultMode": 0o440,
            "sources": [
                {"secret": {"name": "s", "items": [{"key": "user", "path": "user"}]}},
                {"configMap": {"name": "c", "items": [{"key": "a", "path": "a"}]}},
                {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                {"serviceAccountToken": {"path": "token"}}
            ]
        }))
        .expect("projected json");
        let node = Allocatable::detect();
        let p = projected_payload(&src, &fetched(), &pod, &node).expect("payload");
        assert_eq!(p.keys().collect::<Vec<_>>(), ["a", "ns", "user"]);
        assert_eq!(p["ns"].data, b"ns");
        assert_eq!(p["user"].mode, 0o440);
    }
}

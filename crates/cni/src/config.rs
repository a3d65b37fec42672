//! Network config lists and the per-call runtime configuration.

use crate::{Error, Result, CNI_VERSION};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A `.conflist`: a named chain of plugin configs.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    pub name: String,
    pub cni_version: String,
    /// Each plugin's own config object; every one has a `type`.
    pub plugins: Vec<Value>,
}

impl NetworkConfigList {
    /// Parses and checks a conflist document.
    pub fn from_json(text: &str) -> Result<Self> {
        let doc: Value = serde_json::from_str(text).map_err(|e| Error::Config {
            what: "document".into(),
            reason: e.to_string(),
        })?;
        let name = str_field(&doc, "name")?;
        let cni_version = doc
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or(CNI_VERSION)
            .to_string();
        let plugins = doc
            .get("plugins")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let list = Self {
            name,
            cni_version,
            plugins,
        };
        list.validate()?;
        Ok(list)
    }

    /// Serialises back to the conflist document.
    pub fn to_json(&self) -> Value {
        json!({"cniVersion": self.cni_version, "name": self.name, "plugins": self.plugins})
    }

    /// Turns the bridge plugins' per-container `ipMasq` on or off (off when
    /// the caller installs one node-level [`crate::Masquerade`] instead).
    pub fn set_ip_masq(&mut self, on: bool) {
        for plugin in &mut self.plugins {
            if plugin["type"] == "bridge" {
                plugin["ipMasq"] = Value::Bool(on);
            }
        }
    }

    fn validate(&self) -> Result<()> {
        if self.plugins.is_empty() {
            return Err(Error::Config {
                what: format!("{}.plugins", self.name),
                reason: "must list at least one plugin".into(),
            });
        }
        for (i, plugin) in self.plugins.iter().enumerate() {
            if plugin.get("type").and_then(Value::as_str).is_none() {
                return Err(Error::Config {
                    what: format!("{}.plugins[{i}].type", self.name),
                    reason: "is required".into(),
                });
            }
        }
        Ok(())
    }
}

fn str_field(doc: &Value, field: &str) -> Result<String> {
    doc.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| Error::Config {
            what: field.into(),
            reason: "is required".into(),
        })
}

/// A published port, passed to plugins that declare the `portMappings` capability.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// "tcp" or "udp".
    pub protocol: String,
    #[serde(rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// What one ADD/DEL/CHECK call is about.
#[derive(Debug, Clone)]
pub struct RuntimeConf {
    pub container_id: String,
    /// The network namespace file (`/proc/<pid>/ns/net` or `/run/netns/<name>`).
    pub netns: PathBuf,
    /// Interface name inside the namespace (`eth0`).
    pub ifname: String,
    /// `CNI_ARGS` pairs (e.g. K8S_POD_NAME).
    pub args: Vec<(String, String)>,
    pub port_mappings: Vec<PortMapping>,
}

impl RuntimeConf {
    pub fn new(
        container_id: impl Into<String>,
        netns: impl AsRef<Path>,
        ifname: impl Into<String>,
    ) -> Self {
        Self {
            container_id: container_id.into(),
            netns: netns.as_ref().to_path_buf(),
            ifname: ifname.into(),
            args: Vec::new(),
            port_mappings: Vec::new(),
        }
    }
}

/// The usual container network: a Linux bridge acting as gateway with IP
/// masquerade, addresses from host-local IPAM, then portmap for published
/// ports. `ipam_data_dir` is where host-local records leases.
pub fn bridge_network(
    name: &str,
    bridge: &str,
    subnet: &str,
    ipam_data_dir: &Path,
) -> NetworkConfigList {
    NetworkConfigList {
        name: name.to_string(),
        cni_version: CNI_VERSION.to_string(),
        plugins: vec![
            json!({
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_data_dir,
                }
            }),
            json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}),
        ],
    }
}

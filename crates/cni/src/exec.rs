//! Runs plugins: the CNI exec protocol (environment + config on stdin,
//! result or error object on stdout) and the ADD/DEL/CHECK chaining rules.

use crate::{CniResult, Error, NetworkConfigList, Result, RuntimeConf};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Where plugins are found and where ADD results are cached for DEL/CHECK.
#[derive(Debug, Clone)]
pub struct Cni {
    plugin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Del,
    Check,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Add => "ADD",
            Op::Del => "DEL",
            Op::Check => "CHECK",
        }
    }
}

impl Cni {
    /// Debian installs the standard plugins in /usr/lib/cni; /opt/cni/bin is the upstream default.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self::with_plugin_dirs(
            vec!["/usr/lib/cni".into(), "/opt/cni/bin".into()],
            cache_dir,
        )
    }

    pub fn with_plugin_dirs(plugin_dirs: Vec<PathBuf>, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            plugin_dirs,
            cache_dir: cache_dir.into(),
        }
    }

    /// Attaches the container to the network. On failure, whatever the
    /// plugins that did run set up is torn down again before returning.
    pub fn add(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<CniResult> {
        let mut prev: Option<Value> = None;
        for plugin in &list.plugins {
            match self.invoke(Op::Add, list, plugin, rt, prev.as_ref()) {
                Ok(result) => prev = Some(result),
                Err(err) => {
                    if let Err(undo) = self.run_del(list, rt, prev.as_ref()) {
                        tracing::warn!(%undo, "CNI cleanup after a failed ADD also failed");
                    }
                    return Err(err);
                }
            }
        }
        let result = prev.unwrap_or_else(|| json!({}));
        self.write_cache(list, rt, &result)?;
        serde_json::from_value(result).map_err(|source| Error::BadResult {
            plugin: list.name.clone(),
            source,
        })
    }

    /// Detaches the container. Safe to repeat; works after the netns is gone.
    pub fn del(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        let cached = self.read_cache(list, rt);
        self.run_del(list, rt, cached.as_ref())?;
        let path = self.cache_path(list, rt);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::Cache { path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// Asks every plugin whether the attachment is still as ADD left it.
    pub fn check(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        let cached = self.read_cache(list, rt);
        for plugin in &list.plugins {
            self.invoke(Op::Check, list, plugin, rt, cached.as_ref())?;
        }
        Ok(())
    }

    /// The result ADD returned, if it is still cached.
    pub fn cached_result(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Option<CniResult> {
        serde_json::from_value(self.read_cache(list, rt)?).ok()
    }

    fn run_del(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
        prev: Option<&Value>,
    ) -> Result<()> {
        let mut first_err = None;
        for plugin in list.plugins.iter().rev() {
            if let Err(e) = self.invoke(Op::Del, list, plugin, rt, prev) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn invoke(
        &self,
        op: Op,
        list: &NetworkConfigList,
        plugin: &Value,
        rt: &RuntimeConf,
        prev: Option<&Value>,
    ) -> Result<Value> {
        let kind = plugin
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let binary = self.find(kind)?;
        let stdin = plugin_stdin(list, plugin, rt, prev);
        let netns = if rt.netns.exists() {
            rt.netns.as_os_str()
        } else {
            "".as_ref()
        };
        let args: Vec<String> = rt.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut child = Command::new(&binary)
            .env("CNI_COMMAND", op.name())
            .env("CNI_CONTAINERID", &rt.container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", &rt.ifname)
            .env("CNI_ARGS", args.join(";"))
            .env(
                "CNI_PATH",
                std::env::join_paths(&self.plugin_dirs).unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                plugin: binary.clone(),
                source,
            })?;
        if let Some(mut pipe) = child.stdin.take() {
            // A plugin that exits early closes its stdin; its exit status says why.
            let _ = pipe.write_all(stdin.to_string().as_bytes());
        }
        let out = child.wait_with_output().map_err(|source| Error::Spawn {
            plugin: binary.clone(),
            source,
        })?;
        tracing::debug!(plugin = kind, op = op.name(), status = ?out.status, "CNI plugin ran");
        if !out.status.success() {
            return Err(plugin_error(kind, op, &out.stdout, &out.stderr));
        }
        match op {
            Op::Add => serde_json::from_slice(&out.stdout).map_err(|source| Error::BadResult {
                plugin: kind.to_string(),
                source,
            }),
            Op::Del | Op::Check => Ok(Value::Null),
        }
    }

    fn find(&self, kind: &str) -> Result<PathBuf> {
        let valid = !kind.is_empty() && !kind.contains('/') && kind != "." && kind != "..";
        self.plugin_dirs
            .iter()
            .map(|d| d.join(kind))
            .find(|p| valid && p.is_file())
            .ok_or_else(|| Error::PluginNotFound {
                plugin: kind.to_string(),
                dirs: self.plugin_dirs.clone(),
            })
    }

    fn cache_path(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> PathBuf {
        self.cache_dir.join(format!(
            "{}-{}-{}.json",
            list.name, rt.container_id, rt.ifname
        ))
    }

    fn write_cache(
        &self,
        list: &NetworkConfigList,
        rt: &RuntimeConf,
        result: &Value,
    ) -> Result<()> {
        let path = self.cache_path(list, rt);
        let cache_err = |source| Error::Cache {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.cache_dir).map_err(cache_err)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, result.to_string()).map_err(cache_err)?;
        std::fs::rename(&tmp, &path).map_err(cache_err)
    }

    fn read_cache(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Option<Value> {
        let text = std::fs::read_to_string(self.cache_path(list, rt)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The config one plugin reads on stdin: its own object plus the list's
/// name and version, the previous result, and capability arguments.
fn plugin_stdin(
    list: &NetworkConfigList,
    plugin: &Value,
    rt: &RuntimeConf,
    prev: Option<&Value>,
) -> Value {
    let mut conf = plugin.clone();
    if let Some(obj) = conf.as_object_mut() {
        obj.insert("name".into(), json!(list.name));
        obj.insert("cniVersion".into(), json!(list.cni_version));
        if let Some(prev) = prev {
            obj.insert("prevResult".into(), prev.clone());
        }
        let wants_ports = plugin
            .pointer("/capabilities/portMappings")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if wants_ports && !rt.port_mappings.is_empty() {
            obj.insert(
                "runtimeConfig".into(),
                json!({"portMappings": rt.port_mappings}),
            );
        }
    }
    conf
}

fn plugin_error(kind: &str, op: Op, stdout: &[u8], stderr: &[u8]) -> Error {
    let parsed: Option<Value> = serde_json::from_slice(stdout).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let msg = field("msg").unwrap_or_else(|| {
        let text = String::from_utf8_lossy(if stdout.is_empty() { stderr } else { stdout });
        text.trim().to_string()
    });
    Error::Plugin {
        plugin: kind.to_string(),
        command: op.name(),
        code: parsed
            .as_ref()
            .and_then(|v| v.get("code"))
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0),
        msg,
        details: field("details").filter(|d| !d.is_empty()),
    }
}

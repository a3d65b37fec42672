//! A container's environment: envFrom (ConfigMaps, Secrets) then env
//! (literal values with `$(VAR)` expansion, secretKeyRef, configMapKeyRef,
//! fieldRef, resourceFieldRef), and `$(VAR)` expansion of command and args.
//! A missing non-optional reference is a CreateContainerConfigError.

use crate::cgroup::parse_quantity;
use crate::error::{api, Error, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Secret};
use kube::Api;
use std::collections::BTreeMap;

/// What fieldRefs can read besides the pod object.
pub struct EnvContext<'a> {
    pub client: &'a kube::Client,
    pub pod: &'a Pod,
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    /// Node capacity for resourceFieldRef of a container without a limit.
    pub node_cpus: usize,
    pub node_memory: u64,
}

/// Expands `$(NAME)` from `vars`; `$$(NAME)` stays literal `$(NAME)`;
/// unknown names are left as written (upstream's rules).
pub fn expand(input: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('(') {
            match tail.find(')') {
                Some(end) => {
                    let name = &tail[..end];
                    match vars.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &tail[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = tail;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn set(vars: &mut Vec<(String, String)>, k: String, v: String) {
    vars.retain(|(name, _)| *name != k);
    vars.push((k, v));
}

impl EnvContext<'_> {
    fn ns(&self) -> String {
        self.pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into())
    }

    async fn secret(&self, name: &str, optional: bool) -> Result<Option<BTreeMap<String, String>>> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns());
        let found = api
            .get_opt(name)
            .await
            .map_err(api_err("get secret", name))?;
        match found {
            Some(s) => Ok(Some(
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .chain(s.string_data.unwrap_or_default())
                    .collect(),
            )),
            None if optional => Ok(None),
            None => Err(Error::Config(format!("secret \"{name}\" not found"))),
        }
    }

    async fn config_map(
        &self,
        name: &str,
        optional: bool,
    ) -> Result<Option<BTreeMap<String, String>>> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.ns());
        let found = api
            .get_opt(name)
            .await
            .map_err(api_err("get configmap", name))?;
        match found {
            Some(c) => Ok(Some(c.data.unwrap_or_default())),
            None if optional => Ok(None),
            None => Err(Error::Config(format!("configmap \"{name}\" not found"))),
        }
    }

    /// The container's environment in order.
    pub async fn resolve(&self, c: &Container) -> Result<Vec<(String, String)>> {
        let mut vars: Vec<(String, String)> = Vec::new();
        for from in c.env_from.iter().flatten() {
            let prefix = from.prefix.clone().unwrap_or_default();
            let data = if let Some(r) = &from.config_map_ref {
                self.config_map(&r.name, r.optional.unwrap_or(false))
                    .await?
            } else if let Some(r) = &from.secret_ref {
                self.secret(&r.name, r.optional.unwrap_or(false)).await?
            } else {
                None
            };
            for (k, v) in data.unwrap_or_default() {
                set(&mut vars, format!("{prefix}{k}"), v);
            }
        }
        for e in c.env.iter().flatten() {
            if let Some(v) = self.value(c, e, &vars).await? {
                set(&mut vars, e.name.clone(), v);
            }
        }
        Ok(vars)
    }

    async fn value(
        &self,
        c: &Container,
        e: &EnvVar,
        vars: &[(String, String)],
    ) -> Result<Option<String>> {
        let Some(from) = &e.value_from else {
            return Ok(Some(expand(e.value.as_deref().unwrap_or_default(), vars)));
        };
        if let Some(r) = &from.secret_key_ref {
            let optional = r.optional.unwrap_or(false);
            let data = self.secret(&r.name, optional).await?;
            return key_of(data, &r.key, optional, "secret", &r.name);
        }
        if let Some(r) = &from.config_map_key_ref {
            let optional = r.optional.unwrap_or(false);
            let data = self.config_map(&r.name, optional).await?;
            return key_of(data, &r.key, optional, "configmap", &r.name);
        }
        if let Some(r) = &from.field_ref {
            return self.field(&r.field_path).map(Some);
        }
        if let Some(r) = &from.resource_field_ref {
            return self
                .resource(c, &r.resource, r.divisor.as_ref().map(|d| d.0.as_str()))
                .map(Some);
        }
        Ok(None)
    }

    fn field(&self, path: &str) -> Result<String> {
        let m = &self.pod.metadata;
        let spec = self.pod.spec.clone().unwrap_or_default();
        let keyed = |prefix: &str, map: &Option<BTreeMap<String, String>>| {
            path.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix("']"))
                .map(|k| {
                    map.as_ref()
                        .and_then(|m| m.get(k))
                        .cloned()
                        .unwrap_or_default()
                })
        };
        if let Some(v) = keyed("metadata.labels['", &m.labels) {
            return Ok(v);
        }
        if let Some(v) = keyed("metadata.annotations['", &m.annotations) {
            return Ok(v);
        }
        Ok(match path {
            "metadata.name" => m.name.clone().unwrap_or_default(),
            "metadata.namespace" => self.ns(),
            "metadata.uid" => m.uid.clone().unwrap_or_default(),
            "spec.nodeName" => spec.node_name.unwrap_or_default(),
            "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
            "status.hostIP" | "status.hostIPs" => self.host_ip.to_string(),
            "status.podIP" | "status.podIPs" => self.pod_ip.to_string(),
            other => return Err(Error::Config(format!("unsupported fieldRef {other:?}"))),
        })
    }

    fn resource(&self, c: &Container, resource: &str, divisor: Option<&str>) -> Result<String> {
        let a = crate::cgroup::Amounts::of(c.resources.as_ref());
        let cpus = self.node_cpus as i64 * 1000;
        let mem = self.node_memory as i64;
        let (value, is_cpu) = match resource {
            "limits.cpu" => (a.cpu_limit.unwrap_or(cpus) as f64 / 1000.0, true),
            "requests.cpu" => (a.cpu_request.unwrap_or(0) as f64 / 1000.0, true),
            "limits.memory" => (a.mem_limit.unwrap_or(mem) as f64, false),
            "requests.memory" => (a.mem_request.unwrap_or(0) as f64, false),
            other => {
                return Err(Error::Config(format!(
                    "unsupported resourceFieldRef {other:?}"
                )))
            }
        };
        let div = divisor
            .and_then(parse_quantity)
            .filter(|d| *d > 0.0)
            .unwrap_or(1.0);
        let n = (value / div).ceil() as i64;
        Ok(if is_cpu {
            n.max(if value > 0.0 { 1 } else { 0 })
        } else {
            n
        }
        .to_string())
    }
}

fn api_err(op: &'static str, name: &str) -> impl FnOnce(kube::Error) -> Error {
    api(format!("{op} {name}"))
}

fn key_of(
    data: Option<BTreeMap<String, String>>,
    key: &str,
    optional: bool,
    kind: &str,
    name: &str,
) -> Result<Option<String>> {
    match data.and_then(|d| d.get(key).cloned()) {
        Some(v) => Ok(Some(v)),
        None if optional => Ok(None),
        None => Err(Error::Config(format!(
            "couldn't find key {key} in {kind} {name}"
        ))),
    }
}

/// Command and args with `$(VAR)` expanded from the environment.
pub fn expand_all(list: Option<&Vec<String>>, vars: &[(String, String)]) -> Vec<String> {
    list.into_iter()
        .flatten()
        .map(|s| expand(s, vars))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expansion() {
        let vars = vec![("A".to_string(), "x".to_string()), ("B".into(), "y".into())];
        assert_eq!(expand("$(A)-$(B)", &vars), "x-y");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("$(C)", &vars), "$(C)");
        assert_eq!(expand("a$b", &vars), "a$b");
        assert_eq!(expand("$(A", &vars), "$(A");
    }
}

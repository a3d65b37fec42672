//! Views of an image for other components: the runtime defaults the engine
//! applies when it builds a container spec (Docker's rules for Entrypoint and
//! Cmd), and the `inspect` document shaped like Docker's.

use crate::reference::Reference;
use crate::store::Image;
use serde_json::{json, Value};

/// PATH a container gets when the image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the image says a container should run, as the engine needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `K=V` entries; always includes a PATH.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// `80/tcp`, `53/udp`, …
    pub exposed_ports: Vec<String>,
    pub stop_signal: Option<String>,
}

impl RuntimeDefaults {
    /// The argv Docker runs: an `--entrypoint` override drops the image's Cmd;
    /// user arguments replace Cmd.
    pub fn argv(&self, entrypoint: Option<&[String]>, args: &[String]) -> Vec<String> {
        let (entry, cmd) = match entrypoint {
            Some(e) => (e.to_vec(), Vec::new()),
            None => (self.entrypoint.clone(), self.cmd.clone()),
        };
        let tail = if args.is_empty() { cmd } else { args.to_vec() };
        entry.into_iter().chain(tail).collect()
    }
}

impl Image {
    /// Entrypoint, Cmd, Env (with a default PATH), WorkingDir, User, ExposedPorts.
    pub fn runtime_defaults(&self) -> RuntimeDefaults {
        let run = self.config.config.clone().unwrap_or_default();
        let mut env = run.env.unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_string());
        }
        RuntimeDefaults {
            entrypoint: run.entrypoint.unwrap_or_default(),
            cmd: run.cmd.unwrap_or_default(),
            env,
            working_dir: run.working_dir.filter(|w| !w.is_empty()),
            user: run.user.filter(|u| !u.is_empty()),
            exposed_ports: run
                .exposed_ports
                .map(|p| p.into_keys().collect())
                .unwrap_or_default(),
            stop_signal: run.stop_signal,
        }
    }

    /// The familiar name (`busybox:latest`) and repository (`busybox`).
    pub fn familiar(&self) -> (String, String, Option<String>) {
        match Reference::parse(&self.name) {
            Ok(r) => (r.familiar(), r.familiar_name(), r.tag.clone()),
            Err(_) => (self.name.clone(), self.name.clone(), None),
        }
    }

    /// A `docker image inspect`-shaped document; `names` are all names of the image.
    pub fn inspect(&self, names: &[Image]) -> Value {
        let tags: Vec<String> = names
            .iter()
            .filter(|i| !i.name.contains('@'))
            .map(|i| i.familiar().0)
            .collect();
        let digests: Vec<String> = names
            .iter()
            .filter_map(|i| {
                Some(format!(
                    "{}@{}",
                    i.familiar().1,
                    i.record.repo_digest.as_ref()?
                ))
            })
            .collect();
        json!({
            "Id": self.id().to_string(),
            "RepoTags": tags,
            "RepoDigests": digests,
            "Created": self.config.created,
            "Architecture": self.config.architecture,
            "Os": self.config.os,
            "Config": self.config.config,
            "RootFS": {"Type": "layers", "Layers": self.diff_ids()},
            "Size": self.size(),
            "Manifest": self.record.manifest.to_string(),
            "Metadata": {"LastTagTime": self.record.added},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn argv_follows_docker_rules() {
        let d = RuntimeDefaults {
            entrypoint: s(&["/init"]),
            cmd: s(&["serve"]),
            ..Default::default()
        };
        assert_eq!(d.argv(None, &[]), s(&["/init", "serve"]));
        assert_eq!(d.argv(None, &s(&["sh"])), s(&["/init", "sh"]));
        assert_eq!(d.argv(Some(&s(&["/bin/sh"])), &[]), s(&["/bin/sh"]));
        assert_eq!(
            d.argv(Some(&s(&["/bin/sh"])), &s(&["-c", "x"])),
            s(&["/bin/sh", "-c", "x"])
        );
    }
}

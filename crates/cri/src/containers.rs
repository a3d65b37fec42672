//! Container lifecycle behind CreateContainer, StartContainer,
//! StopContainer, RemoveContainer, ListContainers, ContainerStatus and
//! ExecSync. The container runs under its own monitor process (see
//! [`crate::monitor`]); the OCI runtime is driven through bosun's runc-style
//! CLI, never forked from this multithreaded server.

use crate::container::ContainerRecord;
use crate::error::{io, Error, Result};
use crate::server::Server;
use k8s_cri::v1;
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

impl Server {
    fn oci_root(&self) -> PathBuf {
        self.root().join("oci")
    }

    pub(crate) async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::Failed(format!("blocking task: {e}")))?
    }

    pub(crate) async fn create_container(&self, req: v1::CreateContainerRequest) -> Result<String> {
        let cfg = req
            .config
            .ok_or_else(|| Error::Invalid("CreateContainer without a config".into()))?;
        let sandbox = self
            .sandbox(&req.pod_sandbox_id)
            .await
            .filter(|s| s.ready && s.alive())
            .ok_or_else(|| Error::NotFound {
                what: "ready pod sandbox",
                id: req.pod_sandbox_id.clone(),
            })?;
        let meta = cfg.metadata.clone().unwrap_or_default();
        let image = cfg
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        let id = crate::new_id();
        let store = self.images.store.clone();
        let (img, rootfs) = {
            let (image, id) = (image.clone(), id.clone());
            Self::blocking(move || {
                let img = store.get(&image)?;
                let rootfs = store.prepare(&id, &image)?;
                Ok((img, rootfs))
            })
            .await?
        };
        let dir = ContainerRecord::dir_of(self.root(), &id);
        let cgroups_path = if sandbox.cgroup_parent.is_empty() {
            format!("/bosun-cri-{id}")
        } else {
            format!("{}/{id}", sandbox.cgroup_parent.trim_end_matches('/'))
        };
        let target = self.target_pid_ns(&cfg, &sandbox.id).await;
        let built = crate::spec::build(
            &cfg,
            &img.runtime_defaults(),
            &sandbox,
            &rootfs,
            &cgroups_path,
        );
        let built = match (built, target) {
            (Ok(mut spec), Ok(target)) => {
                if let Some(path) = target {
                    crate::target::join_pid(&mut spec, &path);
                }
                let dir = dir.clone();
                Self::blocking(move || write_bundle(&dir, &spec)).await
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        if let Err(e) = built {
            let _ = self.images.store.remove_snapshot(&id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let log_path = match (sandbox.log_directory.as_str(), cfg.log_path.as_str()) {
            ("", _) | (_, "") => dir.join("container.log").display().to_string(),
            (d, p) => PathBuf::from(d).join(p).display().to_string(),
        };
        let rec = ContainerRecord {
            id: id.clone(),
            sandbox_id: sandbox.id.clone(),
            name: meta.name,
            attempt: meta.attempt,
            image,
            image_id: img.id().to_string(),
            created_at: crate::now_nanos(),
            started_at: 0,
            labels: cfg.labels.clone(),
            annotations: cfg.annotations.clone(),
            log_path,
            pid: 0,
            pid_start: 0,
            cgroups_path,
            stdin: cfg.stdin,
            stdin_once: cfg.stdin_once,
            tty: cfg.tty,
            mounts: cfg
                .mounts
                .iter()
                .map(|m| (m.container_path.clone(), m.host_path.clone(), m.readonly))
                .collect(),
        };
        let (saved, root) = (rec.clone(), self.root().to_path_buf());
        Self::blocking(move || saved.save(&root)).await?;
        self.inner.containers.lock().await.insert(id.clone(), rec);
        Ok(id)
    }

    /// Finds a container by id or unique prefix.
    pub(crate) async fn container(&self, id: &str) -> Result<ContainerRecord> {
        let map = self.inner.containers.lock().await;
        if let Some(r) = map.get(id) {
            return Ok(r.clone());
        }
        let mut hits = map
            .values()
            .filter(|r| !id.is_empty() && r.id.starts_with(id));
        match (hits.next(), hits.next()) {
            (Some(r), None) => Ok(r.clone()),
            _ => Err(Error::NotFound {
                what: "container",
                id: id.to_string(),
            }),
        }
    }

    pub(crate) async fn start_container(&self, id: &str) -> Result<()> {
        let mut rec = self.container(id).await?;
        if rec.state(self.root()) != v1::ContainerState::ContainerCreated {
            return Err(Error::Invalid(format!(
                "container {id} is not in the created state"
            )));
        }
        let dir = rec.dir(self.root());
        let mut argv = vec![
            "cri".to_string(),
            "monitor".into(),
            "--oci-root".into(),
            self.oci_root().display().to_string(),
            "--bundle".into(),
            dir.join("bundle").display().to_string(),
            "--id".into(),
            rec.id.clone(),
            "--log-path".into(),
            rec.log_path.clone(),
            "--dir".into(),
            dir.display().to_string(),
        ];
        if rec.stdin {
            argv.push("--stdin".into());
        }
        if rec.stdin_once {
            argv.push("--stdin-once".into());
        }
        if rec.tty {
            argv.push("--tty".into());
        }
        let (bosun, log) = (self.inner.config.bosun.clone(), dir.join("monitor.log"));
        let t0 = Instant::now();
        // fork+exec of this large process blocks: not on the async workers.
        Self::blocking(move || crate::proc::spawn_detached(&bosun, &argv, &log)).await?;
        let t_spawn = t0.elapsed();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(exit) = rec.exit(self.root()) {
                if exit.reason == "StartError" {
                    return Err(Error::Failed(format!(
                        "start container {id}: {}",
                        exit.message
                    )));
                }
            }
            if let Some((pid, start)) = crate::proc::read_pid_file(&dir.join("pid")) {
                rec.pid = pid;
                rec.pid_start = start;
                break;
            }
            if rec.exit(self.root()).is_some() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rec.started_at = crate::now_nanos();
        tracing::debug!(
            target: "cri::podstart",
            id = %rec.id,
            spawn_ms = t_spawn.as_millis(),
            running_ms = (t0.elapsed() - t_spawn).as_millis(),
            "container start timeline"
        );
        let (saved, root) = (rec.clone(), self.root().to_path_buf());
        Self::blocking(move || saved.save(&root)).await?;
        self.inner
            .containers
            .lock()
            .await
            .insert(rec.id.clone(), rec);
        Ok(())
    }

    /// SIGTERM, `timeout` seconds of grace, then SIGKILL; waits for the exit record.
    pub(crate) async fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let rec = self.container(id).await?;
        if rec.running() {
            let grace = Duration::from_secs(timeout.max(0) as u64);
            let gone = timeout > 0
                && crate::proc::signal_and_wait(rec.pid, rec.pid_start, Signal::SIGTERM, grace)
                    .await;
            if !gone {
                crate::proc::signal_and_wait(
                    rec.pid,
                    rec.pid_start,
                    Signal::SIGKILL,
                    Duration::from_secs(30),
                )
                .await;
            }
        }
        if rec.started_at > 0 {
            let deadline = Instant::now() + Duration::from_secs(30);
            while rec.exit(self.root()).is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    pub(crate) async fn remove_container(&self, id: &str) -> Result<()> {
        let rec = match self.container(id).await {
            Ok(r) => r,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.stop_container(&rec.id, 0).await?;
        let out = tokio::process::Command::new(&self.inner.config.bosun)
            .arg("oci")
            .arg("--root")
            .arg(self.oci_root())
            .args(["delete", "--force", &rec.id])
            .output()
            .await
            .map_err(io("spawn", &self.inner.config.bosun))?;
        if !out.status.success() {
            tracing::debug!(id = %rec.id, err = %String::from_utf8_lossy(&out.stderr), "oci delete");
        }
        let store = self.images.store.clone();
        let cid = rec.id.clone();
        Self::blocking(move || match store.remove_snapshot(&cid) {
            Ok(()) => Ok(()),
            Err(e) if !store.layout().snapshot(&cid).exists() => {
                tracing::debug!(%e, "snapshot already gone");
                Ok(())
            }
            Err(e) => Err(e.into()),
        })
        .await?;
        rec.delete(self.root())?;
        self.inner.containers.lock().await.remove(&rec.id);
        Ok(())
    }

    /// Kills (and with `remove`, removes) every container of a sandbox.
    pub(crate) async fn sandbox_containers(&self, sandbox: &str, remove: bool) -> Result<()> {
        let ids: Vec<String> = self
            .inner
            .containers
            .lock()
            .await
            .values()
            .filter(|c| c.sandbox_id == sandbox)
            .map(|c| c.id.clone())
            .collect();
        for id in ids {
            if remove {
                self.remove_container(&id).await?;
            } else {
                self.stop_container(&id, 0).await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn list_containers(
        &self,
        f: Option<v1::ContainerFilter>,
    ) -> Vec<v1::Container> {
        let f = f.unwrap_or_default();
        let map = self.inner.containers.lock().await;
        let mut out: Vec<v1::Container> = map
            .values()
            .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
            .filter(|c| f.pod_sandbox_id.is_empty() || c.sandbox_id.starts_with(&f.pod_sandbox_id))
            .filter(|c| crate::pods::labels_match(&c.labels, &f.label_selector))
            .map(|c| c.to_cri(self.root()))
            .filter(|c| f.state.as_ref().is_none_or(|s| s.state == c.state))
            .collect();
        out.sort_by_key(|c| c.created_at);
        out
    }

    /// Asks the container's monitor to reopen its log file (after rotation).
    pub(crate) async fn reopen_log(&self, id: &str) -> Result<()> {
        use std::io::Read;
        use std::os::linux::net::SocketAddrExt;
        let rec = self.container(id).await?;
        if !rec.running() {
            return Err(Error::Invalid(format!(
                "container {} is not running",
                rec.id
            )));
        }
        let name = crate::monitor::control_name(&rec.id);
        Self::blocking(move || {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .map_err(io("name control socket", &name))?;
            let mut conn = std::os::unix::net::UnixStream::connect_addr(&addr)
                .map_err(io("connect to monitor", &name))?;
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(io("set timeout", &name))?;
            let mut reply = String::new();
            conn.read_to_string(&mut reply)
                .map_err(io("read from monitor", &name))?;
            match reply.trim() {
                "ok" => Ok(()),
                err => Err(Error::Failed(format!("reopen log: {err}"))),
            }
        })
        .await
    }

    pub(crate) async fn exec_sync(&self, req: v1::ExecSyncRequest) -> Result<v1::ExecSyncResponse> {
        let rec = self.container(&req.container_id).await?;
        if !rec.running() {
            return Err(Error::Invalid(format!(
                "container {} is not running",
                rec.id
            )));
        }
        let mut cmd = tokio::process::Command::new(&self.inner.config.bosun);
        cmd.arg("oci")
            .arg("--root")
            .arg(self.oci_root())
            .args(["exec", &rec.id, "--"]);
        cmd.args(&req.cmd)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let run = cmd.output();
        let out = if req.timeout > 0 {
            tokio::time::timeout(Duration::from_secs(req.timeout as u64), run)
                .await
                .map_err(|_| {
                    Error::Failed(format!(
                        "exec in {} timed out after {}s",
                        rec.id, req.timeout
                    ))
                })?
        } else {
            run.await
        }
        .map_err(io("spawn", &self.inner.config.bosun))?;
        Ok(v1::ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.status.code().unwrap_or(255),
        })
    }
}

fn write_bundle(dir: &std::path::Path, spec: &serde_json::Value) -> Result<()> {
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).map_err(io("create", &bundle))?;
    let path = bundle.join("config.json");
    let data = serde_json::to_vec_pretty(spec).map_err(|source| Error::Json {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&path, data).map_err(io("write", &path))
}

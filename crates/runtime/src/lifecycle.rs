//! `create`, `start` and `run`: the parent side of the init handshake
//! (see the crate docs for the sequence diagram).

use crate::error::{io_err, sys_err, Error, Result};
use crate::init::InitConfig;
use crate::state::{self, Saved, Status};
use crate::sync::{Channel, Tag};
use crate::{cg, hooks, spawn, spec, Runtime};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Options of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
}

/// Removes what a failed create made: the init, the cgroup, the state dir.
struct Undo {
    dir: PathBuf,
    pid: Option<i32>,
    cg: Option<cgroups::Cgroup>,
    armed: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cg {
            let _ = cg::destroy(cg);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Runtime {
    /// Creates the container; the init waits for `start`. Returns its pid.
    pub fn create(&self, o: &CreateOpts) -> Result<i32> {
        spec::check_id(&o.id)?;
        let bundle = spec::load(&o.bundle)?;
        std::fs::create_dir_all(&self.root).map_err(io_err("create state root", &self.root))?;
        let dir = state::dir(&self.root, &o.id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(o.id.clone()))
            }
            Err(e) => return Err(io_err("create state dir", &dir)(e)),
        }
        let mut undo = Undo {
            dir: dir.clone(),
            pid: None,
            cg: None,
            armed: true,
        };
        let fifo = dir.join(state::FIFO);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
            .map_err(sys_err(format!("mkfifo {}", fifo.display())))?;
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o622))
            .map_err(io_err("chmod", &fifo))?;
        undo.cg = Some(cg::setup(&o.id, &bundle.spec)?);
        let pid = self.spawn_init(o, &bundle, &mut undo)?;
        let (start_time, _) = state::proc_start(pid)
            .ok_or_else(|| Error::Init("exited right after its setup".into()))?;
        let saved = Saved {
            id: o.id.clone(),
            pid,
            start_time,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            cgroup: undo
                .cg
                .clone()
                .ok_or_else(|| Error::Cgroup("no cgroup".into()))?,
            own_pidns: crate::has_new_ns(&bundle.spec, oci_spec::runtime::LinuxNamespaceType::Pid),
            spec: bundle.spec,
        };
        state::save(&self.root, &saved)?;
        if let Some(p) = &o.pid_file {
            write_pid_file(p, pid)?;
        }
        undo.armed = false;
        Ok(pid)
    }

    fn spawn_init(&self, o: &CreateOpts, b: &spec::Bundle, undo: &mut Undo) -> Result<i32> {
        let spec = &b.spec;
        let namespaces = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let mut plan = spawn::plan(&namespaces);
        plan.preserve_fds = o.preserve_fds;
        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let console = match (&o.console_socket, terminal) {
            (Some(path), true) => Some(
                std::os::unix::net::UnixStream::connect(path)
                    .map_err(io_err("connect console socket", path))?,
            ),
            _ => None,
        };
        if let Some(c) = &console {
            plan.extra_fds.push(c.as_raw_fd());
        }
        // Relative bind-mount sources are relative to the bundle, as in runc.
        std::env::set_current_dir(&b.dir).map_err(io_err("chdir", &b.dir))?;
        let (mut parent, child) = Channel::pair()?;
        let (pid, mid) = spawn::spawn(&plan, &mut parent, child)?;
        undo.pid = Some(pid);
        if let Some(mid) = mid {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(mid), None);
        }
        drop(console);
        if plan.new_userns {
            write_id_maps(pid, spec)?;
        }
        if let Some(cg) = &undo.cg {
            cg::add_task(cg, pid)?;
        }
        let hook_state = serde_json::json!({
            "ociVersion": spec.version(), "id": o.id, "status": "creating",
            "pid": pid, "bundle": b.dir,
            "annotations": spec.annotations().clone().unwrap_or_default(),
        })
        .to_string();
        hooks::run(spec, hooks::Kind::Prestart, hook_state.as_bytes())?;
        hooks::run(spec, hooks::Kind::CreateRuntime, hook_state.as_bytes())?;
        let cfg = InitConfig {
            id: o.id.clone(),
            spec: spec.clone(),
            rootfs: b.rootfs.clone(),
            state_dir: state::dir(&self.root, &o.id),
            console_fd: o
                .console_socket
                .as_ref()
                .filter(|_| terminal)
                .map(|_| 3 + o.preserve_fds + 1),
            preserve_fds: o.preserve_fds,
            no_pivot: o.no_pivot,
            exec: None,
        };
        let raw = serde_json::to_vec(&cfg).map_err(|e| Error::Invalid(e.to_string()))?;
        parent.send(Tag::Go, b"")?;
        parent.send(Tag::Config, &raw)?;
        parent.expect(Tag::Ready)?;
        Ok(pid)
    }

    /// Lets a created container's init exec the user program.
    pub fn start(&self, id: &str) -> Result<()> {
        let saved = state::load(&self.root, id)?;
        let status = state::status(&self.root, &saved);
        if status != Status::Created {
            return Err(Error::BadStatus {
                id: id.into(),
                status: status.as_str(),
                what: "only a created container can be started",
            });
        }
        let fifo = state::dir(&self.root, id).join(state::FIFO);
        release_fifo(&fifo, &saved)?;
        let _ = std::fs::remove_file(&fifo);
        let st = serde_json::to_vec(&state::oci_state(&self.root, &saved)).unwrap_or_default();
        if let Err(e) = hooks::run(&saved.spec, hooks::Kind::Poststart, &st) {
            tracing::warn!("poststart hook failed: {e}");
        }
        Ok(())
    }

    /// create + start + wait + delete; returns the container's exit code
    /// (128+signal when killed). With `detach`, returns after start.
    pub fn run(&self, o: &CreateOpts, detach: bool) -> Result<i32> {
        set_subreaper()?;
        let pid = self.create(o)?;
        if let Err(e) = self.start(&o.id) {
            let _ = self.delete(&o.id, true);
            return Err(e);
        }
        if detach {
            return Ok(0);
        }
        crate::signals::forward_to(pid);
        let code = wait_for(pid);
        crate::signals::forward_to(0);
        self.delete(&o.id, true)?;
        code
    }
}

/// Opens the fifo for reading (which releases the init's blocking open) and
/// waits for its byte, checking that the init still lives.
fn release_fifo(fifo: &Path, saved: &Saved) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .map_err(io_err("open exec fifo", fifo))?;
    loop {
        let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(&f), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(100u16)).map_err(sys_err("poll exec fifo"))?;
        if n > 0 {
            let mut b = [0u8; 1];
            match f.read(&mut b) {
                Ok(1) => return Ok(()),
                Ok(_) => return Err(Error::Init("closed the exec fifo without starting".into())),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(io_err("read exec fifo", fifo)(e)),
            }
        } else if !state::alive(saved) {
            return Err(Error::Init("died before start".into()));
        }
    }
}

fn write_id_maps(pid: i32, spec: &oci_spec::runtime::Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let text: String = maps
            .iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, text).map_err(io_err("write", &path))?;
    }
    Ok(())
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("bosun-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(io_err("write pid file", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("rename pid file", path))
}

/// Makes us the reaper of orphaned descendants (the init when an
/// intermediate process created it, exec'd processes).
pub(crate) fn set_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(sys_err("PR_SET_CHILD_SUBREAPER"))
}

/// Reaps children until `pid` exits; returns its exit code (128+signal if killed).
pub(crate) fn wait_for(pid: i32) -> Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Ok(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(sys_err(format!("waiting for pid {pid}"))(e)),
        }
    }
}

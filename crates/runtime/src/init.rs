//! Stage 2 of the container init: the freshly re-executed binary. It reads
//! its [`InitConfig`] from the sync socket, builds the container's world
//! (hostname, loopback, root filesystem, console) and the process (rlimits,
//! user, capabilities, seccomp), reports READY, blocks on the exec fifo until
//! `start`, and finally execs the user program. For `exec`, it joins the
//! running container's namespaces and forks the process that execs.

use crate::error::{io_err, sys_err, Error, Result};
use crate::process;
use crate::sync::{Channel, Tag};
use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// Everything stage 2 needs, sent by the parent as JSON.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    /// The container id (for the state given to in-container hooks).
    pub id: String,
    pub spec: Spec,
    pub rootfs: PathBuf,
    /// The container's state dir on the host (for the exec fifo).
    pub state_dir: PathBuf,
    /// Descriptor of the connected console socket, when a terminal is wanted.
    pub console_fd: Option<RawFd>,
    pub preserve_fds: i32,
    /// Use MS_MOVE + chroot instead of pivot_root (rootfs on a ramfs).
    pub no_pivot: bool,
    /// `Some` for `exec`: join this container instead of creating one.
    pub exec: Option<ExecTarget>,
}

/// The container an exec joins.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecTarget {
    pub init_pid: i32,
    /// The namespace types the container has (besides the host's).
    pub namespaces: Vec<LinuxNamespaceType>,
    pub process: Process,
}

/// Entry point of the re-executed binary; `fd` is the sync socket.
pub fn main(fd: RawFd) -> ! {
    // Nodes and files we create get exactly the modes asked for; the
    // process's own umask is set just before exec.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    // SAFETY: the parent placed the sync socket at `fd` and nothing else owns it.
    let mut ch = unsafe { Channel::from_raw(fd) };
    let result = ch
        .expect(Tag::Config)
        .and_then(|raw| {
            serde_json::from_slice::<InitConfig>(&raw)
                .map_err(|e| Error::Init(format!("bad init config: {e}")))
        })
        .and_then(|cfg| match cfg.exec {
            Some(_) => exec_init(cfg, &mut ch),
            None => container_init(cfg, &mut ch),
        });
    let e = match result {
        Ok(never) => match never {},
        Err(e) => e,
    };
    crate::spawn::fail(&mut ch, &e)
}

fn process_of(spec: &Spec) -> Result<&Process> {
    spec.process()
        .as_ref()
        .ok_or_else(|| Error::Invalid("spec has no process".into()))
}

/// The container's init: set up, report, wait for start, exec.
fn container_init(cfg: InitConfig, ch: &mut Channel) -> Result<std::convert::Infallible> {
    let spec = &cfg.spec;
    let proc_ = process_of(spec)?;
    let fifo_path = cfg.state_dir.join(crate::state::FIFO);
    let fifo = nix::fcntl::open(
        &fifo_path,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys_err(format!("open {}", fifo_path.display())))?;
    let has = |t| crate::has_new_ns(spec, t);
    if has(LinuxNamespaceType::Uts) {
        if let Some(h) = spec.hostname() {
            nix::unistd::sethostname(h).map_err(sys_err(format!("sethostname {h}")))?;
        }
        if let Some(d) = spec.domainname() {
            set_domainname(d)?;
        }
    }
    if has(LinuxNamespaceType::Network) {
        crate::netlo::loopback_up()?;
    }
    crate::hooks::run_in_container(&cfg.id, spec, crate::hooks::Kind::CreateContainer)?;
    crate::rootfs::setup(
        spec,
        &cfg.rootfs,
        cfg.no_pivot,
        has(LinuxNamespaceType::User),
    )?;
    let console = cfg.console_fd.map(|fd| {
        // SAFETY: the parent placed the console socket at this fd for us alone.
        unsafe { OwnedFd::from_raw_fd(fd) }
    });
    process::setup_stdio(proc_, console, true)?;
    let ready = process::prepare(proc_, cfg.preserve_fds, spec)?;
    ch.send(Tag::Ready, b"")?;
    wait_for_start(&fifo)?;
    crate::hooks::run_in_container(&cfg.id, spec, crate::hooks::Kind::StartContainer)?;
    ready.exec()
}

/// Blocks until `start` opens the fifo for reading, then tells it we go.
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io_err("open exec fifo", std::path::Path::new(&path)))?;
    std::io::Write::write_all(&mut f, b"0")
        .map_err(io_err("write exec fifo", std::path::Path::new(&path)))
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: the pointer and length describe the bytes of `d`.
    let rc = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
    if rc < 0 {
        return Err(sys_err(format!("setdomainname {d}"))(nix::Error::last()));
    }
    Ok(())
}

/// `exec`: join the container, fork into its pid namespace, set up, exec.
fn exec_init(cfg: InitConfig, ch: &mut Channel) -> Result<std::convert::Infallible> {
    let Some(target) = cfg.exec.as_ref() else {
        return Err(Error::Invalid("exec without a target".into()));
    };
    join_container(target)?;
    // Both this process (PID) and its child (READY or FAIL) write to the
    // channel: the child waits until we are gone, so the parent always reads
    // PID first however the two get scheduled.
    let (gone_r, gone_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys_err("pipe for the exec handshake"))?;
    let pid = crate::spawn::clone_fork(CloneFlags::empty())?;
    if pid != 0 {
        drop(gone_r);
        let sent = ch.send(Tag::Pid, pid.to_string().as_bytes());
        drop(gone_w);
        sent?;
        // SAFETY: _exit ends this intermediate process; the child carries on.
        unsafe { libc::_exit(0) }
    }
    drop(gone_w);
    wait_for_eof(&gone_r)?;
    drop(gone_r);
    let console = cfg.console_fd.map(|fd| {
        // SAFETY: the parent placed the console socket at this fd for us alone.
        unsafe { OwnedFd::from_raw_fd(fd) }
    });
    process::setup_stdio(&target.process, console, false)?;
    let ready = process::prepare(&target.process, cfg.preserve_fds, &cfg.spec)?;
    ch.send(Tag::Ready, b"")?;
    ready.exec()
}

/// Blocks until every writer of the pipe `r` has closed it.
fn wait_for_eof(r: &OwnedFd) -> Result<()> {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(r, &mut b) {
            Ok(0) => return Ok(()),
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(sys_err("wait for the exec intermediate")(e)),
        }
    }
}

/// Opens every namespace of the container first (its /proc view changes once
/// we enter its mount namespace), then enters them, user namespace first.
fn join_container(t: &ExecTarget) -> Result<()> {
    let mut order: Vec<LinuxNamespaceType> = t.namespaces.clone();
    order.sort_by_key(|n| {
        (
            *n != LinuxNamespaceType::User,
            *n == LinuxNamespaceType::Mount,
        )
    });
    let mut files = Vec::new();
    for ns in &order {
        let name = ns_proc_name(*ns);
        let path = PathBuf::from(format!("/proc/{}/ns/{name}", t.init_pid));
        let f = std::fs::File::open(&path).map_err(io_err("open", &path))?;
        files.push((f, *ns, path));
    }
    for (f, ns, path) in files {
        setns(&f, crate::spawn::ns_flag(ns))
            .map_err(sys_err(format!("setns {}", path.display())))?;
        if ns == LinuxNamespaceType::User {
            let root = nix::unistd::Uid::from_raw(0);
            let g = nix::unistd::Gid::from_raw(0);
            let _ = nix::unistd::setresgid(g, g, g);
            let _ = nix::unistd::setresuid(root, root, root);
        }
    }
    Ok(())
}

/// The file name under /proc/<pid>/ns/ of a namespace type.
pub fn ns_proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

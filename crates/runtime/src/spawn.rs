//! Starting the container's first process: `clone(2)` with the namespace
//! flags (the caller is single-threaded, so this is as safe as fork), an
//! optional intermediate process that first joins namespaces by path, and
//! stage 1 of the init, which waits for the parent, finishes the namespace
//! work that must follow the uid maps and cgroup entry, and re-executes our
//! binary read-only (see [`crate::exe`]).

use crate::error::{sys_err, Error, Result};
use crate::sync::{Channel, Tag};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use std::os::fd::RawFd;
use std::path::PathBuf;

/// What the new process must do about namespaces and descriptors.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Namespaces created by clone (cgroup excluded: unshared after joining the cgroup).
    pub clone_flags: CloneFlags,
    /// Namespaces to join first, user namespace first.
    pub join: Vec<(CloneFlags, PathBuf)>,
    pub new_userns: bool,
    pub new_cgroupns: bool,
    /// True when the process gets a mount namespace of its own (new or, for exec, private).
    pub own_mountns: bool,
    /// Unshare a private mount namespace in stage 1 (exec: before joining the container's).
    pub unshare_mountns: bool,
    /// Descriptors 3..3+preserve_fds pass through to the user program.
    pub preserve_fds: i32,
    /// Extra descriptors stage 2 needs (console socket); moved above the sync fd.
    pub extra_fds: Vec<RawFd>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            clone_flags: CloneFlags::empty(),
            join: Vec::new(),
            new_userns: false,
            new_cgroupns: false,
            own_mountns: false,
            unshare_mountns: false,
            preserve_fds: 0,
            extra_fds: Vec::new(),
        }
    }
}

/// The clone flag of a namespace type.
pub fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// Builds the plan for a container from its spec namespaces.
pub fn plan(namespaces: &[LinuxNamespace]) -> Plan {
    let mut p = Plan::default();
    let mut join = Vec::new();
    for ns in namespaces {
        let flag = ns_flag(ns.typ());
        match ns.path() {
            Some(path) => join.push((flag, path.clone())),
            None if ns.typ() == LinuxNamespaceType::Cgroup => p.new_cgroupns = true,
            None => p.clone_flags |= flag,
        }
    }
    // The user namespace first: the others are then joined with its privileges.
    join.sort_by_key(|(f, _)| *f != CloneFlags::CLONE_NEWUSER);
    p.new_userns = p.clone_flags.contains(CloneFlags::CLONE_NEWUSER);
    p.own_mountns = p.clone_flags.contains(CloneFlags::CLONE_NEWNS);
    p.join = join;
    p
}

/// `clone(2)` with only a SIGCHLD exit signal and `flags`: fork semantics.
/// Returns the child's pid in the parent and 0 in the child.
pub fn clone_fork(flags: CloneFlags) -> Result<i32> {
    let bits = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: raw clone without a new stack behaves like fork; the runtime is
    // single-threaded at this point (no tokio, no threads), so the child's copy
    // of memory and locks is consistent.
    let pid = unsafe { libc::syscall(libc::SYS_clone, bits, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(sys_err(format!("clone({:?})", flags))(nix::Error::last()));
    }
    Ok(pid as i32)
}

/// Creates the init process. Returns (pid of the init, pid of an intermediate
/// process to reap, if one was used). The child side never returns.
pub fn spawn(plan: &Plan, parent: &mut Channel, child: Channel) -> Result<(i32, Option<i32>)> {
    if plan.join.is_empty() {
        let pid = clone_fork(plan.clone_flags)?;
        if pid == 0 {
            drop_parent_end(parent);
            stage1(plan, child);
        }
        return Ok((pid, None));
    }
    let mid = clone_fork(CloneFlags::empty())?;
    if mid == 0 {
        drop_parent_end(parent);
        intermediate(plan, child);
    }
    drop(child);
    let payload = parent.expect(Tag::Pid)?;
    let pid = String::from_utf8_lossy(&payload)
        .parse::<i32>()
        .map_err(|_| Error::Init("bad pid from the intermediate process".into()))?;
    Ok((pid, Some(mid)))
}

fn drop_parent_end(parent: &Channel) {
    // SAFETY: closing the parent's end in the child; the child never uses it.
    unsafe { libc::close(parent.raw()) };
}

/// Joins the namespaces given by path, then clones the init into new ones.
fn intermediate(plan: &Plan, mut ch: Channel) -> ! {
    let result = (|| -> Result<i32> {
        for (flag, path) in &plan.join {
            let f = std::fs::File::open(path).map_err(crate::error::io_err("open", path))?;
            setns(&f, *flag).map_err(sys_err(format!("setns {}", path.display())))?;
        }
        let pid = clone_fork(plan.clone_flags)?;
        if pid == 0 {
            return Ok(0);
        }
        Ok(pid)
    })();
    match result {
        Ok(0) => stage1(plan, ch),
        Ok(pid) => {
            let _ = ch.send(Tag::Pid, pid.to_string().as_bytes());
            // SAFETY: _exit ends this forked process without running destructors.
            unsafe { libc::_exit(0) }
        }
        Err(e) => fail(&mut ch, &e),
    }
}

/// Stage 1: wait for the parent, become root of the user namespace, unshare
/// the cgroup namespace, make mounts private, re-exec. Never returns.
pub fn stage1(plan: &Plan, mut ch: Channel) -> ! {
    let e = match stage1_inner(plan, &mut ch) {
        Ok(e) | Err(e) => e,
    };
    fail(&mut ch, &e)
}

fn stage1_inner(plan: &Plan, ch: &mut Channel) -> Result<Error> {
    ch.expect(Tag::Go)?;
    if plan.new_userns {
        let root = (Gid::from_raw(0), Uid::from_raw(0));
        setresgid(root.0, root.0, root.0).map_err(sys_err("setresgid 0 in user namespace"))?;
        setresuid(root.1, root.1, root.1).map_err(sys_err("setresuid 0 in user namespace"))?;
    }
    if plan.new_cgroupns {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(sys_err("unshare cgroup namespace"))?;
    }
    if plan.unshare_mountns {
        unshare(CloneFlags::CLONE_NEWNS).map_err(sys_err("unshare mount namespace"))?;
    }
    if plan.own_mountns || plan.unshare_mountns {
        let none: Option<&str> = None;
        // Slave, so nothing we mount propagates back to the host.
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_SLAVE, none)
            .map_err(sys_err("make / rslave"))?;
    }
    let sync_fd = place_fds(plan, ch.raw())?;
    Ok(crate::exe::reexec(sync_fd))
}

/// Moves the sync socket and the extra fds to 3+preserve_fds and up (no
/// close-on-exec), out of the way of the descriptors the user program keeps.
fn place_fds(plan: &Plan, sync: RawFd) -> Result<RawFd> {
    let mut srcs = vec![sync];
    srcs.extend(plan.extra_fds.iter().copied());
    // First dup everything high, so the final dup2s cannot clobber a source.
    let mut high = Vec::new();
    for fd in &srcs {
        // SAFETY: fcntl F_DUPFD_CLOEXEC on an fd we hold.
        let h = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 1000) };
        if h < 0 {
            return Err(sys_err("dup sync fd")(nix::Error::last()));
        }
        high.push(h);
    }
    let base = 3 + plan.preserve_fds;
    for (i, h) in high.iter().enumerate() {
        // SAFETY: dup2 onto a number we own; the target is not in use by us.
        if unsafe { libc::dup2(*h, base + i as RawFd) } < 0 {
            return Err(sys_err("dup2 sync fd")(nix::Error::last()));
        }
    }
    Ok(base)
}

/// Reports `e` to the parent and exits the forked child.
pub fn fail(ch: &mut Channel, e: &Error) -> ! {
    if ch.send(Tag::Fail, e.to_string().as_bytes()).is_err() {
        // Nobody listens any more (after start): stderr is all that is left.
        eprintln!("bosun-init: {e}");
    }
    // SAFETY: _exit ends the forked child without running the parent's destructors.
    unsafe { libc::_exit(1) }
}

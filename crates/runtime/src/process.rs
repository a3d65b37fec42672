//! The user process: rlimits, oom score, umask, cwd (checked to be inside
//! the root: the CVE-2024-21626 class), closing every descriptor the spec did
//! not ask to keep, user and groups, the five capability sets,
//! noNewPrivileges and seccomp, then execve. Order follows runc: seccomp is
//! loaded before dropping capabilities when noNewPrivileges is off (it then
//! needs CAP_SYS_ADMIN), and as late as possible when it is on.

use crate::error::{io_err, sys_err, Error, Result};
use caps::{CapSet, Capability as Cap, CapsHashSet};
use libseccomp::ScmpFilterContext;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Capabilities, PosixRlimitType, Process, Spec};
use std::ffi::CString;
use std::path::{Path, PathBuf};

pub use crate::console::setup as setup_stdio;

/// A process ready to exec (everything but the late seccomp load is done).
pub struct Ready {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    late_seccomp: Option<ScmpFilterContext>,
}

impl Ready {
    /// Loads the late seccomp filter (if any) and execs. Returns only on error.
    pub fn exec(self) -> Result<std::convert::Infallible> {
        if let Some(ctx) = &self.late_seccomp {
            crate::seccomp::load(ctx)?;
        }
        nix::unistd::execve(&self.path, &self.argv, &self.envp)
            .map_err(sys_err(format!("exec {}", self.path.to_string_lossy())))
    }
}

fn cs(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid(format!("NUL byte in {s:?}")))
}

/// Applies everything but the exec; see the module doc for the order.
pub fn prepare(p: &Process, preserve_fds: i32, spec: &Spec) -> Result<Ready> {
    rlimits(p)?;
    if let Some(adj) = p.oom_score_adj() {
        let path = Path::new("/proc/self/oom_score_adj");
        std::fs::write(path, adj.to_string()).map_err(io_err("write", path))?;
    }
    let umask = p.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    enter_cwd(p.cwd())?;
    close_fds(preserve_fds)?;
    let args = p.args().clone().unwrap_or_default();
    let env: Vec<String> = p.env().clone().unwrap_or_default();
    let path = find_program(args.first().map(String::as_str).unwrap_or(""), &env)?;
    let argv = args.iter().map(|a| cs(a)).collect::<Result<Vec<_>>>()?;
    let envp = env.iter().map(|e| cs(e)).collect::<Result<Vec<_>>>()?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    let filter = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(crate::seccomp::compile(s)?),
        None => None,
    };
    let mut late = None;
    if let Some(ctx) = filter {
        if nnp {
            late = Some(ctx);
        } else {
            crate::seccomp::load(&ctx)?;
        }
    }
    // The bounding set needs CAP_SETPCAP, which a non-root uid loses from
    // its effective set: drop it first, then change user, then set the rest.
    if let Some(c) = p.capabilities() {
        drop_bounding(c)?;
    }
    set_user(p)?;
    if let Some(c) = p.capabilities() {
        set_caps(c)?;
    }
    if nnp {
        nix::sys::prctl::set_no_new_privs().map_err(sys_err("set no_new_privs"))?;
    }
    Ok(Ready {
        path: cs(&path.to_string_lossy())?,
        argv,
        envp,
        late_seccomp: late,
    })
}

fn rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let res = rlimit_resource(r.typ());
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit from our stack.
        if unsafe { libc::setrlimit(res, &lim) } < 0 {
            return Err(sys_err(format!(
                "setrlimit {:?} soft {} hard {}",
                r.typ(),
                r.soft(),
                r.hard()
            ))(nix::Error::last()));
        }
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// chdir into cwd (creating it like runc) and refuse a cwd outside the root:
/// the kernel prefixes such a path with "(unreachable)".
fn enter_cwd(cwd: &Path) -> Result<()> {
    if nix::unistd::chdir(cwd).is_err() {
        std::fs::create_dir_all(cwd).map_err(io_err("create cwd", cwd))?;
        nix::unistd::chdir(cwd).map_err(sys_err(format!("chdir {}", cwd.display())))?;
    }
    let now = nix::unistd::getcwd().map_err(sys_err("getcwd"))?;
    if !now.is_absolute() || now.starts_with("(unreachable)") {
        return Err(Error::Invalid(format!(
            "cwd {} is outside the container root",
            cwd.display()
        )));
    }
    Ok(())
}

/// Marks every descriptor from 3+preserve_fds up close-on-exec (one syscall).
fn close_fds(preserve_fds: i32) -> Result<()> {
    let first = (3 + preserve_fds) as libc::c_uint;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes descriptor flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(sys_err("close_range")(nix::Error::last()));
    }
    Ok(())
}

/// Resolves a program name through PATH from the process env (inside the root).
fn find_program(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.is_empty() {
        return Err(Error::Invalid("process.args is empty".into()));
    }
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match nix::unistd::access(&p, nix::unistd::AccessFlags::X_OK) {
            Ok(()) => Ok(p),
            Err(e) => Err(Error::Invalid(format!("exec {arg0}: {e}"))),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| Path::new(d).join(arg0))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Invalid(format!("exec {arg0}: not found in PATH {path}")))
}

/// Groups, gid and uid, keeping the permitted capabilities across setuid.
fn set_user(p: &Process) -> Result<()> {
    let u = p.user();
    nix::sys::prctl::set_keepcaps(true).map_err(sys_err("PR_SET_KEEPCAPS"))?;
    let groups: Vec<Gid> = u
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    if setgroups_allowed {
        nix::unistd::setgroups(&groups).map_err(sys_err(format!("setgroups {groups:?}")))?;
    }
    let g = Gid::from_raw(u.gid());
    nix::unistd::setresgid(g, g, g).map_err(sys_err(format!("setresgid {}", u.gid())))?;
    let uid = Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(sys_err(format!("setresuid {}", u.uid())))?;
    nix::sys::prctl::set_keepcaps(false).map_err(sys_err("PR_CLEAR_KEEPCAPS"))
}

fn to_caps(set: &Option<Capabilities>) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        match name.parse::<Cap>() {
            Ok(cap) => {
                out.insert(cap);
            }
            Err(_) => tracing::warn!("capability {name} unknown to this build; skipped"),
        }
    }
    Ok(out)
}

/// Drops every capability not in the spec's bounding set.
fn drop_bounding(c: &oci_spec::runtime::LinuxCapabilities) -> Result<()> {
    let bounding = to_caps(c.bounding())?;
    let all = caps::read(None, CapSet::Bounding)
        .map_err(|e| Error::Invalid(format!("read capabilities: {e}")))?;
    for cap in all.difference(&bounding) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| Error::Invalid(format!("drop bounding {cap}: {e}")))?;
    }
    Ok(())
}

/// Effective, permitted, inheritable and ambient (after the user change).
fn set_caps(c: &oci_spec::runtime::LinuxCapabilities) -> Result<()> {
    for (set, want) in [
        (CapSet::Effective, to_caps(c.effective())?),
        (CapSet::Permitted, to_caps(c.permitted())?),
        (CapSet::Inheritable, to_caps(c.inheritable())?),
    ] {
        caps::set(None, set, &want)
            .map_err(|e| Error::Invalid(format!("set {set:?} capabilities: {e}")))?;
    }
    // An ambient capability needs to be permitted and inheritable; like runc,
    // one that cannot be raised is skipped rather than failing the container.
    caps::clear(None, CapSet::Ambient)
        .map_err(|e| Error::Invalid(format!("clear ambient capabilities: {e}")))?;
    for cap in to_caps(c.ambient())? {
        if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
            tracing::debug!("ambient {cap} not raised: {e}");
        }
    }
    Ok(())
}

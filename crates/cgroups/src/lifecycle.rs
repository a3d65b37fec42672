//! The end of a cgroup's life: freezing, signalling every member, and
//! removal that kills leftovers, waits for the cgroup to empty and removes
//! its directories deepest first.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cgroup::subdirs;
use crate::{fsutil, v1, v2, Cgroup, Error, Result, Version};

/// How long `destroy` keeps killing and retrying before it reports the
/// cgroup busy (a process in uninterruptible sleep can take a while).
const DESTROY_TIMEOUT: Duration = Duration::from_secs(20);

impl Cgroup {
    /// Freezes (`true`) or thaws (`false`) every task, waiting until the
    /// kernel reports the state reached. Fails if no freezer is available.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        match self.freezer() {
            Some((Version::V1, dir)) => v1::freezer::set(dir, frozen),
            Some((Version::V2, dir)) => v2::freezer::set(dir, frozen),
            None => Err(Error::Unsupported {
                what: "freezing (no freezer controller mounted)".into(),
                version: self.version,
            }),
        }
    }

    /// True when the cgroup is frozen (or freezing).
    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer() {
            Some((Version::V1, dir)) => v1::freezer::is_frozen(dir),
            Some((Version::V2, dir)) => v2::freezer::is_frozen(dir),
            None => Ok(false),
        }
    }

    fn freezer(&self) -> Option<(Version, &Path)> {
        match self.version {
            Version::V1 => self
                .find("freezer")
                .filter(|d| !d.mount.v2)
                .map(|d| (Version::V1, d.path.as_path())),
            Version::V2 => self.find("").map(|d| (Version::V2, d.path.as_path())),
        }
    }

    /// Sends `signal` to every process in the cgroup and below. The cgroup
    /// is frozen meanwhile (when a freezer exists) so that nothing forks
    /// past the signal; SIGKILL on v2 uses `cgroup.kill` when the kernel has it.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        let sig = parse_signal(signal)?;
        if self.procs()?.is_empty() {
            return Ok(());
        }
        if signal == Signal::SIGKILL as i32 && self.cgroup_kill()? {
            return Ok(());
        }
        let was_frozen = self.is_frozen()?;
        let froze = !was_frozen && self.try_freeze();
        let result = self.signal_members(sig);
        // A frozen v1 task dies only once thawed; keep a paused container
        // paused for any other signal.
        if froze || (was_frozen && signal == Signal::SIGKILL as i32) {
            self.freeze(false)?;
        }
        result
    }

    /// Freezes for a kill; a freeze that fails half-way is undone so no task
    /// stays stuck in FREEZING.
    fn try_freeze(&self) -> bool {
        if self.freezer().is_none() {
            return false;
        }
        match self.freeze(true) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot freeze before signalling; signalling anyway");
                let _ = self.freeze(false);
                false
            }
        }
    }

    fn signal_members(&self, sig: Option<Signal>) -> Result<()> {
        let signal = sig.map_or(0, |s| s as i32);
        let me = std::process::id() as i32;
        for pid in self.procs()?.into_iter().filter(|p| *p != me) {
            match kill(Pid::from_raw(pid), sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(source) => {
                    return Err(Error::Signal {
                        pid,
                        signal,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Writes `cgroup.kill` on v2 when present; false when not available.
    fn cgroup_kill(&self) -> Result<bool> {
        if self.version != Version::V2 {
            return Ok(false);
        }
        match self.find("") {
            Some(d) if fsutil::exists(&d.path, "cgroup.kill") => {
                fsutil::write(&d.path, "cgroup.kill", 1)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Removes the cgroup in every hierarchy: thaws it, SIGKILLs whatever is
    /// still inside (sub-cgroups included), waits until it is empty and
    /// removes the directories deepest first. Calling it again, or on a
    /// cgroup never created, succeeds. Parents (`/bosun`) are left in place.
    pub fn destroy(&self) -> Result<()> {
        if !self.exists() {
            return Ok(());
        }
        if self.is_frozen().unwrap_or(false) {
            let _ = self.freeze(false);
        }
        let start = Instant::now();
        let mut pause = Duration::from_micros(100);
        let mut first = true;
        loop {
            let pids = self.procs()?;
            if !pids.is_empty() && first {
                // Frozen while signalled, so nothing forks past the kill.
                self.kill_all(Signal::SIGKILL as i32)?;
            } else if !pids.is_empty() {
                self.signal_members(Some(Signal::SIGKILL))?;
            }
            first = false;
            let mut all_gone = true;
            for d in &self.dirs {
                all_gone &= remove_tree(&d.path)?;
            }
            if all_gone {
                return Ok(());
            }
            if start.elapsed() > DESTROY_TIMEOUT {
                let path = self
                    .dirs
                    .iter()
                    .find(|d| d.path.exists())
                    .map(|d| d.path.clone());
                return Err(Error::Busy {
                    path: path.unwrap_or_default(),
                    pids,
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// `0` (a liveness probe) is `None`; other numbers must name a signal.
fn parse_signal(signal: i32) -> Result<Option<Signal>> {
    match signal {
        0 => Ok(None),
        n => Signal::try_from(n)
            .map(Some)
            .map_err(|_| Error::InvalidSignal(n)),
    }
}

/// Removes `dir` and its sub-cgroups deepest first. Returns false when the
/// kernel still holds one (EBUSY: tasks not yet gone), true when all are gone.
fn remove_tree(dir: &Path) -> Result<bool> {
    let mut all = true;
    for sub in subdirs(dir)? {
        all &= remove_tree(&sub)?;
    }
    if !all {
        return Ok(false);
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
        Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => Ok(false),
        Err(source) => Err(Error::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

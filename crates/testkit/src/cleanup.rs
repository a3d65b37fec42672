//! A stack of undo actions run in reverse order when the guard drops,
//! for host state no dedicated guard covers (a veth, a mount, a process).

use std::process::Command;

/// Runs registered actions last-in first-out on drop, panicking or not.
#[derive(Default)]
pub struct Cleanup {
    actions: Vec<(String, Box<dyn FnOnce()>)>,
}

impl Cleanup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an action; `what` is printed if it panics.
    pub fn defer(&mut self, what: impl Into<String>, action: impl FnOnce() + 'static) {
        self.actions.push((what.into(), Box::new(action)));
    }

    /// Registers `umount -l path` (lazy, so a busy mount still goes).
    pub fn unmount(&mut self, path: impl Into<std::path::PathBuf>) {
        let path = path.into();
        self.defer(format!("unmount {}", path.display()), move || {
            let _ = Command::new("umount").arg("-l").arg(&path).status();
        });
    }

    /// Registers SIGKILL of a process (and a reap if it is our child).
    pub fn kill_process(&mut self, pid: i32) {
        self.defer(format!("kill {pid}"), move || {
            // SAFETY: kill and waitpid take plain integers; a stale pid is harmless
            // because the test created it and nothing else reuses it this quickly.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
            }
        });
    }

    /// Registers `ip link del name`.
    pub fn delete_link(&mut self, name: impl Into<String>) {
        let name = name.into();
        self.defer(format!("ip link del {name}"), move || {
            let _ = Command::new("ip").args(["link", "del", &name]).status();
        });
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        while let Some((what, action)) = self.actions.pop() {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(action)).is_err() {
                eprintln!("testkit: cleanup step failed: {what}");
            }
        }
    }
}

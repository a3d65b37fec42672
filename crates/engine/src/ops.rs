//! Operations on existing containers: kill, stop, wait, rm and start of a
//! stopped container. The monitor owns the exit; these signal the init
//! through the runtime and watch the record for the monitor's verdict.

use crate::create::{parse_publish_text, Engine};
use crate::records::{ContainerRecord, Status};
use crate::{launch, logs, network, remove, Error, Result};
use nix::sys::signal::Signal;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Signals the container's init.
pub fn kill(engine: &Engine, rec: &ContainerRecord, sig: Signal) -> Result<()> {
    let rec = refresh(engine, rec)?;
    if !rec.is_running() {
        return Err(Error::NotRunning(rec.id));
    }
    engine.runtime().kill(&rec.id, sig, false)?;
    Ok(())
}

/// Waits until the container has exited (or, with `--rm`, is gone);
/// returns its exit code (None when the record vanished), or times out.
pub fn wait_exit(engine: &Engine, id: &str, timeout: Option<Duration>) -> Result<Option<i32>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let rec = match engine.records.find(id) {
            Ok(r) => refresh(engine, &r)?,
            Err(Error::NoSuchContainer(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        match rec.status {
            Status::Exited { code, .. } => return Ok(Some(code)),
            Status::Created if rec.monitor_pid.is_none() => return Ok(Some(0)),
            _ => {}
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(Error::Monitor(format!(
                "container {id} did not exit in time"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, then SIGKILL after `timeout`; waits for the monitor to record the exit.
pub fn stop(engine: &Engine, rec: &ContainerRecord, timeout: Duration) -> Result<()> {
    let rec = refresh(engine, rec)?;
    if !rec.is_running() {
        return Ok(());
    }
    let _ = engine.runtime().kill(&rec.id, Signal::SIGTERM, false);
    if wait_exit(engine, &rec.id, Some(timeout)).is_ok() {
        return Ok(());
    }
    let _ = engine.runtime().kill(&rec.id, Signal::SIGKILL, false);
    wait_exit(engine, &rec.id, Some(Duration::from_secs(60))).map(|_| ())
}

/// `rm`: refuses a running container unless `force`, then removes everything.
pub fn rm(engine: &Engine, rec: &ContainerRecord, force: bool) -> Result<()> {
    let rec = refresh(engine, rec)?;
    if rec.is_running() {
        if !force {
            return Err(Error::RemoveRunning(rec.id));
        }
        let _ = engine.runtime().kill(&rec.id, Signal::SIGKILL, false);
        wait_exit(engine, &rec.id, Some(Duration::from_secs(60)))?;
    }
    match remove::purge(engine, &rec) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// Starts a created or exited container again with a new monitor.
pub fn start(engine: &Engine, rec: &ContainerRecord) -> Result<UnixStream> {
    let rec = refresh(engine, rec)?;
    if rec.is_running() {
        return Err(Error::Monitor(format!(
            "container {} is already running",
            rec.name
        )));
    }
    let images = engine.images()?;
    images.mount(&rec.id)?;
    let mode = network::Mode::parse(&rec.network)?;
    let ports: Vec<_> = rec
        .ports
        .iter()
        .filter_map(|p| parse_publish_text(p))
        .collect();
    engine.check_published(&rec.id, &ports)?;
    let attached = network::setup(&engine.root, &rec.id, mode, &ports)?;
    let dir = engine.records.dir_of(&rec.id);
    network::etc_files(&dir, mode, &rec.hostname, attached.ip.as_deref())?;
    engine.records.update(&rec.id, |r| {
        r.ip = attached.ip.clone();
        r.status = Status::Created;
        r.monitor_pid = None;
        Ok(())
    })?;
    launch::start(engine, &rec.id).inspect_err(|_| {
        let _ = remove::release(engine, &rec);
    })
}

/// The record, corrected when its monitor died without recording an exit
/// (killed with SIGKILL, or the machine rebooted).
pub fn refresh(engine: &Engine, rec: &ContainerRecord) -> Result<ContainerRecord> {
    let Status::Running { pid, .. } = rec.status else {
        return Ok(rec.clone());
    };
    let monitor_alive = rec.monitor_pid.is_some_and(process_alive);
    if monitor_alive || process_alive(pid) {
        return Ok(rec.clone());
    }
    let _ = remove::release(engine, rec);
    engine.records.update(&rec.id, |r| {
        r.status = Status::Exited {
            code: 255,
            finished_at: logs::now_rfc3339(),
            oom_killed: false,
        };
        Ok(())
    })
}

fn process_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

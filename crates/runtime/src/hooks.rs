//! OCI lifecycle hooks: each gets the container state JSON on stdin, its own
//! args (args[0] is argv[0]) and env, and an optional timeout in seconds.
//! prestart/createRuntime/poststart/poststop run in the runtime's namespaces;
//! createContainer/startContainer run inside the container (from the init).

use crate::error::{Error, Result};
use oci_spec::runtime::{Hook, Spec};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Which hook list.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

/// The hooks of `kind` in the spec.
pub fn list(spec: &Spec, kind: Kind) -> Vec<Hook> {
    let Some(h) = spec.hooks() else {
        return Vec::new();
    };
    #[allow(deprecated)]
    let l = match kind {
        Kind::Prestart => h.prestart(),
        Kind::CreateRuntime => h.create_runtime(),
        Kind::CreateContainer => h.create_container(),
        Kind::StartContainer => h.start_container(),
        Kind::Poststart => h.poststart(),
        Kind::Poststop => h.poststop(),
    };
    l.clone().unwrap_or_default()
}

/// Runs every hook of `kind` in order; the first failure stops.
pub fn run(spec: &Spec, kind: Kind, state_json: &[u8]) -> Result<()> {
    for hook in list(spec, kind) {
        run_one(&hook, state_json)?;
    }
    Ok(())
}

/// createContainer/startContainer from inside the container (state without pid detail).
pub fn run_in_container(id: &str, spec: &Spec, kind: Kind) -> Result<()> {
    let hooks = list(spec, kind);
    if hooks.is_empty() {
        return Ok(());
    }
    let state = serde_json::json!({
        "ociVersion": spec.version(),
        "id": id,
        "status": "creating",
        "pid": std::process::id(),
        "bundle": "",
    });
    let raw = state.to_string();
    for hook in hooks {
        run_one(&hook, raw.as_bytes())?;
    }
    Ok(())
}

fn hook_err(hook: &Hook, msg: String) -> Error {
    Error::Hook {
        path: hook.path().clone(),
        msg,
    }
}

fn run_one(hook: &Hook, state_json: &[u8]) -> Result<()> {
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .stdin(Stdio::piped());
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().map_err(|e| hook_err(hook, e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child
            .try_wait()
            .map_err(|e| hook_err(hook, e.to_string()))?
        {
            Some(st) if st.success() => return Ok(()),
            Some(st) => return Err(hook_err(hook, format!("exited with {st}"))),
            None => {}
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(hook_err(hook, "timed out".into()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

//! Where a pod's start-up time goes, as seen by its worker: from the worker
//! seeing the pod to the sandbox, the first container created and started,
//! and the first status write that reports the pod Ready. One debug line
//! per pod (target `kubelet::podstart`) once it is Ready, with the
//! wall-clock time the worker saw it, so a bench can join it with its own
//! watch timestamps.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Phase marks of one pod's first start.
#[derive(Debug)]
pub(super) struct Timeline {
    seen: Instant,
    seen_unix: f64,
    marks: Vec<(&'static str, Instant)>,
    done: bool,
}

impl Timeline {
    pub fn new() -> Self {
        Self {
            seen: Instant::now(),
            seen_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            marks: Vec::new(),
            done: false,
        }
    }

    /// Records the first time `phase` ends (later repeats are ignored).
    pub fn mark(&mut self, phase: &'static str) {
        if !self.done && !self.marks.iter().any(|(p, _)| *p == phase) {
            self.marks.push((phase, Instant::now()));
        }
    }

    /// Logs the timeline once, when the pod was first reported Ready.
    pub fn ready_reported(&mut self, pod: &str) {
        if self.done {
            return;
        }
        self.mark("status");
        self.done = true;
        let mut last = self.seen;
        let phases: Vec<String> = self
            .marks
            .iter()
            .map(|(p, t)| {
                let ms = t.duration_since(last).as_secs_f64() * 1000.0;
                last = *t;
                format!("{p}={ms:.1}")
            })
            .collect();
        tracing::debug!(
            target: "kubelet::podstart",
            pod,
            seen_at = format!("{:.6}", self.seen_unix),
            total_ms = format!("{:.1}", last.duration_since(self.seen).as_secs_f64() * 1000.0),
            phases = phases.join(" "),
            "pod start timeline"
        );
    }
}

/// The pod status (as reported) has condition Ready=True.
pub(super) fn is_ready(status: &serde_json::Value) -> bool {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

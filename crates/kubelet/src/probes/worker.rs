//! One probe worker per (container, probe kind): waits initialDelaySeconds,
//! then probes every periodSeconds, turning single outcomes into results
//! with successThreshold/failureThreshold, as upstream's worker does.
//! Liveness and readiness wait until the startup probe (if any) succeeded;
//! a liveness or startup result of failure asks for a restart and puts the
//! worker on hold (it ends: the restarted container gets new workers).

use super::check::{self, Outcome, Target};
use super::{ContainerRef, ProbeEvent, ProbeKind, Shared};
use k8s_openapi::api::core::v1::Probe;
use std::time::Duration;

/// The probe's timing and thresholds with upstream's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(p: &Probe) -> Timing {
        let secs = |v: Option<i32>, d: i32| Duration::from_secs(v.unwrap_or(d).max(0) as u64);
        let count = |v: Option<i32>, d: i32| u32::try_from(v.unwrap_or(d)).unwrap_or(1).max(1);
        Timing {
            initial_delay: secs(p.initial_delay_seconds, 0),
            period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
            success_threshold: count(p.success_threshold, 1),
            failure_threshold: count(p.failure_threshold, 3),
        }
    }
}

/// Consecutive-outcome counting: returns Some(result) when a threshold is met.
#[derive(Debug, Default)]
pub struct Counter {
    successes: u32,
    failures: u32,
}

impl Counter {
    /// Records an outcome; Some(true)/Some(false) once successThreshold
    /// successes / failureThreshold failures are reached in a row.
    pub fn record(&mut self, ok: bool, t: &Timing) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            (self.successes >= t.success_threshold).then_some(true)
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            (self.failures >= t.failure_threshold).then_some(false)
        }
    }
}

pub(super) async fn run(
    shared: Shared,
    target: ContainerRef,
    kind: ProbeKind,
    probe: Probe,
    ctx: Target,
) {
    let timing = Timing::of(&probe);
    tokio::time::sleep(timing.initial_delay).await;
    let mut counter = Counter::default();
    loop {
        if kind != ProbeKind::Startup && !shared.started(&target.container_id) {
            tokio::time::sleep(timing.period).await;
            continue;
        }
        let outcome = check::run(&ctx, &probe).await;
        let ok = match &outcome {
            Outcome::Success => true,
            Outcome::Failure(m) => {
                let message = format!("{kind} probe failed: {m}");
                shared.emit(ProbeEvent::Unhealthy {
                    target: target.clone(),
                    kind,
                    message,
                });
                false
            }
            Outcome::Errored(m) => {
                let message = format!("{kind} probe errored: {m}");
                shared.emit(ProbeEvent::Unhealthy {
                    target: target.clone(),
                    kind,
                    message,
                });
                tokio::time::sleep(timing.period).await;
                continue;
            }
        };
        match (counter.record(ok, &timing), kind) {
            (Some(ready), ProbeKind::Readiness) => shared.set_ready(&target, ready),
            (Some(true), ProbeKind::Startup) => {
                shared.set_started(&target);
                return;
            }
            (Some(false), ProbeKind::Liveness | ProbeKind::Startup) => {
                let detail = match outcome {
                    Outcome::Failure(m) | Outcome::Errored(m) => m,
                    Outcome::Success => String::new(),
                };
                shared.kill(&target, kind, format!("{kind} probe failed: {detail}"));
                return;
            }
            _ => {}
        }
        tokio::time::sleep(timing.period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_need_consecutive_outcomes() {
        let t = Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            success_threshold: 2,
            failure_threshold: 3,
        };
        let mut c = Counter::default();
        assert_eq!(c.record(false, &t), None);
        assert_eq!(c.record(false, &t), None);
        assert_eq!(c.record(true, &t), None, "a success resets failures");
        assert_eq!(c.record(true, &t), Some(true));
        assert_eq!(c.record(false, &t), None);
        assert_eq!(c.record(false, &t), None);
        assert_eq!(c.record(false, &t), Some(false));
        assert_eq!(c.record(false, &t), Some(false));
    }

    #[test]
    fn defaults_match_upstream() {
        let t = Timing::of(&Probe::default());
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!((t.success_threshold, t.failure_threshold), (1, 3));
        assert_eq!(t.initial_delay, Duration::ZERO);
    }
}

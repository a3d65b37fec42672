//! The scheduling queue: pods waiting for a node. Active pods are tried in
//! arrival order; a pod that did not fit waits as unschedulable until the
//! cluster changes (a node appears or changes, a pod goes away) or a minute
//! passes, and then after an exponential backoff (1 s doubling to 10 s).

use k8s_openapi::api::core::v1::Pod;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum Waiting {
    /// Failed at this time; waits for a cluster change.
    Unschedulable(Instant),
    /// Ready to retry at this time.
    Backoff(Instant),
}

/// Pods waiting to be scheduled, by `namespace/name`.
#[derive(Debug, Default)]
pub struct Queue {
    pods: HashMap<String, Arc<Pod>>,
    active: VecDeque<String>,
    in_active: HashSet<String>,
    waiting: HashMap<String, Waiting>,
    attempts: HashMap<String, u32>,
    /// Pods currently being bound (not to be offered again).
    in_flight: HashSet<String>,
}

impl Queue {
    /// Adds or refreshes a pending pod; new pods become active at once.
    pub fn upsert(&mut self, key: String, pod: Pod) {
        let known = self.pods.insert(key.clone(), Arc::new(pod)).is_some();
        if !known && !self.in_flight.contains(&key) {
            self.activate(key);
        }
    }

    /// Drops a pod that was bound, deleted or finished.
    pub fn remove(&mut self, key: &str) {
        self.pods.remove(key);
        self.in_active.remove(key);
        self.waiting.remove(key);
        self.attempts.remove(key);
    }

    fn activate(&mut self, key: String) {
        self.waiting.remove(&key);
        if self.in_active.insert(key.clone()) {
            self.active.push_back(key);
        }
    }

    /// The next pod to try, marked in flight.
    pub fn pop(&mut self) -> Option<(String, Arc<Pod>)> {
        while let Some(key) = self.active.pop_front() {
            self.in_active.remove(&key);
            if let Some(pod) = self.pods.get(&key) {
                self.in_flight.insert(key.clone());
                return Some((key, pod.clone()));
            }
        }
        None
    }

    /// Whether any pod is ready to try.
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// The attempt for `key` finished (bound or not).
    pub fn done(&mut self, key: &str) {
        self.in_flight.remove(key);
    }

    /// The pod did not fit anywhere: park it until the cluster changes.
    pub fn unschedulable(&mut self, key: &str) {
        self.in_flight.remove(key);
        if self.pods.contains_key(key) {
            *self.attempts.entry(key.to_string()).or_default() += 1;
            self.waiting
                .insert(key.to_string(), Waiting::Unschedulable(Instant::now()));
        }
    }

    /// Binding failed for a transient reason: retry after backoff.
    pub fn retry(&mut self, key: &str) {
        self.in_flight.remove(key);
        if self.pods.contains_key(key) {
            let n = self.attempts.entry(key.to_string()).or_default();
            *n += 1;
            let at = Instant::now() + backoff(*n);
            self.waiting.insert(key.to_string(), Waiting::Backoff(at));
        }
    }

    /// The cluster changed: every unschedulable pod gets another try after its backoff.
    pub fn cluster_changed(&mut self) {
        for (key, w) in self.waiting.iter_mut() {
            if let Waiting::Unschedulable(since) = *w {
                let n = self.attempts.get(key).copied().unwrap_or(1);
                *w = Waiting::Backoff(since + backoff(n));
            }
        }
    }

    /// Moves pods whose backoff ended, or that waited too long, to active.
    pub fn tick(&mut self, now: Instant) {
        let ready: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, w)| match w {
                Waiting::Backoff(at) => *at <= now,
                Waiting::Unschedulable(since) => now.duration_since(*since) >= MAX_UNSCHEDULABLE,
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in ready {
            self.activate(key);
        }
    }

    /// Number of pods known to the queue.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// Whether the queue holds no pod.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}

/// Backoff after `attempts` failures: 1 s doubling, at most 10 s.
pub fn backoff(attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(8);
    (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unschedulable_pods_return_after_cluster_change_and_backoff() {
        let mut q = Queue::default();
        q.upsert("ns/a".into(), Pod::default());
        let (k, _) = q.pop().unwrap();
        q.unschedulable(&k);
        assert!(!q.has_active());
        q.tick(Instant::now());
        assert!(!q.has_active(), "no change yet");
        q.cluster_changed();
        q.tick(Instant::now() + Duration::from_secs(2));
        assert!(q.has_active());
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(20), MAX_BACKOFF);
    }
}

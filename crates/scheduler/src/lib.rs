//! The bosun scheduler: an ordinary API client that watches pods and nodes,
//! keeps a cache of what runs where, and binds each pending pod to the best
//! node through `pods/binding`, like kube-scheduler's default profile.
//!
//! One task owns the cache and the queue (one writer); bindings and events
//! are written concurrently by short-lived tasks that report back over a
//! channel. A pod is *assumed* on its node as soon as it is chosen, so the
//! next decision already counts it.

#![forbid(unsafe_code)]

pub mod algorithm;
pub mod cache;
pub mod events;
pub mod filters;
mod looper;
pub mod queue;
pub mod resources;
pub mod scores;
pub mod spread;

pub use looper::run;

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Pods naming this scheduler (or none) are ours.
    pub scheduler_name: String,
    /// Bindings in flight at once.
    pub parallel_binds: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scheduler_name: events::COMPONENT.into(),
            parallel_binds: 64,
        }
    }
}

/// Why the scheduler stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("watching {resource}: {source}")]
    Watch {
        resource: &'static str,
        source: kube::runtime::watcher::Error,
    },
    #[error("watch streams ended")]
    StreamsEnded,
}

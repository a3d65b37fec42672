//! Expectations, as upstream's controllers keep them: pods a controller
//! created or deleted that its cache has not reflected yet. Until the cache
//! catches up (or a timeout passes) the controller counts them as done,
//! so it never creates twice.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Pending {
    created: HashMap<String, Instant>,
    deleted: HashMap<String, Instant>,
}

/// Per-owner pending creations and deletions, keyed by pod name.
#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    /// Records that `owner` created pod `name`.
    pub fn created(&self, owner: &str, name: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.entry(owner.into())
                .or_default()
                .created
                .insert(name.into(), Instant::now());
        }
    }

    /// Records that `owner` deleted pod `name`.
    pub fn deleted(&self, owner: &str, name: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.entry(owner.into())
                .or_default()
                .deleted
                .insert(name.into(), Instant::now());
        }
    }

    /// Given the names the cache shows, returns (created but unseen, deleted but still seen)
    /// and forgets the expectations that were met or expired.
    pub fn outstanding(
        &self,
        owner: &str,
        seen: &HashSet<String>,
    ) -> (Vec<String>, HashSet<String>) {
        let Ok(mut m) = self.inner.lock() else {
            return (Vec::new(), HashSet::new());
        };
        let Some(p) = m.get_mut(owner) else {
            return (Vec::new(), HashSet::new());
        };
        let now = Instant::now();
        p.created
            .retain(|n, at| !seen.contains(n) && now.duration_since(*at) < TTL);
        p.deleted
            .retain(|n, at| seen.contains(n) && now.duration_since(*at) < TTL);
        let out = (
            p.created.keys().cloned().collect(),
            p.deleted.keys().cloned().collect(),
        );
        if p.created.is_empty() && p.deleted.is_empty() {
            m.remove(owner);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_pods_count_until_seen() {
        let e = Expectations::default();
        e.created("rs", "a");
        let (c, _) = e.outstanding("rs", &HashSet::new());
        assert_eq!(c, vec!["a".to_string()]);
        let seen: HashSet<String> = ["a".to_string()].into();
        let (c, d) = e.outstanding("rs", &seen);
        assert!(c.is_empty() && d.is_empty());
    }
}

//! Completion indexes of Indexed Jobs: the `status.completedIndexes`
//! interval syntax ("1,3-5,7") and the index a pod carries.

use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeSet;

/// The annotation and label that carry a pod's completion index.
pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";

/// Parses "1,3-5,7" (ignoring malformed parts and indexes ≥ `limit`).
pub fn parse(s: &str, limit: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) else {
            continue;
        };
        out.extend((a.max(0)..=b.min(limit - 1)).filter(|i| *i < limit));
    }
    out
}

/// Formats a set as upstream does: ascending, every run of two or more
/// consecutive indexes written as `a-b`.
pub fn format(set: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// The completion index of a pod (annotation first, then label).
pub fn of_pod(p: &Pod) -> Option<i32> {
    let m = &p.metadata;
    m.annotations
        .as_ref()
        .and_then(|a| a.get(INDEX_KEY))
        .or_else(|| m.labels.as_ref().and_then(|l| l.get(INDEX_KEY)))
        .and_then(|v| v.parse().ok())
}

/// The index encoded in a generated pod name `<job>-<index>-<suffix>`.
pub fn of_name(job: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(job)?.strip_prefix('-')?;
    rest.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_interval_syntax() {
        let s = parse("0,2-4,7", 10);
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), vec![0, 2, 3, 4, 7]);
        assert_eq!(format(&s), "0,2-4,7");
        assert_eq!(format(&parse("0-1", 10)), "0-1");
        assert!(parse("3-9", 3).is_empty());
        assert_eq!(format(&BTreeSet::new()), "");
    }

    #[test]
    fn index_from_generated_name() {
        assert_eq!(of_name("pi", "pi-3-xk2z9"), Some(3));
        assert_eq!(of_name("pi", "pie-3-xk2z9"), None);
    }
}

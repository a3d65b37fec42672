//! Pure rollout arithmetic, as upstream's deployment util: resolving
//! maxSurge/maxUnavailable, how far to scale the new ReplicaSet up and the
//! old ones down in one RollingUpdate step, and the template hash.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Resolves an int-or-percent against `total`, rounding up or down.
pub fn resolve(v: Option<&IntOrString>, default_pct: i32, total: i32, round_up: bool) -> i32 {
    match v {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let pct = s
                .trim_end_matches('%')
                .parse::<i32>()
                .unwrap_or(default_pct);
            percent(pct, total, round_up)
        }
        None => percent(default_pct, total, round_up),
    }
}

fn percent(pct: i32, total: i32, round_up: bool) -> i32 {
    let p = i64::from(pct) * i64::from(total);
    (if round_up { (p + 99) / 100 } else { p / 100 }) as i32
}

/// (maxSurge, maxUnavailable); both zero becomes unavailable = 1, as upstream.
pub fn surge_and_unavailable(
    surge: Option<&IntOrString>,
    unavail: Option<&IntOrString>,
    replicas: i32,
) -> (i32, i32) {
    let s = resolve(surge, 25, replicas, true);
    let u = resolve(unavail, 25, replicas, false).min(replicas);
    if s == 0 && u == 0 {
        (0, 1)
    } else {
        (s, u)
    }
}

/// New replica count for the new ReplicaSet in a rolling step.
pub fn new_rs_replicas(desired: i32, surge: i32, all_spec: i32, new_spec: i32) -> i32 {
    if new_spec >= desired {
        return desired;
    }
    let max_total = desired + surge;
    if all_spec >= max_total {
        return new_spec;
    }
    new_spec + (max_total - all_spec).min(desired - new_spec)
}

/// How many old pods may go now: all pods minus those that must stay available.
pub fn old_scale_down_budget(
    desired: i32,
    unavail: i32,
    all_spec: i32,
    new_spec: i32,
    new_available: i32,
) -> i32 {
    let min_available = desired - unavail;
    let new_unavailable = new_spec - new_available;
    all_spec - min_available - new_unavailable
}

/// Upstream's SafeEncodeString alphabet (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The pod-template-hash of a template (FNV-32a of its JSON, safe-encoded).
pub fn template_hash(template_json: &[u8], collision_count: i32) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in template_json
        .iter()
        .chain(collision_count.to_string().as_bytes())
    {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|d| ALPHABET[usize::from(d) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_25_percent_rounded_as_upstream() {
        assert_eq!(surge_and_unavailable(None, None, 10), (3, 2));
        assert_eq!(
            surge_and_unavailable(Some(&IntOrString::Int(0)), Some(&IntOrString::Int(0)), 10),
            (0, 1)
        );
    }

    #[test]
    fn rolling_step_respects_surge_and_availability() {
        // 10 desired, surge 3: the new RS may start 3 pods while 10 old ones run.
        assert_eq!(new_rs_replicas(10, 3, 10, 0), 3);
        assert_eq!(new_rs_replicas(10, 3, 13, 3), 3);
        // 13 pods, 3 new unavailable, keep 8: may remove 2 old.
        assert_eq!(old_scale_down_budget(10, 2, 13, 3, 0), 2);
    }

    #[test]
    fn template_hash_is_stable_and_safe() {
        let a = template_hash(br#"{"x":1}"#, 0);
        assert_eq!(a, template_hash(br#"{"x":1}"#, 0));
        assert_ne!(a, template_hash(br#"{"x":2}"#, 0));
        assert!(a.bytes().all(|b| ALPHABET.contains(&b)));
    }
}

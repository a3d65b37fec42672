//! v1 devices: the spec's allow/deny rules written in the spec's order
//! (usually "deny all" first, then the allowed devices).

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use crate::{fsutil, Error, Result};

/// Writes each rule to devices.allow or devices.deny, in order.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    for rule in r.devices().iter().flatten() {
        let file = if rule.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fsutil::write(dir, file, rule_text(rule)?)?;
    }
    Ok(())
}

/// The kernel's rule syntax: `a`, or `TYPE MAJOR:MINOR ACCESS` with `*` for
/// a missing number. Exposed to the crate for v2's "not applied" warning.
pub(crate) fn rule_text(rule: &LinuxDeviceCgroup) -> Result<String> {
    let typ = match rule.typ().unwrap_or_default() {
        LinuxDeviceType::A => return Ok("a".to_string()),
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => {
            return Err(Error::InvalidResource {
                field: "devices[].type",
                value: "p".into(),
                reason: "the devices cgroup knows only a, b and c",
            })
        }
    };
    let access = rule.access().as_deref().unwrap_or("rwm");
    if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(Error::InvalidResource {
            field: "devices[].access",
            value: access.to_string(),
            reason: "must be made of r, w and m",
        });
    }
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    Ok(format!(
        "{typ} {}:{} {access}",
        num(rule.major()),
        num(rule.minor())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rules_render_as_the_kernel_expects() {
        let deny_all = rule(r#"{"allow": false, "access": "rwm"}"#);
        assert_eq!(rule_text(&deny_all).unwrap(), "a");
        let null = rule(r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}"#);
        assert_eq!(rule_text(&null).unwrap(), "c 1:3 rwm");
        let any_block = rule(r#"{"allow": true, "type": "b", "access": "m"}"#);
        assert_eq!(rule_text(&any_block).unwrap(), "b *:* m");
        let pts = rule(r#"{"allow": true, "type": "c", "major": 136}"#);
        assert_eq!(rule_text(&pts).unwrap(), "c 136:* rwm");
    }

    #[test]
    fn bad_access_and_fifo_rules_are_refused() {
        let bad = rule(r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rx"}"#);
        assert!(rule_text(&bad).is_err());
        let fifo = rule(r#"{"allow": true, "type": "p"}"#);
        assert!(rule_text(&fifo).is_err());
    }
}

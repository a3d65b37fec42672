//! Cron schedules as Kubernetes reads them (robfig/cron's standard parser):
//! five fields (minute, hour, day of month, month, day of week) with `*`,
//! `?`, lists, ranges, steps and names (JAN–DEC, SUN–SAT), the `@hourly`
//! family of macros, and the next matching time in an IANA time zone.
//!
//! Days match as in cron: when both day fields are restricted (neither
//! starts with `*` or `?`) a day matching either one is taken; otherwise both
//! must match. Times are searched in local wall-clock time: a time skipped by
//! a DST jump runs at the shifted instant, and a time repeated by a DST fold
//! runs once (at its first occurrence).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

/// Why a schedule could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("schedule {0:?}: expected 5 fields or a @macro")]
    Fields(String),
    #[error("schedule field {field:?}: {reason}")]
    Field { field: String, reason: &'static str },
}

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// The day-of-month / day-of-week field started with `*` or `?`.
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Value of the first name.
    base: u32,
}

fn value(s: &str, b: &Bounds, field: &str) -> Result<u32, ScheduleError> {
    let err = |reason| ScheduleError::Field {
        field: field.to_string(),
        reason,
    };
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + b.base);
    }
    let v: u32 = s.parse().map_err(|_| err("not a number or name"))?;
    if v < b.min || v > b.max {
        return Err(err("value out of range"));
    }
    Ok(v)
}

/// Parses one field; returns its bits and whether it started with `*`/`?`.
fn field(s: &str, b: &Bounds) -> Result<(u64, bool), ScheduleError> {
    let err = |reason| ScheduleError::Field {
        field: s.to_string(),
        reason,
    };
    let mut bits = 0u64;
    for item in s.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, st)) => {
                let st: u32 = st.parse().map_err(|_| err("bad step"))?;
                if st == 0 {
                    return Err(err("step must be positive"));
                }
                (r, Some(st))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (b.min, b.max)
        } else if let Some((a, z)) = range.split_once('-') {
            (value(a, b, s)?, value(z, b, s)?)
        } else {
            let v = value(range, b, s)?;
            (v, if step.is_some() { b.max } else { v })
        };
        if lo > hi {
            return Err(err("range start after its end"));
        }
        let step = step.unwrap_or(1);
        for v in (lo..=hi).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok((bits, s.starts_with('*') || s.starts_with('?')))
}

fn expand(s: &str) -> Option<&'static str> {
    Some(match s {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

impl std::str::FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        let s = s.trim();
        let text = expand(&s.to_ascii_lowercase()).unwrap_or(s);
        let f: Vec<&str> = text.split_whitespace().collect();
        if f.len() != 5 {
            return Err(ScheduleError::Fields(s.to_string()));
        }
        let b = |min, max, names, base| Bounds {
            min,
            max,
            names,
            base,
        };
        let (minute, _) = field(f[0], &b(0, 59, &[], 0))?;
        let (hour, _) = field(f[1], &b(0, 23, &[], 0))?;
        let (dom, dom_star) = field(f[2], &b(1, 31, &[], 0))?;
        let (month, _) = field(f[3], &b(1, 12, &MONTHS, 1))?;
        let (mut dow, dow_star) = field(f[4], &b(0, 7, &DAYS, 0))?;
        if dow & (1 << 7) != 0 {
            dow = (dow & !(1 << 7)) | 1;
        }
        Ok(Schedule {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
        })
    }
}

fn has(bits: u64, v: i8) -> bool {
    bits & (1u64 << v.clamp(0, 63)) != 0
}

impl Schedule {
    fn day_matches(&self, t: DateTime) -> bool {
        let dom = has(self.dom, t.day());
        let dow = has(self.dow, t.weekday().to_sunday_zero_offset());
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first scheduled instant strictly after `after`, within 5 years.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = tz.to_datetime(after);
        let minute = Span::new().minutes(1);
        let mut t = start
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(minute)
            .ok()?;
        let horizon = start.year() + 5;
        while t.year() <= horizon {
            t = if !has(self.month, t.month()) {
                t.last_of_month().tomorrow().ok()?.start_of_day()
            } else if !self.day_matches(t) {
                t.tomorrow().ok()?.start_of_day()
            } else if !has(self.hour, t.hour()) {
                t.with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(Span::new().hours(1))
                    .ok()?
            } else if !has(self.minute, t.minute()) {
                t.checked_add(minute).ok()?
            } else {
                let at = tz.to_ambiguous_timestamp(t).compatible().ok()?;
                if at > after {
                    return Some(at);
                }
                t.checked_add(minute).ok()?
            };
        }
        None
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;

//! Tests of the cron parser and of next-time computation, in UTC and in
//! IANA zones across DST changes.

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn next(sched: &str, after: &str, tz: &str) -> String {
    let s: Schedule = sched.parse().unwrap_or_else(|e| panic!("{sched}: {e}"));
    let zone = if tz == "UTC" {
        TimeZone::UTC
    } else {
        TimeZone::get(tz).unwrap_or_else(|e| panic!("{tz}: {e}"))
    };
    s.next_after(ts(after), &zone)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[test]
fn steps_ranges_lists_and_names() {
    assert_eq!(
        next("*/15 * * * *", "2024-05-01T10:07:00Z", "UTC"),
        "2024-05-01T10:15:00Z"
    );
    assert_eq!(
        next("*/1 * * * *", "2024-05-01T10:07:30Z", "UTC"),
        "2024-05-01T10:08:00Z"
    );
    // 2024-05-03 is a Friday.
    assert_eq!(
        next("0 9 * * MON-FRI", "2024-05-03T10:00:00Z", "UTC"),
        "2024-05-06T09:00:00Z"
    );
    assert_eq!(
        next("0 0 1 jan,JUL *", "2024-02-10T00:00:00Z", "UTC"),
        "2024-07-01T00:00:00Z"
    );
    assert_eq!(
        next("5-10/5 3 * * *", "2024-05-01T03:06:00Z", "UTC"),
        "2024-05-01T03:10:00Z"
    );
    assert_eq!(
        next("10/20 * * * *", "2024-05-01T03:31:00Z", "UTC"),
        "2024-05-01T03:50:00Z"
    );
    assert_eq!(
        next("0 0 29 2 *", "2024-03-01T00:00:00Z", "UTC"),
        "2028-02-29T00:00:00Z"
    );
    // Sunday as 0 and as 7.
    assert_eq!(
        next("0 0 * * 7", "2024-05-01T00:00:00Z", "UTC"),
        "2024-05-05T00:00:00Z"
    );
    assert_eq!(
        next("0 0 * * sun", "2024-05-01T00:00:00Z", "UTC"),
        "2024-05-05T00:00:00Z"
    );
}

#[test]
fn macros() {
    assert_eq!(
        next("@hourly", "2024-05-01T10:07:00Z", "UTC"),
        "2024-05-01T11:00:00Z"
    );
    assert_eq!(
        next("@daily", "2024-05-01T10:07:00Z", "UTC"),
        "2024-05-02T00:00:00Z"
    );
    assert_eq!(
        next("@weekly", "2024-05-01T10:07:00Z", "UTC"),
        "2024-05-05T00:00:00Z"
    );
    assert_eq!(
        next("@monthly", "2024-05-01T10:07:00Z", "UTC"),
        "2024-06-01T00:00:00Z"
    );
    assert_eq!(
        next("@yearly", "2024-05-01T10:07:00Z", "UTC"),
        "2025-01-01T00:00:00Z"
    );
}

#[test]
fn restricted_day_fields_match_either() {
    // The 13th or any Friday: 2024-05-03 is a Friday, before the 13th.
    assert_eq!(
        next("0 0 13 * 5", "2024-05-01T00:00:00Z", "UTC"),
        "2024-05-03T00:00:00Z"
    );
    // With a starred day of month both must match: only Fridays.
    assert_eq!(
        next("0 0 */2 * 5", "2024-05-01T00:00:00Z", "UTC"),
        "2024-05-03T00:00:00Z"
    );
    assert_eq!(
        next("0 0 */2 * 5", "2024-05-04T00:00:00Z", "UTC"),
        "2024-05-17T00:00:00Z"
    );
}

#[test]
fn bad_schedules_are_rejected() {
    for bad in [
        "61 * * * *",
        "* * *",
        "*/0 * * * *",
        "5-1 * * * *",
        "* * * foo *",
        "@every 5m",
    ] {
        assert!(bad.parse::<Schedule>().is_err(), "{bad} parsed");
    }
}

#[test]
fn time_zones_and_dst() {
    assert_eq!(
        next("0 9 * * *", "2024-06-01T00:00:00Z", "Europe/Berlin"),
        "2024-06-01T07:00:00Z"
    );
    assert_eq!(
        next("0 9 * * *", "2024-12-01T00:00:00Z", "Europe/Berlin"),
        "2024-12-01T08:00:00Z"
    );
    // New York springs forward at 02:00 on 2024-03-10: 02:30 does not exist
    // and runs at the shifted instant; the hour after 01:00 is 03:00.
    assert_eq!(
        next("30 2 * * *", "2024-03-10T05:00:00Z", "America/New_York"),
        "2024-03-10T07:30:00Z"
    );
    assert_eq!(
        next("0 * * * *", "2024-03-10T06:30:00Z", "America/New_York"),
        "2024-03-10T07:00:00Z"
    );
    assert_eq!(
        next("0 * * * *", "2024-03-10T07:00:00Z", "America/New_York"),
        "2024-03-10T08:00:00Z"
    );
    // It falls back at 02:00 on 2024-11-03: 01:30 happens twice, runs once.
    assert_eq!(
        next("30 1 * * *", "2024-11-03T04:00:00Z", "America/New_York"),
        "2024-11-03T05:30:00Z"
    );
    assert_eq!(
        next("30 1 * * *", "2024-11-03T05:30:00Z", "America/New_York"),
        "2024-11-04T06:30:00Z"
    );
}

//! Carrying containers' last statuses from a dead sandbox (or a reported
//! status) into the next one.

use super::*;
use serde_json::json;

fn pod() -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{"name": "app", "image": "busybox"}],
        "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}}))
    .expect("a pod")
}

fn instance(id: &str, attempt: u32, state: v1::ContainerState, code: i32) -> Observed {
    Observed {
        latest: v1::ContainerStatus {
            id: id.into(),
            metadata: Some(v1::ContainerMetadata {
                name: String::new(),
                attempt,
            }),
            state: state as i32,
            exit_code: code,
            ..Default::default()
        },
        previous: None,
    }
}

#[test]
fn a_removed_sandbox_leaves_its_containers_exited_but_not_init_ones() {
    let observed = HashMap::from([
        (
            "app".into(),
            instance("a", 2, v1::ContainerState::ContainerRunning, 0),
        ),
        (
            "dbg".into(),
            instance("d", 0, v1::ContainerState::ContainerExited, 3),
        ),
        (
            "init".into(),
            instance("i", 0, v1::ContainerState::ContainerExited, 0),
        ),
    ]);
    let carried = carry_over(&pod(), &observed);
    let mut names: Vec<&String> = carried.keys().collect();
    names.sort();
    assert_eq!(names, ["app", "dbg"], "init containers run again");
    let app = &carried["app"];
    assert!(app.exited());
    assert_eq!(app.attempt(), 2, "the restart count goes on from here");
    assert_eq!(
        (app.latest.exit_code, app.latest.reason.as_str()),
        (GONE_EXIT_CODE, GONE_REASON)
    );
    assert!(app.latest.finished_at > 0);
    let dbg = &carried["dbg"];
    assert_eq!(dbg.latest.exit_code, 3, "an exited one keeps its code");
    assert!(dbg.latest.reason.is_empty());
}

#[test]
fn reported_statuses_that_started_are_carried() {
    let mut p = pod();
    p.status = serde_json::from_value(json!({
        "containerStatuses": [
            {"name": "app", "image": "busybox", "imageID": "sha256:1", "ready": false,
             "restartCount": 4, "containerID": "bosun://abc",
             "state": {"terminated": {"exitCode": 2, "reason": "Error",
                       "startedAt": "2026-11-27T08:00:00Z", "finishedAt": "2026-11-27T08:01:00Z"}}}],
        "initContainerStatuses": [
            {"name": "init", "image": "busybox", "imageID": "", "ready": false,
             "restartCount": 0, "containerID": "bosun://i",
             "state": {"terminated": {"exitCode": 0}}}],
        "ephemeralContainerStatuses": [
            {"name": "dbg", "image": "busybox", "imageID": "", "ready": false,
             "restartCount": 0, "containerID": "bosun://def",
             "state": {"running": {"startedAt": "2026-11-27T08:00:00Z"}}}]}))
    .expect("a status");
    let ran = ran_before(&p);
    let mut names: Vec<&String> = ran.keys().collect();
    names.sort();
    assert_eq!(names, ["app", "dbg"]);
    let app = &ran["app"];
    assert_eq!(app.attempt(), 4);
    let l = &app.latest;
    assert_eq!(
        (l.id.as_str(), l.exit_code, l.reason.as_str()),
        ("abc", 2, "Error")
    );
    assert_eq!(l.finished_at - l.started_at, 60_000_000_000);
    assert_eq!(l.image_ref, "sha256:1");
    assert!(ran["dbg"].exited(), "running when last seen: gone");
    assert_eq!(ran["dbg"].latest.reason, GONE_REASON);

    p.status = serde_json::from_value(json!({"containerStatuses": [
        {"name": "app", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
         "state": {"waiting": {"reason": "ContainerCreating"}}}]}))
    .expect("a status");
    assert!(ran_before(&p).is_empty(), "never started: nothing to carry");
}

#[test]
fn carried_statuses_fill_in_what_the_new_sandbox_lacks() {
    let carried = HashMap::from([
        (
            "app".to_string(),
            instance("old", 1, v1::ContainerState::ContainerExited, 137),
        ),
        (
            "dbg".to_string(),
            instance("d", 0, v1::ContainerState::ContainerExited, 0),
        ),
    ]);
    let mut observed = HashMap::from([(
        "app".to_string(),
        instance("new", 2, v1::ContainerState::ContainerRunning, 0),
    )]);
    merge(&mut observed, &carried);
    assert_eq!(observed["app"].latest.id, "new");
    let prev = observed["app"].previous.as_ref().map(|p| p.id.as_str());
    assert_eq!(
        prev,
        Some("old"),
        "the carried instance is the new one's lastState"
    );
    assert_eq!(observed["dbg"].latest.id, "d");

    let mut same = HashMap::from([(
        "app".to_string(),
        instance("old", 1, v1::ContainerState::ContainerExited, 137),
    )]);
    merge(&mut same, &carried);
    assert!(same["app"].previous.is_none(), "not its own previous");
}

#[test]
fn a_crash_looping_container_keeps_its_count() {
    let mut p = pod();
    p.status = serde_json::from_value(json!({"containerStatuses": [
        {"name": "app", "image": "busybox", "imageID": "", "ready": false, "restartCount": 5,
         "containerID": "bosun://last",
         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "containerID": "bosun://last"}}}]}))
    .expect("a status");
    let ran = ran_before(&p);
    let app = &ran["app"];
    assert_eq!((app.attempt(), app.latest.exit_code), (5, 1));
    assert_eq!(app.latest.id, "last");
}

#[test]
fn a_sandbox_is_recreated_only_for_containers_that_may_run_again() {
    let with_policy = |policy: &str| {
        let mut p = pod();
        if let Some(spec) = p.spec.as_mut() {
            spec.restart_policy = Some(policy.into());
        }
        p
    };
    let failed = HashMap::from([(
        "app".to_string(),
        instance("a", 0, v1::ContainerState::ContainerExited, 137),
    )]);
    let succeeded = HashMap::from([(
        "app".to_string(),
        instance("a", 0, v1::ContainerState::ContainerExited, 0),
    )]);
    let only_dbg = HashMap::from([(
        "dbg".to_string(),
        instance("d", 0, v1::ContainerState::ContainerExited, 0),
    )]);
    assert!(
        needs_sandbox(&with_policy("Never"), &HashMap::new()),
        "never ran"
    );
    assert!(
        needs_sandbox(&with_policy("Never"), &only_dbg),
        "only a debug container ran"
    );
    assert!(!needs_sandbox(&with_policy("Never"), &failed));
    assert!(needs_sandbox(&with_policy("OnFailure"), &failed));
    assert!(!needs_sandbox(&with_policy("OnFailure"), &succeeded));
    assert!(needs_sandbox(&with_policy("Always"), &succeeded));
}

#[test]
fn init_containers_continue_their_reported_restart_counts() {
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app"}, {"name": "new"}],
                 "initContainers": [{"name": "init"}]},
        "status": {
            "containerStatuses": [
                {"name": "app", "image": "", "imageID": "", "ready": true,
                 "restartCount": 2, "containerID": "bosun://a"},
                {"name": "new", "image": "", "imageID": "", "ready": false,
                 "restartCount": 0}],
            "initContainerStatuses": [
                {"name": "init", "image": "", "imageID": "", "ready": false,
                 "restartCount": 0, "containerID": "bosun://i"}]}}))
    .expect("a pod");
    let next = next_attempts(&pod);
    assert_eq!(next.get("init"), Some(&1));
    assert_eq!(next.get("app"), None, "carried, not counted here");
    assert!(next_attempts(&Pod::default()).is_empty());
}

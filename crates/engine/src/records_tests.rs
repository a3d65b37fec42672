//! Records on disk: unique names, lookup by prefix, atomic updates.

use super::*;

fn record(id: &str, name: &str, created: &str) -> ContainerRecord {
    ContainerRecord {
        id: id.into(),
        name: name.into(),
        image: "busybox:latest".into(),
        image_id: "sha256:abc".into(),
        command: vec!["sh".into()],
        created: created.into(),
        status: Status::Created,
        monitor_pid: None,
        auto_remove: false,
        ports: vec![],
        network: "none".into(),
        ip: None,
        tty: false,
        interactive: false,
        hostname: String::new(),
    }
}

#[test]
fn insert_find_update_remove() {
    let dir = testkit::scratch_dir();
    let records = Records::open(dir.path()).unwrap();
    records
        .insert(&record("aaaa1111", "web", "2026-01-01T00:00:01Z"))
        .unwrap();
    records
        .insert(&record("aaaa2222", "db", "2026-01-01T00:00:02Z"))
        .unwrap();
    assert_eq!(records.find("web").unwrap().id, "aaaa1111");
    assert_eq!(records.find("aaaa2").unwrap().name, "db");
    assert!(matches!(
        records.find("aaaa"),
        Err(Error::AmbiguousContainer(_))
    ));
    let err = records.find("nope").unwrap_err();
    assert_eq!(err.to_string(), "No such container: nope");
    let names: Vec<String> = records.all().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["db", "web"], "newest first");

    let updated = records
        .update("web", |r| {
            r.status = Status::Exited {
                code: 3,
                finished_at: "t".into(),
                oom_killed: false,
            };
            Ok(())
        })
        .unwrap();
    assert!(matches!(updated.status, Status::Exited { code: 3, .. }));
    assert_eq!(records.find("web").unwrap().status, updated.status);

    records.remove("aaaa1111").unwrap();
    assert!(records.find("web").is_err());
    records.remove("aaaa1111").unwrap();
}

#[test]
fn names_are_unique_including_on_rename() {
    let dir = testkit::scratch_dir();
    let records = Records::open(dir.path()).unwrap();
    records.insert(&record("b1", "web", "1")).unwrap();
    let err = records.insert(&record("b2", "web", "2")).unwrap_err();
    assert!(
        err.to_string().contains("\"/web\" is already in use"),
        "{err}"
    );
    records.insert(&record("b2", "db", "2")).unwrap();
    let err = records.update("db", |r| {
        r.name = "web".into();
        Ok(())
    });
    assert!(err.is_err());
    assert_eq!(
        records.find("b2").unwrap().name,
        "db",
        "a refused rename changes nothing"
    );
}

#[test]
fn status_round_trips_as_tagged_json() {
    let mut r = record("c1", "x", "1");
    r.status = Status::Running {
        pid: 42,
        started_at: "t".into(),
    };
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["status"], "running");
    assert_eq!(json["pid"], 42);
    let back: ContainerRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

//! The conformance suite against the SQLite backend (a fresh file per check),
//! plus SQLite-only checks: reopening keeps data and revisions, a slow watcher
//! does not block writers, and compaction keeps the file from growing.

mod conformance;

use std::sync::Arc;

use futures::StreamExt;
use store::{ListOptions, Sqlite, Store};

fn open(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(Sqlite::open(dir.path().join("state.db")).expect("open sqlite store"))
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let dir = testkit::scratch_dir();
            conformance::run(stringify!($name), open(&dir), "/registry/test/").await;
        }
    )*};
}

conformance_tests!(
    revisions_monotonic,
    get_list_paging,
    list_at_revision,
    create_already_exists,
    update_conflict_not_found,
    delete_expected,
    watch_replay_then_live,
    watch_prefix_isolated,
    compaction,
    guaranteed_update_concurrent,
);

#[test]
fn every_conformance_check_has_a_sqlite_test() {
    let listed = include_str!("sqlite.rs");
    for name in conformance::CHECKS {
        assert!(
            listed.contains(&format!("    {name},\n")),
            "{name} is not run on sqlite"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_values_and_revisions() {
    let dir = testkit::scratch_dir();
    let (kv, deleted_at) = {
        let store = open(&dir);
        let kv = store.create("/a", b"1".to_vec()).await.unwrap();
        store.create("/b", b"2".to_vec()).await.unwrap();
        let d = store.delete("/b", None).await.unwrap();
        store.compact(d.mod_revision).await.unwrap();
        (kv, d.mod_revision)
    };
    // Every write above was answered, so it is committed; reopen from the file.
    let store = open(&dir);
    assert_eq!(store.get("/a").await.unwrap(), Some(kv));
    assert_eq!(store.current_revision().await.unwrap(), deleted_at);
    let next = store.create("/c", b"3".to_vec()).await.unwrap();
    assert_eq!(
        next.mod_revision,
        deleted_at + 1,
        "revisions continue after a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_watcher_does_not_block_writers_and_still_sees_everything() {
    let dir = testkit::scratch_dir();
    let store = open(&dir);
    let start = store.current_revision().await.unwrap();
    // This watcher is not read while 5 000 writes go by (more than its buffer).
    let mut slow = store.watch("/w/", start).await.unwrap();
    let mut rev = store
        .create("/w/k", b"0".to_vec())
        .await
        .unwrap()
        .mod_revision;
    let mut expect = vec![rev];
    for i in 1..5_000u32 {
        rev = store
            .update("/w/k", i.to_string().into_bytes(), rev)
            .await
            .unwrap()
            .mod_revision;
        expect.push(rev);
    }
    let mut got = Vec::with_capacity(expect.len());
    while got.len() < expect.len() {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(60), slow.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("event");
        got.push(ev.revision());
    }
    assert_eq!(
        got, expect,
        "the slow watcher resumed from the log without gaps or repeats"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_stops_file_growth_under_steady_updates() {
    let dir = testkit::scratch_dir();
    let path = dir.path().join("state.db");
    let store: Arc<dyn Store> = Arc::new(Sqlite::open(&path).unwrap());
    let size = || async { file_size(&path) + file_size(&path.with_extension("db-wal")) };
    conformance::churn_settles(store.as_ref(), 200, 2048, 12, size).await;
    let listed = store.list("/g/", ListOptions::default()).await.unwrap();
    assert_eq!(listed.items.len(), 200);
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_datastore_defaults_to_sqlite_under_the_data_dir() {
    let dir = testkit::scratch_dir();
    let data_dir = dir.path().join("data");
    let store = store::open_datastore("", &data_dir).await.unwrap();
    store.create("/x", b"1".to_vec()).await.unwrap();
    assert!(data_dir.join(store::SQLITE_FILE).is_file());
    let err = store::open_datastore("tcp://nope", &data_dir)
        .await
        .err()
        .expect("rejected");
    assert!(err.to_string().contains("tcp://nope"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_the_same_file_fails_clearly() {
    let dir = testkit::scratch_dir();
    let path = dir.path().join("state.db");
    let first = Sqlite::open(&path).unwrap();
    let err = Sqlite::open(&path).err().expect("second open refused");
    assert!(err.to_string().contains("in use"), "{err}");
    first.create("/still", b"works".to_vec()).await.unwrap();
    drop(first);
    // Dropping the store releases the file at once.
    let again = Sqlite::open(&path).unwrap();
    assert!(again.get("/still").await.unwrap().is_some());
}

//! The watch cache over a real SQLite store: lists catch up with writes,
//! watches replay from a version, and a version older than the kept events
//! is refused (the API answers 410 Gone).

use apiserver::cache::{Cache, EventType, WatchStart};
use std::sync::Arc;
use std::time::Duration;
use store::Store;

fn cm(name: &str, n: usize) -> Vec<u8> {
    format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"default","labels":{{"n":"{n}"}}}}}}"#).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_follows_the_store_and_refuses_expired_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(store::Sqlite::open(dir.path().join("state.db")).unwrap());
    let strategies = Arc::new(apiserver::strategy::all());
    let idx = strategies
        .iter()
        .position(|s| s.resource.plural == "configmaps")
        .unwrap();
    let cache = Cache::new(strategies);
    let (ready_tx, mut ready) = tokio::sync::watch::channel(false);
    tokio::spawn(cache.clone().run(store.clone(), ready_tx));
    ready.wait_for(|r| *r).await.unwrap();

    let first = store
        .create("/registry/configmaps/default/a", cm("a", 0))
        .await
        .unwrap();
    assert!(
        cache
            .wait_for(first.mod_revision, Duration::from_secs(10))
            .await
    );
    let (objs, more) = cache.list(idx, None, None, |_| true);
    assert_eq!(objs.len(), 1);
    assert!(!more);
    let v = objs[0].value();
    assert_eq!(
        v["metadata"]["resourceVersion"],
        first.mod_revision.to_string()
    );

    let (replay, _rx, start) = cache.watch(idx, None).map_err(|_| "watch").unwrap();
    assert_eq!(replay.len(), 1);
    // A bookmark at the start revision promises nothing newer is missing.
    assert!(start >= first.mod_revision && start <= cache.revision());
    assert_eq!(replay[0].ty, EventType::Added);

    let mut rev = first.mod_revision;
    for n in 1..=1100 {
        rev = store
            .update("/registry/configmaps/default/a", cm("a", n), rev)
            .await
            .unwrap()
            .mod_revision;
    }
    assert!(cache.wait_for(rev, Duration::from_secs(30)).await);
    assert!(matches!(
        cache.watch(idx, Some(first.mod_revision)),
        Err(WatchStart::TooOld(_))
    ));
    let (replay, mut rx, _) = cache
        .watch(idx, Some(rev - 2))
        .map_err(|_| "watch")
        .unwrap();
    assert_eq!(replay.len(), 2, "only the events after the version");
    assert!(replay.iter().all(|e| e.ty == EventType::Modified));

    let deleted = store
        .delete("/registry/configmaps/default/a", None)
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.ty, EventType::Deleted);
    assert_eq!(ev.obj.rv, deleted.mod_revision);
    let (page, more) = cache.list(idx, None, Some(1), |_| true);
    assert!(page.is_empty() && !more);
}

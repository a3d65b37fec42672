//! The conformance suite every `Store` backend must pass. Each check works
//! under its own key prefix, so checks can share one store (one etcd).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use store::{
    guaranteed_update, Decision, EventKind, ListOptions, Store, StoreError, WatchEvent, WatchStream,
};

/// Generous: the machine is small and shared.
const WAIT: Duration = Duration::from_secs(60);

/// Every check, by name, so backends can run them one by one or all at once.
pub const CHECKS: &[&str] = &[
    "revisions_monotonic",
    "get_list_paging",
    "list_at_revision",
    "create_already_exists",
    "update_conflict_not_found",
    "delete_expected",
    "watch_replay_then_live",
    "watch_prefix_isolated",
    "compaction",
    "guaranteed_update_concurrent",
];

/// Runs the check called `name` under `prefix`.
pub async fn run(name: &str, store: Arc<dyn Store>, prefix: &str) {
    match name {
        "revisions_monotonic" => revisions_monotonic(&*store, prefix).await,
        "get_list_paging" => get_list_paging(&*store, prefix).await,
        "list_at_revision" => list_at_revision(&*store, prefix).await,
        "create_already_exists" => create_already_exists(&*store, prefix).await,
        "update_conflict_not_found" => update_conflict_not_found(&*store, prefix).await,
        "delete_expected" => delete_expected(&*store, prefix).await,
        "watch_replay_then_live" => watch_replay_then_live(&*store, prefix).await,
        "watch_prefix_isolated" => watch_prefix_isolated(&*store, prefix).await,
        "compaction" => compaction(&*store, prefix).await,
        "guaranteed_update_concurrent" => guaranteed_update_concurrent(store, prefix).await,
        other => panic!("no conformance check named {other}"),
    }
}

/// Runs every check, each under `prefix/<name>/`.
#[allow(dead_code)]
pub async fn run_all(store: Arc<dyn Store>, prefix: &str) {
    for name in CHECKS {
        eprintln!("conformance: {name}");
        run(name, store.clone(), &format!("{prefix}/{name}/")).await;
    }
}

/// Compaction keeps storage from growing: writes `keys` values of `size`
/// bytes under /g/, then `rounds` times updates each, compacts to the
/// current revision and runs maintenance, measuring the backend's size after
/// each round; from the fourth round on it must stay within a quarter of the
/// third's.
pub async fn churn_settles<F, Fut>(
    store: &dyn Store,
    keys: usize,
    size: usize,
    rounds: usize,
    mut measure: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let value = vec![b'x'; size];
    let mut revs = Vec::new();
    for i in 0..keys {
        let created = store.create(&format!("/g/{i}"), value.clone()).await;
        revs.push(created.expect("create").mod_revision);
    }
    let mut sizes = Vec::new();
    for _round in 0..rounds {
        for (i, rev) in revs.iter_mut().enumerate() {
            let updated = store.update(&format!("/g/{i}"), value.clone(), *rev).await;
            *rev = updated.expect("update").mod_revision;
        }
        let now = store.current_revision().await.expect("current revision");
        store.compact(now).await.expect("compact");
        store.maintain().await.expect("maintain");
        sizes.push(measure().await);
    }
    eprintln!("storage size after each round: {sizes:?}");
    let settled = sizes[2];
    assert!(
        sizes[3..].iter().all(|s| *s <= settled + settled / 4),
        "storage keeps growing: {sizes:?}"
    );
}

async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Ok(ev))) => ev,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {WAIT:?}"),
    }
}

async fn revisions_monotonic(store: &dyn Store, p: &str) {
    let start = store.current_revision().await.unwrap();
    let a = store.create(&format!("{p}a"), b"1".to_vec()).await.unwrap();
    let b = store.create(&format!("{p}b"), b"1".to_vec()).await.unwrap();
    let a2 = store
        .update(&format!("{p}a"), b"2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    let d = store.delete(&format!("{p}b"), None).await.unwrap();
    let revs = [
        start,
        a.mod_revision,
        b.mod_revision,
        a2.mod_revision,
        d.mod_revision,
    ];
    assert!(
        revs.windows(2).all(|w| w[0] < w[1]),
        "revisions not increasing: {revs:?}"
    );
    assert_eq!(a.create_revision, a.mod_revision);
    assert_eq!(
        a2.create_revision, a.mod_revision,
        "update keeps create revision"
    );
    assert!(store.current_revision().await.unwrap() >= d.mod_revision);
}

async fn get_list_paging(store: &dyn Store, p: &str) {
    assert!(store.get(&format!("{p}missing")).await.unwrap().is_none());
    let mut last = 0;
    for name in ["e", "a", "c", "b", "d"] {
        last = store
            .create(&format!("{p}items/{name}"), name.as_bytes().to_vec())
            .await
            .unwrap()
            .mod_revision;
    }
    // Neighbours that must not show up in the prefix's list.
    store
        .create(&format!("{p}items"), b"x".to_vec())
        .await
        .unwrap();
    store
        .create(&format!("{p}itemz/a"), b"x".to_vec())
        .await
        .unwrap();
    let got = store
        .get(&format!("{p}items/c"))
        .await
        .unwrap()
        .expect("present");
    assert_eq!(got.value, b"c");

    let prefix = format!("{p}items/");
    let all = store.list(&prefix, ListOptions::default()).await.unwrap();
    let names: Vec<_> = all
        .items
        .iter()
        .map(|kv| kv.key.trim_start_matches(&prefix).to_string())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert!(!all.more);
    assert!(
        all.revision >= last + 2,
        "list revision {} reflects the writes",
        all.revision
    );

    let mut seen = Vec::new();
    let mut start_after = None;
    loop {
        let opts = ListOptions {
            start_after: start_after.clone(),
            limit: Some(2),
        };
        let page = store.list(&prefix, opts).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|kv| kv.value.clone()));
        start_after = page.items.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, [b"a", b"b", b"c", b"d", b"e"].map(|v| v.to_vec()));
    let exact = store
        .list(
            &prefix,
            ListOptions {
                start_after: None,
                limit: Some(5),
            },
        )
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 5);
    assert!(
        !exact.more,
        "more is false when the page ends exactly at the last key"
    );
}

async fn list_at_revision(store: &dyn Store, p: &str) {
    let values = |r: &store::ListResult| -> Vec<String> {
        r.items
            .iter()
            .map(|kv| {
                format!(
                    "{}={}",
                    kv.key.trim_start_matches(p),
                    String::from_utf8_lossy(&kv.value)
                )
            })
            .collect()
    };
    let all = ListOptions::default;
    let a = store.create(&format!("{p}a"), b"1".to_vec()).await.unwrap();
    let b = store.create(&format!("{p}b"), b"1".to_vec()).await.unwrap();
    let c = store.create(&format!("{p}c"), b"1".to_vec()).await.unwrap();
    let b2 = store
        .update(&b.key, b"2".to_vec(), b.mod_revision)
        .await
        .unwrap();
    let gone = store.delete(&c.key, None).await.unwrap();
    store.create(&format!("{p}d"), b"1".to_vec()).await.unwrap();

    let at_c = store
        .list_at_revision(p, all(), c.mod_revision)
        .await
        .unwrap();
    assert_eq!(values(&at_c), ["a=1", "b=1", "c=1"]);
    assert_eq!(at_c.revision, c.mod_revision);
    let at_a = store
        .list_at_revision(p, all(), a.mod_revision)
        .await
        .unwrap();
    assert_eq!(values(&at_a), ["a=1"]);
    let at_gone = store
        .list_at_revision(p, all(), gone.mod_revision)
        .await
        .unwrap();
    assert_eq!(values(&at_gone), ["a=1", "b=2"]);
    // Paging through the snapshot while the store moves on.
    let first = ListOptions {
        start_after: None,
        limit: Some(1),
    };
    let page1 = store
        .list_at_revision(p, first, gone.mod_revision)
        .await
        .unwrap();
    assert_eq!(
        (values(&page1), page1.more),
        (vec!["a=1".to_string()], true)
    );
    store
        .create(&format!("{p}aa"), b"new".to_vec())
        .await
        .unwrap();
    let next = ListOptions {
        start_after: Some(a.key.clone()),
        limit: Some(1),
    };
    let page2 = store
        .list_at_revision(p, next, gone.mod_revision)
        .await
        .unwrap();
    assert_eq!(
        (values(&page2), page2.more),
        (vec!["b=2".to_string()], false)
    );

    let future = store.current_revision().await.unwrap() + 1000;
    assert!(
        store.list_at_revision(p, all(), future).await.is_err(),
        "a future revision is refused"
    );
    store.compact(b2.mod_revision).await.unwrap();
    let err = store
        .list_at_revision(p, all(), c.mod_revision)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Compacted { requested, .. } if requested == c.mod_revision),
        "{err}"
    );
    let at_b2 = store
        .list_at_revision(p, all(), b2.mod_revision)
        .await
        .unwrap();
    assert_eq!(
        values(&at_b2),
        ["a=1", "b=2", "c=1"],
        "the compaction revision itself is still readable"
    );
}

async fn create_already_exists(store: &dyn Store, p: &str) {
    let key = format!("{p}k");
    store.create(&key, b"1".to_vec()).await.unwrap();
    let err = store.create(&key, b"2".to_vec()).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, b"1");
}

async fn update_conflict_not_found(store: &dyn Store, p: &str) {
    let key = format!("{p}k");
    let err = store.update(&key, b"1".to_vec(), 1).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let kv = store.create(&key, b"1".to_vec()).await.unwrap();
    let err = store
        .update(&key, b"2".to_vec(), kv.mod_revision - 1)
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict {
            expected, actual, ..
        } => {
            assert_eq!(expected, kv.mod_revision - 1);
            assert_eq!(actual, kv.mod_revision);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let kv2 = store
        .update(&key, b"2".to_vec(), kv.mod_revision)
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap().unwrap(), kv2);
}

async fn delete_expected(store: &dyn Store, p: &str) {
    let key = format!("{p}k");
    let err = store.delete(&key, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let kv = store.create(&key, b"v".to_vec()).await.unwrap();
    let err = store
        .delete(&key, Some(kv.mod_revision + 100))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let gone = store.delete(&key, Some(kv.mod_revision)).await.unwrap();
    assert_eq!(gone.value, b"v");
    assert!(
        gone.mod_revision > kv.mod_revision,
        "deletion has its own revision"
    );
    assert!(store.get(&key).await.unwrap().is_none());
    store.create(&key, b"w".to_vec()).await.unwrap();
    let gone = store.delete(&key, None).await.unwrap();
    assert_eq!(gone.value, b"w");
}

async fn watch_replay_then_live(store: &dyn Store, p: &str) {
    let key = format!("{p}k");
    let before = store.current_revision().await.unwrap();
    let c = store.create(&key, b"1".to_vec()).await.unwrap();
    let u = store
        .update(&key, b"2".to_vec(), c.mod_revision)
        .await
        .unwrap();
    let mut w = store.watch(p, before).await.unwrap();
    let e1 = next_event(&mut w).await;
    assert_eq!(
        (e1.kind, e1.kv.clone(), e1.prev.clone()),
        (EventKind::Put, c.clone(), None)
    );
    let e2 = next_event(&mut w).await;
    assert_eq!((e2.kind, e2.kv.clone()), (EventKind::Put, u.clone()));
    assert_eq!(
        e2.prev.as_ref().map(|kv| kv.value.clone()),
        Some(b"1".to_vec())
    );
    // Live events, after the replay, in order, none missing or repeated.
    let mut expect = Vec::new();
    let mut rev = u.mod_revision;
    for i in 3..23 {
        rev = store
            .update(&key, i.to_string().into_bytes(), rev)
            .await
            .unwrap()
            .mod_revision;
        expect.push(rev);
    }
    let d = store.delete(&key, None).await.unwrap();
    expect.push(d.mod_revision);
    let mut got = Vec::new();
    let mut prev_value = b"2".to_vec();
    for _ in 0..expect.len() {
        let ev = next_event(&mut w).await;
        assert_eq!(
            ev.prev.as_ref().map(|kv| kv.value.clone()),
            Some(prev_value.clone())
        );
        if ev.kind == EventKind::Delete {
            assert_eq!(ev.kv.value, prev_value, "a deletion carries the last value");
        }
        prev_value = ev.kv.value.clone();
        got.push(ev.revision());
    }
    assert_eq!(got, expect);
    // A second watcher from the middle sees the same tail.
    let mut w2 = store.watch(p, expect[9]).await.unwrap();
    assert_eq!(next_event(&mut w2).await.revision(), expect[10]);
}

async fn watch_prefix_isolated(store: &dyn Store, p: &str) {
    let from = store.current_revision().await.unwrap();
    let mut w = store.watch(&format!("{p}mine/"), from).await.unwrap();
    store
        .create(&format!("{p}other/a"), b"x".to_vec())
        .await
        .unwrap();
    store
        .create(&format!("{p}mine"), b"x".to_vec())
        .await
        .unwrap();
    let mine = store
        .create(&format!("{p}mine/a"), b"y".to_vec())
        .await
        .unwrap();
    let ev = next_event(&mut w).await;
    assert_eq!(ev.kv, mine, "only keys under the prefix");
}

async fn compaction(store: &dyn Store, p: &str) {
    let key = format!("{p}k");
    let first = store.create(&key, b"0".to_vec()).await.unwrap();
    let mut rev = first.mod_revision;
    for i in 1..10 {
        rev = store
            .update(&key, vec![b'0' + i], rev)
            .await
            .unwrap()
            .mod_revision;
    }
    let gone = store
        .create(&format!("{p}gone"), b"g".to_vec())
        .await
        .unwrap();
    store.delete(&gone.key, None).await.unwrap();
    let at = store
        .update(&key, b"z".to_vec(), rev)
        .await
        .unwrap()
        .mod_revision;
    let after = store.update(&key, b"after".to_vec(), at).await.unwrap();
    store.compact(at).await.unwrap();
    store.compact(first.mod_revision).await.unwrap(); // older: a no-op
    match store.watch(p, first.mod_revision).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, first.mod_revision);
            assert!(compacted >= at);
        }
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(mut w) => match tokio::time::timeout(WAIT, w.next()).await {
            Ok(Some(Err(StoreError::Compacted { .. }))) => {}
            other => panic!("expected a Compacted error from the watch, got {other:?}"),
        },
    }
    // From the compaction revision on, history is complete, prev included.
    let mut w = store.watch(p, at).await.unwrap();
    let ev = next_event(&mut w).await;
    assert_eq!(ev.kv, after);
    assert_eq!(ev.prev.map(|kv| kv.value), Some(b"z".to_vec()));
    assert_eq!(store.get(&key).await.unwrap().unwrap(), after);
    assert!(store.get(&gone.key).await.unwrap().is_none());
}

async fn guaranteed_update_concurrent(store: Arc<dyn Store>, p: &str) {
    const WRITERS: usize = 4;
    const INCREMENTS: usize = 25;
    let key = format!("{p}counter");
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                guaranteed_update::<_, _, StoreError>(&*store, &key, |cur| {
                    let n: usize = cur
                        .map(|kv| String::from_utf8_lossy(&kv.value).parse().unwrap_or(0))
                        .unwrap_or(0);
                    Ok(Decision::Write((n + 1).to_string().into_bytes()))
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&kv.value),
        (WRITERS * INCREMENTS).to_string(),
        "no lost updates"
    );
}

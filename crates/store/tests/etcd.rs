//! The conformance suite against a real etcd, a three-member cluster that
//! keeps serving with one member killed, and guarded writes that etcd applied
//! while the connection reset before the answer came back.

mod conformance;
mod etcd_harness;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_harness::proxy::Proxy;
use futures::StreamExt;
use store::{Etcd, KeyValue, ListOptions, Store, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_conformance() {
    let Some(members) = etcd_harness::start_cluster(1) else {
        return;
    };
    let store = etcd_harness::connect(&[members[0].client_url.clone()]).await;
    conformance::run_all(Arc::new(store), "/conformance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_cluster_keeps_serving_with_one_member_killed() {
    let Some(members) = etcd_harness::start_cluster(3) else {
        return;
    };
    let urls: Vec<String> = members.iter().map(|m| m.client_url.clone()).collect();
    let store = etcd_harness::connect(&urls).await;
    let before = store.create("/k/before", b"1".to_vec()).await.unwrap();

    members[0].kill();

    // A new leader may need an election; writes must resume within a generous bound.
    let deadline = Instant::now() + Duration::from_secs(90);
    let after = loop {
        match store.create("/k/after", b"2".to_vec()).await {
            Ok(kv) => break kv,
            Err(store::StoreError::AlreadyExists { .. }) => {
                break store.get("/k/after").await.unwrap().expect("present")
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("write not yet accepted after the kill: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("the cluster stopped accepting writes: {e}"),
        }
    };
    for i in 0..20 {
        store
            .create(&format!("/k/more{i}"), b"x".to_vec())
            .await
            .unwrap();
    }
    let listed = store.list("/k/", ListOptions::default()).await.unwrap();
    assert_eq!(listed.items.len(), 22);
    assert_eq!(store.get("/k/before").await.unwrap(), Some(before));
    // Watches opened after the kill replay and follow.
    let mut w = store.watch("/k/", after.mod_revision - 1).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(60), w.next()).await;
    assert_eq!(
        first.ok().flatten().map(|r| r.unwrap().kv.key),
        Some("/k/after".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_compaction_and_defragment_stop_growth() {
    let Some(members) = etcd_harness::start_cluster(1) else {
        return;
    };
    let url = members[0].client_url.clone();
    let store = etcd_harness::connect(std::slice::from_ref(&url)).await;
    let client = etcd_client::Client::connect([url], None).await.unwrap();
    let size = || {
        let mut client = client.clone();
        async move { client.status().await.unwrap().db_size() as u64 }
    };
    conformance::churn_settles(&store, 100, 4096, 10, size).await;
}

/// Runs `write` through `proxy` with etcd's answers held back, waits (reading
/// etcd directly) until `applied` holds for `key`, then resets the
/// connection: etcd applied the write, the client saw a reset.
async fn applied_then_reset<T: Send + 'static>(
    proxy: &Proxy,
    direct: &Etcd,
    key: &str,
    applied: impl Fn(Option<&KeyValue>) -> bool,
    write: impl Future<Output = store::Result<T>> + Send + 'static,
) -> store::Result<T> {
    proxy.freeze();
    let write = tokio::spawn(write);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !applied(direct.get(key).await.unwrap().as_ref()) {
        assert!(
            Instant::now() < deadline,
            "etcd never applied the write to {key}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.cut_and_thaw();
    tokio::time::timeout(Duration::from_secs(60), write)
        .await
        .expect("the write returns after the reset")
        .expect("the write task")
}

/// A direct store and one behind a proxy, on one member, under one prefix.
async fn proxied_pair(url: &str) -> (Proxy, Arc<Etcd>, Arc<Etcd>) {
    let prefix = etcd_harness::unique_prefix();
    let direct = etcd_harness::connect_under(&[url.to_string()], &prefix).await;
    let proxy = Proxy::start(url).await;
    let store = etcd_harness::connect_under(std::slice::from_ref(&proxy.url), &prefix).await;
    (proxy, Arc::new(direct), Arc::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_writes_applied_before_a_reset_are_recognised_as_ours() {
    let Some(members) = etcd_harness::start_cluster(1) else {
        return;
    };
    let (proxy, direct, store) = proxied_pair(&members[0].client_url).await;

    let s = store.clone();
    let write = async move { s.create("/k/a", b"one".to_vec()).await };
    let created = applied_then_reset(&proxy, &direct, "/k/a", |kv| kv.is_some(), write).await;
    let stored = direct.get("/k/a").await.unwrap();
    assert_eq!(created.unwrap(), stored.clone().expect("created"));

    let (s, expected) = (store.clone(), stored.expect("created").mod_revision);
    let write = async move { s.update("/k/a", b"two".to_vec(), expected).await };
    let later = move |kv: Option<&KeyValue>| kv.is_some_and(|kv| kv.mod_revision > expected);
    let updated = applied_then_reset(&proxy, &direct, "/k/a", later, write).await;
    let stored = direct.get("/k/a").await.unwrap().expect("present");
    assert_eq!(updated.unwrap(), stored);
    assert_eq!(stored.value, b"two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_ambiguous_writes_that_cannot_be_proven_ours_fail() {
    let Some(members) = etcd_harness::start_cluster(1) else {
        return;
    };
    let (proxy, direct, store) = proxied_pair(&members[0].client_url).await;
    let first = store.create("/k/b", b"one".to_vec()).await.unwrap();

    // Our update lands, another client overwrites it, then our connection
    // resets: the retry cannot tell our write happened, so it is a conflict.
    let (s, expected) = (store.clone(), first.mod_revision);
    let write = async move { s.update("/k/b", b"mine".to_vec(), expected).await };
    let overwritten = |kv: Option<&KeyValue>| kv.is_some_and(|kv| kv.value == b"theirs");
    let other = direct.clone();
    let overwrite = async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let kv = other.get("/k/b").await.unwrap().expect("present");
            if kv.mod_revision > expected {
                return other
                    .update("/k/b", b"theirs".to_vec(), kv.mod_revision)
                    .await;
            }
            assert!(Instant::now() < deadline, "our update never landed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let theirs = tokio::spawn(overwrite);
    let result = applied_then_reset(&proxy, &direct, "/k/b", overwritten, write).await;
    theirs.await.unwrap().unwrap();
    assert!(
        matches!(result, Err(StoreError::Conflict { .. })),
        "{result:?}"
    );

    // A guarded delete that lands: the key is gone, and who removed it
    // cannot be told, so the delete fails and says so.
    let current = direct.get("/k/b").await.unwrap().expect("present");
    let s = store.clone();
    let write = async move { s.delete("/k/b", Some(current.mod_revision)).await };
    let result = applied_then_reset(&proxy, &direct, "/k/b", |kv| kv.is_none(), write).await;
    let err = result.expect_err("an unresolvable delete fails");
    let msg = err.to_string();
    assert!(
        msg.contains("/k/b") && msg.contains("may or may not"),
        "{msg}"
    );
}

//! The conformance suite against a real etcd, and a three-member cluster
//! that keeps serving with one member killed.

mod conformance;
mod etcd_harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use store::{ListOptions, Store};

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

//! The informer's feed: each change is yielded only once the cache holds it,
//! and a relist also yields the objects it found gone.

use super::Informer;
use futures::channel::mpsc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use std::collections::BTreeMap;
use std::time::Duration;

type Sender = mpsc::UnboundedSender<Result<Event<ConfigMap>, watcher::Error>>;

fn cm(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("v".to_string(), value.to_string())])),
        ..ConfigMap::default()
    }
}

fn value(c: &ConfigMap) -> String {
    c.data
        .as_ref()
        .and_then(|d| d.get("v"))
        .cloned()
        .unwrap_or_default()
}

fn informer() -> (Informer<ConfigMap>, Sender) {
    let (tx, rx) = mpsc::unbounded();
    (Informer::over(rx), tx)
}

fn send(tx: &Sender, event: Event<ConfigMap>) {
    tx.unbounded_send(Ok(event)).expect("informer is running");
}

async fn next<S>(changes: &mut S) -> ConfigMap
where
    S: futures::Stream<Item = Result<ConfigMap, watcher::Error>> + Unpin,
{
    let item = tokio::time::timeout(Duration::from_secs(5), changes.next()).await;
    item.expect("a change within 5 s")
        .expect("feed open")
        .expect("changes carry no errors")
}

#[tokio::test]
async fn each_change_is_yielded_once_the_cache_holds_it() {
    let (inf, tx) = informer();
    let mut changes = Box::pin(inf.changes());
    let key = ObjectRef::new("a").within("default");
    send(&tx, Event::Init);
    send(&tx, Event::InitApply(cm("a", "1")));
    send(&tx, Event::InitDone);
    let listed = next(&mut changes).await;
    assert_eq!(value(&listed), "1");
    assert_eq!(inf.store.get(&key).map(|c| value(&c)), Some("1".into()));

    send(&tx, Event::Apply(cm("a", "2")));
    let changed = next(&mut changes).await;
    assert_eq!(value(&changed), "2");
    assert_eq!(inf.store.get(&key).map(|c| value(&c)), Some("2".into()));

    send(&tx, Event::Delete(cm("a", "2")));
    let deleted = next(&mut changes).await;
    assert_eq!(deleted.metadata.name.as_deref(), Some("a"));
    assert!(
        inf.store.get(&key).is_none(),
        "yielded before the cache dropped it"
    );
}

#[tokio::test]
async fn a_relist_yields_what_it_lists_and_what_it_found_gone() {
    let (inf, tx) = informer();
    let mut changes = Box::pin(inf.changes());
    send(&tx, Event::Init);
    for name in ["kept", "lost"] {
        send(&tx, Event::InitApply(cm(name, "1")));
    }
    send(&tx, Event::InitDone);
    let mut first = [next(&mut changes).await, next(&mut changes).await];
    first.sort_by_key(|c| c.metadata.name.clone());
    assert_eq!(first.iter().map(value).collect::<Vec<_>>(), ["1", "1"]);
    // The watch broke; "lost" was deleted meanwhile and "kept" changed.
    send(&tx, Event::Init);
    send(&tx, Event::InitApply(cm("kept", "2")));
    send(&tx, Event::InitDone);
    let mut names = Vec::new();
    for _ in 0..2 {
        let c = next(&mut changes).await;
        let name = c.metadata.name.clone().unwrap_or_default();
        if name == "kept" {
            assert_eq!(value(&c), "2", "the relisted object, not the old one");
        }
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["kept", "lost"]);
    assert!(inf
        .store
        .get(&ObjectRef::new("lost").within("default"))
        .is_none());
    let idle = tokio::time::timeout(Duration::from_millis(100), changes.next()).await;
    assert!(idle.is_err(), "nothing more than the relist's two objects");
}

#[tokio::test]
async fn every_subscriber_gets_every_change() {
    let (inf, tx) = informer();
    let mut a = Box::pin(inf.changes());
    let mut b = Box::pin(inf.changes());
    send(&tx, Event::Init);
    send(&tx, Event::InitDone);
    for i in 0..5000 {
        send(&tx, Event::Apply(cm(&format!("c{i}"), "x")));
    }
    for _ in 0..5000 {
        next(&mut a).await;
    }
    for i in 0..5000 {
        let c = next(&mut b).await;
        assert_eq!(
            c.metadata.name,
            Some(format!("c{i}")),
            "in order, none dropped"
        );
    }
}

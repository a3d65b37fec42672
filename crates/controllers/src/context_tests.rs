//! The informer's feed: each change is yielded only once the cache holds it,
//! and a subscriber that fell behind is handed the whole cache.

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

fn informer(capacity: usize) -> (Informer<ConfigMap>, Sender) {
    let (tx, rx) = mpsc::unbounded();
    (Informer::over(rx, capacity), tx)
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
    let (inf, tx) = informer(16);
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
async fn a_subscriber_that_fell_behind_gets_the_whole_cache() {
    let (inf, tx) = informer(2);
    let mut changes = Box::pin(inf.changes());
    send(&tx, Event::Init);
    send(&tx, Event::InitDone);
    for i in 0..6 {
        send(&tx, Event::Apply(cm(&format!("c{i}"), "x")));
    }
    for _ in 0..100 {
        if inf.store.state().len() == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(inf.store.state().len(), 6, "the cache took every change");
    let mut names = Vec::new();
    for _ in 0..6 {
        names.push(next(&mut changes).await.metadata.name.unwrap_or_default());
    }
    names.sort();
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4", "c5"]);
}

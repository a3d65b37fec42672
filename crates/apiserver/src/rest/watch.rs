//! Client watches: a filtered view of the watch cache, resumed from a
//! resourceVersion, streamed as one JSON event per line (or one-row Tables),
//! with bookmarks, `sendInitialEvents` and `timeoutSeconds`. A watcher that
//! cannot keep up is ended; the client relists.

use super::read::Filter;
use super::{Api, Req};
use crate::body::{self, Body};
use crate::cache::{Event, EventType, Obj, WatchStart};
use crate::status::{ApiError, ApiResult};
use crate::table::{self, Include};
use bytes::Bytes;
use http::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

const BOOKMARK_EVERY: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct View {
    filter: Filter,
    plural: &'static str,
    kind: &'static str,
    api_version: String,
    table: bool,
    include: Include,
    sent_columns: bool,
    after: i64,
}

impl View {
    /// The line to send for a cache event, if this watcher sees it.
    fn line(&mut self, ev: &Event) -> Option<Bytes> {
        if ev.obj.rv <= self.after {
            return None;
        }
        let now = self.filter.matches(&ev.obj);
        let before = ev.prev.as_ref().is_some_and(|p| self.filter.matches(p));
        let ty = match (ev.ty, now, before) {
            (EventType::Added, true, _) => EventType::Added,
            (EventType::Deleted, true, _) => EventType::Deleted,
            (EventType::Modified, true, true) => EventType::Modified,
            (EventType::Modified, true, false) => EventType::Added,
            (EventType::Modified, false, true) => EventType::Deleted,
            _ => return None,
        };
        Some(self.encode(ty.as_str(), &ev.obj))
    }

    fn encode(&mut self, ty: &str, obj: &Obj) -> Bytes {
        let mut out = format!("{{\"type\":\"{ty}\",\"object\":").into_bytes();
        if self.table {
            let t = table::table(
                self.plural,
                &[obj.value()],
                &obj.rv.to_string(),
                None,
                self.include,
                !self.sent_columns,
            );
            self.sent_columns = true;
            out.extend_from_slice(&serde_json::to_vec(&t).unwrap_or_default());
        } else {
            out.extend_from_slice(&obj.json);
        }
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    fn bookmark(&self, rv: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": meta});
        line("BOOKMARK", &obj)
    }
}

fn line(ty: &str, obj: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": ty, "object": obj})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

impl Api {
    pub(super) async fn watch(&self, req: &Req<'_>) -> ApiResult<Response<Body>> {
        let filter = Filter::from_req(self, req)?;
        let r = self.strategy(req.idx).resource;
        let from =
            match req.query.get("resourceVersion") {
                None | Some("") | Some("0") => None,
                Some(v) => Some(v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version {v:?}"))
                })?),
            };
        let initial_end = req.query.flag("sendInitialEvents") && from.is_none();
        let bookmarks = req.query.flag("allowWatchBookmarks");
        let timeout = req
            .query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        let mut view = View {
            filter,
            plural: r.plural,
            kind: r.kind,
            api_version: r.api_version(),
            table: table::wants_table(req.accept),
            include: Include::parse(req.query.get("includeObject")),
            sent_columns: false,
            after: from.unwrap_or(0),
        };
        let (tx, rx) = mpsc::channel::<Bytes>(256);
        match self.cache.watch(req.idx, from) {
            Err(WatchStart::TooOld(rv)) => {
                let e = ApiError::gone(format!(
                    "too old resource version: {rv} ({})",
                    self.cache.revision()
                ));
                let _ = tx.try_send(line("ERROR", &e.to_status()));
            }
            Ok((replay, live, start_rv)) => {
                let metrics = self.metrics.clone();
                metrics.watch_started();
                tokio::spawn(async move {
                    let cache_rv = start_rv;
                    let _ = pump(
                        &mut view,
                        replay,
                        live,
                        &tx,
                        bookmarks,
                        initial_end,
                        cache_rv,
                        timeout,
                    )
                    .await;
                    metrics.watch_ended();
                });
            }
        }
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        let ct = if table::wants_table(req.accept) {
            "application/json;as=Table;v=v1;g=meta.k8s.io"
        } else {
            body::JSON
        };
        Ok(body::stream(ct, stream))
    }
}

/// Sends the replay, then live events, bookmarks and the end at timeout.
#[allow(clippy::too_many_arguments)]
async fn pump(
    view: &mut View,
    replay: Vec<Arc<Event>>,
    mut live: broadcast::Receiver<Arc<Event>>,
    tx: &mpsc::Sender<Bytes>,
    bookmarks: bool,
    initial_end: bool,
    start_rv: i64,
    timeout: Duration,
) -> Option<()> {
    let mut last_rv = view.after.max(0);
    for ev in &replay {
        last_rv = last_rv.max(ev.obj.rv);
        if let Some(l) = view.line(ev) {
            tx.send(l).await.ok()?;
        }
    }
    if view.after == 0 {
        // Initial state sent: from now on only events after the snapshot.
        last_rv = last_rv.max(start_rv);
        view.after = replay.iter().map(|e| e.obj.rv).max().unwrap_or(0);
    }
    if initial_end {
        tx.send(view.bookmark(last_rv, true)).await.ok()?;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tick = tokio::time::interval(BOOKMARK_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            ev = live.recv() => match ev {
                Ok(ev) => {
                    last_rv = last_rv.max(ev.obj.rv);
                    if let Some(l) = view.line(&ev) {
                        tx.send(l).await.ok()?;
                    }
                }
                // Lagged (too slow) or the cache reloaded: end; the client relists.
                Err(_) => return None,
            },
            _ = tick.tick(), if bookmarks => {
                tx.send(view.bookmark(last_rv, false)).await.ok()?;
            }
            _ = tokio::time::sleep_until(deadline) => return Some(()),
            _ = tx.closed() => return None,
        }
    }
}

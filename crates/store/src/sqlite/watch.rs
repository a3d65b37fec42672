//! Watches: replay from the log, then live events from the writer.
//!
//! A watch subscribes to the writer's [`Hub`] *before* it reads the log, so
//! every change committed after its replay snapshot is also in its channel;
//! events at or below the last replayed revision are dropped on handoff, so
//! there is neither a gap nor a duplicate. Each subscriber's channel is
//! bounded: when a watcher falls behind, the writer drops it instead of
//! waiting (no watcher blocks the writer or the others), and the watch quietly
//! goes back to replaying from the log where it stopped. If that history has
//! been compacted meanwhile, the stream ends with [`StoreError::Compacted`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::Readers;
use crate::{Result, Revision, WatchEvent, WatchStream};

/// Live events buffered per watcher before it counts as fallen behind.
const CHANNEL_CAPACITY: usize = 4096;
/// Log rows read per replay query.
const REPLAY_PAGE: usize = 1000;

struct Subscriber {
    prefix: String,
    tx: mpsc::Sender<Arc<WatchEvent>>,
    lagged: Arc<AtomicBool>,
}

/// The writer's fan-out to live watchers.
#[derive(Default)]
pub(crate) struct Hub {
    subscribers: Mutex<Vec<Subscriber>>,
}

struct Subscription {
    rx: mpsc::Receiver<Arc<WatchEvent>>,
    lagged: Arc<AtomicBool>,
}

impl Hub {
    fn subscribe(&self, prefix: &str) -> Subscription {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let lagged = Arc::new(AtomicBool::new(false));
        let sub = Subscriber {
            prefix: prefix.to_string(),
            tx,
            lagged: lagged.clone(),
        };
        self.lock().push(sub);
        Subscription { rx, lagged }
    }

    /// Hands committed events to every matching watcher without waiting.
    pub(crate) fn publish(&self, events: &[Arc<WatchEvent>]) {
        if events.is_empty() {
            return;
        }
        self.lock().retain(|sub| {
            for event in events.iter().filter(|e| e.kv.key.starts_with(&sub.prefix)) {
                match sub.tx.try_send(event.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        sub.lagged.store(true, Ordering::SeqCst);
                        return false;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
    }

    /// Ends every live watch (the store is shutting down).
    pub(crate) fn close(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        // A panic while holding the lock leaves a plain Vec intact; keep going.
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct WatchState {
    readers: Arc<Readers>,
    prefix: String,
    /// The revision of the last event handed out (or the watch's start).
    last: Revision,
    buffered: VecDeque<WatchEvent>,
    live: Option<Subscription>,
    replaying: bool,
    done: bool,
}

/// Starts a watch of `prefix` after revision `after`. Fails at once with
/// [`crate::StoreError::Compacted`] if that history is gone.
pub(crate) async fn watch(
    readers: Arc<Readers>,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream> {
    let mut state = WatchState {
        readers,
        prefix: prefix.to_string(),
        last: after,
        buffered: VecDeque::new(),
        live: None,
        replaying: true,
        done: false,
    };
    // Surface a compacted start revision as an error of `watch` itself.
    state.replay_page().await?;
    Ok(Box::pin(futures::stream::unfold(
        state,
        |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        },
    )))
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                self.last = event.revision();
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if self.replaying {
                if let Err(e) = self.replay_page().await {
                    self.done = true;
                    return Some(Err(e));
                }
                continue;
            }
            let live = self.live.as_mut()?;
            match live.rx.recv().await {
                Some(event) if event.revision() > self.last => {
                    self.buffered.push_back((*event).clone());
                }
                Some(_) => {}
                None if live.lagged.load(Ordering::SeqCst) => {
                    tracing::debug!(prefix = %self.prefix, last = self.last, "watcher fell behind; replaying from the log");
                    self.live = None;
                    self.replaying = true;
                }
                None => self.done = true,
            }
        }
    }

    /// Subscribes (if not yet) and reads the next page of history into the buffer.
    async fn replay_page(&mut self) -> Result<()> {
        if self.live.is_none() {
            self.live = Some(self.readers.hub().subscribe(&self.prefix));
        }
        let prefix = self.prefix.clone();
        let after = self.last;
        let page = self
            .readers
            .run(move |conn| super::read::replay(conn, &prefix, after, REPLAY_PAGE))
            .await?;
        if page.len() < REPLAY_PAGE {
            self.replaying = false;
        }
        // `last` advances as buffered events are handed out, and the buffer
        // is drained before the next page, so pages neither skip nor repeat.
        self.buffered.extend(page);
        Ok(())
    }
}

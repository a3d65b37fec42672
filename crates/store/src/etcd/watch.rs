//! etcd watches mapped onto [`WatchStream`]: start at `after + 1` with
//! previous values, strip the key prefix, and turn etcd's "compacted"
//! cancellation into [`StoreError::Compacted`].

use std::collections::VecDeque;

use etcd_client::{Client, EventType, WatchOptions, WatchResponse};

use super::range_end;
use crate::{EventKind, KeyValue, Result, Revision, StoreError, WatchEvent, WatchStream};

struct State {
    stream: etcd_client::WatchStream,
    prefix: String,
    /// Revision of the last event handed out (for error messages).
    last: Revision,
    buffered: VecDeque<WatchEvent>,
    done: bool,
}

/// Opens a watch and waits until etcd has created it, so a compacted start
/// revision fails here rather than in the stream.
pub(crate) async fn watch(
    client: Client,
    key_prefix: String,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream> {
    let start = format!("{key_prefix}{prefix}").into_bytes();
    let opts = WatchOptions::new()
        .with_range(range_end(&start))
        .with_prev_key()
        .with_start_revision(after + 1);
    // Opening a watch has no side effects: retry it (and the wait for its
    // first response, which confirms creation or reports compaction) after
    // any transport failure.
    let (stream, first) = super::retry::read("start etcd watch", || {
        let (mut watch, start, opts) = (client.watch_client(), start.clone(), opts.clone());
        async move {
            let mut stream = watch.watch(start, Some(opts)).await?;
            match stream.message().await? {
                Some(first) => Ok((stream, first)),
                None => Err(etcd_client::Error::WatchError(
                    "etcd closed the watch".to_string(),
                )),
            }
        }
    })
    .await?;
    let mut state = State {
        stream,
        prefix: key_prefix,
        last: after,
        buffered: VecDeque::new(),
        done: false,
    };
    state.absorb(first)?;
    Ok(Box::pin(futures::stream::unfold(
        state,
        |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        },
    )))
}

impl State {
    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                self.last = event.revision();
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let resp = match self.stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => {
                    self.done = true;
                    return Some(Err(StoreError::backend(
                        "etcd watch",
                        "etcd closed the watch",
                    )));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(StoreError::backend("etcd watch", e)));
                }
            };
            if let Err(e) = self.absorb(resp) {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    /// Buffers a response's events; a cancellation becomes an error.
    fn absorb(&mut self, resp: WatchResponse) -> Result<()> {
        if resp.compact_revision() > 0 {
            return Err(StoreError::Compacted {
                requested: self.last,
                compacted: resp.compact_revision(),
            });
        }
        if resp.canceled() {
            return Err(StoreError::backend(
                "etcd watch",
                format!("etcd cancelled the watch: {}", resp.cancel_reason()),
            ));
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let mut kv = self.convert(kv)?;
            let prev = event.prev_kv().map(|p| self.convert(p)).transpose()?;
            let kind = match event.event_type() {
                EventType::Put => EventKind::Put,
                EventType::Delete => {
                    // etcd's deletion has no value; carry the last one.
                    if let Some(p) = &prev {
                        kv.value = p.value.clone();
                        kv.create_revision = p.create_revision;
                    }
                    EventKind::Delete
                }
            };
            self.buffered.push_back(WatchEvent { kind, kv, prev });
        }
        Ok(())
    }

    fn convert(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
        let key = std::str::from_utf8(kv.key())
            .ok()
            .and_then(|k| k.strip_prefix(self.prefix.as_str()))
            .ok_or_else(|| {
                StoreError::backend("decode etcd watch key", format!("{:?}", kv.key()))
            })?;
        Ok(KeyValue {
            key: key.to_string(),
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }
}

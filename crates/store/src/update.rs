//! Compare-and-swap helper: read, compute, write guarded by the revision read,
//! retry on conflict. The apiserver's update and patch paths use this.

use crate::{KeyValue, Result, Store, StoreError};

/// What the update function decided.
pub enum Decision {
    /// Write this value.
    Write(Vec<u8>),
    /// Leave the key as it is.
    Keep,
}

/// Generous: under heavy contention one writer can lose many rounds in a
/// row (kube-apiserver retries conflicts without a limit).
const MAX_ATTEMPTS: u32 = 1000;

/// Sleeps a jittered, growing pause (up to ~20 ms) so that writers that keep
/// losing the race stop arriving in lockstep with the winners.
async fn backoff(attempt: u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let cap_us = 1000 * u64::from(attempt.min(20));
    let pause_us = u64::from(nanos / 1000) % cap_us.max(1);
    tokio::time::sleep(std::time::Duration::from_micros(pause_us)).await;
}

/// Applies `f` to the current value of `key` until the write wins a race.
/// `f` sees `None` when the key is absent (then a `Write` creates it).
pub async fn guaranteed_update<S, F, E>(
    store: &S,
    key: &str,
    mut f: F,
) -> Result<Option<KeyValue>, E>
where
    S: Store + ?Sized,
    F: FnMut(Option<&KeyValue>) -> Result<Decision, E>,
    E: From<StoreError>,
{
    let mut last_err = None;
    for attempt in 0..MAX_ATTEMPTS {
        if attempt >= 3 {
            backoff(attempt).await;
        }
        let current = store.get(key).await?;
        let value = match f(current.as_ref())? {
            Decision::Keep => return Ok(current),
            Decision::Write(v) => v,
        };
        let result = match &current {
            Some(kv) => store.update(key, value, kv.mod_revision).await,
            None => store.create(key, value).await,
        };
        match result {
            Ok(kv) => return Ok(Some(kv)),
            Err(
                e @ (StoreError::Conflict { .. }
                | StoreError::AlreadyExists { .. }
                | StoreError::NotFound { .. }),
            ) => {
                last_err = Some(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_err
        .unwrap_or_else(|| StoreError::backend("guaranteed_update", "too many conflicts"))
        .into())
}

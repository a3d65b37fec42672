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
    const MAX_ATTEMPTS: usize = 16;
    let mut last_err = None;
    for _ in 0..MAX_ATTEMPTS {
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

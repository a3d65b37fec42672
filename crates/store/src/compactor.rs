//! Scheduled compaction and size control, as kube-apiserver does for etcd:
//! at every tick, compact to the revision seen at the previous tick, so a
//! full interval of history stays available to watchers that resume; every
//! few compactions, let the backend give freed space back ([`Store::maintain`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{Revision, Store};

/// When and how much to compact.
#[derive(Debug, Clone)]
pub struct CompactorConfig {
    /// Time between compactions (kube-apiserver's default is 5 minutes).
    pub interval: Duration,
    /// Run [`Store::maintain`] after every this many compactions (0: never).
    pub maintain_every: u32,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            maintain_every: 1,
        }
    }
}

/// Starts the compactor on the current tokio runtime; abort the handle to stop it.
pub fn spawn_compactor(store: Arc<dyn Store>, config: CompactorConfig) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut previous: Revision = 0;
        let mut compactions: u32 = 0;
        loop {
            ticker.tick().await;
            match tick(store.as_ref(), previous).await {
                Ok((seen, compacted)) => {
                    compactions += u32::from(compacted);
                    previous = seen;
                }
                Err(e) => tracing::warn!(error = %e, "compaction failed; retrying next interval"),
            }
            if config.maintain_every > 0 && compactions >= config.maintain_every {
                compactions = 0;
                if let Err(e) = store.maintain().await {
                    tracing::warn!(error = %e, "store maintenance failed");
                }
            }
        }
    })
}

/// Compacts to `previous` when writes happened since; returns the revision
/// seen now and whether it compacted.
async fn tick(store: &dyn Store, previous: Revision) -> crate::Result<(Revision, bool)> {
    let now = store.current_revision().await?;
    if previous > 0 && previous < now {
        store.compact(previous).await?;
        tracing::debug!(revision = previous, "compacted store");
        return Ok((now, true));
    }
    Ok((now, false))
}

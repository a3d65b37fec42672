//! The pod network's one node-level masquerade rule (see
//! [`cni::Masquerade`]): installed before the first sandbox is attached,
//! re-applied when the pod CIDR changes, removed when the last attached
//! sandbox is detached. The bridge plugin runs with `ipMasq` off, so no
//! per-sandbox `iptables` work remains. A restarted server counts the
//! attached sandboxes it re-adopts and applies the rule again (idempotent).

use crate::error::{Error, Result};
use crate::server::Server;

/// How many sandboxes use the rule, and the rule installed (if any).
#[derive(Debug, Default)]
pub(crate) struct MasqState {
    users: usize,
    installed: Option<cni::Masquerade>,
}

impl MasqState {
    /// State for `users` attached sandboxes found on disk.
    pub fn with_users(users: usize) -> Self {
        Self {
            users,
            installed: None,
        }
    }
}

impl Server {
    /// Counts one more attached sandbox and makes sure the rule for the
    /// current pod CIDR is in place. Undo with [`Server::masq_release`].
    pub(crate) async fn masq_acquire(&self) -> Result<()> {
        let mut st = self.inner.masq.lock().await;
        st.users += 1;
        if let Err(e) = self.masq_ensure(&mut st).await {
            st.users -= 1;
            return Err(e);
        }
        Ok(())
    }

    /// One attached sandbox fewer; the last one takes the rule away.
    pub(crate) async fn masq_release(&self) {
        let mut st = self.inner.masq.lock().await;
        st.users = st.users.saturating_sub(1);
        if st.users > 0 {
            return;
        }
        // Also when this process never installed it (a restarted server
        // whose re-adopted sandboxes all went): removing is idempotent.
        let cidr = self.inner.pod_cidr.lock().await.clone();
        let m = match st.installed.take() {
            Some(m) => m,
            None => match cni::Masquerade::new(&self.inner.config.bridge, &cidr) {
                Ok(m) => m,
                Err(_) => return,
            },
        };
        let table = m.table().to_string();
        if let Err(e) = blocking(move || m.remove()).await {
            tracing::warn!(%table, error = %e, "removing the pod masquerade");
        }
    }

    /// Re-applies the rule if sandboxes use it (at start-up, after the pod
    /// CIDR changed); errors are logged, the next attach tries again.
    pub(crate) async fn masq_refresh(&self) {
        let mut st = self.inner.masq.lock().await;
        if st.users == 0 {
            return;
        }
        if let Err(e) = self.masq_ensure(&mut st).await {
            tracing::warn!(error = %e, "installing the pod masquerade");
        }
    }

    async fn masq_ensure(&self, st: &mut MasqState) -> Result<()> {
        let cidr = self.inner.pod_cidr.lock().await.clone();
        let want = cni::Masquerade::new(&self.inner.config.bridge, &cidr)?;
        if st.installed.as_ref() == Some(&want) {
            return Ok(());
        }
        let m = want.clone();
        blocking(move || m.apply()).await?;
        tracing::info!(table = %want.table(), %cidr, "pod masquerade installed");
        st.installed = Some(want);
        Ok(())
    }
}

async fn blocking(f: impl FnOnce() -> cni::Result<()> + Send + 'static) -> Result<()> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Failed(format!("masquerade task: {e}")))?
        .map_err(Error::from)
}

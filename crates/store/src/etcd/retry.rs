//! Retrying etcd calls, and telling from a failed call whether etcd may have
//! acted on it.
//!
//! A failure is one of three kinds ([`Failure`]): etcd certainly did not
//! apply the request (no connection was made, or the member had no leader),
//! it may or may not have (the connection broke while the request was in
//! flight, or etcd timed out waiting for the commit), or it answered for
//! good. The real errors, as `etcd-client` 0.21 / tonic 0.14 report them:
//!
//! - refused connection to a killed member: `Unavailable` with a
//!   [`tonic::ConnectError`] in the source chain (message "tcp connect error");
//! - reset or closed connection mid-request: `Unknown` "transport error",
//!   source `tonic::transport::Error` → `hyper::Error(Io)` → an `io::Error` of
//!   kind `ConnectionReset` or `BrokenPipe`; an HTTP/2 GOAWAY or stream reset
//!   shows as "h2 protocol error" (`Internal`/`Unknown`/`Unavailable`);
//! - a request queued on a connection that closed before sending it:
//!   `Cancelled` "operation was canceled", source `tonic::transport::Error` →
//!   `hyper::Error(Canceled)` → "connection closed" (never sent);
//! - the leader died with the proposal pending: `Unavailable` "etcdserver:
//!   request timed out[, possibly due to previous leader failure]".
//!
//! Reads and idempotent calls retry both the certain and the ambiguous kind.
//! Guarded writes retry both too, and learn from [`Attempted::maybe_applied`]
//! that a failed guard on the retry may be their own earlier attempt (the
//! write module resolves that). Calls that could do harm twice retry only
//! the certain kind ([`Retry::OnlyUnapplied`]).

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use tonic::Code;

use crate::{Result, StoreError};

/// What a failed etcd call says about whether etcd acted on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// etcd certainly did not apply it: a blind retry is safe.
    NotApplied,
    /// It may or may not have been applied.
    Ambiguous,
    /// etcd's answer (or a local error): a retry would not change it.
    Final,
}

/// Which failures a call may be retried after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads and idempotent calls: retry both kinds; a call given up on
    /// fails with etcd's own error.
    Read,
    /// Guarded writes that resolve a failed guard after an ambiguous
    /// attempt: retry both kinds; given up on, [`MaybeApplied`].
    Ambiguous,
    /// Writes that could do harm if applied twice: retry only what was
    /// certainly not applied; an ambiguous failure is returned as
    /// [`MaybeApplied`].
    OnlyUnapplied,
}

/// A successful call, and the ambiguous failure of an earlier attempt (if
/// any), after which etcd may already have applied the request once.
pub(crate) struct Attempted<T> {
    pub value: T,
    pub maybe_applied: Option<etcd_client::Error>,
}

/// An ambiguous failure that could not be resolved: the request may or may
/// not have taken effect.
#[derive(Debug, thiserror::Error)]
#[error("{what}; etcd may or may not have applied it: {source}")]
pub(crate) struct MaybeApplied {
    pub what: String,
    #[source]
    pub source: etcd_client::Error,
}

/// Runs `call` until it succeeds, fails for good, or has been tried 20 times
/// (with a growing pause, about ten seconds in all), retrying the failures
/// `policy` allows.
pub(crate) async fn retry<T, F, Fut>(
    op: &'static str,
    policy: Retry,
    mut call: F,
) -> Result<Attempted<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    const ATTEMPTS: u32 = 20;
    let mut maybe_applied = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let e = match call().await {
            Ok(value) => {
                return Ok(Attempted {
                    value,
                    maybe_applied,
                })
            }
            Err(e) => e,
        };
        let failure = classify(&e);
        let retryable = match failure {
            Failure::NotApplied => true,
            Failure::Ambiguous => policy != Retry::OnlyUnapplied,
            Failure::Final => false,
        };
        if !retryable || attempt >= ATTEMPTS {
            return Err(final_error(op, policy, failure, e, maybe_applied));
        }
        tracing::debug!(op, attempt, ?failure, error = %e, "etcd request failed; retrying");
        if failure == Failure::Ambiguous {
            maybe_applied = Some(e);
        }
        tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
    }
}

/// Like [`retry`] for calls without side effects (or idempotent ones).
pub(crate) async fn read<T, F, Fut>(op: &'static str, call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    Ok(retry(op, Retry::Read, call).await?.value)
}

/// The error for a call that is given up: for a write, [`MaybeApplied`] when
/// this or an earlier attempt failed ambiguously; etcd's own error otherwise.
fn final_error(
    op: &'static str,
    policy: Retry,
    failure: Failure,
    e: etcd_client::Error,
    earlier: Option<etcd_client::Error>,
) -> StoreError {
    if policy == Retry::Read {
        return StoreError::backend(op, e);
    }
    let what = match (failure, earlier) {
        (Failure::Ambiguous, _) => {
            "the connection to etcd broke or timed out with the request in flight".to_string()
        }
        (_, Some(first)) => format!(
            "an earlier attempt failed with the request in flight ({first}), and the last one failed"
        ),
        (_, None) => return StoreError::backend(op, e),
    };
    StoreError::backend(op, MaybeApplied { what, source: e })
}

/// Classifies a failed etcd call (see the module docs for the real errors).
pub(crate) fn classify(e: &etcd_client::Error) -> Failure {
    match e {
        // Building a channel: nothing was sent.
        etcd_client::Error::TransportError(_) => Failure::NotApplied,
        etcd_client::Error::GRpcStatus(s) => classify_status(s),
        _ => Failure::Final,
    }
}

fn classify_status(s: &tonic::Status) -> Failure {
    let msg = s.message();
    let code = s.code();
    if chain(s).any(|e| e.is::<tonic::ConnectError>()) || msg.contains("tcp connect error") {
        return Failure::NotApplied;
    }
    // etcd refuses before proposing when the member knows no leader.
    if code == Code::Unavailable && msg.contains("no leader") {
        return Failure::NotApplied;
    }
    if code == Code::Cancelled {
        return cancelled(s);
    }
    let transport_code = matches!(code, Code::Unknown | Code::Unavailable | Code::Internal);
    if transport_code && (broken_transport(msg) || chain(s).any(broken_link)) {
        return Failure::Ambiguous;
    }
    // Any other Unavailable (etcd's "request timed out", "leader changed",
    // a member stopping) is transient but says nothing about the commit.
    if code == Code::Unavailable {
        return Failure::Ambiguous;
    }
    Failure::Final
}

/// We never cancel a request ourselves, so a cancellation is the
/// transport's: hyper hands back a request that its closing connection never
/// took up ("operation was canceled", caused by "connection closed"); any
/// other (the connection task gone, a server-side "context canceled") may
/// have come after the request was sent.
fn cancelled(s: &tonic::Status) -> Failure {
    if chain(s).any(|e| e.to_string() == "connection closed") {
        Failure::NotApplied
    } else {
        Failure::Ambiguous
    }
}

/// The status's source chain (not the status itself).
fn chain(s: &tonic::Status) -> impl Iterator<Item = &(dyn StdError + 'static)> {
    std::iter::successors(s.source(), |e| (*e).source())
}

/// One error of a source chain that says a connection broke.
fn broken_link(e: &(dyn StdError + 'static)) -> bool {
    use std::io::ErrorKind;
    let io_broken = e.downcast_ref::<std::io::Error>().is_some_and(|io| {
        matches!(
            io.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::NotConnected
                | ErrorKind::UnexpectedEof
        )
    });
    io_broken || broken_transport(&e.to_string())
}

/// Whether a message names a connection that broke after it was made.
fn broken_transport(msg: &str) -> bool {
    const MARKERS: [&str; 10] = [
        "transport error",
        "connection reset",
        "broken pipe",
        "h2 protocol error",
        "goaway",
        "go away",
        "connection error",
        "connection closed before message completed",
        "channel closed",
        "stream closed",
    ];
    let msg = msg.to_ascii_lowercase();
    MARKERS.iter().any(|m| msg.contains(m))
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;

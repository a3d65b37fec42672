//! Unit tests for the failure classification and the retry loop, with errors
//! built the way tonic builds them (the real chains are in the module docs;
//! tonic's and hyper's own error types cannot be constructed outside them,
//! so stand-ins with the same messages and sources take their place).

use std::error::Error as StdError;
use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicU32, Ordering};

use tonic::{Code, Status};

use super::*;

/// A stand-in for `tonic::transport::Error` / `hyper::Error`: a message and
/// an optional source.
#[derive(Debug)]
struct Layer(&'static str, Option<Box<dyn StdError + Send + Sync>>);

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl StdError for Layer {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.1.as_deref().map(|e| e as _)
    }
}

/// Status as tonic makes it from a failed request on a channel whose
/// connection broke: transport error → hyper error → `io`.
fn broken_request(io: io::Error) -> etcd_client::Error {
    let hyper = Layer("connection error", Some(Box::new(io)));
    let transport = Layer("transport error", Some(Box::new(hyper)));
    etcd_client::Error::GRpcStatus(Status::from_error(Box::new(transport)))
}

fn status(s: Status) -> etcd_client::Error {
    etcd_client::Error::GRpcStatus(s)
}

#[test]
fn reset_connection_mid_request_is_ambiguous() {
    let e = broken_request(io::Error::from(ErrorKind::ConnectionReset));
    let etcd_client::Error::GRpcStatus(s) = &e else {
        panic!("not a status: {e}");
    };
    assert_eq!(s.code(), Code::Unknown);
    assert_eq!(s.message(), "transport error");
    assert_eq!(classify(&e), Failure::Ambiguous);
}

#[test]
fn broken_pipe_mid_request_is_ambiguous() {
    let io = io::Error::new(
        ErrorKind::BrokenPipe,
        "stream closed because of a broken pipe",
    );
    assert_eq!(classify(&broken_request(io)), Failure::Ambiguous);
    // tonic's own io::Error → Status mapping (Internal "broken pipe").
    let s = Status::from(io::Error::from(ErrorKind::BrokenPipe));
    assert_eq!(s.code(), Code::Internal);
    assert_eq!(classify(&status(s)), Failure::Ambiguous);
}

#[test]
fn broken_link_is_found_by_io_kind_alone() {
    let io = io::Error::new(ErrorKind::UnexpectedEof, "eof");
    let quiet = Layer("request failed", Some(Box::new(io)));
    let e = status(Status::from_error(Box::new(quiet)));
    assert_eq!(classify(&e), Failure::Ambiguous);
}

#[test]
fn h2_goaway_and_protocol_errors_are_ambiguous() {
    let e = status(Status::internal("h2 protocol error: http2 error"));
    assert_eq!(classify(&e), Failure::Ambiguous);
    // hyper's Http2 error keeps the h2::Error (a GOAWAY) as its source.
    let goaway = Layer("connection error received: not a result of an error", None);
    let hyper = Layer("http2 error", Some(Box::new(goaway)));
    let e = status(Status::from_error(Box::new(Layer(
        "request failed",
        Some(Box::new(hyper)),
    ))));
    assert_eq!(classify(&e), Failure::Ambiguous);
}

#[test]
fn refused_connection_was_never_applied() {
    let io = io::Error::from(ErrorKind::ConnectionRefused);
    let connect = tonic::ConnectError(Box::new(Layer("tcp connect error", Some(Box::new(io)))));
    let e = status(Status::from_error(Box::new(Layer(
        "transport error",
        Some(Box::new(connect)),
    ))));
    let etcd_client::Error::GRpcStatus(s) = &e else {
        panic!("not a status: {e}");
    };
    assert_eq!(s.code(), Code::Unavailable);
    assert_eq!(classify(&e), Failure::NotApplied);
}

/// A status as tonic finds it in a source chain: `s`, with `layers` (outer
/// first) as its source chain.
fn found_in_chain(layers: &[&'static str], s: Status) -> etcd_client::Error {
    let mut err: Box<dyn StdError + Send + Sync> = Box::new(s);
    for msg in layers.iter().rev() {
        err = Box::new(Layer(msg, Some(err)));
    }
    status(Status::from_error(err))
}

#[test]
fn request_never_taken_up_by_a_closing_connection_was_never_applied() {
    let layers = [
        "transport error",
        "operation was canceled",
        "connection closed",
    ];
    let e = found_in_chain(&layers, Status::cancelled("operation was canceled"));
    let etcd_client::Error::GRpcStatus(s) = &e else {
        panic!("not a status: {e}");
    };
    assert_eq!(s.code(), Code::Cancelled);
    assert_eq!(classify(&e), Failure::NotApplied);
}

#[test]
fn other_cancellations_are_ambiguous() {
    let layers = [
        "transport error",
        "operation was canceled",
        "runtime dropped the dispatch task",
    ];
    let e = found_in_chain(&layers, Status::cancelled("operation was canceled"));
    assert_eq!(classify(&e), Failure::Ambiguous);
    let e = status(Status::cancelled("context canceled"));
    assert_eq!(classify(&e), Failure::Ambiguous);
}

#[test]
fn no_leader_was_never_applied() {
    let e = status(Status::unavailable("etcdserver: no leader"));
    assert_eq!(classify(&e), Failure::NotApplied);
}

#[test]
fn etcd_timeouts_are_ambiguous() {
    for msg in [
        "etcdserver: request timed out",
        "etcdserver: request timed out, possibly due to previous leader failure",
        "etcdserver: leader changed",
    ] {
        assert_eq!(
            classify(&status(Status::unavailable(msg))),
            Failure::Ambiguous,
            "{msg}"
        );
    }
}

#[test]
fn etcd_answers_are_final() {
    let answers = [
        Status::out_of_range("etcdserver: mvcc: required revision has been compacted"),
        Status::invalid_argument("etcdserver: key is not provided"),
        Status::failed_precondition("etcdserver: revision of auth store is old"),
        Status::unknown("etcdserver: unknown method"),
        Status::internal("etcdserver: corrupt cluster"),
    ];
    for s in answers {
        let e = status(s);
        assert_eq!(classify(&e), Failure::Final, "{e}");
    }
    let e = etcd_client::Error::WatchError("closed".into());
    assert_eq!(classify(&e), Failure::Final);
}

/// A call that fails with each of `failures` in turn, then succeeds.
async fn flaky(
    failures: Vec<fn() -> etcd_client::Error>,
    policy: Retry,
) -> (Result<Attempted<u32>>, u32) {
    let calls = AtomicU32::new(0);
    let result = retry("test", policy, || {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let outcome = failures.get(n as usize).map(|f| f());
        async move {
            match outcome {
                Some(e) => Err(e),
                None => Ok(n),
            }
        }
    })
    .await;
    (result, calls.load(Ordering::SeqCst))
}

fn reset() -> etcd_client::Error {
    broken_request(io::Error::from(ErrorKind::ConnectionReset))
}

fn no_leader() -> etcd_client::Error {
    status(Status::unavailable("etcdserver: no leader"))
}

fn compacted() -> etcd_client::Error {
    status(Status::out_of_range(
        "etcdserver: mvcc: required revision has been compacted",
    ))
}

#[tokio::test]
async fn ambiguous_failure_is_retried_and_reported() {
    let (result, calls) = flaky(vec![no_leader, reset], Retry::Ambiguous).await;
    let attempted = result.expect("the third call succeeds");
    assert_eq!((attempted.value, calls), (2, 3));
    assert!(attempted.maybe_applied.is_some());
}

#[tokio::test]
async fn unapplied_failure_leaves_no_doubt() {
    let (result, calls) = flaky(vec![no_leader], Retry::Ambiguous).await;
    let attempted = result.expect("the second call succeeds");
    assert_eq!(calls, 2);
    assert!(attempted.maybe_applied.is_none());
}

#[tokio::test]
async fn only_unapplied_stops_at_an_ambiguous_failure() {
    let (result, calls) = flaky(vec![no_leader, reset], Retry::OnlyUnapplied).await;
    assert_eq!(calls, 2);
    let err = result.err().expect("the ambiguous failure is returned");
    assert!(
        err.to_string().contains("may or may not have applied"),
        "{err}"
    );
}

#[tokio::test]
async fn final_failure_is_not_retried() {
    let (result, calls) = flaky(vec![compacted], Retry::Ambiguous).await;
    assert_eq!(calls, 1);
    let err = result.err().expect("the answer is returned");
    assert!(err.to_string().contains("has been compacted"), "{err}");
    assert!(!err.to_string().contains("may or may not"), "{err}");
}

#[tokio::test]
async fn final_failure_after_an_ambiguous_one_says_so() {
    let (result, calls) = flaky(vec![reset, compacted], Retry::Ambiguous).await;
    assert_eq!(calls, 2);
    let err = result.err().expect("the answer is returned");
    assert!(
        err.to_string().contains("may or may not have applied"),
        "{err}"
    );
}

#[tokio::test]
async fn reads_give_up_with_etcds_own_error() {
    let (result, calls) = flaky(vec![reset, compacted], Retry::Read).await;
    assert_eq!(calls, 2);
    let err = result.err().expect("the answer is returned");
    assert!(err.to_string().contains("has been compacted"), "{err}");
    assert!(!err.to_string().contains("may or may not"), "{err}");
}

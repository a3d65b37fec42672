//! The Kubernetes streaming protocols, shared by the CRI streaming server,
//! the kubelet's HTTPS endpoint and the API server:
//!
//! - [`channel`]: the WebSocket channel protocol (`v5.channel.k8s.io`,
//!   `v4.channel.k8s.io`) that exec and attach speak: stdin/stdout/stderr
//!   channels, the resize channel and the status channel with exit codes.
//! - [`spdy`] and [`portforward`]: SPDY/3.1 framing and the port-forward
//!   protocol on it (`portforward.k8s.io`), over a plain upgraded
//!   connection or tunnelled in WebSocket binary messages
//!   (`SPDY/3.1+portforward.k8s.io`, see [`wsbytes`]).
//! - [`upgrade`]: answering an HTTP/1.1 upgrade request (WebSocket or SPDY).
//! - [`proxy`]: an upgrade-aware reverse proxy of one request over a given
//!   connection (API server → kubelet → CRI streaming server).

#![forbid(unsafe_code)]

pub mod channel;
pub mod portforward;
pub mod proxy;
pub mod spdy;
pub mod upgrade;
pub mod wsbytes;

/// The body type of every response built here.
pub type Body = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("cannot {op}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP {op}")]
    Http {
        op: &'static str,
        #[source]
        source: hyper::Error,
    },
    #[error("bad upgrade request: {0}")]
    BadUpgrade(String),
}

/// An empty response body.
pub fn empty() -> Body {
    use http_body_util::BodyExt;
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A complete response body.
pub fn full(data: impl Into<bytes::Bytes>) -> Body {
    use http_body_util::BodyExt;
    http_body_util::Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

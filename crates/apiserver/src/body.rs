//! Response bodies and builders: JSON objects, `Status` errors, plain text,
//! and streams (watch). Every response goes through these.

use crate::status::ApiError;
use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;

/// The body type of every response.
pub type Body = BoxBody<Bytes, std::io::Error>;

pub const JSON: &str = "application/json";

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A response with a body and content type.
pub fn bytes(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// A JSON response.
pub fn json(code: u16, value: &serde_json::Value) -> Response<Body> {
    json_bytes(code, serde_json::to_vec(value).unwrap_or_default())
}

/// An already-serialised JSON body.
pub fn json_bytes(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    bytes(code, JSON, body)
}

/// A `Status` error response.
pub fn error(e: &ApiError) -> Response<Body> {
    let mut r = json(e.code, &e.to_status());
    if let Some(secs) = e.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    r
}

/// A plain-text response (health checks, metrics).
pub fn text(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    bytes(code, "text/plain; charset=utf-8", body)
}

/// A chunked response fed by a stream of already-framed chunks.
pub fn stream<S>(content_type: &str, s: S) -> Response<Body>
where
    S: futures::Stream<Item = Bytes> + Send + Sync + 'static,
{
    use futures::StreamExt;
    let body = StreamBody::new(s.map(|b| Ok::<_, std::io::Error>(Frame::data(b))));
    let mut r = Response::new(BodyExt::boxed(body));
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

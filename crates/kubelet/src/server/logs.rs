//! `containerLogs`: reads a container's CRI log file
//! (`<RFC3339Nano> <stdout|stderr> <F|P> <msg>` per line) and answers the
//! messages, with upstream's options: follow (polls for new lines, ends
//! when the container has exited and everything is sent, follows a
//! rotation after reading the old file to its end), previous (the instance
//! before the newest), tailLines, sinceSeconds/sinceTime, timestamps and
//! limitBytes.

use super::cri::Cri;
use super::{text, Query};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::path::PathBuf;
use std::time::Duration;
use streaming::Body;
use tokio::sync::mpsc;

/// How often a followed log is checked for new lines.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
}

impl Options {
    pub fn parse(q: &Query) -> Result<Options, String> {
        let num = |k: &str| -> Result<Option<i64>, String> {
            q.get(k)
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| format!("{k}: invalid value {v:?}"))
                })
                .transpose()
        };
        let mut since = q
            .get("sinceTime")
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|_| format!("sinceTime: invalid value {t:?}"))
            })
            .transpose()?;
        if let Some(s) = num("sinceSeconds")? {
            since = Some(Utc::now() - chrono::Duration::seconds(s.max(0)));
        }
        Ok(Options {
            follow: q.flag("follow"),
            previous: q.flag("previous"),
            timestamps: q.flag("timestamps"),
            tail: num("tailLines")?.filter(|n| *n >= 0).map(|n| n as usize),
            since,
            limit: num("limitBytes")?.filter(|n| *n > 0).map(|n| n as usize),
        })
    }
}

/// One parsed log line, formatted for the client (None: filtered out).
pub fn format_line(line: &[u8], o: &Options) -> Option<Vec<u8>> {
    let mut it = line.splitn(4, |b| *b == b' ');
    let (ts, _stream, tag) = (it.next()?, it.next()?, it.next()?);
    let msg = it.next().unwrap_or(b"");
    if let Some(since) = o.since {
        let t = std::str::from_utf8(ts).ok()?;
        let t = DateTime::parse_from_rfc3339(t).ok()?;
        if t < since {
            return None;
        }
    }
    let mut out = Vec::with_capacity(msg.len() + ts.len() + 2);
    if o.timestamps {
        out.extend_from_slice(ts);
        out.push(b' ');
    }
    out.extend_from_slice(msg);
    if tag != b"P" {
        out.push(b'\n');
    }
    Some(out)
}

/// Answers a containerLogs request.
pub async fn serve(cri: &Cri, ns: &str, pod: &str, c: &str, q: &Query) -> Response<Body> {
    let o = match Options::parse(q) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let list = match cri.containers(ns, pod, c).await {
        Ok(l) => l,
        Err((code, msg)) => return text(code, msg),
    };
    let target = if o.previous {
        match list.len().checked_sub(2).and_then(|i| list.get(i)) {
            Some(t) => t,
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("previous terminated container {c:?} in pod {pod:?} not found"),
                )
            }
        }
    } else {
        match list.last() {
            Some(t) => t,
            None => return text(StatusCode::NOT_FOUND, format!("container {c} not found")),
        }
    };
    let status = match cri.status(&target.id).await {
        Ok(s) => s,
        Err((code, msg)) => return text(code, msg),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let follow = (o.follow && !o.previous).then(|| (cri.clone(), target.id.clone()));
    tokio::spawn(stream(PathBuf::from(status.log_path), o, follow, tx));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(body).boxed());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

/// Sends what `path` holds (and, following, what it gains) to `tx`.
async fn stream(path: PathBuf, o: Options, follow: Option<(Cri, String)>, tx: mpsc::Sender<Bytes>) {
    let data = tokio::fs::read(&path).await.unwrap_or_default();
    let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut lines: Vec<Vec<u8>> = data[..complete]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| format_line(l, &o))
        .collect();
    if let Some(n) = o.tail {
        lines.drain(..lines.len().saturating_sub(n));
    }
    let mut budget = o.limit.unwrap_or(usize::MAX);
    if !send_all(&tx, lines, &mut budget).await {
        return;
    }
    let Some((cri, id)) = follow else {
        return;
    };
    let mut file = Followed::open(&path, complete as u64).await;
    let mut idle = 0u32;
    loop {
        tokio::time::sleep(POLL).await;
        if tx.is_closed() {
            return;
        }
        let mut fresh = file.read_new().await;
        if file.rotated() {
            // Rotated: the rest of the old file (read above), then the new one.
            file = Followed::open(&path, 0).await;
            fresh.extend(file.read_new().await);
        }
        if !fresh.is_empty() {
            idle = 0;
            let lines = fresh
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .filter_map(|l| format_line(l, &o))
                .collect();
            if !send_all(&tx, lines, &mut budget).await {
                return;
            }
            continue;
        }
        idle += 1;
        if idle.is_multiple_of(10) && !running(&cri, &id).await {
            return;
        }
    }
}

/// A followed log file, kept open so that lines written just before a
/// rotation (a rename) are still read from the old file.
struct Followed {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    ino: u64,
    /// Bytes of an incomplete last line, kept until its newline arrives.
    partial: Vec<u8>,
}

impl Followed {
    async fn open(path: &std::path::Path, offset: u64) -> Followed {
        use tokio::io::AsyncSeekExt;
        let mut file = tokio::fs::File::open(path).await.ok();
        if let Some(f) = file.as_mut() {
            if f.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
                file = None;
            }
        }
        Followed {
            path: path.to_path_buf(),
            file,
            ino: inode(path),
            partial: Vec::new(),
        }
    }

    /// The complete lines appended since the last call.
    async fn read_new(&mut self) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        if let Some(f) = self.file.as_mut() {
            let _ = f.read_to_end(&mut self.partial).await;
        }
        let complete = self
            .partial
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let rest = self.partial.split_off(complete);
        std::mem::replace(&mut self.partial, rest)
    }

    /// True when the path now names another file (or the file was truncated).
    fn rotated(&self) -> bool {
        let now = inode(&self.path);
        now != 0 && (now != self.ino || self.file.is_none())
    }
}

async fn running(cri: &Cri, id: &str) -> bool {
    cri.status(id)
        .await
        .is_ok_and(|s| s.state == k8s_cri::v1::ContainerState::ContainerRunning as i32)
}

/// Sends the lines within the byte budget; false once done or the client left.
async fn send_all(tx: &mpsc::Sender<Bytes>, lines: Vec<Vec<u8>>, budget: &mut usize) -> bool {
    let mut chunk = Vec::new();
    for l in lines {
        chunk.extend_from_slice(&l);
    }
    if chunk.is_empty() {
        return true;
    }
    let exhausted = chunk.len() >= *budget;
    chunk.truncate(*budget);
    *budget -= chunk.len();
    tx.send(Bytes::from(chunk)).await.is_ok() && !exhausted
}

fn inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_are_formatted_with_options() {
        let line = b"2026-11-26T18:00:00.123456789Z stdout F hello world";
        let plain = Options::default();
        assert_eq!(format_line(line, &plain).unwrap(), b"hello world\n");
        let ts = Options {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            format_line(line, &ts).unwrap(),
            b"2026-11-26T18:00:00.123456789Z hello world\n"
        );
        let partial = b"2026-11-26T18:00:00.1Z stderr P part";
        assert_eq!(format_line(partial, &plain).unwrap(), b"part");
        let later = Options {
            since: DateTime::parse_from_rfc3339("2026-11-26T19:00:00Z")
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            ..Default::default()
        };
        assert!(format_line(line, &later).is_none());
        assert!(format_line(b"garbage", &plain).is_none());
    }

    #[test]
    fn options_parse_upstreams_query() {
        let q = Query::parse(Some(
            "follow=true&tailLines=10&limitBytes=5&timestamps=true",
        ));
        let o = Options::parse(&q).unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!((o.tail, o.limit), (Some(10), Some(5)));
        assert!(Options::parse(&Query::parse(Some("tailLines=x"))).is_err());
        let o = Options::parse(&Query::parse(Some("sinceSeconds=60"))).unwrap();
        assert!(o.since.is_some());
    }
}

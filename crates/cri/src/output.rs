//! A container's output as its monitor handles it: each chunk read from a
//! stdout/stderr pipe or the pty master goes at once to the attached
//! clients, and, split into lines, to the kubelet's log file in the CRI
//! format (`<RFC3339Nano> <stream> <F|P> <line>`; a line longer than
//! [`MAX_LINE`] is written as `P` parts). A pty's output is the `stdout`
//! stream with its `\r\n` line ends written as plain lines, as containerd
//! does.

use crate::attach::Clients;
use crate::error::{io, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Longest line written as one entry; longer ones are split into `P` parts.
pub const MAX_LINE: usize = 16 * 1024;

/// The open log file, swapped for a new one after rotation.
pub type Log = Arc<Mutex<std::fs::File>>;

pub fn open_file(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io("open log", path))
}

pub fn open_log(path: &Path) -> Result<Log> {
    Ok(Arc::new(Mutex::new(open_file(path)?)))
}

/// Splits a stream's bytes into CRI log entries.
pub struct Lines {
    stream: &'static str,
    /// Drop a `\r` before each `\n` (pty output).
    crlf: bool,
    pending: Vec<u8>,
}

impl Lines {
    pub fn new(stream: &'static str, crlf: bool) -> Self {
        Lines {
            stream,
            crlf,
            pending: Vec::new(),
        }
    }

    /// Takes a chunk; returns the entries it completes.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in data.split_inclusive(|b| *b == b'\n') {
            self.pending.extend_from_slice(part);
            if part.ends_with(b"\n") {
                self.pending.pop();
                if self.crlf && self.pending.ends_with(b"\r") {
                    self.pending.pop();
                }
                self.entry(&mut out, "F");
            }
            while self.pending.len() >= MAX_LINE {
                let rest = self.pending.split_off(MAX_LINE);
                self.entry(&mut out, "P");
                self.pending = rest;
            }
        }
        out
    }

    /// The entry for what is left at the end of the stream, if anything.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            self.entry(&mut out, "F");
        }
        out
    }

    fn entry(&mut self, out: &mut Vec<u8>, tag: &str) {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        out.extend_from_slice(format!("{ts} {} {tag} ", self.stream).as_bytes());
        out.append(&mut self.pending);
        out.push(b'\n');
    }
}

/// Copies one output (a pipe, or the pty master when `pty`) to the clients
/// and the log until it ends (EOF, or EIO once a pty has no slave left).
pub fn pump(
    src: impl Read + Send + 'static,
    stream: &'static str,
    pty: bool,
    log: Log,
    clients: Clients,
) -> std::thread::JoinHandle<()> {
    let chan = if stream == "stdout" { 1 } else { 2 };
    std::thread::spawn(move || {
        let mut src = src;
        let mut lines = Lines::new(stream, pty);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
                Ok(n) => n,
            };
            clients.send(chan, &buf[..n]);
            write(&log, &lines.push(&buf[..n]));
        }
        write(&log, &lines.finish());
    })
}

fn write(log: &Log, entries: &[u8]) {
    if entries.is_empty() {
        return;
    }
    if let Ok(mut f) = log.lock() {
        let _ = f.write_all(entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(out: &[u8]) -> Vec<(String, String)> {
        String::from_utf8_lossy(out)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(4, ' ').collect();
                (f[2].to_string(), f[3].to_string())
            })
            .collect()
    }

    #[test]
    fn chunks_become_lines_and_partial_lines_wait() {
        let mut l = Lines::new("stdout", false);
        assert!(l.push(b"hel").is_empty());
        let out = l.push(b"lo\nwor");
        assert_eq!(parts(&out), vec![("F".into(), "hello".into())]);
        assert_eq!(parts(&l.finish()), vec![("F".into(), "wor".into())]);
        assert!(String::from_utf8_lossy(&out).contains(" stdout F hello\n"));
    }

    #[test]
    fn pty_line_ends_lose_their_cr_and_long_lines_split() {
        let mut l = Lines::new("stdout", true);
        let out = l.push(b"/ # echo hi\r\nhi\r\n");
        assert_eq!(
            parts(&out),
            vec![
                ("F".into(), "/ # echo hi".into()),
                ("F".into(), "hi".into())
            ]
        );
        let long = vec![b'x'; MAX_LINE + 10];
        let out = l.push(&long);
        assert_eq!(parts(&out), vec![("P".into(), "x".repeat(MAX_LINE))]);
        assert_eq!(parts(&l.finish()), vec![("F".into(), "x".repeat(10))]);
    }
}

//! Container logs in Docker's `json-file` format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-26T16:30:23.123456789Z"}`,
//! in `<root>/containers/<id>/ctr.log`. The monitor appends; `bosun logs`
//! reads, with `--tail`, `--timestamps` and `-f`.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;

pub const LOG_FILE: &str = "ctr.log";

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends output to a log file, splitting it into lines.
pub struct Writer {
    file: File,
    /// Per stream, the tail of a line not yet ended by a newline.
    partial: [Vec<u8>; 2],
}

impl Writer {
    pub fn open(dir: &Path) -> io::Result<Writer> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOG_FILE))?;
        Ok(Writer {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Logs `data` from stream 0 (stdout) or 1 (stderr).
    pub fn write(&mut self, stream: usize, data: &[u8]) -> io::Result<()> {
        let idx = stream.min(1);
        self.partial[idx].extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(pos) = self.partial[idx].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[idx].drain(..=pos).collect();
            out.extend(encode(idx, &line));
        }
        // Very long unterminated lines are flushed in pieces, as Docker does at 16 KiB.
        if self.partial[idx].len() >= 16 * 1024 {
            let line = std::mem::take(&mut self.partial[idx]);
            out.extend(encode(idx, &line));
        }
        self.file.write_all(&out)
    }

    /// Writes whatever is left of unterminated lines.
    pub fn flush(&mut self) -> io::Result<()> {
        for idx in 0..2 {
            if !self.partial[idx].is_empty() {
                let line = std::mem::take(&mut self.partial[idx]);
                self.file.write_all(&encode(idx, &line))?;
            }
        }
        Ok(())
    }
}

fn encode(stream: usize, line: &[u8]) -> Vec<u8> {
    let entry = Entry {
        log: String::from_utf8_lossy(line).into_owned(),
        stream: if stream == 0 { "stdout" } else { "stderr" }.into(),
        time: now_rfc3339(),
    };
    let mut v = serde_json::to_vec(&entry).unwrap_or_default();
    v.push(b'\n');
    v
}

/// The current time as Docker prints it (RFC 3339, nanoseconds, UTC).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Reads every complete entry from `offset`; returns them and the new offset.
pub fn read_from(path: &Path, offset: u64) -> io::Result<(Vec<Entry>, u64)> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut pos = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break; // end, or a line the monitor is still writing
        }
        pos += n as u64;
        if let Ok(e) = serde_json::from_str::<Entry>(&line) {
            entries.push(e);
        }
    }
    Ok((entries, pos))
}

/// Formats one entry as `docker logs` prints it.
pub fn render(entry: &Entry, timestamps: bool) -> String {
    if timestamps {
        format!("{} {}", entry.time, entry.log)
    } else {
        entry.log.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_tagged() {
        let dir = testkit::scratch_dir();
        let mut w = Writer::open(dir.path()).unwrap();
        w.write(0, b"one\ntw").unwrap();
        w.write(1, b"err\n").unwrap();
        w.write(0, b"o\n").unwrap();
        w.write(0, b"tail").unwrap();
        w.flush().unwrap();
        let (entries, end) = read_from(&dir.path().join(LOG_FILE), 0).unwrap();
        let logs: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            logs,
            [
                ("stdout", "one\n"),
                ("stderr", "err\n"),
                ("stdout", "two\n"),
                ("stdout", "tail")
            ]
        );
        let (more, _) = read_from(&dir.path().join(LOG_FILE), end).unwrap();
        assert!(more.is_empty());
        assert!(render(&entries[0], true).ends_with("Z one\n"));
    }
}

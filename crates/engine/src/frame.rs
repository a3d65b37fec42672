//! The attach protocol between a launching `bosun run` and the container's
//! monitor, over the socketpair the monitor inherits as fd 3. Every message
//! is a frame: one kind byte, a big-endian u32 length, then the payload.
//!
//! monitor → CLI: `Started` (pid), `Error` (one line), `Stdout`, `Stderr`,
//! `Exit` (the status as decimal text, sent after `--rm` cleanup).
//! CLI → monitor: `Stdin`, `StdinEof`, `Resize` (rows, cols as u16 BE),
//! `Signal` (number as decimal text).

use std::io::{self, Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Started = 1,
    Error = 2,
    Stdout = 3,
    Stderr = 4,
    Exit = 5,
    Stdin = 6,
    StdinEof = 7,
    Resize = 8,
    Signal = 9,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        use Kind::*;
        [
            Started, Error, Stdout, Stderr, Exit, Stdin, StdinEof, Resize, Signal,
        ]
        .into_iter()
        .find(|k| *k as u8 == b)
    }
}

/// Largest payload accepted; bigger frames mean a corrupt stream.
const MAX_FRAME: u32 = 1 << 20;

/// Writes one frame.
pub fn write(w: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| io::Error::other("frame too large"))?;
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind as u8);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read(r: &mut impl Read) -> io::Result<Option<(Kind, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let kind = Kind::from_byte(head[0])
        .ok_or_else(|| io::Error::other(format!("unknown frame kind {}", head[0])))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len > MAX_FRAME {
        return Err(io::Error::other(format!("frame of {len} bytes")));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

/// A decimal number carried in a payload.
pub fn number(payload: &[u8]) -> Option<i32> {
    std::str::from_utf8(payload).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write(&mut buf, Kind::Stdout, b"hello").unwrap();
        write(&mut buf, Kind::Exit, b"3").unwrap();
        let mut r = buf.as_slice();
        assert_eq!(
            read(&mut r).unwrap(),
            Some((Kind::Stdout, b"hello".to_vec()))
        );
        let (k, p) = read(&mut r).unwrap().unwrap();
        assert_eq!((k, number(&p)), (Kind::Exit, Some(3)));
        assert_eq!(read(&mut r).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error() {
        let mut r: &[u8] = &[200, 0, 0, 0, 1, 0];
        assert!(read(&mut r).is_err());
        let mut r: &[u8] = &[3, 255, 255, 255, 255];
        assert!(read(&mut r).is_err());
    }
}

//! The parent <-> init channel: length-prefixed frames over a Unix stream
//! socket pair. A frame is `[tag: u8][len: u32 LE][payload]`; reading exactly
//! one frame never consumes the next, so the stage-1 child can read GO and
//! leave CONFIG in the socket for the re-executed stage 2.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;

/// What a frame means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    /// parent -> init: uid/gid maps written and cgroup joined; go on.
    Go = 1,
    /// parent -> init: the JSON [`crate::init::InitConfig`].
    Config = 2,
    /// init -> parent: set up, waiting for `start` (payload: decimal pid, exec only).
    Ready = 3,
    /// init -> parent: setup failed (payload: one-line message).
    Fail = 4,
    /// exec stage 2 -> parent: the pid of the process that will exec (decimal).
    Pid = 5,
}

impl Tag {
    fn from_u8(v: u8) -> Option<Tag> {
        Some(match v {
            1 => Tag::Go,
            2 => Tag::Config,
            3 => Tag::Ready,
            4 => Tag::Fail,
            5 => Tag::Pid,
            _ => return None,
        })
    }
}

/// One end of the channel.
pub struct Channel(UnixStream);

/// Largest frame accepted (a config.json with a big seccomp profile fits easily).
const MAX_FRAME: usize = 16 << 20;

impl Channel {
    /// A connected pair (parent end, child end), both close-on-exec.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = UnixStream::pair().map_err(|e| Error::Init(format!("socketpair: {e}")))?;
        Ok((Channel(a), Channel(b)))
    }

    /// Adopts an inherited descriptor (stage 2 after re-exec).
    ///
    /// # Safety
    /// `fd` must be an open Unix stream socket owned by nobody else.
    pub unsafe fn from_raw(fd: RawFd) -> Channel {
        // SAFETY: the caller guarantees fd is an open socket we now own.
        Channel(unsafe { UnixStream::from_raw_fd(fd) })
    }

    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Sends one frame.
    pub fn send(&mut self, tag: Tag, payload: &[u8]) -> Result<()> {
        let mut buf = Vec::with_capacity(5 + payload.len());
        buf.push(tag as u8);
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(payload);
        self.0
            .write_all(&buf)
            .map_err(|e| Error::Init(format!("sending to the other side: {e}")))
    }

    /// Receives one frame; `None` when the other side closed the channel.
    pub fn recv(&mut self) -> Result<Option<(Tag, Vec<u8>)>> {
        let mut head = [0u8; 5];
        match self.0.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(Error::Init(format!("reading from the other side: {e}"))),
        }
        let tag = Tag::from_u8(head[0])
            .ok_or_else(|| Error::Init(format!("unknown frame tag {}", head[0])))?;
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            return Err(Error::Init(format!("frame of {len} bytes is too large")));
        }
        let mut payload = vec![0u8; len];
        self.0
            .read_exact(&mut payload)
            .map_err(|e| Error::Init(format!("reading a frame: {e}")))?;
        Ok(Some((tag, payload)))
    }

    /// Waits for a frame with `want`; a FAIL frame becomes its error, EOF an error.
    pub fn expect(&mut self, want: Tag) -> Result<Vec<u8>> {
        match self.recv()? {
            Some((tag, payload)) if tag == want => Ok(payload),
            Some((Tag::Fail, msg)) => Err(Error::Init(String::from_utf8_lossy(&msg).into_owned())),
            Some((tag, _)) => Err(Error::Init(format!("expected {want:?}, got {tag:?}"))),
            None => Err(Error::Init("exited before finishing its setup".into())),
        }
    }
}

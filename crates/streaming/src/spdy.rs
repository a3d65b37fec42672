//! SPDY/3.1 framing as Kubernetes port-forward uses it (the moby
//! `spdystream` dialect): control frames (SYN_STREAM, SYN_REPLY,
//! RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE) and data
//! frames, and the header blocks, compressed with one zlib stream per
//! direction that is primed with SPDY/3's preset dictionary.

use crate::Error;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// SPDY/3's zlib dictionary for header blocks (1423 bytes, from the spec).
pub const DICTIONARY: &[u8] = include_bytes!("spdy3_dictionary.bin");

/// The last frame of a stream in this direction.
pub const FLAG_FIN: u8 = 0x01;

/// Largest frame accepted (a 24-bit length allows 16 MiB; we need far less).
const MAX_FRAME: usize = 1 << 24;

/// RST_STREAM status codes used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_CANCEL: u32 = 5;

/// Name/value header pairs (names lower-case, as SPDY requires).
pub type Headers = Vec<(String, String)>;

/// One decoded frame; header blocks are already decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Settings,
    Ping(u32),
    GoAway {
        last_stream: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream: u32,
        delta: u32,
    },
    Data {
        stream: u32,
        flags: u8,
        data: Bytes,
    },
}

impl Frame {
    /// The value of header `name`, if present.
    pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Encodes and decodes frames for one end of a connection.
pub struct Codec {
    inflate: Decompress,
    deflate: Compress,
    deflate_primed: bool,
}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec {
    pub fn new() -> Self {
        Codec {
            inflate: Decompress::new(true),
            deflate: Compress::new(Compression::default(), true),
            deflate_primed: false,
        }
    }

    /// Takes one whole frame off the front of `buf`; `Ok(None)` if more
    /// bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if len > MAX_FRAME {
            return Err(Error::Protocol(format!("SPDY frame of {len} bytes")));
        }
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let mut head = buf.split_to(8);
        let body = buf.split_to(len).freeze();
        let first = head.get_u32();
        let flags = head.get_u8();
        if first & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data {
                stream: first & 0x7fff_ffff,
                flags,
                data: body,
            }));
        }
        let version = (first >> 16) & 0x7fff;
        if version != 3 {
            return Err(Error::Protocol(format!("SPDY version {version}")));
        }
        self.control(first & 0xffff, flags, body).map(Some)
    }

    fn control(&mut self, kind: u32, flags: u8, mut b: Bytes) -> Result<Frame, Error> {
        let need = |b: &Bytes, n: usize| {
            if b.len() < n {
                Err(Error::Protocol(format!("short SPDY control frame {kind}")))
            } else {
                Ok(())
            }
        };
        Ok(match kind {
            1 => {
                need(&b, 10)?;
                let stream = b.get_u32() & 0x7fff_ffff;
                b.advance(6); // associated stream, priority, slot
                let headers = self.inflate_headers(&b)?;
                Frame::SynStream {
                    stream,
                    flags,
                    headers,
                }
            }
            2 | 8 => {
                need(&b, 4)?;
                let stream = b.get_u32() & 0x7fff_ffff;
                let headers = self.inflate_headers(&b)?;
                if kind == 2 {
                    Frame::SynReply {
                        stream,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream,
                        flags,
                        headers,
                    }
                }
            }
            3 => {
                need(&b, 8)?;
                Frame::RstStream {
                    stream: b.get_u32() & 0x7fff_ffff,
                    status: b.get_u32(),
                }
            }
            4 => Frame::Settings,
            6 => {
                need(&b, 4)?;
                Frame::Ping(b.get_u32())
            }
            7 => {
                need(&b, 4)?;
                let last_stream = b.get_u32() & 0x7fff_ffff;
                let status = if b.len() >= 4 { b.get_u32() } else { 0 };
                Frame::GoAway {
                    last_stream,
                    status,
                }
            }
            9 => {
                need(&b, 8)?;
                Frame::WindowUpdate {
                    stream: b.get_u32() & 0x7fff_ffff,
                    delta: b.get_u32() & 0x7fff_ffff,
                }
            }
            k => return Err(Error::Protocol(format!("unknown SPDY control frame {k}"))),
        })
    }

    /// Appends the encoding of `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), Error> {
        match frame {
            Frame::Data {
                stream,
                flags,
                data,
            } => {
                out.put_u32(stream & 0x7fff_ffff);
                put_flags_len(out, *flags, data.len());
                out.put_slice(data);
            }
            Frame::SynStream {
                stream,
                flags,
                headers,
            } => {
                let block = self.deflate_headers(headers)?;
                control_head(out, 1, *flags, 10 + block.len());
                out.put_u32(*stream);
                out.put_u32(0);
                out.put_u16(0);
                out.put_slice(&block);
            }
            Frame::SynReply {
                stream,
                flags,
                headers,
            }
            | Frame::Headers {
                stream,
                flags,
                headers,
            } => {
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    2
                } else {
                    8
                };
                let block = self.deflate_headers(headers)?;
                control_head(out, kind, *flags, 4 + block.len());
                out.put_u32(*stream);
                out.put_slice(&block);
            }
            Frame::RstStream { stream, status } => {
                control_head(out, 3, 0, 8);
                out.put_u32(*stream);
                out.put_u32(*status);
            }
            Frame::Settings => {
                control_head(out, 4, 0, 4);
                out.put_u32(0);
            }
            Frame::Ping(id) => {
                control_head(out, 6, 0, 4);
                out.put_u32(*id);
            }
            Frame::GoAway {
                last_stream,
                status,
            } => {
                control_head(out, 7, 0, 8);
                out.put_u32(*last_stream);
                out.put_u32(*status);
            }
            Frame::WindowUpdate { stream, delta } => {
                control_head(out, 9, 0, 8);
                out.put_u32(*stream);
                out.put_u32(*delta);
            }
        }
        Ok(())
    }

    fn inflate_headers(&mut self, block: &[u8]) -> Result<Headers, Error> {
        let zerr = |e: String| Error::Protocol(format!("SPDY header block: {e}"));
        let mut out: Vec<u8> = Vec::with_capacity(block.len() * 4 + 256);
        let mut input = block;
        loop {
            let before_in = self.inflate.total_in();
            let res = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            input = &input[(self.inflate.total_in() - before_in) as usize..];
            match res {
                Ok(Status::StreamEnd) => break,
                Ok(_) if input.is_empty() && out.len() < out.capacity() => break,
                Ok(_) => out.reserve(out.capacity().max(1024)),
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| zerr(e.to_string()))?;
                }
                Err(e) => return Err(zerr(e.to_string())),
            }
        }
        parse_block(&out)
    }

    fn deflate_headers(&mut self, headers: &Headers) -> Result<Vec<u8>, Error> {
        let zerr = |e: String| Error::Protocol(format!("SPDY header block: {e}"));
        if !self.deflate_primed {
            self.deflate
                .set_dictionary(DICTIONARY)
                .map_err(|e| zerr(e.to_string()))?;
            self.deflate_primed = true;
        }
        let mut raw = BytesMut::new();
        raw.put_u32(headers.len() as u32);
        for (n, v) in headers {
            raw.put_u32(n.len() as u32);
            raw.put_slice(n.as_bytes());
            raw.put_u32(v.len() as u32);
            raw.put_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input: &[u8] = &raw;
        loop {
            let before_in = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| zerr(e.to_string()))?;
            input = &input[(self.deflate.total_in() - before_in) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
            out.reserve(out.capacity().max(256));
        }
    }
}

fn put_flags_len(out: &mut BytesMut, flags: u8, len: usize) {
    out.put_u8(flags);
    let l = len as u32;
    out.put_slice(&l.to_be_bytes()[1..]);
}

fn control_head(out: &mut BytesMut, kind: u16, flags: u8, len: usize) {
    out.put_u16(0x8000 | 3);
    out.put_u16(kind);
    put_flags_len(out, flags, len);
}

fn parse_block(mut b: &[u8]) -> Result<Headers, Error> {
    let bad = || Error::Protocol("truncated SPDY header block".into());
    let take = |b: &mut &[u8], n: usize| -> Result<Vec<u8>, Error> {
        if b.len() < n {
            return Err(bad());
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head.to_vec())
    };
    let u32_of = |b: &mut &[u8]| -> Result<usize, Error> {
        let v = take(b, 4)?;
        Ok(u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as usize)
    };
    let count = u32_of(&mut b)?;
    let mut out = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = u32_of(&mut b)?;
        let name = take(&mut b, n)?;
        let n = u32_of(&mut b)?;
        let value = take(&mut b, n)?;
        out.push((
            String::from_utf8_lossy(&name).to_ascii_lowercase(),
            String::from_utf8_lossy(&value).into_owned(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn dictionary_is_spdy3s() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert!(DICTIONARY.starts_with(b"\0\0\0\x07options"));
        assert!(DICTIONARY.ends_with(b",*,enq=0."));
    }

    #[test]
    fn frames_round_trip_through_one_compression_context() {
        let (mut tx, mut rx) = (Codec::new(), Codec::new());
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                flags: 0,
                headers: hdrs(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynStream {
                stream: 3,
                flags: 0,
                headers: hdrs(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream: 3,
                flags: 0,
                headers: Vec::new(),
            },
            Frame::Data {
                stream: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"GET / HTTP/1.0\r\n\r\n"),
            },
            Frame::Ping(7),
            Frame::RstStream {
                stream: 1,
                status: RST_CANCEL,
            },
            Frame::WindowUpdate {
                stream: 3,
                delta: 65536,
            },
            Frame::GoAway {
                last_stream: 3,
                status: 0,
            },
        ];
        let mut wire = BytesMut::new();
        for f in &frames {
            tx.encode(f, &mut wire).unwrap();
        }
        // Feed byte by byte at the end to exercise partial frames.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = rx.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let mut c = Codec::new();
        let mut b = BytesMut::from(&[0x80u8, 2, 0, 1, 0, 0, 0, 0][..]);
        assert!(matches!(c.decode(&mut b), Err(Error::Protocol(_))));
        let mut b = BytesMut::from(
            &[
                0x80u8, 3, 0, 1, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4,
            ][..],
        );
        assert!(c.decode(&mut b).is_err());
    }
}

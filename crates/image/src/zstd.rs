//! A reader for zstd streams of any number of frames (zstd:chunked layers
//! have many, plus skippable frames), on top of ruzstd's pure-Rust decoder.

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use std::io::{self, Read};

/// Magic numbers 0x184D2A50..=0x184D2A5F start skippable frames.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE: u32 = 0x184D_2A50;

/// Decompresses a multi-frame zstd stream.
pub struct Zstd<R: Read> {
    frame: Option<StreamingDecoder<Pushback<R>, FrameDecoder>>,
}

impl<R: Read> Zstd<R> {
    pub fn new(source: R) -> io::Result<Self> {
        let source = Pushback {
            pending: Vec::new(),
            inner: source,
        };
        Ok(Self {
            frame: next_frame(source, FrameDecoder::new())?,
        })
    }
}

impl<R: Read> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(frame) = self.frame.as_mut() else {
                return Ok(0);
            };
            let n = frame.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if let Some(done) = self.frame.take() {
                let (source, decoder) = done.into_parts();
                self.frame = next_frame(source, decoder)?;
            }
        }
    }
}

/// Starts the next data frame, skipping skippable frames; None at the end.
fn next_frame<R: Read>(
    mut source: Pushback<R>,
    decoder: FrameDecoder,
) -> io::Result<Option<StreamingDecoder<Pushback<R>, FrameDecoder>>> {
    loop {
        let mut magic = [0u8; 4];
        match read_full(&mut source, &mut magic)? {
            0 => return Ok(None),
            4 => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated zstd stream",
                ))
            }
        }
        if u32::from_le_bytes(magic) & SKIPPABLE_MASK == SKIPPABLE {
            let mut len = [0u8; 4];
            source.read_exact(&mut len)?;
            let skip = u64::from(u32::from_le_bytes(len));
            io::copy(&mut (&mut source).take(skip), &mut io::sink())?;
            continue;
        }
        source.pending = magic.to_vec();
        return StreamingDecoder::new_with_decoder(source, decoder)
            .map(Some)
            .map_err(io::Error::other);
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// A reader with a few bytes pushed back in front of it.
struct Pushback<R> {
    pending: Vec<u8>,
    inner: R,
}

impl<R: Read> Read for Pushback<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            return self.inner.read(buf);
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    #[test]
    fn decodes_several_frames_and_skips_skippable_ones() {
        let mut stream = compress(b"hello ");
        stream.extend_from_slice(&0x184D_2A5Au32.to_le_bytes());
        stream.extend_from_slice(&3u32.to_le_bytes());
        stream.extend_from_slice(b"xyz");
        stream.extend(compress(&vec![b'w'; 100_000]));
        let mut out = Vec::new();
        Zstd::new(stream.as_slice())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(&out[..6], b"hello ");
        assert_eq!(out.len(), 6 + 100_000);
        assert!(Zstd::new(&b"\x28\xb5"[..]).is_err());
    }
}

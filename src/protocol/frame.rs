//! Framing: a 4-byte big-endian length, then a postcard body; encoders, the cancel-safe frame
//! codec and the read/write helpers both sides use.

use super::{MAX_FRAME, MAX_RESPONSE_FRAME, Response};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug)]
pub enum FrameError {
    Io(std::io::Error),
    TooLarge(usize),
    Decode(postcard::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::TooLarge(n) => {
                write!(f, "frame of {n} bytes exceeds the limit")
            }
            FrameError::Decode(e) => write!(f, "malformed message: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e)
    }
}

impl FrameError {
    /// True when the peer simply went away.
    pub fn is_eof(&self) -> bool {
        matches!(self, FrameError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof)
    }
}

/// Encodes a message as one frame (length prefix included).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out =
        postcard::to_extend(msg, vec![0u8; 4]).expect("serialising into a Vec cannot fail");
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Indexes of `Response::Output` and `Response::Fresh` in postcard's encoding (variants are
/// numbered in order).
const OUTPUT_VARIANT: u8 = 3;
const FRESH_VARIANT: u8 = 15;

/// Encodes `Response::Output(data)` as one frame with a single copy of `data`. A unit test
/// pins it to postcard's own encoding.
pub fn encode_output(data: &[u8]) -> Vec<u8> {
    let mut out = output_header(data.len());
    out.reserve_exact(data.len());
    out.extend_from_slice(data);
    out
}

/// The bytes that precede `len` bytes of output in a `Response::Output` frame, so the hot path
/// of every attached client writes the output itself without copying it.
pub fn output_header(len: usize) -> Vec<u8> {
    bytes_frame_header(OUTPUT_VARIANT, len)
}

/// The bytes that precede a screen of `len` bytes in a `Response::Fresh` frame (an attach's
/// replay may be megabytes: written in place, not copied).
pub fn fresh_header(len: usize) -> Vec<u8> {
    bytes_frame_header(FRESH_VARIANT, len)
}

/// The frame header of a `Response` variant `variant` whose one field is `len` bytes.
fn bytes_frame_header(variant: u8, len: usize) -> Vec<u8> {
    let mut len_varint = [0u8; 10];
    let mut n = len;
    let mut used = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            len_varint[used] = byte;
            used += 1;
            break;
        }
        len_varint[used] = byte | 0x80;
        used += 1;
    }
    let body_len = 1 + used + len;
    let mut out = Vec::with_capacity(4 + 1 + used);
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    out.push(variant);
    out.extend_from_slice(&len_varint[..used]);
    out
}

/// Splits a byte stream into frame bodies. Used through `tokio_util`'s `FramedRead`, whose
/// buffer lives outside any `select!`, so a read that loses a race keeps what it already read
/// (reading frames with `read_exact` inside `select!` dropped half-read frames). Unlike
/// `LengthDelimitedCodec` it never reserves a whole announced frame ahead: memory grows only
/// with the bytes that actually arrived.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    limit: usize,
}

impl FrameCodec {
    /// Frames from a client: at most [`MAX_FRAME`].
    pub fn requests() -> FrameCodec {
        FrameCodec { limit: MAX_FRAME }
    }

    /// Frames from the server: at most [`MAX_RESPONSE_FRAME`].
    pub fn responses() -> FrameCodec {
        FrameCodec {
            limit: MAX_RESPONSE_FRAME,
        }
    }
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = bytes::BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut bytes::BytesMut) -> Result<Option<Self::Item>, FrameError> {
        let Some(header) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > self.limit {
            return Err(FrameError::TooLarge(len));
        }
        if src.len() < 4 + len {
            return Ok(None);
        }
        let mut frame = src.split_to(4 + len);
        let _ = frame.split_to(4);
        Ok(Some(frame))
    }
}

/// Reads frames from `R` cancellation-safely.
pub type FrameReader<R> = tokio_util::codec::FramedRead<R, FrameCodec>;

/// The next frame decoded as `T`; an orderly end of the stream is `UnexpectedEof`.
pub async fn next_message<R: AsyncRead + Unpin, T: for<'a> Deserialize<'a>>(
    frames: &mut FrameReader<R>,
) -> Result<T, FrameError> {
    use tokio_stream::StreamExt;
    match frames.next().await {
        Some(Ok(body)) => decode(&body),
        Some(Err(e)) => Err(e),
        None => Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())),
    }
}

/// Decodes a frame body (without the length prefix).
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    postcard::from_bytes(body).map_err(FrameError::Decode)
}

pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> std::io::Result<()> {
    w.write_all(&encode(msg)).await?;
    w.flush().await
}

/// Reads one frame body into `buf`, refusing lengths over [`MAX_FRAME`] before allocating.
pub async fn read_frame_into<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<(), FrameError> {
    read_frame_limited(r, buf, MAX_FRAME).await
}

/// Like [`read_frame_into`] with a limit of the caller's choosing.
pub async fn read_frame_limited<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> Result<(), FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(FrameError::TooLarge(len));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    Ok(())
}

pub async fn read_frame<R: AsyncRead + Unpin, T: for<'a> Deserialize<'a>>(
    r: &mut R,
) -> Result<T, FrameError> {
    let mut buf = Vec::new();
    read_frame_into(r, &mut buf).await?;
    decode(&buf)
}

/// Reads a server's response: larger frames than a client may send are fine here.
pub async fn read_response<R: AsyncRead + Unpin>(r: &mut R) -> Result<Response, FrameError> {
    let mut buf = Vec::new();
    read_frame_limited(r, &mut buf, MAX_RESPONSE_FRAME).await?;
    decode(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Request;

    #[test]
    fn hand_encoded_output_matches_postcard() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert_eq!(
                encode_output(&data),
                encode(&Response::Output(data.clone())),
                "len {len}"
            );
        }
    }

    #[test]
    fn hand_encoded_fresh_header_matches_postcard() {
        for len in [0usize, 1, 128, 70_000] {
            let screen: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut frame = fresh_header(len);
            frame.extend_from_slice(&screen);
            assert_eq!(frame, encode(&Response::Fresh(screen)), "len {len}");
        }
    }

    #[test]
    fn frames_round_trip() {
        let msg = Request::Input(vec![1, 2, 3]);
        let frame = encode(&msg);
        assert_eq!(
            u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len() - 4
        );
        let back: Request = decode(&frame[4..]).unwrap();
        assert_eq!(back, msg);
    }
}

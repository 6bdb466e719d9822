//! Framing: `len: u32 LE` (bytes after this field) · `kind: u8` · `stream: u32 LE` · payload.
//!
//! A frame's payload is at most [`MAX_PAYLOAD`] bytes; a larger length on the wire is an
//! error (a corrupt or hostile peer), never an allocation.

use std::io::{self, Read, Write};

use thiserror::Error;

/// The largest payload a frame may carry (4 MiB).
pub const MAX_PAYLOAD: usize = 4 << 20;
const HEADER_AFTER_LEN: usize = 5;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A request, JSON-encoded [`crate::message::Request`].
    Call,
    /// The answer to a call, JSON-encoded [`crate::message::Response`].
    Reply,
    /// Bytes of a stream (stdout, stderr, stdin of a process).
    Data,
    /// The end of a stream.
    Eof,
    /// An unsolicited notification from the agent, JSON-encoded.
    Event,
}

impl FrameKind {
    fn to_byte(self) -> u8 {
        match self {
            Self::Call => 1,
            Self::Reply => 2,
            Self::Data => 3,
            Self::Eof => 4,
            Self::Event => 5,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Call,
            2 => Self::Reply,
            3 => Self::Data,
            4 => Self::Eof,
            5 => Self::Event,
            _ => return None,
        })
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the payload is.
    pub kind: FrameKind,
    /// The stream it belongs to; 0 is the control stream of calls and replies.
    pub stream: u32,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

/// Reading or writing a frame failed.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("the peer closed the connection")]
    Closed,
    /// The connection failed.
    #[error("frame I/O failed")]
    Io(#[from] io::Error),
    /// The length field exceeds [`MAX_PAYLOAD`] or is shorter than the header.
    #[error("frame length {0} is out of range (header 5, payload at most {MAX_PAYLOAD})")]
    BadLength(u64),
    /// The kind byte is unknown.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
}

impl Frame {
    /// A frame on the control stream.
    pub fn control(kind: FrameKind, payload: Vec<u8>) -> Self {
        Self { kind, stream: 0, payload }
    }

    /// Writes the frame (header and payload) to `w`.
    pub fn write_to(&self, w: &mut impl Write) -> Result<(), FrameError> {
        if self.payload.len() > MAX_PAYLOAD {
            return Err(FrameError::BadLength(self.payload.len() as u64));
        }
        let len = u32::try_from(self.payload.len() + HEADER_AFTER_LEN)
            .map_err(|_| FrameError::BadLength(self.payload.len() as u64))?;
        let mut header = [0u8; 9];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4] = self.kind.to_byte();
        header[5..].copy_from_slice(&self.stream.to_le_bytes());
        w.write_all(&header)?;
        w.write_all(&self.payload)?;
        w.flush()?;
        Ok(())
    }

    /// Reads one frame from `r`; [`FrameError::Closed`] on a clean end of stream.
    pub fn read_from(r: &mut impl Read) -> Result<Self, FrameError> {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes(len) as usize;
        if !(HEADER_AFTER_LEN..=HEADER_AFTER_LEN + MAX_PAYLOAD).contains(&len) {
            return Err(FrameError::BadLength(len as u64));
        }
        let mut header = [0u8; HEADER_AFTER_LEN];
        r.read_exact(&mut header)?;
        let kind = FrameKind::from_byte(header[0]).ok_or(FrameError::UnknownKind(header[0]))?;
        let stream = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
        let mut payload = vec![0u8; len - HEADER_AFTER_LEN];
        r.read_exact(&mut payload)?;
        Ok(Self { kind, stream, payload })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_back_to_back() {
        let frames = [
            Frame::control(FrameKind::Call, b"{}".to_vec()),
            Frame { kind: FrameKind::Data, stream: 7, payload: vec![0xff; 70_000] },
            Frame { kind: FrameKind::Eof, stream: 7, payload: Vec::new() },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            f.write_to(&mut wire).unwrap();
        }
        let mut r = wire.as_slice();
        for f in &frames {
            assert_eq!(&Frame::read_from(&mut r).unwrap(), f);
        }
        assert!(matches!(Frame::read_from(&mut r), Err(FrameError::Closed)));
    }

    #[test]
    fn hostile_lengths_and_kinds_are_rejected_without_allocating() {
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(&[1, 0, 0, 0, 0]);
        assert!(matches!(Frame::read_from(&mut huge.as_slice()), Err(FrameError::BadLength(_))));
        let short = 2u32.to_le_bytes();
        assert!(matches!(Frame::read_from(&mut short.as_slice()), Err(FrameError::BadLength(2))));
        let mut bad_kind = 5u32.to_le_bytes().to_vec();
        bad_kind.extend_from_slice(&[9, 0, 0, 0, 0]);
        assert!(matches!(Frame::read_from(&mut bad_kind.as_slice()), Err(FrameError::UnknownKind(9))));
        let mut truncated = Vec::new();
        Frame::control(FrameKind::Call, vec![1; 10]).write_to(&mut truncated).unwrap();
        truncated.truncate(12);
        assert!(matches!(Frame::read_from(&mut truncated.as_slice()), Err(FrameError::Io(_))));
    }
}

//! Opening a dataset file that may be gzip-compressed, and reading it in bounded pieces.
//!
//! Nothing here allocates more than the bytes actually read (or a caller's fixed buffer): sizes a
//! file's header claims are never trusted for an allocation, only compared with what is there.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::GzDecoder;

use crate::error::DataError;

/// Bytes read per step by [`Input::read_up_to`].
const CHUNK: usize = 64 * 1024;

/// An open dataset file: the file itself, or the decompressed stream of a gzip file.
pub(crate) struct Input {
    path: PathBuf,
    reader: Box<dyn BufRead>,
    /// The file's length when it is read as is (`None` when it is gzip-compressed, whose
    /// decompressed length is only known once it has been read).
    raw_len: Option<u64>,
}

impl Input {
    /// Opens `path`, decompressing it when it starts with the gzip magic bytes `1f 8b`.
    pub(crate) fn open(path: &Path) -> Result<Self, DataError> {
        let cannot = |e: io::Error| DataError::new(path, format!("cannot read: {e}"));
        let file = File::open(path).map_err(cannot)?;
        let len = file.metadata().map_err(cannot)?.len();
        let mut buffered = BufReader::new(file);
        let gz = buffered.fill_buf().map_err(cannot)?.starts_with(&[0x1f, 0x8b]);
        // `fill_buf` on a fresh reader returns fewer than 2 bytes only for a file that short, so a
        // file cut inside the magic is read as is (and then refused by its own format's checks).
        let (reader, raw_len): (Box<dyn BufRead>, _) = if gz {
            (Box::new(BufReader::new(GzDecoder::new(buffered))), None)
        } else {
            (Box::new(buffered), Some(len))
        };
        Ok(Input { path: path.to_path_buf(), reader, raw_len })
    }

    /// The file's length when it is not compressed.
    pub(crate) fn raw_len(&self) -> Option<u64> {
        self.raw_len
    }

    /// "file" or "decompressed stream", for messages.
    pub(crate) fn what(&self) -> &'static str {
        if self.raw_len.is_some() { "file" } else { "decompressed stream" }
    }

    /// An error about this file.
    pub(crate) fn error(&self, problem: impl Into<String>) -> DataError {
        DataError::new(&self.path, problem)
    }

    fn io_error(&self, e: io::Error) -> DataError {
        if self.raw_len.is_some() {
            self.error(format!("cannot read: {e}"))
        } else {
            self.error(format!("corrupt gzip stream: {e}"))
        }
    }

    /// Fills `buf` from the stream; returns how many bytes were read, fewer than `buf.len()` only
    /// at the end of the stream. A gzip stream's checksum is verified when its end is reached.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) -> Result<usize, DataError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        Ok(filled)
    }

    /// Reads at most `limit` bytes, growing the result only by what is actually read (so a huge
    /// `limit` taken from an untrusted header allocates nothing extra). Fewer than `limit` bytes
    /// means the stream ended.
    pub(crate) fn read_up_to(&mut self, limit: u64) -> Result<Vec<u8>, DataError> {
        let mut out = Vec::new();
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let left = limit - out.len() as u64;
            if left == 0 {
                return Ok(out);
            }
            let want = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
            let got = self.fill(&mut chunk[..want])?;
            out.extend_from_slice(&chunk[..got]);
            if got < want {
                return Ok(out);
            }
        }
    }

    /// The next line, without its `\n` (or `\r\n`); `None` at the end of the stream. A line longer
    /// than `max` bytes is refused (naming it as line `number`) without reading more of it.
    pub(crate) fn read_line(&mut self, max: usize, number: usize) -> Result<Option<Vec<u8>>, DataError> {
        let mut line = Vec::new();
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        if let Err(e) = (&mut self.reader).take(limit).read_until(b'\n', &mut line) {
            return Err(self.io_error(e));
        }
        if line.is_empty() {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        } else if line.len() > max {
            return Err(self.error(format!("line {number} is longer than {max} bytes")));
        }
        Ok(Some(line))
    }
}

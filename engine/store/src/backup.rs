//! The backup file: every key and value of a store's trees, as one stream
//! with a checksum over all of it.
//!
//! ```text
//! "STEPLINE-BACKUP\n"            16 bytes
//! backup format (u32 BE)         BACKUP_FORMAT
//! store format (u32 BE)          the FORMAT_VERSION of the store it came from
//! frames:
//!   'T' len (u32 BE) name        the entries that follow belong to this tree
//!   'E' len key len value        one entry (lengths u32 BE)
//!   'Z' entries (u64 BE)         the end, and how many entries came before
//! SHA-256 of every byte above    32 bytes
//! ```
//!
//! A reader checks the structure and the checksum before anything is
//! restored ([`verify`]), so a damaged or cut backup is refused whole.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use super::{FORMAT_VERSION, StoreError};

const MAGIC: &[u8; 16] = b"STEPLINE-BACKUP\n";
const BACKUP_FORMAT: u32 = 1;
/// The longest key or value a frame may announce: larger means damage.
const MAX_FRAME: u32 = 64 * 1024 * 1024;

/// What a backup holds, as counted while writing or verifying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    pub entries: u64,
    pub bytes: u64,
    pub store_format: u32,
}

/// Writes a backup to `out`, hashing as it goes.
pub(super) struct BackupWriter<W: Write> {
    out: W,
    hash: Sha256,
    entries: u64,
    bytes: u64,
}

impl<W: Write> BackupWriter<W> {
    pub fn new(out: W) -> Result<Self, StoreError> {
        let mut writer = Self {
            out,
            hash: Sha256::new(),
            entries: 0,
            bytes: 0,
        };
        writer.put(MAGIC)?;
        writer.put(&BACKUP_FORMAT.to_be_bytes())?;
        writer.put(&FORMAT_VERSION.to_be_bytes())?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes).map_err(write_failed)
    }

    fn put_sized(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|len| *len <= MAX_FRAME)
            .ok_or_else(|| StoreError::Corrupt("a stored value is too large to back up".into()))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }

    /// The entries that follow belong to `name`.
    pub fn tree(&mut self, name: &[u8]) -> Result<(), StoreError> {
        self.put(b"T")?;
        self.put_sized(name)
    }

    pub fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.put(b"E")?;
        self.put_sized(key)?;
        self.put_sized(value)?;
        self.entries += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<BackupSummary, StoreError> {
        self.put(b"Z")?;
        self.put(&self.entries.to_be_bytes())?;
        let digest = self.hash.finalize_reset();
        self.out.write_all(&digest).map_err(write_failed)?;
        self.out.flush().map_err(write_failed)?;
        Ok(BackupSummary {
            entries: self.entries,
            bytes: self.bytes + 32,
            store_format: FORMAT_VERSION,
        })
    }
}

fn write_failed(e: std::io::Error) -> StoreError {
    StoreError::File {
        what: "writing the backup failed".into(),
        source: e,
    }
}

/// One frame of a backup, as read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame {
    Tree(Vec<u8>),
    Entry(Vec<u8>, Vec<u8>),
}

/// Reads a backup's frames in order; the last call checks the count and
/// the checksum.
pub(super) struct BackupReader<R: Read> {
    input: R,
    hash: Sha256,
    entries: u64,
    bytes: u64,
    store_format: u32,
    done: bool,
}

fn bad(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("the backup is damaged or incomplete: {what}"))
}

impl<R: Read> BackupReader<R> {
    pub fn new(input: R) -> Result<Self, StoreError> {
        let mut reader = Self {
            input,
            hash: Sha256::new(),
            entries: 0,
            bytes: 0,
            store_format: 0,
            done: false,
        };
        let mut magic = [0u8; 16];
        reader.take(&mut magic)?;
        if &magic != MAGIC {
            return Err(StoreError::Corrupt(
                "this is not a stepline backup (it does not start with STEPLINE-BACKUP)".into(),
            ));
        }
        let format = reader.take_u32()?;
        if format != BACKUP_FORMAT {
            return Err(StoreError::Corrupt(format!(
                "the backup's format is {format}; this build reads format {BACKUP_FORMAT}"
            )));
        }
        reader.store_format = reader.take_u32()?;
        if reader.store_format > FORMAT_VERSION {
            return Err(StoreError::NewerFormat {
                found: reader.store_format,
                supported: FORMAT_VERSION,
            });
        }
        Ok(reader)
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => bad("it ends too soon"),
            _ => StoreError::File {
                what: "reading the backup failed".into(),
                source: e,
            },
        })?;
        self.hash.update(&*buf);
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn take_u32(&mut self) -> Result<u32, StoreError> {
        let mut bytes = [0u8; 4];
        self.take(&mut bytes)?;
        Ok(u32::from_be_bytes(bytes))
    }

    fn take_sized(&mut self) -> Result<Vec<u8>, StoreError> {
        let len = self.take_u32()?;
        if len > MAX_FRAME {
            return Err(bad(format_args!("a frame claims {len} bytes")));
        }
        let mut bytes = vec![0u8; len as usize];
        self.take(&mut bytes)?;
        Ok(bytes)
    }

    /// The next frame, or `None` at the end once the count and checksum
    /// are right.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let mut tag = [0u8; 1];
        self.take(&mut tag)?;
        match &tag {
            b"T" => Ok(Some(Frame::Tree(self.take_sized()?))),
            b"E" => {
                let key = self.take_sized()?;
                let value = self.take_sized()?;
                self.entries += 1;
                Ok(Some(Frame::Entry(key, value)))
            }
            b"Z" => {
                let mut count = [0u8; 8];
                self.take(&mut count)?;
                if u64::from_be_bytes(count) != self.entries {
                    return Err(bad("its entry count does not match"));
                }
                let expected = self.hash.finalize_reset();
                let mut digest = [0u8; 32];
                self.input
                    .read_exact(&mut digest)
                    .map_err(|_| bad("its checksum is missing"))?;
                if digest[..] != expected[..] {
                    return Err(bad("its checksum does not match"));
                }
                self.bytes += 32;
                self.done = true;
                Ok(None)
            }
            other => Err(bad(format_args!(
                "an unknown frame {:?} after {} bytes",
                other[0] as char, self.bytes
            ))),
        }
    }

    pub fn summary(&self) -> BackupSummary {
        BackupSummary {
            entries: self.entries,
            bytes: self.bytes,
            store_format: self.store_format,
        }
    }
}

/// Reads the whole backup, checking its structure and checksum.
pub fn verify(input: impl Read) -> Result<BackupSummary, StoreError> {
    let mut reader = BackupReader::new(input)?;
    while reader.next_frame()?.is_some() {}
    Ok(reader.summary())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = BackupWriter::new(&mut out).unwrap();
        writer.tree(b"data").unwrap();
        writer.entry(b"k1", b"v1").unwrap();
        writer.entry(b"k2", b"").unwrap();
        writer.tree(b"meta").unwrap();
        writer.entry(b"format", &3u32.to_be_bytes()).unwrap();
        let summary = writer.finish().unwrap();
        assert_eq!(summary.entries, 3);
        assert_eq!(summary.bytes, out.len() as u64);
        out
    }

    #[test]
    fn a_backup_reads_back_frame_by_frame() {
        let bytes = sample();
        let mut reader = BackupReader::new(&bytes[..]).unwrap();
        let mut frames = Vec::new();
        while let Some(frame) = reader.next_frame().unwrap() {
            frames.push(frame);
        }
        assert_eq!(
            frames,
            vec![
                Frame::Tree(b"data".to_vec()),
                Frame::Entry(b"k1".to_vec(), b"v1".to_vec()),
                Frame::Entry(b"k2".to_vec(), Vec::new()),
                Frame::Tree(b"meta".to_vec()),
                Frame::Entry(b"format".to_vec(), 3u32.to_be_bytes().to_vec()),
            ]
        );
        assert_eq!(verify(&bytes[..]).unwrap().entries, 3);
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_refused() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(verify(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x20;
            assert!(verify(&damaged[..]).is_err(), "flip at {at}");
        }
    }
}

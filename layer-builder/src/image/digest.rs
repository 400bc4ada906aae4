//! Content addressing: sha256 digests and readers that hash or verify what
//! passes through them.

use crate::error::{Error, Result};
use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};
use std::str::FromStr;

pub fn sha256_digest(data: &[u8]) -> Digest {
    from_hasher(Sha256::new_with_prefix(data))
}

fn from_hasher(h: Sha256) -> Digest {
    let s = format!("sha256:{}", hex::encode(h.finalize()));
    Digest::from_str(&s).expect("a sha256 hex string is a valid digest")
}

pub fn parse_digest(place: &str, s: &str) -> Result<Digest> {
    let d =
        Digest::from_str(s).map_err(|e| Error::invalid(place, format!("bad digest '{s}': {e}")))?;
    if d.algorithm().as_ref() != "sha256" {
        return Err(Error::invalid(
            place,
            format!("digest '{s}' uses an unsupported algorithm; only sha256 is supported"),
        ));
    }
    Ok(d)
}

/// The hex part of a sha256 digest, used for blob file names.
pub fn hex_of(d: &Digest) -> &str {
    d.digest()
}

/// Hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> (Digest, u64) {
        (from_hasher(self.hasher), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Hashes and counts everything written through it (into a sink or a file).
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Fails the read that reaches the end of the content when its digest or
/// size differs from the descriptor's, so corrupt content never passes on
/// silently.
pub struct VerifyingReader<R> {
    inner: HashingReader<R>,
    expected: Digest,
    size: u64,
    place: String,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, size: u64, place: String) -> Self {
        VerifyingReader {
            inner: HashingReader::new(inner),
            expected,
            size,
            place,
            done: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if self.inner.count > self.size {
            return Err(corrupt(
                &self.place,
                &self.expected,
                format!("longer than the {} bytes its descriptor says", self.size),
            ));
        }
        if n == 0 && !buf.is_empty() {
            self.done = true;
            let hasher = std::mem::replace(&mut self.inner.hasher, Sha256::new());
            let got = from_hasher(hasher);
            if self.inner.count != self.size {
                return Err(corrupt(
                    &self.place,
                    &self.expected,
                    format!("{} bytes instead of {}", self.inner.count, self.size),
                ));
            }
            if got != self.expected {
                return Err(corrupt(
                    &self.place,
                    &self.expected,
                    format!("its content hashes to {got}"),
                ));
            }
        }
        Ok(n)
    }
}

fn corrupt(place: &str, expected: &Digest, detail: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        Error::Corrupt {
            place: place.to_string(),
            expected: expected.to_string(),
            detail,
        },
    )
}

/// Turns an io::Error back into the crate error it carries, if any.
pub fn unwrap_io(path: &str, action: &'static str, e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        let inner = e.into_inner().expect("checked above");
        return *inner.downcast::<Error>().expect("checked above");
    }
    Error::io(path, action, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_reader_accepts_matching_and_rejects_corrupt_content() {
        let data = b"hello layer";
        let d = sha256_digest(data);
        let mut ok = VerifyingReader::new(&data[..], d.clone(), data.len() as u64, "t".into());
        io::copy(&mut ok, &mut io::sink()).unwrap();

        let bad = b"hellO layer";
        let mut r = VerifyingReader::new(&bad[..], d.clone(), bad.len() as u64, "oci:/x".into());
        let e = io::copy(&mut r, &mut io::sink()).unwrap_err();
        let msg = unwrap_io("x", "read", e).to_string();
        assert!(
            msg.contains("oci:/x") && msg.contains("corrupt") && msg.contains(&d.to_string()),
            "{msg}"
        );

        let mut short = VerifyingReader::new(&data[..5], d, data.len() as u64, "t".into());
        let e = io::copy(&mut short, &mut io::sink()).unwrap_err();
        assert!(unwrap_io("x", "read", e)
            .to_string()
            .contains("5 bytes instead of 11"));
    }
}

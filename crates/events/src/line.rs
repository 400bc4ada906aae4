//! JSON lines written into memory the caller provides: no allocation, no
//! lock, nothing but copies and arithmetic, so a signal handler or a
//! `vfork` child may build one. The output is byte for byte what
//! [`Event::to_line`](crate::Event::to_line) (serde_json) writes for the
//! same values: the same escapes (`\"`, `\\`, `\b`, `\t`, `\n`, `\f`, `\r`,
//! `\u00xx` for the other control characters, lower-case hex, everything
//! else as it is) and the same number forms. The caller writes the fields
//! in [`Event`](crate::Event)'s order and leaves out what serde would skip.

use std::fmt;

/// Where text is written: a `String` (an [`Event`](crate::Event)'s field)
/// or a JSON string inside a [`Line`] (escaped as it is written). Code
/// that composes a text once against this trait fills both the same way.
pub trait Text {
    fn text(&mut self, s: &str);

    /// `bytes` as `String::from_utf8_lossy` shows them: each invalid
    /// sequence one U+FFFD. Each call converts on its own, as a separate
    /// `from_utf8_lossy` would.
    fn lossy(&mut self, bytes: &[u8]) {
        lossy_chunks(self, bytes);
    }
}

/// [`Text::lossy`]'s conversion, chunk by chunk.
fn lossy_chunks<T: Text + ?Sized>(out: &mut T, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.text(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.text("\u{FFFD}");
        }
    }
}

impl Text for String {
    fn text(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// `write!` into a [`Text`] (numbers, addresses): `core::fmt` allocates
/// nothing.
pub struct Fmt<'t, T: Text + ?Sized>(pub &'t mut T);

impl<T: Text + ?Sized> fmt::Write for Fmt<'_, T> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.text(s);
        Ok(())
    }
}

/// One JSON object and its newline, written into `buf`. Past the end of
/// `buf` nothing more is copied but the length is still counted, so the
/// caller learns how much memory the whole line needs ([`Line::needed`]).
pub struct Line<'b> {
    buf: &'b mut [u8],
    len: usize,
    fields: u32,
}

impl<'b> Line<'b> {
    /// Starts the object (`{`).
    pub fn new(buf: &'b mut [u8]) -> Line<'b> {
        let mut line = Line {
            buf,
            len: 0,
            fields: 0,
        };
        line.raw(b"{");
        line
    }

    fn raw(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    fn key(&mut self, name: &str) {
        if self.fields > 0 {
            self.raw(b",");
        }
        self.fields += 1;
        self.raw(b"\"");
        self.raw(name.as_bytes());
        self.raw(b"\":");
    }

    /// A string field whose value `write` composes.
    pub fn string(&mut self, name: &str, write: impl FnOnce(&mut JsonString<'_, 'b>)) {
        self.key(name);
        self.raw(b"\"");
        write(&mut JsonString(self));
        self.raw(b"\"");
    }

    pub fn str(&mut self, name: &str, value: &str) {
        self.string(name, |s| s.text(value));
    }

    pub fn uint(&mut self, name: &str, value: u64) {
        self.key(name);
        self.number(value, false);
    }

    pub fn int(&mut self, name: &str, value: i64) {
        self.key(name);
        self.number(value.unsigned_abs(), value < 0);
    }

    fn number(&mut self, mut value: u64, negative: bool) {
        let mut digits = [0u8; 21];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        if negative {
            at -= 1;
            digits[at] = b'-';
        }
        self.raw(&digits[at..]);
    }

    pub fn bool(&mut self, name: &str, value: bool) {
        self.key(name);
        self.raw(if value { b"true" } else { b"false" });
    }

    /// An array of strings, each composed by one call of `item` on the
    /// [`JsonArray`].
    pub fn array(&mut self, name: &str, items: impl FnOnce(&mut JsonArray<'_, 'b>)) {
        self.key(name);
        self.raw(b"[");
        items(&mut JsonArray {
            line: self,
            items: 0,
        });
        self.raw(b"]");
    }

    /// Ends the object and the line (`}\n`); the bytes, or `None` when
    /// they did not fit (then [`Line::needed`] says how many would).
    pub fn finish(&mut self) -> Option<&[u8]> {
        self.raw(b"}\n");
        self.buf.get(..self.len)
    }

    /// Bytes the line needs so far, written or not.
    pub fn needed(&self) -> usize {
        self.len
    }
}

/// The inside of a JSON string of a [`Line`]: text is escaped as serde_json
/// escapes it.
pub struct JsonString<'l, 'b>(&'l mut Line<'b>);

impl Text for JsonString<'_, '_> {
    fn text(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            // Eight bytes at a time while none needs an escape (paths and
            // messages rarely do).
            if let Some(word) = bytes.get(i..i + 8) {
                let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
                if !needs_escape(word) {
                    i += 8;
                    continue;
                }
            }
            let b = bytes[i];
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                0x08 => b"\\b",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                0x0c => b"\\f",
                b'\r' => b"\\r",
                0..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.0.raw(&bytes[start..i]);
                    self.0.raw(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[(b >> 4) as usize],
                        HEX[(b & 15) as usize],
                    ]);
                    i += 1;
                    start = i;
                    continue;
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            self.0.raw(&bytes[start..i]);
            self.0.raw(escape);
            i += 1;
            start = i;
        }
        self.0.raw(&bytes[start..]);
    }

    fn lossy(&mut self, bytes: &[u8]) {
        match std::str::from_utf8(bytes) {
            Ok(s) => self.text(s),
            Err(_) => lossy_chunks(self, bytes),
        }
    }
}

/// Whether any of the eight bytes of `word` is a control character, `"` or
/// `\\` (exact: the classic "has a byte less than n" and "has a zero byte"
/// tests, which have no false positives for the question "any?").
#[inline]
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH != 0;
    below_space || has_zero(word ^ (ONES * b'"' as u64)) || has_zero(word ^ (ONES * b'\\' as u64))
}

/// The items of a JSON array of strings in a [`Line`].
pub struct JsonArray<'l, 'b> {
    line: &'l mut Line<'b>,
    items: u32,
}

impl<'b> JsonArray<'_, 'b> {
    pub fn item(&mut self, write: impl FnOnce(&mut JsonString<'_, 'b>)) {
        if self.items > 0 {
            self.line.raw(b",");
        }
        self.items += 1;
        self.line.raw(b"\"");
        write(&mut JsonString(self.line));
        self.line.raw(b"\"");
    }
}

/// Text in a fixed buffer (a formatted time): `N` bytes at most, the rest
/// cut (callers size `N` for their longest text).
pub struct FixedText<const N: usize> {
    len: usize,
    bytes: [u8; N],
}

impl<const N: usize> FixedText<N> {
    pub fn new() -> Self {
        FixedText {
            len: 0,
            bytes: [0; N],
        }
    }

    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are copied in, so a cut can only fall inside
        // one of them; `valid_up_to` keeps what is whole.
        let bytes = &self.bytes[..self.len];
        match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        }
    }
}

impl<const N: usize> Default for FixedText<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Text for FixedText<N> {
    fn text(&mut self, s: &str) {
        let n = s.len().min(N - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_string(s: &str) -> Vec<u8> {
        serde_json::to_vec(s).unwrap()
    }

    #[test]
    fn every_byte_is_escaped_as_serde_json_escapes_it() {
        let all: String = (0u8..0x80)
            .map(char::from)
            .chain(['é', '…', '\u{FFFD}', '😀'])
            .collect();
        let mut buf = [0u8; 2048];
        let mut line = Line::new(&mut buf);
        line.str("s", &all);
        let got = line.finish().unwrap().to_vec();
        let mut want = b"{\"s\":".to_vec();
        want.extend(serde_string(&all));
        want.extend(b"}\n");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }

    #[test]
    fn the_eight_byte_test_finds_every_byte_that_needs_an_escape() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut word = *b"abcdefgh";
                word[at] = b;
                let special = b < 0x20 || b == b'"' || b == b'\\';
                assert_eq!(
                    needs_escape(u64::from_le_bytes(word)),
                    special,
                    "{b:#x} at {at}"
                );
            }
        }
        // Every pair, so a borrow from one byte cannot hide another.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let word = u64::from_le_bytes([a, b, a, b, b, a, 0x7f, 0xff]);
                let special = [a, b].iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
                assert_eq!(needs_escape(word), special, "{a:#x} {b:#x}");
            }
        }
    }

    #[test]
    fn lossy_text_is_from_utf8_lossy() {
        for bytes in [
            &b"plain"[..],
            b"\xff\xfe",
            b"a\xe2\x82",
            b"\xe2\x82\xac\xc3",
            b"\xf0\x9f\x98",
            b"x\x80y\xc0\xafz",
        ] {
            let mut s = String::new();
            s.lossy(bytes);
            assert_eq!(s, String::from_utf8_lossy(bytes), "{bytes:?}");
            let mut buf = [0u8; 64];
            let mut line = Line::new(&mut buf);
            line.string("s", |s| s.lossy(bytes));
            let mut want = b"{\"s\":".to_vec();
            want.extend(serde_string(&String::from_utf8_lossy(bytes)));
            want.extend(b"}\n");
            assert_eq!(line.finish().unwrap(), want);
        }
    }

    #[test]
    fn numbers_and_booleans_are_written_as_serde_writes_them() {
        let mut buf = [0u8; 256];
        let mut line = Line::new(&mut buf);
        line.uint("a", u64::MAX);
        line.int("b", i64::MIN);
        line.int("c", 0);
        line.bool("d", true);
        line.bool("e", false);
        line.array("f", |a| {
            a.item(|s| s.text("x"));
            a.item(|s| s.text("\"y\""));
        });
        line.array("g", |_| {});
        let got = line.finish().unwrap().to_vec();
        let want = serde_json::json!({
            "a": u64::MAX, "b": i64::MIN, "c": 0, "d": true, "e": false,
            "f": ["x", "\"y\""], "g": [],
        });
        let mut want = serde_json::to_vec(&want).unwrap();
        want.push(b'\n');
        assert_eq!(got, want);
    }

    #[test]
    fn a_line_too_long_for_its_buffer_says_how_long_it_is() {
        let mut small = [0u8; 8];
        let mut line = Line::new(&mut small);
        line.str("key", "a longer value");
        assert_eq!(line.finish(), None);
        let needed = line.needed();
        let mut big = vec![0u8; needed];
        let mut line = Line::new(&mut big);
        line.str("key", "a longer value");
        assert_eq!(line.finish().map(<[u8]>::len), Some(needed));
    }

    #[test]
    fn fixed_text_cuts_at_a_character() {
        let mut t = FixedText::<4>::new();
        t.text("ab");
        t.text("…");
        assert_eq!(t.as_str(), "ab");
    }
}

//! A small JSON reader that keeps the byte span of every value and key, so
//! that validation can point at the exact line and column of a problem.
//!
//! Strict RFC 8259 (no comments, no trailing commas), with a nesting limit
//! so hostile input cannot exhaust the stack. Object members keep document
//! order; duplicate keys are reported by the validator, not here.

/// Byte range `start..end` in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number's source text; the validator decides what it may be.
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<Member>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub json: Json,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_span: Span,
    pub value: Value,
}

impl Value {
    /// A short name of the value's type, for "expected a string, found …".
    pub fn type_name(&self) -> &'static str {
        match self.json {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// A syntax error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
    pub expected: Option<String>,
    pub hint: Option<String>,
}

/// Deeper nesting than any policy needs; bounds recursion on hostile input.
pub const MAX_DEPTH: usize = 64;

pub fn parse(text: &str) -> Result<Value, SyntaxError> {
    let mut p = Parser {
        src: text.as_bytes(),
        text,
        pos: 0,
    };
    // A UTF-8 byte order mark is harmless; editors on some systems add one.
    if text.starts_with('\u{feff}') {
        p.pos = 3;
    }
    p.skip_ws()?;
    let v = p.value(0)?;
    p.skip_ws()?;
    if p.pos < p.src.len() {
        return Err(p.error_here(
            "unexpected text after the end of the document",
            Some("end of input"),
            Some("a policy is exactly one JSON object"),
        ));
    }
    Ok(v)
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn char_len_at(&self, pos: usize) -> usize {
        self.text[pos..].chars().next().map_or(0, char::len_utf8)
    }

    fn error_at(
        &self,
        start: usize,
        message: impl Into<String>,
        expected: Option<&str>,
        hint: Option<&str>,
    ) -> SyntaxError {
        let len = if start < self.src.len() {
            self.char_len_at(start)
        } else {
            0
        };
        SyntaxError {
            span: Span::new(start, start + len),
            message: message.into(),
            expected: expected.map(str::to_string),
            hint: hint.map(str::to_string),
        }
    }

    fn error_here(
        &self,
        message: impl Into<String>,
        expected: Option<&str>,
        hint: Option<&str>,
    ) -> SyntaxError {
        self.error_at(self.pos, message, expected, hint)
    }

    fn found(&self) -> String {
        match self.text[self.pos.min(self.text.len())..].chars().next() {
            None => "end of input".to_string(),
            Some(c) if c.is_control() => format!("{c:?}"),
            Some(c) => format!("`{c}`"),
        }
    }

    fn skip_ws(&mut self) -> Result<(), SyntaxError> {
        while let Some(&b) = self.src.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'/' if matches!(self.src.get(self.pos + 1), Some(b'/' | b'*')) => {
                    return Err(SyntaxError {
                        span: Span::new(self.pos, self.pos + 2),
                        message: "comments are not allowed in JSON".into(),
                        expected: None,
                        hint: Some("put commentary in a `description` field".into()),
                    })
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error_here(
                format!("nesting deeper than {MAX_DEPTH} levels"),
                None,
                None,
            ));
        }
        let start = self.pos;
        let json = match self.src.get(self.pos) {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Json::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b't') => self.keyword("true", Json::Bool(true))?,
            Some(b'f') => self.keyword("false", Json::Bool(false))?,
            Some(b'n') => self.keyword("null", Json::Null)?,
            Some(b'\'') => {
                return Err(self.error_here(
                    "strings must use double quotes",
                    Some("a JSON value"),
                    Some("write \"…\" instead of '…'"),
                ))
            }
            _ => {
                return Err(self.error_here(
                    format!("expected a value, found {}", self.found()),
                    Some("an object, array, string, number, true, false or null"),
                    None,
                ))
            }
        };
        Ok(Value {
            json,
            span: Span::new(start, self.pos),
        })
    }

    fn keyword(&mut self, word: &str, json: Json) -> Result<Json, SyntaxError> {
        if self.src[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(json)
        } else {
            let end = self.src[self.pos..]
                .iter()
                .position(|b| !b.is_ascii_alphanumeric())
                .map_or(self.src.len(), |i| self.pos + i);
            Err(SyntaxError {
                span: Span::new(self.pos, end.max(self.pos + 1)),
                message: format!(
                    "unknown literal `{}`",
                    &self.text[self.pos..end.max(self.pos + 1).min(self.text.len())]
                ),
                expected: Some("true, false, null, or a quoted string".into()),
                hint: None,
            })
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_ws()?;
        if self.src.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.skip_ws()?;
            if self.src.get(self.pos) != Some(&b'"') {
                let hint = if self.src.get(self.pos) == Some(&b'}') {
                    Some("JSON does not allow a trailing comma; remove it")
                } else {
                    Some("object keys are double-quoted strings")
                };
                return Err(self.error_here(
                    format!("expected a field name, found {}", self.found()),
                    Some("`\"name\"`"),
                    hint,
                ));
            }
            let key_start = self.pos;
            let key = self.string()?;
            let key_span = Span::new(key_start, self.pos);
            self.skip_ws()?;
            if self.src.get(self.pos) != Some(&b':') {
                return Err(self.error_here(
                    format!("expected `:` after field name, found {}", self.found()),
                    Some("`:`"),
                    None,
                ));
            }
            self.pos += 1;
            self.skip_ws()?;
            let value = self.value(depth + 1)?;
            members.push(Member {
                key,
                key_span,
                value,
            });
            self.skip_ws()?;
            match self.src.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                _ => {
                    let hint = (self.src.get(self.pos) == Some(&b'"'))
                        .then_some("add a `,` between fields");
                    return Err(self.error_here(
                        format!("expected `,` or `}}`, found {}", self.found()),
                        Some("`,` or `}`"),
                        hint,
                    ));
                }
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws()?;
        if self.src.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws()?;
            if self.src.get(self.pos) == Some(&b']') {
                return Err(self.error_here(
                    "expected a value, found `]`",
                    Some("a value"),
                    Some("JSON does not allow a trailing comma; remove it"),
                ));
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws()?;
            match self.src.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => {
                    let hint = (self.src.get(self.pos) == Some(&b'"'))
                        .then_some("add a `,` between items");
                    return Err(self.error_here(
                        format!("expected `,` or `]`, found {}", self.found()),
                        Some("`,` or `]`"),
                        hint,
                    ));
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let digits = self.src.get(self.pos..self.pos + 4);
        match digits
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| {
                d.bytes()
                    .all(|b| b.is_ascii_hexdigit())
                    .then(|| u32::from_str_radix(d, 16).ok())
                    .flatten()
            }) {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => Err(self.error_here("`\\u` must be followed by four hex digits", None, None)),
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(&b) = self.src.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.src.get(self.pos) {
                None => {
                    return Err(SyntaxError {
                        span: Span::new(open, open + 1),
                        message: "unterminated string".into(),
                        expected: Some("a closing `\"`".into()),
                        hint: None,
                    })
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let esc_start = self.pos;
                    self.pos += 1;
                    let c = match self.src.get(self.pos) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.src[self.pos..].starts_with(b"\\u") {
                                    return Err(self.error_at(
                                        esc_start,
                                        "unpaired UTF-16 surrogate in `\\u` escape",
                                        None,
                                        None,
                                    ));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.error_at(
                                        esc_start,
                                        "unpaired UTF-16 surrogate in `\\u` escape",
                                        None,
                                        None,
                                    ));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            match char::from_u32(code) {
                                Some(c) => {
                                    out.push(c);
                                    continue;
                                }
                                None => {
                                    return Err(self.error_at(
                                        esc_start,
                                        "unpaired UTF-16 surrogate in `\\u` escape",
                                        None,
                                        None,
                                    ))
                                }
                            }
                        }
                        _ => {
                            return Err(self.error_at(
                                esc_start,
                                "invalid escape in string",
                                Some("one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX"),
                                Some("write a backslash as `\\\\`"),
                            ))
                        }
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(_) => {
                    return Err(self.error_here(
                        "control character in string",
                        None,
                        Some("write newlines and tabs as `\\n` and `\\t`"),
                    ))
                }
            }
        }
    }

    fn number(&mut self) -> Result<Json, SyntaxError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.src.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos - s
        };
        if self.src.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = digits(self);
        if n == 0 {
            return Err(self.error_here("expected a digit", Some("a number"), None));
        }
        if n > 1 && self.src[int_start] == b'0' {
            return Err(self.error_at(
                int_start,
                "numbers must not have leading zeros",
                None,
                None,
            ));
        }
        if self.src.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.error_here("expected a digit after `.`", None, None));
            }
        }
        if matches!(self.src.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.src.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.error_here("expected a digit in the exponent", None, None));
            }
        }
        Ok(Json::Number(self.text[start..self.pos].to_string()))
    }
}

/// `value` as JSON text, indented by two spaces, members in document order.
/// Numbers are written as their source text, which the JSON reader and the
/// YAML reader both keep in JSON's number syntax.
pub fn to_string_pretty(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out.push('\n');
    out
}

fn write_value(out: &mut String, value: &Value, indent: usize) {
    let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n * 2));
    match &value.json {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::String(s) => write_string(out, s),
        Json::Array(items) if items.is_empty() => out.push_str("[]"),
        Json::Object(members) if members.is_empty() => out.push_str("{}"),
        Json::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                pad(out, indent + 1);
                write_value(out, item, indent + 1);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push(']');
        }
        Json::Object(members) => {
            out.push_str("{\n");
            for (i, m) in members.iter().enumerate() {
                pad(out, indent + 1);
                write_string(out, &m.key);
                out.push_str(": ");
                write_value(out, &m.value, indent + 1);
                out.push_str(if i + 1 < members.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// 1-based line and column (in characters) of byte offset `pos`.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = &text[..pos];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_it_reads() {
        let text = r#"{"a": [1, -2.5e3, "x\n\"\\\u0001é"], "b": {"c": null, "d": true, "e": [], "f": {}}}"#;
        let v = parse(text).unwrap();
        let written = to_string_pretty(&v);
        let again = parse(&written).unwrap();
        assert_eq!(to_string_pretty(&again), written);
        assert!(written.contains("\"x\\n\\\"\\\\\\u0001é\""), "{written}");
    }

    #[test]
    fn parses_values_with_spans() {
        let text = r#"{"a": [1, -2.5e3, "x\n\u00e9\ud83d\ude00"], "b": {"c": null, "d": true}}"#;
        let v = parse(text).unwrap();
        let Json::Object(m) = &v.json else { panic!() };
        assert_eq!(m[0].key, "a");
        assert_eq!(&text[m[0].key_span.start..m[0].key_span.end], "\"a\"");
        let Json::Array(items) = &m[0].value.json else {
            panic!()
        };
        assert_eq!(items[1].json, Json::Number("-2.5e3".into()));
        assert_eq!(&text[items[1].span.start..items[1].span.end], "-2.5e3");
        assert_eq!(items[2].json, Json::String("x\né😀".into()));
        assert_eq!(v.span, Span::new(0, text.len()));
    }

    fn err(text: &str) -> (usize, usize, String) {
        let e = parse(text).unwrap_err();
        let (l, c) = line_col(text, e.span.start);
        (l, c, e.message)
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        assert_eq!(
            err("{\n  \"a\": 1,\n}"),
            (3, 1, "expected a field name, found `}`".into())
        );
        assert_eq!(err("[1, 2,]"), (1, 7, "expected a value, found `]`".into()));
        assert_eq!(
            err("{\"a\" 1}"),
            (1, 6, "expected `:` after field name, found `1`".into())
        );
        assert_eq!(
            err("{\"a\": 1 \"b\": 2}"),
            (1, 9, "expected `,` or `}`, found `\"`".into())
        );
        assert_eq!(err("{\"a\": \"x}"), (1, 7, "unterminated string".into()));
        assert_eq!(
            err("// c\n{}"),
            (1, 1, "comments are not allowed in JSON".into())
        );
        assert_eq!(
            err("{} x"),
            (1, 4, "unexpected text after the end of the document".into())
        );
        assert_eq!(err("{\"a\": tru}"), (1, 7, "unknown literal `tru`".into()));
        assert_eq!(
            err("{\"a\": 012}"),
            (1, 7, "numbers must not have leading zeros".into())
        );
        assert_eq!(err("\"\\q\""), (1, 2, "invalid escape in string".into()));
        assert_eq!(
            err("\"\\ud800\""),
            (1, 2, "unpaired UTF-16 surrogate in `\\u` escape".into())
        );
        assert_eq!(
            err(""),
            (1, 1, "expected a value, found end of input".into())
        );
        assert_eq!(
            err("{'a': 1}"),
            (1, 2, "expected a field name, found `'`".into())
        );
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(
            err("[\"é\", x]"),
            (1, 7, "expected a value, found `x`".into())
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(10_000);
        assert!(parse(&deep)
            .unwrap_err()
            .message
            .starts_with("nesting deeper"));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn accepts_a_byte_order_mark() {
        assert!(parse("\u{feff}{}").is_ok());
    }
}

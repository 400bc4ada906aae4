//! YAML policies: the same document written in YAML 1.2, read into the same
//! spanned tree as JSON ([`crate::json::Value`]), so that validation, its
//! diagnostics and the lints are shared and point into the YAML text.
//!
//! Scalars follow YAML 1.2's core schema (plain `true`/`false`, `null`/`~`,
//! integers and floats are typed; quoted and block scalars are strings), so
//! a policy means the same in YAML as its JSON translation. Aliases are
//! expanded (with a size budget, against "billion laughs" documents); a
//! duplicate key is kept so that the validator reports it, as for JSON.
//!
//! The preload library reads JSON only: this module is behind the `yaml`
//! feature, which the CLI, the builder and the server enable. The builder
//! converts a YAML policy to JSON (see [`crate::json::to_string_pretty`]) when
//! it bakes one into an image.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span as YamlSpan};

use crate::json::{Json, Member, Span, SyntaxError, Value, MAX_DEPTH};

/// How many nodes aliases may add in all; far above any real policy.
const ALIAS_BUDGET: usize = 100_000;

/// Parses one YAML document holding a policy.
pub fn parse(text: &str) -> Result<Value, SyntaxError> {
    let mut reader = Reader {
        text,
        offsets: text.char_indices().map(|(b, _)| b).collect(),
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        alias_nodes: 0,
    };
    reader.document()
}

struct Reader<'a> {
    text: &'a str,
    /// Byte offset of each character: the parser counts in characters.
    offsets: Vec<usize>,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Value>,
    alias_nodes: usize,
}

fn error(span: Span, message: impl Into<String>, hint: Option<&str>) -> SyntaxError {
    SyntaxError {
        span,
        message: message.into(),
        expected: None,
        hint: hint.map(str::to_string),
    }
}

impl<'a> Reader<'a> {
    fn byte(&self, char_index: usize) -> usize {
        self.offsets
            .get(char_index)
            .copied()
            .unwrap_or(self.text.len())
    }

    fn span(&self, s: YamlSpan) -> Span {
        let start = self.byte(s.start.index());
        let end = self.byte(s.end.index()).max(start);
        Span { start, end }
    }

    /// A span covering the one character at byte `pos` (or none at the end).
    fn char_at(&self, pos: usize) -> Span {
        let pos = pos.min(self.text.len());
        let len = self.text[pos..].chars().next().map_or(0, char::len_utf8);
        Span {
            start: pos,
            end: pos + len,
        }
    }

    fn scan_error(&self, e: &ScanError) -> SyntaxError {
        let pos = self.byte(e.marker().index());
        let info = e.info();
        if info.contains("tab") {
            // Point at the tab itself: the parser reports where it noticed,
            // which may be the end of the line before the tab's line.
            let line_start = self.text[..pos].rfind('\n').map_or(0, |i| i + 1);
            let tab = self.text[line_start..]
                .find('\t')
                .map_or(pos, |i| line_start + i);
            return SyntaxError {
                span: self.char_at(tab),
                message: format!("a tab in YAML indentation ({info})"),
                expected: Some("spaces".into()),
                hint: Some("YAML indents with spaces only: replace the tab with spaces".into()),
            };
        }
        let hint = if info.contains("mapping values are not allowed") {
            Some("a value holding `: ` must be quoted: \"…\"")
        } else if info.contains("did not find expected") || info.contains("expected") {
            Some("check the indentation: items of one list or mapping start in the same column")
        } else {
            None
        };
        SyntaxError {
            span: self.char_at(pos),
            message: format!("YAML syntax: {info}"),
            expected: None,
            hint: hint.map(str::to_string),
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok((event, span))) => Ok((event, self.span(span))),
            Some(Err(e)) => Err(self.scan_error(&e)),
            None => Err(error(
                self.char_at(self.text.len()),
                "unexpected end of the YAML stream",
                None,
            )),
        }
    }

    fn document(&mut self) -> Result<Value, SyntaxError> {
        loop {
            match self.next()? {
                (Event::StreamStart, _) => {}
                (Event::DocumentStart(_), _) => break,
                (Event::StreamEnd, span) => {
                    return Err(SyntaxError {
                        span,
                        message: "the file holds no YAML document".into(),
                        expected: Some("a mapping with `apiVersion`, `name` and `rules`".into()),
                        hint: None,
                    })
                }
                (_, span) => {
                    return Err(error(
                        span,
                        "unexpected YAML event before the document",
                        None,
                    ))
                }
            }
        }
        let (event, span) = self.next()?;
        let root = self.node(event, span, 0)?;
        match self.next()? {
            (Event::DocumentEnd, _) => {}
            (_, span) => return Err(error(span, "unexpected content after the document", None)),
        }
        match self.next()? {
            (Event::StreamEnd, _) => Ok(root),
            (_, span) => Err(error(
                span,
                "a second YAML document in a policy file",
                Some("a policy file holds exactly one document: remove the `---` and what follows, or split the file"),
            )),
        }
    }

    fn remember(&mut self, anchor: usize, value: &Value) {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(error(
                span,
                format!("nesting deeper than {MAX_DEPTH} levels"),
                None,
            ));
        }
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let json = scalar(
                    &text,
                    style,
                    tag.as_deref()
                        .map(|t| (t.handle.as_str(), t.suffix.as_str())),
                )
                .map_err(|msg| {
                    error(span, msg, Some("use a plain or quoted value without a tag"))
                })?;
                let v = Value { json, span };
                self.remember(anchor, &v);
                Ok(v)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                let end = loop {
                    let (event, item_span) = self.next()?;
                    if let Event::SequenceEnd = event {
                        break item_span.end;
                    }
                    items.push(self.node(event, item_span, depth + 1)?);
                };
                let v = Value {
                    json: Json::Array(items),
                    span: Span {
                        start: span.start,
                        end: end.max(span.end),
                    },
                };
                self.remember(anchor, &v);
                Ok(v)
            }
            Event::MappingStart(anchor, _) => {
                let mut members = Vec::new();
                let end = loop {
                    let (event, key_span) = self.next()?;
                    let key = match event {
                        Event::MappingEnd => break key_span.end,
                        Event::Scalar(text, _, _, _) => text.into_owned(),
                        _ => {
                            return Err(SyntaxError {
                                span: key_span,
                                message: "a mapping key must be a plain name".into(),
                                expected: Some("a field name such as `name` or `rules`".into()),
                                hint: None,
                            })
                        }
                    };
                    let (event, value_span) = self.next()?;
                    let value = self.node(event, value_span, depth + 1)?;
                    members.push(Member {
                        key,
                        key_span,
                        value,
                    });
                };
                let v = Value {
                    json: Json::Object(members),
                    span: Span {
                        start: span.start,
                        end: end.max(span.end),
                    },
                };
                self.remember(anchor, &v);
                Ok(v)
            }
            Event::Alias(anchor) => {
                let Some(v) = self.anchors.get(&anchor) else {
                    return Err(error(span, "an alias to an unknown anchor", None));
                };
                self.alias_nodes += count_nodes(v);
                if self.alias_nodes > ALIAS_BUDGET {
                    return Err(error(
                        span,
                        format!("aliases expand to more than {ALIAS_BUDGET} values"),
                        Some("write the values out instead of nesting aliases"),
                    ));
                }
                // The copy keeps the anchor's spans: a problem in it is
                // reported where it is written.
                Ok(v.clone())
            }
            _ => Err(error(span, "unexpected YAML event", None)),
        }
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match &v.json {
        Json::Array(items) => items.iter().map(count_nodes).sum(),
        Json::Object(members) => members.iter().map(|m| count_nodes(&m.value)).sum(),
        _ => 0,
    }
}

/// A scalar typed by YAML 1.2's core schema.
fn scalar(text: &str, style: ScalarStyle, tag: Option<(&str, &str)>) -> Result<Json, String> {
    match tag {
        None => {}
        Some(("!!", "str")) | Some(("tag:yaml.org,2002:", "str")) => {
            return Ok(Json::String(text.to_string()))
        }
        Some((handle, suffix)) => {
            return Err(format!(
                "the YAML tag `{handle}{suffix}` is not supported in a policy"
            ))
        }
    }
    if style != ScalarStyle::Plain {
        return Ok(Json::String(text.to_string()));
    }
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => Json::Null,
        "true" | "True" | "TRUE" => Json::Bool(true),
        "false" | "False" | "FALSE" => Json::Bool(false),
        _ => match number(text) {
            Some(n) => Json::Number(n),
            None => Json::String(text.to_string()),
        },
    })
}

/// A core-schema integer or float, as JSON number text (decimal, no `+`,
/// no leading zeros), or `None` when `text` is not a number.
fn number(text: &str) -> Option<String> {
    let radix = |digits: &str, radix: u32| {
        u128::from_str_radix(digits, radix)
            .ok()
            .map(|n| n.to_string())
    };
    if let Some(hex) = text.strip_prefix("0x") {
        return radix(hex, 16);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return radix(oct, 8);
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let negative = text.starts_with('-');
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        let digits = unsigned.trim_start_matches('0');
        let digits = if digits.is_empty() { "0" } else { digits };
        return Some(format!("{}{digits}", if negative { "-" } else { "" }));
    }
    // Floats: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        None => digits(int),
        Some(f) => (digits(int) && (f.is_empty() || digits(f))) || (int.is_empty() && digits(f)),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    let int = int.trim_start_matches('0');
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if let Some(f) = frac.filter(|f| !f.is_empty()) {
        out.push('.');
        out.push_str(f);
    }
    if let Some(e) = exponent {
        out.push('e');
        out.push_str(e);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(v: &Value) -> &[Member] {
        match &v.json {
            Json::Object(m) => m,
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn block_and_flow_values_keep_their_spans() {
        let text = "name: web\nrules:\n  - {kind: file, path: [\"/etc/**\"]}\nport: [80, '81']\n";
        let v = parse(text).unwrap();
        let m = members(&v);
        assert_eq!(m[0].key, "name");
        assert_eq!(&text[m[0].key_span.start..m[0].key_span.end], "name");
        assert_eq!(m[0].value.json, Json::String("web".into()));
        assert_eq!(&text[m[0].value.span.start..m[0].value.span.end], "web");
        let Json::Array(rules) = &m[1].value.json else {
            panic!()
        };
        let rule = members(&rules[0]);
        assert_eq!(
            &text[rule[1].value.span.start..rule[1].value.span.end],
            "[\"/etc/**\"]"
        );
        let Json::Array(ports) = &m[2].value.json else {
            panic!()
        };
        assert_eq!(ports[0].json, Json::Number("80".into()));
        assert_eq!(ports[1].json, Json::String("81".into()));
    }

    #[test]
    fn core_schema_scalars() {
        for (yaml, json) in [
            ("~", Json::Null),
            ("null", Json::Null),
            ("true", Json::Bool(true)),
            ("False", Json::Bool(false)),
            ("yes", Json::String("yes".into())),
            ("+080", Json::Number("80".into())),
            ("0x1F", Json::Number("31".into())),
            ("0xg", Json::String("0xg".into())),
            ("0o17", Json::Number("15".into())),
            ("-.5e3", Json::Number("-0.5e3".into())),
            ("1.", Json::Number("1".into())),
            ("1.2.3", Json::String("1.2.3".into())),
            ("'true'", Json::String("true".into())),
            ("!!str 80", Json::String("80".into())),
        ] {
            let v = parse(&format!("k: {yaml}\n")).unwrap();
            assert_eq!(members(&v)[0].value.json, json, "{yaml}");
        }
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_validator() {
        let v = parse("a: 1\na: 2\n").unwrap();
        assert_eq!(members(&v).len(), 2);
    }

    #[test]
    fn aliases_expand_within_a_budget() {
        let v = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(members(&v)[1].value.json, members(&v)[0].value.json);
        let mut bomb = String::from("a: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&bomb).unwrap_err();
        assert!(e.message.contains("aliases expand"), "{e:?}");
    }

    #[test]
    fn tabs_and_second_documents_are_refused_where_they_are() {
        let text = "name: web\nrules:\n\t- kind: file\n";
        let e = parse(text).unwrap_err();
        assert_eq!(&text[e.span.start..e.span.end], "\t", "{e:?}");
        assert!(e.hint.unwrap().contains("spaces"));
        let text = "name: a\n---\nname: b\n";
        let e = parse(text).unwrap_err();
        assert!(e.message.contains("second YAML document"), "{e:?}");
        assert!(parse("").is_err());
        assert!(parse("# only a comment\n").is_err());
    }

    #[test]
    fn a_byte_order_mark_and_multibyte_text_keep_spans_right() {
        let text = "\u{feff}name: \"é\"\nrules: [x]\n";
        let v = parse(text).unwrap();
        let m = members(&v);
        assert_eq!(&text[m[0].key_span.start..m[0].key_span.end], "name");
        assert_eq!(&text[m[1].key_span.start..m[1].key_span.end], "rules");
    }

    #[test]
    fn numbers_never_loop_or_panic() {
        for s in [
            "", "+", "-", ".", "e", "1e", "1e+", ".e1", "0x", "0o", "--1", "١٢",
        ] {
            let _ = number(s);
        }
        assert_eq!(number("."), None);
        assert_eq!(number("1e"), None);
    }
}

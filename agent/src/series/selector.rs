//! Prometheus series selectors and label matchers, as in PromQL:
//! `metric{label="v", other!="x", re=~"5..", nre!~"GET|HEAD"}`.
//!
//! Semantics follow Prometheus: regexes are fully anchored and `.` also
//! matches a newline (Prometheus compiles matchers as `^(?s:re)$`); a label
//! that is absent matches as the empty string; `__name__` matchers apply to
//! the metric name.
//!
//! Regexes use the Rust `regex` crate, whose syntax is RE2's, the same family
//! as Go's; one difference is that `\d`, `\w` and `\s` are Unicode-aware.

use std::fmt;
use std::str::FromStr;

use regex::Regex;

use crate::series::Labels;

/// The label that carries the metric name in PromQL.
const METRIC_NAME_LABEL: &str = "__name__";

/// A label matching operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`: the value equals the string.
    Equal,
    /// `!=`: the value differs from the string.
    NotEqual,
    /// `=~`: the whole value matches the regex.
    Regex,
    /// `!~`: the whole value does not match the regex.
    NotRegex,
}

impl MatchOp {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One label matcher, such as `code=~"5.."`.
///
/// Build it with [`Matcher::new`] or by parsing: the regex of `=~`/`!~` is
/// compiled there, so changing `value` or `op` in place afterwards does not
/// change what it matches.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label name; `__name__` refers to the metric name.
    pub name: String,
    /// The operator.
    pub op: MatchOp,
    /// The string or (unanchored, as written) regex to compare with.
    pub value: String,
    /// `^(?s:value)$`, compiled, for `=~` and `!~`.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    /// Matchers are equal when written the same; the compiled regex follows
    /// from `value`.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// Creates a matcher, checking the label name and compiling the regex of
    /// `=~` and `!~`.
    ///
    /// Errors carry column 0 since there is no selector text to point into.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Matcher, SelectorError> {
        let name = name.into();
        let value = value.into();
        if !is_label_name(&name) {
            return Err(SelectorError::new(
                0,
                format!("invalid label name {name:?}: expected [a-zA-Z_][a-zA-Z0-9_]*"),
            ));
        }
        let regex = match op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::Regex | MatchOp::NotRegex => Some(compile_anchored(&name, &value)?),
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// Whether `labels` satisfy this matcher; an absent label counts as "".
    ///
    /// `__name__` is looked up in `labels` like any other label; use
    /// [`Selector::matches`] to match it against a metric name.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }

    /// Whether a label value (`""` for an absent label) satisfies this matcher.
    pub fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // Unreachable through `new`, which always compiles regex matchers.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.op)?;
        write_quoted(f, &self.value)
    }
}

/// Compiles `^(?s:value)$`, the way Prometheus anchors matcher regexes.
fn compile_anchored(name: &str, value: &str) -> Result<Regex, SelectorError> {
    let invalid = |e: regex::Error| {
        SelectorError::new(
            0,
            format!("invalid regex {value:?} for label {name:?}: {e}"),
        )
    };
    // Compile the pattern alone first: wrapping an unbalanced pattern such as
    // `a)|(b` could otherwise yield a valid but unanchored regex.
    Regex::new(value).map_err(invalid)?;
    Regex::new(&format!("^(?s:{value})$")).map_err(invalid)
}

/// A series selector: an optional metric name and label matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name written before the braces, if any.
    pub metric: Option<String>,
    /// The label matchers, in written order.
    pub matchers: Vec<Matcher>,
}

/// Why a selector or matcher was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    /// 1-based column (in characters) within the selector text; 0 when the
    /// error did not come from parsing text (see [`Matcher::new`]).
    pub column: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl SelectorError {
    fn new(column: usize, message: impl Into<String>) -> SelectorError {
        SelectorError {
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "column {}: {}", self.column, self.message)
        }
    }
}

impl std::error::Error for SelectorError {}

impl Selector {
    /// Parses `metric`, `metric{matchers}` or `{matchers}`.
    ///
    /// A selector needs a metric name or at least one matcher, and may not
    /// name the metric both before the braces and with `__name__` (PromQL
    /// rejects that too).
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let mut lexer = Lexer { text, pos: 0 };
        lexer.skip_ws();
        let metric_pos = lexer.pos;
        let metric = match lexer.peek() {
            Some(b) if is_metric_name_start(b) => Some(lexer.take_while(is_metric_name_char)),
            Some(b'{') => None,
            _ => return Err(lexer.expected("metric name or '{'")),
        };
        lexer.skip_ws();
        let has_braces = lexer.peek() == Some(b'{');
        let matchers = if has_braces {
            lexer.pos += 1;
            lexer.matcher_list(Some(b'}'))?
        } else {
            Vec::new()
        };
        lexer.skip_ws();
        if !lexer.at_end() {
            let what = if has_braces {
                "end of selector"
            } else {
                "'{' or end of selector after metric name"
            };
            return Err(lexer.expected(what));
        }
        match metric {
            None if matchers.is_empty() => Err(lexer.error_at(
                metric_pos,
                "selector must contain a metric name or at least one label matcher",
            )),
            Some(metric) => {
                if let Some((_, pos)) = matchers.iter().find(|(m, _)| m.name == METRIC_NAME_LABEL) {
                    return Err(lexer.error_at(
                        *pos,
                        format!(
                            "metric name must not be set twice: {metric:?} and a __name__ matcher"
                        ),
                    ));
                }
                Ok(Selector {
                    metric: Some(metric.to_owned()),
                    matchers: matchers.into_iter().map(|(m, _)| m).collect(),
                })
            }
            None => Ok(Selector {
                metric: None,
                matchers: matchers.into_iter().map(|(m, _)| m).collect(),
            }),
        }
    }

    /// Parses label matchers without a metric name, with or without braces:
    /// `{a="b", c=~"d.*"}` or `a="b", c=~"d.*"`. Empty input (or `{}`) gives
    /// no matchers, which match every series.
    pub fn matchers_only(text: &str) -> Result<Vec<Matcher>, SelectorError> {
        let mut lexer = Lexer { text, pos: 0 };
        lexer.skip_ws();
        let matchers = if lexer.peek() == Some(b'{') {
            lexer.pos += 1;
            let matchers = lexer.matcher_list(Some(b'}'))?;
            lexer.skip_ws();
            if !lexer.at_end() {
                return Err(lexer.expected("end of input after '}'"));
            }
            matchers
        } else {
            lexer.matcher_list(None)?
        };
        Ok(matchers.into_iter().map(|(m, _)| m).collect())
    }

    /// Whether a series with this metric name and labels is selected.
    pub fn matches(&self, metric: &str, labels: &Labels) -> bool {
        if self.metric.as_deref().is_some_and(|m| m != metric) {
            return false;
        }
        self.matchers.iter().all(|m| {
            if m.name == METRIC_NAME_LABEL {
                m.matches_value(metric)
            } else {
                m.matches(labels)
            }
        })
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Selector, SelectorError> {
        Selector::parse(text)
    }
}

impl fmt::Display for Selector {
    /// Renders canonical PromQL, `metric{a="b", c=~"d"}`, which parses back
    /// to a selector that matches the same series. A metric name that cannot
    /// be written bare, or that would clash with a `__name__` matcher, is
    /// written as a `__name__` matcher instead. A hand-built selector with
    /// neither a name nor matchers renders as `{}`, which does not parse.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name_as_matcher = self.metric.as_deref().filter(|m| {
            !is_metric_name(m) || self.matchers.iter().any(|x| x.name == METRIC_NAME_LABEL)
        });
        if name_as_matcher.is_none()
            && let Some(metric) = &self.metric
        {
            f.write_str(metric)?;
            if self.matchers.is_empty() {
                return Ok(());
            }
        }
        f.write_str("{")?;
        let mut first = true;
        if let Some(metric) = name_as_matcher {
            write!(f, "{METRIC_NAME_LABEL}=")?;
            write_quoted(f, metric)?;
            first = false;
        }
        for matcher in &self.matchers {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{matcher}")?;
        }
        f.write_str("}")
    }
}

/// Writes `value` as a double-quoted PromQL string that parses back exactly.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in value.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            // Control characters are legal raw but unreadable in logs.
            c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

fn is_metric_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_metric_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn is_label_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(is_metric_name_start) && bytes.all(is_metric_name_char)
}

fn is_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(is_label_name_start) && bytes.all(is_label_name_char)
}

/// Hand-written scanner over the selector text; `pos` is a byte offset that
/// always sits on a char boundary.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// PromQL whitespace, which includes newlines (selectors may come from
    /// multi-line YAML).
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Only used with ASCII predicates, so the slice stays on char boundaries.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn column(&self, pos: usize) -> usize {
        self.text[..pos].chars().count() + 1
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> SelectorError {
        SelectorError::new(self.column(pos), message)
    }

    fn expected(&self, what: &str) -> SelectorError {
        let found = match self.text[self.pos..].chars().next() {
            None => "end of selector".to_owned(),
            Some(c) => format!("{c:?}"),
        };
        self.error_at(self.pos, format!("expected {what}, found {found}"))
    }

    /// Comma-separated matchers (trailing comma allowed) up to `close`
    /// (consumed), or up to the end of the text when `close` is `None`.
    /// Each matcher comes with the byte offset of its label name.
    fn matcher_list(&mut self, close: Option<u8>) -> Result<Vec<(Matcher, usize)>, SelectorError> {
        let closing = if close.is_some() {
            "'}'"
        } else {
            "end of input"
        };
        let mut matchers = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == close {
                // `None == None` at the end of a bare list.
                if close.is_some() {
                    self.pos += 1;
                }
                return Ok(matchers);
            }
            let name_pos = self.pos;
            let name = if self.peek().is_some_and(is_label_name_start) {
                self.take_while(is_label_name_char)
            } else {
                return Err(self.expected(&format!("label name or {closing}")));
            };
            self.skip_ws();
            let op = self.match_op().ok_or_else(|| {
                self.expected(&format!(
                    "one of '=', '!=', '=~', '!~' after label name {name:?}"
                ))
            })?;
            self.skip_ws();
            let value_pos = self.pos;
            let value = self.string()?;
            let matcher = Matcher::new(name, op, value)
                .map_err(|e| SelectorError::new(self.column(value_pos), e.message))?;
            matchers.push((matcher, name_pos));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                b if b == close => {}
                _ => return Err(self.expected(&format!("',' or {closing}"))),
            }
        }
    }

    fn match_op(&mut self) -> Option<MatchOp> {
        let rest = &self.text.as_bytes()[self.pos..];
        let (op, len) = match rest {
            [b'=', b'~', ..] => (MatchOp::Regex, 2),
            [b'!', b'=', ..] => (MatchOp::NotEqual, 2),
            [b'!', b'~', ..] => (MatchOp::NotRegex, 2),
            [b'=', ..] => (MatchOp::Equal, 1),
            _ => return None,
        };
        self.pos += len;
        Some(op)
    }

    /// A string in double or single quotes with escapes, or a raw string in
    /// backticks (no escapes), as PromQL allows.
    fn string(&mut self) -> Result<String, SelectorError> {
        let open = self.pos;
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'' | b'`')) => q,
            _ => return Err(self.expected("quoted string")),
        };
        self.pos += 1;
        let unterminated = |lexer: &Self| lexer.error_at(open, "unterminated quoted string");
        if quote == b'`' {
            let rest = &self.text[self.pos..];
            let len = rest.find('`').ok_or_else(|| unterminated(self))?;
            self.pos += len + 1;
            return Ok(rest[..len].to_owned());
        }
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(c) = rest.chars().next() else {
                return Err(unterminated(self));
            };
            match c {
                // A raw newline ends the string in PromQL; it must be escaped.
                '\n' => return Err(unterminated(self)),
                '\\' => {
                    out.push(self.escape()?);
                    continue;
                }
                c if c == char::from(quote) => {
                    self.pos += 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
            self.pos += c.len_utf8();
        }
    }

    /// One escape sequence; the cursor is on the backslash and ends after it.
    fn escape(&mut self) -> Result<char, SelectorError> {
        let start = self.pos;
        let rest = &self.text[self.pos + 1..];
        let Some(c) = rest.chars().next() else {
            return Err(self.error_at(start, "unterminated escape sequence"));
        };
        self.pos += 1 + c.len_utf8();
        let simple = match c {
            '\\' => Some('\\'),
            '"' => Some('"'),
            '\'' => Some('\''),
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'v' => Some('\u{b}'),
            _ => None,
        };
        if let Some(simple) = simple {
            return Ok(simple);
        }
        let digits = match c {
            'u' => 4,
            'U' => 8,
            _ => {
                return Err(self.error_at(
                    start,
                    format!("unknown escape sequence '\\{c}'; expected one of \\\\ \\\" \\' \\n \\t \\r \\uXXXX"),
                ));
            }
        };
        let hex = self.text[self.pos..]
            .get(..digits)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                self.error_at(start, format!("expected {digits} hex digits after '\\{c}'"))
            })?;
        self.pos += digits;
        u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.error_at(start, format!("invalid Unicode code point '\\{c}{hex}'")))
    }
}

#[cfg(test)]
#[path = "selector_tests.rs"]
mod tests;

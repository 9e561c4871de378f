//! Parser for the Prometheus text exposition format, version 0.0.4.
//!
//! Written in-house rather than using `prometheus-parse`, which drops metric
//! names containing `:`, mangles label values containing `}`, does not
//! unescape `\"`, and stamps samples without a timestamp with the local clock.
//!
//! The parser is strict in the same places the Prometheus server is: any
//! malformed line fails the whole scrape, with the 1-based line and column of
//! the problem. It is a single hand-written pass over each line (no regex),
//! because scrapes run continuously and may be large.

use std::collections::HashMap;
use std::collections::btree_map::Entry;
use std::fmt;

use crate::series::Labels;

/// The type of a metric family, as declared by its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `# TYPE name counter`.
    Counter,
    /// `# TYPE name gauge`.
    Gauge,
    /// `# TYPE name histogram`; covers the `_bucket`, `_sum`, `_count` samples.
    Histogram,
    /// `# TYPE name summary`; covers the quantile, `_sum` and `_count` samples.
    Summary,
    /// `# TYPE name untyped`, an unrecognised type, or no `# TYPE` line at all.
    Untyped,
}

impl MetricType {
    /// Maps the type token of a `# TYPE` line. Unknown tokens (for example
    /// OpenMetrics' `info` or `stateset`) become `Untyped` rather than failing
    /// the scrape: the samples themselves are still well-formed.
    fn from_token(token: &str) -> MetricType {
        const TYPES: [(&str, MetricType); 4] = [
            ("counter", MetricType::Counter),
            ("gauge", MetricType::Gauge),
            ("histogram", MetricType::Histogram),
            ("summary", MetricType::Summary),
        ];
        TYPES
            .iter()
            .find(|(name, _)| token.eq_ignore_ascii_case(name))
            .map_or(MetricType::Untyped, |&(_, t)| t)
    }

    /// Whether a sample named `family` + `suffix` belongs to a family of
    /// this type.
    fn owns_suffix(self, suffix: &str) -> bool {
        match self {
            MetricType::Histogram => matches!(suffix, "_bucket" | "_sum" | "_count" | "_created"),
            MetricType::Summary => matches!(suffix, "_sum" | "_count" | "_created"),
            // OpenMetrics-style TYPE lines name the counter family without `_total`.
            MetricType::Counter => matches!(suffix, "_total" | "_created"),
            MetricType::Gauge | MetricType::Untyped => false,
        }
    }
}

/// Suffixes that may tie a sample to a family declared under a shorter name.
const FAMILY_SUFFIXES: [&str; 5] = ["_bucket", "_sum", "_count", "_created", "_total"];

/// One sample line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// The sample's name as written, e.g. `http_request_duration_seconds_bucket`.
    pub name: String,
    /// The sample's labels, unescaped.
    pub labels: Labels,
    /// The sample value; may be `±Inf` or NaN.
    pub value: f64,
    /// The explicit timestamp in milliseconds since the epoch, if the line had one.
    pub timestamp_ms: Option<i64>,
    /// The type of the family the sample belongs to.
    pub metric_type: MetricType,
}

/// Why an exposition was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole text exposition (format 0.0.4) into samples, in input order.
///
/// Fails on the first malformed line: like the Prometheus server, a scrape
/// with a bad line is rejected as a whole rather than partially ingested.
pub fn parse(text: &str) -> Result<Vec<ParsedSample>, ParseError> {
    let mut types = TypeTable::default();
    let mut samples = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let mut cursor = Cursor {
            line,
            pos: 0,
            line_no: index + 1,
        };
        cursor.skip_blanks();
        match cursor.peek() {
            None => {}
            Some(b'#') => cursor.comment(&mut types)?,
            Some(_) => samples.push(cursor.sample(&types)?),
        }
    }
    Ok(samples)
}

/// Declared family types, used to type each sample.
#[derive(Default)]
struct TypeTable {
    declared: HashMap<String, MetricType>,
    /// The most recent `# TYPE` line. It takes precedence so that, as in the
    /// Go reference parser, samples directly below a TYPE line belong to it
    /// even if another family happens to be named like one of their suffixes.
    current: Option<(String, MetricType)>,
}

impl TypeTable {
    fn declare(&mut self, family: &str, metric_type: MetricType) {
        self.declared.insert(family.to_owned(), metric_type);
        self.current = Some((family.to_owned(), metric_type));
    }

    fn lookup(&self, name: &str) -> MetricType {
        if let Some((family, metric_type)) = &self.current
            && belongs_to(name, family, *metric_type)
        {
            return *metric_type;
        }
        if let Some(&metric_type) = self.declared.get(name) {
            return metric_type;
        }
        for suffix in FAMILY_SUFFIXES {
            if let Some(base) = name.strip_suffix(suffix)
                && let Some(&metric_type) = self.declared.get(base)
                && metric_type.owns_suffix(suffix)
            {
                return metric_type;
            }
        }
        MetricType::Untyped
    }
}

fn belongs_to(name: &str, family: &str, metric_type: MetricType) -> bool {
    match name.strip_prefix(family) {
        Some("") => true,
        Some(suffix) => metric_type.owns_suffix(suffix),
        None => false,
    }
}

/// Position within one line; errors are reported relative to it.
struct Cursor<'a> {
    line: &'a str,
    pos: usize,
    line_no: usize,
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
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

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// Skips spaces and tabs; returns whether any were skipped.
    fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Advances over bytes satisfying `pred` and returns them. Every
    /// predicate used here only accepts ASCII, so the slice stays on char
    /// boundaries.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        &self.line[start..self.pos]
    }

    /// Reads a whitespace-delimited token (value, timestamp, type name).
    fn token(&mut self) -> &'a str {
        self.take_while(|b| !is_blank(b))
    }

    fn metric_name(&mut self) -> &'a str {
        if self.peek().is_some_and(is_metric_name_start) {
            self.take_while(is_metric_name_char)
        } else {
            ""
        }
    }

    fn label_name(&mut self) -> &'a str {
        if self.peek().is_some_and(is_label_name_start) {
            self.take_while(is_label_name_char)
        } else {
            ""
        }
    }

    /// Describes what is at `pos`, for "expected X, found Y" messages.
    fn found_at(&self, pos: usize) -> String {
        match self.line[pos..].chars().next() {
            None => "end of line".to_owned(),
            Some(c) => format!("{c:?}"),
        }
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line_no,
            column: self.line[..pos].chars().count() + 1,
            message: message.into(),
        }
    }

    fn expected(&self, what: &str) -> ParseError {
        self.error_at(
            self.pos,
            format!("expected {what}, found {}", self.found_at(self.pos)),
        )
    }

    /// A line starting with `#`: `# HELP`, `# TYPE`, or a plain comment.
    fn comment(&mut self, types: &mut TypeTable) -> Result<(), ParseError> {
        self.pos += 1;
        self.skip_blanks();
        let keyword = self.token();
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(());
        }
        self.skip_blanks();
        // A bare `# HELP` / `# TYPE` is a comment, as in the Go reference parser.
        if self.at_end() {
            return Ok(());
        }
        let name = self.metric_name();
        if name.is_empty() {
            return Err(self.expected(&format!("metric name after '# {keyword}'")));
        }
        if !self.at_end() && !self.skip_blanks() {
            return Err(self.expected(&format!(
                "whitespace after metric name in '# {keyword}' line"
            )));
        }
        if keyword == "HELP" {
            // Help text is free-form and not exposed, so it is not validated.
            return Ok(());
        }
        let type_token = self.token();
        if type_token.is_empty() {
            // `# TYPE name` with no type declares nothing; Go accepts it too.
            return Ok(());
        }
        self.skip_blanks();
        if !self.at_end() {
            return Err(self.expected("end of line after metric type"));
        }
        types.declare(name, MetricType::from_token(type_token));
        Ok(())
    }

    /// A sample line: `name[{labels}] value [timestamp]`.
    fn sample(&mut self, types: &TypeTable) -> Result<ParsedSample, ParseError> {
        let name = self.metric_name();
        if name.is_empty() {
            return Err(self.expected("metric name"));
        }
        let mut labels = Labels::new();
        let mut separated = self.skip_blanks();
        let mut after = "metric name";
        if self.peek() == Some(b'{') {
            self.label_set(&mut labels)?;
            separated = self.skip_blanks();
            after = "label set";
        }
        if self.at_end() {
            return Err(self.expected(&format!("value after {after}")));
        }
        if !separated {
            let what = if after == "metric name" {
                "'{' or whitespace after metric name"
            } else {
                "whitespace after label set"
            };
            return Err(self.expected(what));
        }

        let value_pos = self.pos;
        let value_token = self.token();
        let value = parse_go_float(value_token).map_err(|why| {
            self.error_at(
                value_pos,
                format!("invalid value {value_token:?}: {why}; expected a float such as 1, -2.5e3, +Inf or NaN"),
            )
        })?;

        self.skip_blanks();
        let timestamp_ms = if self.at_end() {
            None
        } else {
            let ts_pos = self.pos;
            let ts_token = self.token();
            let ts = parse_timestamp(ts_token).map_err(|why| {
                self.error_at(
                    ts_pos,
                    format!("invalid timestamp {ts_token:?}: {why}; expected integer milliseconds"),
                )
            })?;
            self.skip_blanks();
            if !self.at_end() {
                return Err(self.expected("end of line after timestamp"));
            }
            Some(ts)
        };

        Ok(ParsedSample {
            metric_type: types.lookup(name),
            name: name.to_owned(),
            labels,
            value,
            timestamp_ms,
        })
    }

    /// `{name="value", ...}` with optional trailing comma; the cursor is on `{`.
    fn label_set(&mut self, labels: &mut Labels) -> Result<(), ParseError> {
        self.pos += 1;
        loop {
            self.skip_blanks();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(());
            }
            let name_pos = self.pos;
            let name = self.label_name();
            if name.is_empty() {
                return Err(self.expected("label name or '}'"));
            }
            self.skip_blanks();
            if self.peek() != Some(b'=') {
                return Err(self.expected(&format!("'=' after label name {name:?}")));
            }
            self.pos += 1;
            self.skip_blanks();
            if self.peek() != Some(b'"') {
                return Err(self.expected(&format!("'\"' to start the value of label {name:?}")));
            }
            let value = self.label_value()?;
            // `__name__` would collide with the metric name in selectors.
            if name == "__name__" {
                return Err(self.error_at(name_pos, "label name \"__name__\" is reserved"));
            }
            match labels.entry(name.to_owned()) {
                Entry::Occupied(_) => {
                    return Err(self.error_at(name_pos, format!("duplicate label name {name:?}")));
                }
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
            }
            self.skip_blanks();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.expected("',' or '}' after label value")),
            }
        }
    }

    /// A quoted label value; the cursor is on the opening quote.
    fn label_value(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        let bytes = self.line.as_bytes();
        self.pos += 1;
        let mut segment = self.pos;
        // Most values have no escapes; only allocate a buffer when one appears.
        let mut unescaped: Option<String> = None;
        loop {
            let Some(offset) = bytes[self.pos..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\')
            else {
                return Err(self.error_at(open, "unterminated label value: expected closing '\"'"));
            };
            self.pos += offset;
            if bytes[self.pos] == b'"' {
                let tail = &self.line[segment..self.pos];
                self.pos += 1;
                return Ok(match unescaped {
                    Some(mut buf) => {
                        buf.push_str(tail);
                        buf
                    }
                    None => tail.to_owned(),
                });
            }
            let buf = unescaped.get_or_insert_with(String::new);
            buf.push_str(&self.line[segment..self.pos]);
            let replacement = match bytes.get(self.pos + 1) {
                Some(b'\\') => '\\',
                Some(b'"') => '"',
                Some(b'n') => '\n',
                None => {
                    return Err(
                        self.error_at(open, "unterminated label value: expected closing '\"'")
                    );
                }
                Some(_) => {
                    return Err(self.error_at(
                        self.pos,
                        format!(
                            "invalid escape sequence '\\{}' in label value; expected \\\\, \\\" or \\n",
                            self.line[self.pos + 1..].chars().next().unwrap_or_default()
                        ),
                    ));
                }
            };
            buf.push(replacement);
            self.pos += 2;
            segment = self.pos;
        }
    }
}

/// Parses a float the way Go's `strconv.ParseFloat` does for the exposition
/// format: decimal with optional sign and exponent, or `Inf`/`Infinity`
/// (any case, optional sign), or unsigned `NaN`. Hex floats and underscores
/// are rejected, as in the Go parser, and so is overflow to infinity.
fn parse_go_float(token: &str) -> Result<f64, &'static str> {
    let (negative, body) = match token.as_bytes().first() {
        Some(b'+') => (false, &token[1..]),
        Some(b'-') => (true, &token[1..]),
        _ => (false, token),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Ok(sign * f64::INFINITY);
    }
    if body.eq_ignore_ascii_case("nan") {
        return if body.len() == token.len() {
            Ok(f64::NAN)
        } else {
            Err("NaN cannot be signed")
        };
    }
    if !is_decimal(body.as_bytes()) {
        return Err("not a number");
    }
    // `is_decimal` guarantees a syntax Rust's parser accepts.
    let magnitude: f64 = body.parse().map_err(|_| "not a number")?;
    if magnitude.is_infinite() {
        return Err("out of range");
    }
    Ok(sign * magnitude)
}

/// `digits [. digits] [e [sign] digits]` with at least one mantissa digit.
fn is_decimal(b: &[u8]) -> bool {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

fn parse_timestamp(token: &str) -> Result<i64, &'static str> {
    let digits = token.strip_prefix(['+', '-']).unwrap_or(token);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not an integer");
    }
    token.parse().map_err(|_| "out of range")
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;

use super::*;
use proptest::prelude::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn one(text: &str) -> ParsedSample {
    let mut samples = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(samples.len(), 1, "{samples:?}");
    samples.remove(0)
}

/// Asserts that `text` fails at (line, column) with a message containing `needle`.
#[track_caller]
fn fails(text: &str, line: usize, column: usize, needle: &str) {
    let err = parse(text).expect_err(text);
    assert_eq!((err.line, err.column), (line, column), "{text:?}: {err}");
    assert!(
        err.message.contains(needle),
        "{text:?}: {err} lacks {needle:?}"
    );
}

#[test]
fn counter_and_gauge() {
    let text = "# HELP http_requests_total Total requests.\n\
                # TYPE http_requests_total counter\n\
                http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
                \n\
                # TYPE temperature gauge\n\
                temperature -3.5\n";
    let samples = parse(text).unwrap();
    assert_eq!(
        samples[0],
        ParsedSample {
            name: "http_requests_total".into(),
            labels: labels(&[("method", "post"), ("code", "200")]),
            value: 1027.0,
            timestamp_ms: Some(1_395_066_363_000),
            metric_type: MetricType::Counter,
        }
    );
    assert_eq!(samples[1].value, 3.0);
    assert_eq!(samples[1].labels["code"], "400");
    assert_eq!(
        samples[2],
        ParsedSample {
            name: "temperature".into(),
            labels: Labels::new(),
            value: -3.5,
            timestamp_ms: None,
            metric_type: MetricType::Gauge,
        }
    );
    assert_eq!(samples.len(), 3);
}

#[test]
fn histogram_family() {
    let text = r#"# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
http_request_duration_seconds_created 1.7e9
"#;
    let samples = parse(text).unwrap();
    assert_eq!(samples.len(), 6);
    assert!(
        samples
            .iter()
            .all(|s| s.metric_type == MetricType::Histogram)
    );
    assert_eq!(samples[2].labels["le"], "+Inf");
    assert_eq!(samples[2].value, 144_320.0);
    assert_eq!(samples[3].name, "http_request_duration_seconds_sum");
    assert_eq!(samples[5].value, 1.7e9);
}

#[test]
fn summary_family() {
    let text = r#"# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.99"} NaN
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;
    let samples = parse(text).unwrap();
    assert_eq!(samples.len(), 5);
    assert!(samples.iter().all(|s| s.metric_type == MetricType::Summary));
    assert_eq!(samples[1].labels["quantile"], "0.5");
    assert!(samples[2].value.is_nan());
    assert_eq!(samples[3].value, 17_560_473.0);
}

#[test]
fn bucket_suffix_is_not_summary() {
    // `_bucket` belongs to histograms only.
    let samples = parse("# TYPE s summary\ns_bucket 1\ns_count 2\n").unwrap();
    assert_eq!(samples[0].metric_type, MetricType::Untyped);
    assert_eq!(samples[1].metric_type, MetricType::Summary);
}

#[test]
fn family_lookup_after_other_families() {
    // The family is remembered after another TYPE line intervenes.
    let text = "# TYPE h histogram\n# TYPE g gauge\ng 1\nh_count 2\nh 3\n";
    let types: Vec<_> = parse(text).unwrap().iter().map(|s| s.metric_type).collect();
    assert_eq!(
        types,
        [
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::Histogram
        ]
    );
}

#[test]
fn current_family_wins_over_suffix_collision() {
    let text = "# TYPE a_count gauge\na_count 1\n# TYPE a summary\na_count 2\n";
    let types: Vec<_> = parse(text).unwrap().iter().map(|s| s.metric_type).collect();
    assert_eq!(types, [MetricType::Gauge, MetricType::Summary]);
}

#[test]
fn openmetrics_style_counter_family() {
    let s = one("# TYPE requests counter\nrequests_total 5\n");
    assert_eq!(s.metric_type, MetricType::Counter);
}

#[test]
fn untyped_and_unknown_types() {
    let text = "no_type 1\n# TYPE u untyped\nu 2\n# TYPE i info\ni 3\n# TYPE c COUNTER\nc 4\n";
    let types: Vec<_> = parse(text).unwrap().iter().map(|s| s.metric_type).collect();
    assert_eq!(
        types,
        [
            MetricType::Untyped,
            MetricType::Untyped,
            MetricType::Untyped,
            MetricType::Counter
        ]
    );
}

#[test]
fn comments_and_blank_lines() {
    let text = "# just a comment\n#\n#HELP\n# TYPE\n   \n\t# indented comment\n# HELP x help with \\ odd \\q escapes\nx 1\n";
    assert_eq!(one(text).name, "x");
}

#[test]
fn label_value_escapes() {
    let s = one(
        r#"m{a="quote \" here",b="back\\slash",c="line\nbreak",d="brace } and, comma",e=""} 1"#,
    );
    assert_eq!(s.labels["a"], "quote \" here");
    assert_eq!(s.labels["b"], "back\\slash");
    assert_eq!(s.labels["c"], "line\nbreak");
    assert_eq!(s.labels["d"], "brace } and, comma");
    assert_eq!(s.labels["e"], "");
    // An escaped backslash right before the closing quote.
    assert_eq!(one(r#"m{a="x\\"} 1"#).labels["a"], "x\\");
    assert_eq!(one(r#"m{a="\\\"\n"} 1"#).labels["a"], "\\\"\n");
}

#[test]
fn unicode_label_values() {
    let s = one("m{city=\"Zürich 🇨🇭\"} 1");
    assert_eq!(s.labels["city"], "Zürich 🇨🇭");
}

#[test]
fn names_with_colons() {
    let s = one("job:http_requests:rate5m{job=\"api\"} 12.5");
    assert_eq!(s.name, "job:http_requests:rate5m");
    assert_eq!(one(":leading_colon 1").name, ":leading_colon");
    assert_eq!(one("_underscore 1").name, "_underscore");
}

#[test]
fn timestamps() {
    assert_eq!(
        one("m 1 1700000000123").timestamp_ms,
        Some(1_700_000_000_123)
    );
    assert_eq!(one("m 1 -5").timestamp_ms, Some(-5));
    assert_eq!(one("m 1 +7").timestamp_ms, Some(7));
    assert_eq!(one("m 1 0").timestamp_ms, Some(0));
    assert_eq!(one("m 1").timestamp_ms, None);
    assert_eq!(one("m 1   ").timestamp_ms, None);
    assert_eq!(
        one(&format!("m 1 {}", i64::MIN)).timestamp_ms,
        Some(i64::MIN)
    );
}

#[test]
fn special_and_exotic_values() {
    assert_eq!(one("m +Inf").value, f64::INFINITY);
    assert_eq!(one("m -Inf").value, f64::NEG_INFINITY);
    assert_eq!(one("m inf").value, f64::INFINITY);
    assert_eq!(one("m Infinity").value, f64::INFINITY);
    assert!(one("m NaN").value.is_nan());
    assert!(one("m nan").value.is_nan());
    assert_eq!(one("m 1e3").value, 1000.0);
    assert_eq!(one("m 1.5E-3").value, 0.0015);
    assert_eq!(one("m +12").value, 12.0);
    assert_eq!(one("m -0.25").value, -0.25);
    assert_eq!(one("m .5").value, 0.5);
    assert_eq!(one("m 5.").value, 5.0);
    assert_eq!(one("m 1.e2").value, 100.0);
    assert_eq!(one("m 1e-400").value, 0.0);
    assert_eq!(one("m 9007199254740993").value, 9_007_199_254_740_992.0);
}

#[test]
fn whitespace_and_trailing_comma() {
    let s = one("m { a = \"1\" , b=\"2\", } 3 4");
    assert_eq!(s.labels, labels(&[("a", "1"), ("b", "2")]));
    assert_eq!((s.value, s.timestamp_ms), (3.0, Some(4)));
    assert_eq!(one("m{} 1").labels, Labels::new());
    assert_eq!(one("m{a=\"1\",} 1").labels, labels(&[("a", "1")]));
    assert_eq!(one("  m\t1\t2 ").timestamp_ms, Some(2));
}

#[test]
fn line_endings() {
    let samples = parse("# TYPE a counter\r\na 1\r\n\r\nb{x=\"y\"} 2 3\r\n").unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].metric_type, MetricType::Counter);
    assert_eq!(samples[1].timestamp_ms, Some(3));
    // No final newline.
    assert_eq!(parse("a 1\nb 2").unwrap().len(), 2);
    assert_eq!(parse("").unwrap(), []);
    assert_eq!(parse("\n\n").unwrap(), []);
}

#[test]
fn error_missing_value() {
    fails(
        "m\n",
        1,
        2,
        "expected value after metric name, found end of line",
    );
    fails("a 1\nm{a=\"b\"}\n", 2, 9, "expected value after label set");
    fails("m{a=\"b\"}   \n", 1, 12, "expected value");
}

#[test]
fn error_unterminated_quote() {
    fails("m{a=\"b} 1\n", 1, 5, "unterminated label value");
    fails("ok 1\nm{a=\"b\\\"} 1\n", 2, 5, "unterminated label value");
    fails("m{a=\"b\\", 1, 5, "unterminated label value");
}

#[test]
fn error_bad_label_name() {
    fails(
        "m{1a=\"b\"} 1",
        1,
        3,
        "expected label name or '}', found '1'",
    );
    fails(
        "m{a-b=\"c\"} 1",
        1,
        4,
        "expected '=' after label name \"a\", found '-'",
    );
    fails("m{a:b=\"c\"} 1", 1, 4, "expected '='");
    fails("m{,} 1", 1, 3, "expected label name or '}'");
    fails("m{a=\"1\",,} 1", 1, 9, "expected label name");
    fails("m{__name__=\"x\"} 1", 1, 3, "reserved");
}

#[test]
fn error_garbage_after_value() {
    fails(
        "m 1 2 3",
        1,
        7,
        "expected end of line after timestamp, found '3'",
    );
    fails("m 1 abc", 1, 5, "invalid timestamp \"abc\"");
    fails("m 1 1.5", 1, 5, "invalid timestamp");
    fails("m 1x", 1, 3, "invalid value \"1x\"");
    fails("m 1 99999999999999999999", 1, 5, "out of range");
}

#[test]
fn error_bad_escape() {
    fails(r#"m{a="x\t"} 1"#, 1, 7, "invalid escape sequence '\\t'");
    fails(r#"m{a="é\é"} 1"#, 1, 7, "invalid escape sequence '\\é'");
}

#[test]
fn error_bad_values() {
    for bad in [
        "0x1F", "1_000", "1e", "e5", ".", "-", "+NaN", "-nan", "1e400", "1p5", "Inf1", "--1",
    ] {
        let err = parse(&format!("m {bad}")).expect_err(bad);
        assert_eq!((err.line, err.column), (1, 3), "{bad}: {err}");
        assert!(err.message.starts_with("invalid value"), "{bad}: {err}");
    }
}

#[test]
fn error_structure() {
    fails("{a=\"b\"} 1", 1, 1, "expected metric name, found '{'");
    fails("1m 1", 1, 1, "expected metric name");
    fails(
        "m-1 1",
        1,
        2,
        "expected '{' or whitespace after metric name, found '-'",
    );
    fails(
        "m{a=\"b\"}1",
        1,
        9,
        "expected whitespace after label set, found '1'",
    );
    fails(
        "m{a=b} 1",
        1,
        5,
        "expected '\"' to start the value of label \"a\", found 'b'",
    );
    fails("m{a \"b\"} 1", 1, 5, "expected '='");
    fails(
        "m{a=\"b\" c=\"d\"} 1",
        1,
        9,
        "expected ',' or '}' after label value, found 'c'",
    );
    fails(
        "m{a=\"b\"",
        1,
        8,
        "expected ',' or '}' after label value, found end of line",
    );
    fails(
        "m{a=\"b\", 1",
        1,
        10,
        "expected label name or '}', found '1'",
    );
    fails("m{a=\"1\",a=\"2\"} 1", 1, 9, "duplicate label name \"a\"");
    fails(
        "# TYPE 1m counter",
        1,
        8,
        "expected metric name after '# TYPE'",
    );
    fails(
        "# HELP m{ help",
        1,
        9,
        "expected whitespace after metric name",
    );
    fails(
        "# TYPE m counter extra",
        1,
        18,
        "expected end of line after metric type",
    );
}

#[test]
fn error_columns_count_characters() {
    // Column is in characters, not bytes: "é" is two bytes.
    fails("m{a=\"é\",b=\"ü\"} 1 x", 1, 18, "invalid timestamp");
}

#[test]
fn error_display() {
    let err = parse("ok 1\nbad").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2 column 4: expected value after metric name, found end of line"
    );
    let _: &dyn std::error::Error = &err;
}

// --- property tests ---------------------------------------------------------

#[derive(Debug, Clone)]
struct Family {
    name: String,
    metric_type: MetricType,
    samples: Vec<(String, Labels, f64, Option<i64>)>,
}

fn metric_type() -> impl Strategy<Value = MetricType> {
    prop_oneof![
        Just(MetricType::Counter),
        Just(MetricType::Gauge),
        Just(MetricType::Histogram),
        Just(MetricType::Summary),
        Just(MetricType::Untyped),
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        (-1000i32..1000).prop_map(f64::from),
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z\"\\\\\n},={ ]{0,8}",]
}

fn label_set() -> impl Strategy<Value = Labels> {
    proptest::collection::btree_map(
        "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("reserved", |n| n != "__name__"),
        label_value(),
        0..4,
    )
}

fn family() -> impl Strategy<Value = Family> {
    ("[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", metric_type()).prop_flat_map(|(name, metric_type)| {
        let suffixes: Vec<&'static str> = match metric_type {
            MetricType::Histogram => vec!["_bucket", "_sum", "_count", "_created"],
            MetricType::Summary => vec!["", "_sum", "_count", "_created"],
            MetricType::Counter => vec!["", "_total", "_created"],
            MetricType::Gauge | MetricType::Untyped => vec![""],
        };
        let sample = (
            proptest::sample::select(suffixes),
            label_set(),
            value(),
            proptest::option::of(any::<i64>()),
        );
        proptest::collection::vec(sample, 0..4).prop_map(move |samples| Family {
            name: name.clone(),
            metric_type,
            samples: samples
                .into_iter()
                .map(|(suffix, labels, value, ts)| (format!("{}{suffix}", name), labels, value, ts))
                .collect(),
        })
    })
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_value(value: f64, style: u8) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        match style % 3 {
            0 => format!("{value:?}"),
            1 => format!("{value:e}"),
            _ => format!("{value}"),
        }
    }
}

fn type_token(t: MetricType) -> &'static str {
    match t {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Histogram => "histogram",
        MetricType::Summary => "summary",
        MetricType::Untyped => "untyped",
    }
}

/// Renders families as an exposition, varying the optional syntax.
fn render(families: &[Family], style: u8) -> String {
    let nl = if style & 1 == 0 { "\n" } else { "\r\n" };
    let mut out = String::new();
    for family in families {
        if style & 2 != 0 {
            out += &format!("# HELP {} Some help with \\\\ and \\n.{nl}", family.name);
        }
        out += &format!(
            "# TYPE {} {}{nl}",
            family.name,
            type_token(family.metric_type)
        );
        for (name, labels, value, ts) in &family.samples {
            out += name;
            if !labels.is_empty() || style & 4 != 0 {
                let sep = if style & 8 != 0 { " , " } else { "," };
                let body: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                out += "{";
                out += &body.join(sep);
                if style & 16 != 0 && !labels.is_empty() {
                    out += ",";
                }
                out += "}";
            }
            out += " ";
            out += &render_value(*value, style >> 5);
            if let Some(ts) = ts {
                out += &format!(" {ts}");
            }
            out += nl;
        }
        if style & 2 != 0 {
            out += nl;
        }
    }
    if style & 64 != 0 {
        // Tolerate a missing final newline.
        out.truncate(out.trim_end().len());
    }
    out
}

fn same_sample(a: &ParsedSample, b: &ParsedSample) -> bool {
    a.name == b.name
        && a.labels == b.labels
        && a.timestamp_ms == b.timestamp_ms
        && a.metric_type == b.metric_type
        && (a.value == b.value || (a.value.is_nan() && b.value.is_nan()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rendered_samples_parse_back(
        families in proptest::collection::vec(family(), 0..5)
            .prop_filter("distinct family names", |fs| {
                let mut names: Vec<_> = fs.iter().map(|f| &f.name).collect();
                names.sort();
                names.dedup();
                names.len() == fs.len()
            }),
        style in any::<u8>(),
    ) {
        let text = render(&families, style);
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let expected: Vec<ParsedSample> = families
            .iter()
            .flat_map(|f| f.samples.iter().map(|(name, labels, value, ts)| ParsedSample {
                name: name.clone(),
                labels: labels.clone(),
                value: *value,
                timestamp_ms: *ts,
                metric_type: f.metric_type,
            }))
            .collect();
        prop_assert_eq!(parsed.len(), expected.len(), "{}", text);
        for (got, want) in parsed.iter().zip(&expected) {
            prop_assert!(same_sample(got, want), "got {:?}\nwant {:?}\n{}", got, want, text);
        }
    }

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn parse_never_panics_on_near_misses(
        text in "[a-z_:{}=\",\\\\ #\t\n\r.0-9+eEIfNa-]{0,60}",
    ) {
        if let Err(e) = parse(&text) {
            prop_assert!(e.line >= 1 && e.column >= 1);
            let line = text.split('\n').nth(e.line - 1).unwrap();
            prop_assert!(e.column <= line.chars().count() + 1, "{:?} {}", text, e);
        }
    }
}

use super::*;
use proptest::prelude::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn sel(text: &str) -> Selector {
    Selector::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Asserts that `text` fails at `column` with a message containing `needle`.
#[track_caller]
fn fails(text: &str, column: usize, needle: &str) {
    let err = Selector::parse(text).expect_err(text);
    assert_eq!(err.column, column, "{text:?}: {err}");
    assert!(
        err.message.contains(needle),
        "{text:?}: {err} lacks {needle:?}"
    );
}

fn triple(m: &Matcher) -> (&str, MatchOp, &str) {
    (&m.name, m.op, &m.value)
}

#[test]
fn parses_all_forms() {
    let s = sel(r#"http_requests_total{label="v", other!="x", re=~"5..", nre!~"GET|HEAD"}"#);
    assert_eq!(s.metric.as_deref(), Some("http_requests_total"));
    let got: Vec<_> = s.matchers.iter().map(triple).collect();
    assert_eq!(
        got,
        [
            ("label", MatchOp::Equal, "v"),
            ("other", MatchOp::NotEqual, "x"),
            ("re", MatchOp::Regex, "5.."),
            ("nre", MatchOp::NotRegex, "GET|HEAD"),
        ]
    );

    let bare = sel("job:up:sum");
    assert_eq!(
        (bare.metric.as_deref(), bare.matchers.len()),
        (Some("job:up:sum"), 0)
    );

    let only = sel(r#"{job="a"}"#);
    assert_eq!(only.metric, None);
    assert_eq!(triple(&only.matchers[0]), ("job", MatchOp::Equal, "a"));

    let by_name = sel(r#"{__name__="x"}"#);
    assert_eq!(by_name.metric, None);
    assert_eq!(
        triple(&by_name.matchers[0]),
        ("__name__", MatchOp::Equal, "x")
    );

    assert_eq!(sel("up{}").matchers.len(), 0);
    assert_eq!("up".parse::<Selector>().unwrap(), sel("up"));
}

#[test]
fn whitespace_and_trailing_comma() {
    let a = sel(" \t up \n{ job = \"a\" ,\n\tre =~ 'x' , } \r\n");
    let b = sel(r#"up{job="a",re=~"x"}"#);
    assert_eq!(a, b);
    assert_eq!(Selector::matchers_only("a='b',").unwrap().len(), 1);
}

#[test]
fn string_quoting_and_escapes() {
    let s = sel(
        r#"{a="q\"s\'b\\n\n\t\r", b='it\'s "x"', c=`raw\d\`, d="\u00e9\U0001F600", e="Zürich"}"#,
    );
    let v: Vec<_> = s.matchers.iter().map(|m| m.value.as_str()).collect();
    assert_eq!(
        v,
        ["q\"s'b\\n\n\t\r", "it's \"x\"", "raw\\d\\", "é😀", "Zürich"]
    );
    assert_eq!(
        sel(r#"{a="\a\b\f\v"}"#).matchers[0].value,
        "\u{7}\u{8}\u{c}\u{b}"
    );
    assert_eq!(sel("{a=`multi\nline`}").matchers[0].value, "multi\nline");
}

#[test]
fn absent_label_is_empty_string() {
    let none = Labels::new();
    let with = labels(&[("foo", "bar")]);
    let empty_eq = sel(r#"{foo=""}"#);
    assert!(empty_eq.matches("m", &none));
    assert!(!empty_eq.matches("m", &with));
    let empty_ne = sel(r#"{foo!=""}"#);
    assert!(!empty_ne.matches("m", &none));
    assert!(empty_ne.matches("m", &with));
    assert!(sel(r#"{foo=~".*"}"#).matches("m", &none));
    assert!(!sel(r#"{foo=~".+"}"#).matches("m", &none));
    assert!(sel(r#"{foo!~".+"}"#).matches("m", &none));
    assert!(sel(r#"{foo!="x"}"#).matches("m", &none));
}

#[test]
fn regexes_are_fully_anchored() {
    let five = sel(r#"{code=~"5.."}"#);
    assert!(five.matches("m", &labels(&[("code", "503")])));
    assert!(!five.matches("m", &labels(&[("code", "5030")])));
    assert!(!five.matches("m", &labels(&[("code", "1503")])));
    // Anchoring covers the whole alternation, not just its ends.
    let methods = sel(r#"{method!~"GET|HEAD"}"#);
    assert!(!methods.matches("m", &labels(&[("method", "GET")])));
    assert!(!methods.matches("m", &labels(&[("method", "HEAD")])));
    assert!(methods.matches("m", &labels(&[("method", "GETX")])));
    assert!(methods.matches("m", &labels(&[("method", "XHEAD")])));
    assert!(methods.matches("m", &labels(&[("method", "POST")])));
    // As in Prometheus, `.` also matches a newline.
    assert!(sel(r#"{msg=~"a.b"}"#).matches("m", &labels(&[("msg", "a\nb")])));
}

#[test]
fn metric_name_and_name_matchers() {
    let l = labels(&[("job", "api")]);
    let s = sel(r#"up{job="api"}"#);
    assert!(s.matches("up", &l));
    assert!(!s.matches("down", &l));
    assert!(!s.matches("up", &Labels::new()));

    let re = sel(r#"{__name__=~"http_.*", job="api"}"#);
    assert!(re.matches("http_requests_total", &l));
    assert!(!re.matches("grpc_requests_total", &l));
    // `__name__` matchers look at the metric name, not at a label of that name.
    let tricky = labels(&[("job", "api"), ("__name__", "http_x")]);
    assert!(!re.matches("grpc", &tricky));
    assert!(sel(r#"{__name__!="up"}"#).matches("down", &Labels::new()));
    assert!(!sel(r#"{__name__!="up"}"#).matches("up", &Labels::new()));
}

#[test]
fn matcher_new_and_matches() {
    let m = Matcher::new("code", MatchOp::Regex, "2..|3..").unwrap();
    assert!(m.matches(&labels(&[("code", "302")])));
    assert!(!m.matches(&labels(&[("code", "404")])));
    assert!(m.matches_value("200"));
    assert_eq!(m.to_string(), r#"code=~"2..|3..""#);

    let err = Matcher::new("bad-name", MatchOp::Equal, "x").unwrap_err();
    assert_eq!(err.column, 0);
    assert!(
        err.message.contains("invalid label name \"bad-name\""),
        "{err}"
    );
    assert_eq!(err.to_string(), err.message);

    let err = Matcher::new("a", MatchOp::NotRegex, "(").unwrap_err();
    assert!(
        err.message
            .starts_with("invalid regex \"(\" for label \"a\""),
        "{err}"
    );
    // Unbalanced patterns must not slip through by closing our own group.
    assert!(Matcher::new("a", MatchOp::Regex, "a)|(b").is_err());
    // Equality matchers do not compile their value.
    assert!(Matcher::new("a", MatchOp::Equal, "(").is_ok());
}

#[test]
fn errors_with_columns() {
    fails("", 1, "expected metric name or '{', found end of selector");
    fails("   ", 4, "expected metric name or '{'");
    fails(
        "{}",
        1,
        "selector must contain a metric name or at least one label matcher",
    );
    fails("  { }", 3, "must contain");
    fails("9up", 1, "expected metric name or '{', found '9'");
    fails(
        "foo{bar}",
        8,
        "expected one of '=', '!=', '=~', '!~' after label name \"bar\", found '}'",
    );
    fails(
        r#"foo{bar="baz""#,
        14,
        "expected ',' or '}', found end of selector",
    );
    fails(r#"foo{bar="baz}"#, 9, "unterminated quoted string");
    fails("foo{bar=\"a\nb\"}", 9, "unterminated quoted string");
    fails("foo{bar=`baz}", 9, "unterminated quoted string");
    fails(
        r#"foo{1bar="x"}"#,
        5,
        "expected label name or '}', found '1'",
    );
    fails(
        r#"foo{a=~"(unclosed"}"#,
        8,
        "invalid regex \"(unclosed\" for label \"a\"",
    );
    fails(r#"foo{ok="1", b!~"[z-a]"}"#, 16, "invalid regex \"[z-a]\"");
    fails(r#"foo{a="\d"}"#, 8, "unknown escape sequence '\\d'");
    fails(r#"foo{a="x\"#, 9, "unterminated escape sequence");
    fails(r#"foo{a="\u12"}"#, 8, "expected 4 hex digits after '\\u'");
    fails(r#"foo{a="\uD800"}"#, 8, "invalid Unicode code point");
    fails(
        "foo bar",
        5,
        "expected '{' or end of selector after metric name, found 'b'",
    );
    fails("foo[5m]", 4, "expected '{' or end of selector");
    fails(r#"foo{a="b"} x"#, 12, "expected end of selector, found 'x'");
    fails(
        r#"foo{__name__="bar"}"#,
        5,
        "metric name must not be set twice",
    );
    fails("foo{a=b}", 7, "expected quoted string, found 'b'");
    fails(r#"{a.b="c"}"#, 3, "found '.'");
    fails(r#"foo{a=="b"}"#, 7, "expected quoted string, found '='");
    fails(r#"foo{a="b" c="d"}"#, 11, "expected ',' or '}', found 'c'");
    fails(r#"{,}"#, 2, "expected label name or '}'");
    // Columns count characters, not bytes.
    fails(r#"{a="é", b~"x"}"#, 10, "expected one of");
}

#[test]
fn error_display() {
    let err = Selector::parse("foo{").unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 5: expected label name or '}', found end of selector"
    );
    let _: &dyn std::error::Error = &err;
}

#[test]
fn matchers_only_forms() {
    let braced = Selector::matchers_only(r#"{a="b", c=~"d.*"}"#).unwrap();
    let bare = Selector::matchers_only(r#"a="b", c=~"d.*""#).unwrap();
    assert_eq!(braced, bare);
    assert_eq!(
        bare.iter().map(triple).collect::<Vec<_>>(),
        [("a", MatchOp::Equal, "b"), ("c", MatchOp::Regex, "d.*")]
    );
    assert!(bare[1].matches(&labels(&[("c", "dog")])));
    assert_eq!(Selector::matchers_only("").unwrap(), []);
    assert_eq!(Selector::matchers_only(" { } ").unwrap(), []);
    assert_eq!(
        Selector::matchers_only(r#"__name__="up""#).unwrap().len(),
        1
    );

    let err = Selector::matchers_only(r#"a="b" c="d""#).unwrap_err();
    assert_eq!(err.column, 7);
    assert!(
        err.message
            .contains("expected ',' or end of input, found 'c'"),
        "{err}"
    );
    let err = Selector::matchers_only(r#"{a="b"} x"#).unwrap_err();
    assert_eq!(
        (err.column, err.message.as_str()),
        (9, "expected end of input after '}', found 'x'")
    );
    let err = Selector::matchers_only(r#"up{a="b"}"#).unwrap_err();
    assert_eq!(err.column, 3);
    let err = Selector::matchers_only(r#"a=~"(""#).unwrap_err();
    assert_eq!(err.column, 4);
}

#[test]
fn display_is_canonical() {
    let cases = [
        ("up", "up"),
        ("up{}", "up"),
        (" up { job = 'a' , } ", r#"up{job="a"}"#),
        (r#"{__name__=~"x.*"}"#, r#"{__name__=~"x.*"}"#),
        (r#"m{a!="b",c=~"d",e!~"f"}"#, r#"m{a!="b", c=~"d", e!~"f"}"#),
        ("{a=`back\\slash \"q\"`}", r#"{a="back\\slash \"q\""}"#),
        (r#"{a="\n\t\r\u0001é"}"#, r#"{a="\n\t\r\u0001é"}"#),
    ];
    for (input, canonical) in cases {
        assert_eq!(sel(input).to_string(), canonical, "{input:?}");
        assert_eq!(sel(canonical).to_string(), canonical);
    }
}

#[test]
fn display_of_unrepresentable_metric_name() {
    // Built by hand, a metric name may not be writable bare, or may clash
    // with a __name__ matcher; Display falls back to a matcher.
    let s = Selector {
        metric: Some("my.metric".into()),
        matchers: vec![Matcher::new("job", MatchOp::Equal, "a").unwrap()],
    };
    assert_eq!(s.to_string(), r#"{__name__="my.metric", job="a"}"#);
    assert!(sel(&s.to_string()).matches("my.metric", &labels(&[("job", "a")])));

    let s = Selector {
        metric: Some("up".into()),
        matchers: vec![Matcher::new("__name__", MatchOp::Regex, "u.").unwrap()],
    };
    assert_eq!(s.to_string(), r#"{__name__="up", __name__=~"u."}"#);
    assert!(sel(&s.to_string()).matches("up", &Labels::new()));
}

// --- property tests ---------------------------------------------------------

fn match_op() -> impl Strategy<Value = MatchOp> {
    prop_oneof![
        Just(MatchOp::Equal),
        Just(MatchOp::NotEqual),
        Just(MatchOp::Regex),
        Just(MatchOp::NotRegex),
    ]
}

fn matcher() -> impl Strategy<Value = Matcher> {
    let name = prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        1 => Just("__name__".to_owned()),
    ];
    let value = prop_oneof![any::<String>(), "[ab.*|()?+^$\\\\\\[\\] \n\t\"'`]{0,8}",];
    (name, match_op(), value).prop_filter_map("valid regex", |(name, op, value)| {
        Matcher::new(name, op, value).ok()
    })
}

fn selector() -> impl Strategy<Value = Selector> {
    let metric = prop_oneof![
        4 => "[a-zA-Z_:][a-zA-Z0-9_:]{0,8}",
        1 => any::<String>(),
    ];
    (
        proptest::option::of(metric),
        proptest::collection::vec(matcher(), 0..4),
    )
        .prop_filter("needs a name or a matcher", |(metric, matchers)| {
            metric.is_some() || !matchers.is_empty()
        })
        .prop_map(|(metric, matchers)| Selector { metric, matchers })
}

/// A selector plus series that are likely to hit its matchers either way.
fn selector_and_series() -> impl Strategy<Value = (Selector, Vec<(String, Labels)>)> {
    selector().prop_flat_map(|s| {
        let mut names: Vec<String> = s.matchers.iter().map(|m| m.name.clone()).collect();
        names.push("other".into());
        let mut values: Vec<String> = s.matchers.iter().map(|m| m.value.clone()).collect();
        values.extend(s.metric.clone());
        values.extend(["".to_owned(), "a".to_owned(), "ab".to_owned()]);
        let value = proptest::sample::select(values);
        let series = (
            value.clone(),
            proptest::collection::vec((proptest::sample::select(names), value), 0..4),
        )
            .prop_map(|(metric, pairs)| (metric, pairs.into_iter().collect::<Labels>()));
        (Just(s), proptest::collection::vec(series, 8))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn display_reparses_to_equal_matching((s, series) in selector_and_series()) {
        let text = s.to_string();
        let reparsed = Selector::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(reparsed.to_string(), text.clone(), "not canonical");
        for (metric, labels) in &series {
            prop_assert_eq!(
                s.matches(metric, labels),
                reparsed.matches(metric, labels),
                "{} on {:?} {:?}", text, metric, labels
            );
        }
        let plain = s.metric.as_deref().is_none_or(is_metric_name)
            && !(s.metric.is_some() && s.matchers.iter().any(|m| m.name == "__name__"));
        if plain {
            prop_assert_eq!(&reparsed, &s);
        }
    }

    #[test]
    fn matcher_display_reparses(m in matcher()) {
        let parsed = Selector::matchers_only(&m.to_string()).unwrap();
        prop_assert_eq!(parsed, vec![m]);
    }

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        let _ = Selector::parse(&text);
        let _ = Selector::matchers_only(&text);
    }

    #[test]
    fn parse_never_panics_on_near_misses(
        text in "[a-z_:{}=!~\"'`,\\\\ \nuU0-9().*é]{0,40}",
    ) {
        for result in [Selector::parse(&text).map(|_| ()), Selector::matchers_only(&text).map(|_| ())] {
            if let Err(e) = result {
                prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{:?} {}", text, e);
            }
        }
    }
}

use super::*;

fn q(name: &str) -> PromqlQuery {
    PromqlQuery {
        name: name.into(),
        expr: "x".into(),
    }
}

fn job() -> Labels {
    [("job".to_string(), "prom".to_string())].into()
}

#[test]
fn vector_answer_from_prometheus() {
    // As Prometheus 2.42 answers (../shared/COMPONENTS.md), plus a series
    // without a name and special values.
    let body = br#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"demo_up","instance":"127.0.0.1:19100","job":"demo"},"value":[1795272557.841,"1"]},
        {"metric":{"code":"500"},"value":[1795272557.841,"+Inf"]},
        {"metric":{},"value":[1795272557,"NaN"]}]}}"#;
    let s = parse_response(body, &q("err_rate"), &job()).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].name, "demo_up");
    assert_eq!(s[0].value, 1.0);
    assert_eq!(s[0].at, 1_795_272_557_841);
    // The series' own job wins over the source's.
    assert_eq!(s[0].labels.get("job").map(String::as_str), Some("demo"));
    assert_eq!(s[1].name, "err_rate");
    assert_eq!(s[1].value, f64::INFINITY);
    assert_eq!(s[1].labels.get("job").map(String::as_str), Some("prom"));
    assert!(s[2].value.is_nan());
}

#[test]
fn scalar_and_errors() {
    let s = parse_response(
        br#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"42"]}}"#,
        &q("answer"),
        &job(),
    )
    .unwrap();
    assert_eq!(
        (s[0].name.as_str(), s[0].value, s[0].at),
        ("answer", 42.0, 1500)
    );

    let e = parse_response(
        br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#,
        &q("a"),
        &job(),
    )
    .unwrap_err();
    assert!(e.contains("bad_data") && e.contains("char 5"), "{e}");

    let e = parse_response(
        br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        &q("a"),
        &job(),
    )
    .unwrap_err();
    assert!(e.contains("instant query"), "{e}");
    assert!(parse_response(b"<html>", &q("a"), &job()).is_err());
}

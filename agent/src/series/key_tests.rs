use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn compact_labels_round_trip_and_compare_without_allocating() {
    for l in [
        labels(&[]),
        labels(&[("job", "web")]),
        labels(&[("a", ""), ("", "b"), ("zone", "eu\u{0}\"x\"\n"), ("é", "ü")]),
    ] {
        let c = CompactLabels::new(&l);
        assert_eq!(c.to_labels(), l);
        assert!(c.same_as(&l));
        assert_eq!(format!("{c:?}"), format!("{l:?}"));
    }
    let a = labels(&[("job", "web"), ("instance", "a")]);
    let c = CompactLabels::new(&a);
    assert!(!c.same_as(&labels(&[("job", "web")])));
    assert!(!c.same_as(&labels(&[("job", "web"), ("instance", "b")])));
    assert!(!c.same_as(&labels(&[("job", "web"), ("instance", "a"), ("zone", "x")])));
    // Length prefixes keep "ab"+"c" apart from "a"+"bc".
    assert_ne!(
        CompactLabels::new(&labels(&[("ab", "c")])),
        CompactLabels::new(&labels(&[("a", "bc")]))
    );
    assert!(c.heap_bytes() < 64);
}

#[test]
fn keys_tell_name_and_labels_apart() {
    let l = labels(&[("job", "web")]);
    assert_eq!(series_key("up", &l), series_key("up", &l.clone()));
    assert_ne!(series_key("up", &l), series_key("down", &l));
    assert_ne!(
        series_key("up", &l),
        series_key("up", &labels(&[("job", "db")]))
    );
    let mut m: KeyMap<u32> = KeyMap::default();
    m.insert(series_key("up", &l), 1);
    assert_eq!(m.get(&series_key("up", &l)), Some(&1));
}

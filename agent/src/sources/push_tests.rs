use super::*;

#[test]
fn admit_all_is_all_or_nothing() {
    let mut l = SeriesLimiter::new(3, 1000);
    assert_eq!(l.admit_all(&[1, 2], 0), Ok(()));
    // 3 and 4 would make 4 series: refused, nothing admitted.
    assert_eq!(l.admit_all(&[3, 4], 10), Err(1));
    assert_eq!(l.active(), 2);
    // Known series always pass, and one new one fits.
    assert_eq!(l.admit_all(&[1, 2, 3, 3], 20), Ok(()));
    assert_eq!(l.active(), 3);
}

#[test]
fn expired_series_make_room() {
    let mut l = SeriesLimiter::new(2, 1000);
    assert_eq!(l.admit_all(&[1, 2], 0), Ok(()));
    assert_eq!(l.admit_all(&[3], 500), Err(1));
    // 1 and 2 were last seen at 0; at 1001 they have expired.
    assert_eq!(l.admit_all(&[3], 1001), Ok(()));
    assert_eq!(l.active(), 1);
}

#[test]
fn admit_each_admits_what_fits() {
    let mut l = SeriesLimiter::new(2, 1000);
    assert_eq!(
        l.admit_each(&[1, 2, 3, 1], 0),
        vec![true, true, false, true]
    );
    assert_eq!(l.active(), 2);
}

#[test]
fn label_limits() {
    let lim = IngestLimits {
        max_labels_per_series: 2,
        max_label_bytes: 4,
        ..IngestLimits::default()
    };
    let ok = [("a", "b"), ("c", "d")];
    assert!(lim.check_labels(ok.iter().copied()).is_ok());
    let many = [("a", "b"), ("c", "d"), ("e", "f")];
    assert!(
        lim.check_labels(many.iter().copied())
            .unwrap_err()
            .contains("3 labels")
    );
    let long = [("a", "bbbbb")];
    assert!(
        lim.check_labels(long.iter().copied())
            .unwrap_err()
            .contains("longer than 4")
    );
}

#[test]
fn slot_guard_clears_only_its_own_receiver() {
    let slot: Arc<Slot<u32>> = Arc::default();
    let old = slot.install(Arc::new(1));
    let new = slot.install(Arc::new(2));
    drop(old);
    assert_eq!(slot.get().as_deref(), Some(&2));
    drop(new);
    assert!(slot.get().is_none());
}

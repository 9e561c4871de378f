//! The Prometheus text-format parser on arbitrary input: never panics, and
//! whatever it accepts has finite-or-special values and valid names.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(samples) = medic_agent::sources::scrape::parser::parse(text)
    {
        for s in samples {
            assert!(!s.name.is_empty());
        }
    }
});

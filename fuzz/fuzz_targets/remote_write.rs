//! remote_write decoding (snappy + protobuf WriteRequest) on arbitrary
//! bodies, both as sent and snappy-compressed: never panics, never
//! allocates past the decompressed-size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_agent::sources::push::IngestLimits;
use medic_agent::sources::remote_write::decode;

fuzz_target!(|data: &[u8]| {
    let limits = IngestLimits {
        max_decompressed_bytes: 1 << 20,
        ..IngestLimits::default()
    };
    let _ = decode(data, &limits);
    if let Ok(c) = snap::raw::Encoder::new().compress_vec(data) {
        let _ = decode(&c, &limits);
    }
});

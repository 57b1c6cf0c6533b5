//! Arbitrary bytes as an image file: decode to the working image, then every feature family
//! of the full profile. An error is fine; a panic, a crash or a panic the library caught and
//! reported as an error is a bug.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use lookalike::decode::DecodeConfig;
use lookalike::features::Registry;

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

fuzz_target!(|data: &[u8]| {
    let cfg = DecodeConfig::default();
    if let Err(e) = lookalike::index::extract_bytes(data, Path::new("fuzz.bin"), &cfg, &REGISTRY) {
        let msg = e.to_string();
        assert!(
            !msg.contains("crashed") && !msg.contains("feature extraction failed"),
            "panic caught inside the library: {msg}"
        );
    }
});

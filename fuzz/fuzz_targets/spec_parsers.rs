//! Arbitrary text through the parsers of user specifications: PSF specs (and the kernels
//! they make), fusion weights, distortion lists and chains. Errors are fine; panics are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookalike::eval::distort::{Distortion, parse_chain, parse_list};
use lookalike::features::{Fusion, Registry};
use lookalike::restore::PsfSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A `file:` spec names a file to read: parsed, never opened.
    if let Ok(spec) = PsfSpec::parse(text)
        && !matches!(spec, PsfSpec::File(_))
    {
        let _ = spec.to_psf();
    }
    let _ = Fusion::parse(text, &Registry::default().families());
    let _ = text.parse::<Distortion>();
    let _ = parse_list(text);
    let _ = parse_chain(text);
});

//! Writes a DNG copy of an image: its pixels as a 16-bit RGGB mosaic, with a full-size JPEG
//! preview unless `--no-preview`, for testing and measuring RAW decoding.
//! Usage: make_dng INPUT OUTPUT.dng [--no-preview] [--orientation N]

#[path = "../../../tests/common/dng.rs"]
mod dng;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: make_dng INPUT OUTPUT.dng [--no-preview] [--orientation N]";
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let preview = !args.iter().any(|a| a == "--no-preview");
    let orientation = args
        .iter()
        .position(|a| a == "--orientation")
        .and_then(|i| args.get(i + 1))
        .map_or(1, |v| v.parse().expect("orientation is 1..8"));
    let rgb = image::open(input)
        .unwrap_or_else(|e| panic!("{input}: {e}"))
        .into_rgb8();
    let mut options = dng::DngOptions {
        orientation,
        ..Default::default()
    };
    if preview {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
            .encode_image(&rgb)
            .expect("encode the preview");
        options.preview_jpeg = Some(jpeg);
        options.preview_size = rgb.dimensions();
    }
    std::fs::write(output, dng::dng_from_rgb(&rgb, &options))
        .unwrap_or_else(|e| panic!("{output}: {e}"));
}

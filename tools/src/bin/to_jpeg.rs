//! Writes an image as a JPEG (quality 92), for making JPEG originals of a folder of photos.
//! Usage: to_jpeg INPUT OUTPUT.jpg

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: to_jpeg INPUT OUTPUT.jpg");
        std::process::exit(2);
    };
    let rgb = image::open(input)
        .unwrap_or_else(|e| panic!("{input}: {e}"))
        .into_rgb8();
    let file = std::fs::File::create(output).unwrap_or_else(|e| panic!("{output}: {e}"));
    image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 92)
        .encode_image(&rgb)
        .unwrap_or_else(|e| panic!("{output}: {e}"));
}

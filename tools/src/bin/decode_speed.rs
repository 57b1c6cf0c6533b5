//! Decoding time per image and format: the file's bytes (already read) to the working image,
//! on one calling thread (decoders may use their own threads), each file decoded `REPEAT` times.
//! Usage: decode_speed FOLDER [LIMIT] [REPEAT] [MEMORY_MIB]   (prints one line per format: files, megapixels,
//! median and 90th-percentile milliseconds per image)

use std::collections::BTreeMap;
use std::time::Instant;

use lookalike::decode::{DecodeConfig, decode, read_image_file};

fn main() {
    let paths =
        lookalike_tools::image_files_from_args("decode_speed FOLDER [LIMIT] [REPEAT] [MEMORY_MIB]");
    let repeat: usize = std::env::args()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut cfg = DecodeConfig::default();
    if let Some(mib) = std::env::args().nth(4).and_then(|v| v.parse::<u64>().ok()) {
        cfg.memory_budget = mib << 20;
    }
    let mut times: BTreeMap<String, (Vec<f64>, f64)> = BTreeMap::new();
    for path in &paths {
        let bytes = read_image_file(path, &cfg).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..repeat {
            let t = Instant::now();
            let decoded = decode(&bytes, path, &cfg).unwrap_or_else(|e| panic!("{e}"));
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let entry = times.entry(decoded.format.clone()).or_default();
            entry.0.push(ms);
            entry.1 = f64::from(decoded.width) * f64::from(decoded.height) / 1e6;
        }
    }
    println!("format  decodes  megapixels  median_ms  p90_ms");
    for (format, (mut ms, megapixels)) in times {
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        println!(
            "{format:<7} {:>7}  {megapixels:>10.1}  {:>9.1}  {:>6.1}",
            ms.len(),
            at(0.5),
            at(0.9)
        );
    }
}

//! Generates a benchmark corpus: photo-like JPEGs with grain (so they carry real entropy).
//! Usage: make_corpus OUT_DIR COUNT WIDTH HEIGHT [QUALITY]
//! Deterministic: image i is always the same.

use image::{ImageEncoder, Rgb, RgbImage};
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: make_corpus OUT_DIR COUNT WIDTH HEIGHT [QUALITY]");
        std::process::exit(2);
    }
    let out = std::path::PathBuf::from(&args[1]);
    let count: usize = args[2].parse().expect("COUNT");
    let (w, h): (u32, u32) = (
        args[3].parse().expect("WIDTH"),
        args[4].parse().expect("HEIGHT"),
    );
    let quality: u8 = args.get(5).map_or(92, |q| q.parse().expect("QUALITY"));
    std::fs::create_dir_all(&out).expect("create OUT_DIR");
    (0..count).into_par_iter().for_each(|i| {
        let path = out.join(format!("{:02}/img{i:06}.jpg", i % 100));
        if path.exists() {
            return;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let img = synth(i as u64, w, h);
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        std::fs::write(path, buf).unwrap();
    });
}

/// Smooth colour gradients, a few discs and stripes, plus per-pixel grain.
fn synth(seed: u64, w: u32, h: u32) -> RgbImage {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f32 / (1u64 << 53) as f32
    };
    let base: Vec<f32> = (0..9).map(|_| rnd() * 255.0).collect();
    let discs: Vec<(f32, f32, f32, [f32; 3])> = (0..6)
        .map(|_| {
            (
                rnd() * w as f32,
                rnd() * h as f32,
                (0.05 + 0.2 * rnd()) * h as f32,
                [rnd() * 255.0, rnd() * 255.0, rnd() * 255.0],
            )
        })
        .collect();
    let freq = 0.002 + 0.02 * rnd();
    let mut img = RgbImage::new(w, h);
    let mut grain_state = seed ^ 0xDEAD_BEEF;
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let mut c = [0.0f32; 3];
        for k in 0..3 {
            c[k] = base[k] * (1.0 - fx) + base[3 + k] * fx * (1.0 - fy) + base[6 + k] * fy * 0.5;
        }
        for (cx, cy, r, col) in &discs {
            if (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < r * r {
                c = *col;
            }
        }
        let stripe = 20.0 * ((x as f32 + y as f32 * 0.3) * freq * std::f32::consts::TAU).sin();
        grain_state ^= grain_state << 13;
        grain_state ^= grain_state >> 7;
        grain_state ^= grain_state << 17;
        let grain = ((grain_state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 24.0;
        *p = Rgb(c.map(|v| (v + stripe + grain).clamp(0.0, 255.0) as u8));
    }
    img
}

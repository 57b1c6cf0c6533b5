//! The restoration grid in one process: each photo blurred by each PSF at each noise level
//! (as `lookalike blur` does, then rounded to 8 bits), restored with the true PSF by every
//! method and blindly, and scored by PSNR against the photo. One line per case, then the mean
//! per PSF and noise level; `benches/restore_grid.sh` runs the same grid as whole commands
//! against scikit-image. Quicker to iterate on than the commands.
//! Usage: restore_grid PHOTOS_DIR [quick]

use std::path::Path;

use lookalike::restore::color::Planes;
use lookalike::restore::fft::convolve;
use lookalike::restore::noise::add_gaussian_noise;
use lookalike::restore::{DeblurConfig, Method, PsfSpec, deblur, scores};

const GREY: [&str; 8] = [
    "brick.png",
    "camera.png",
    "grass.png",
    "gravel.png",
    "astronaut.png",
    "horse.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
];
const COLOUR: [&str; 2] = ["coffee.png", "chelsea.png"];
const PSFS: [&str; 5] = [
    "gaussian:1",
    "gaussian:2",
    "gaussian:3",
    "disk:3",
    "motion:15,30",
];
const NOISE: [f32; 2] = [0.002, 0.01];

/// The photo as the grid uses it: grey or colour, centre-cropped to at most 512 a side.
fn prepare(dir: &Path, name: &str, grey: bool) -> Planes {
    let img = image::open(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let rgba = img.to_rgba8();
    // flatten alpha on white
    let rgb = image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as f32 / 255.0;
        let mix = |c: u8| (c as f32 * a + 255.0 * (1.0 - a)).round() as u8;
        image::Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    });
    let (w, h) = rgb.dimensions();
    let (cw, ch) = (w.min(512), h.min(512));
    let crop = image::imageops::crop_imm(&rgb, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
    let dynamic = image::DynamicImage::ImageRgb8(crop);
    if grey {
        Planes::from_image(&image::DynamicImage::ImageLuma8(dynamic.to_luma8()))
    } else {
        Planes::from_image(&dynamic)
    }
}

fn blurred(img: &Planes, spec: &PsfSpec, noise: f32) -> Planes {
    let psf = spec.to_psf().expect("grid PSF");
    let planes: Vec<_> = img
        .channels()
        .iter()
        .enumerate()
        .map(|(c, p)| add_gaussian_noise(&convolve(p, &psf), noise, 1 + c as u64))
        .collect();
    // through 8 bits, as a saved PNG
    Planes::from_image(
        &Planes::from_channels(planes)
            .to_image()
            .expect("the channels of one image"),
    )
}

fn psnr(a: &Planes, b: &Planes) -> f64 {
    scores(&a.channels(), &b.channels())
        .expect("same size")
        .psnr_db
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1).map(Path::new) else {
        eprintln!("usage: restore_grid PHOTOS_DIR [quick]");
        std::process::exit(2);
    };
    let quick = args.get(2).is_some_and(|a| a == "quick");
    let mut photos: Vec<(String, Planes)> = Vec::new();
    for name in GREY {
        if !quick || name == "camera.png" {
            photos.push((name.into(), prepare(dir, name, true)));
        }
    }
    for name in COLOUR {
        if !quick || name == "coffee.png" {
            photos.push((name.into(), prepare(dir, name, false)));
        }
    }
    let methods = [Method::Wiener, Method::Rl, Method::Hyper];
    println!("photo psf noise | blurred wiener rl hyper | blind: psf  psnr (method)");
    for spec_text in PSFS {
        let spec = PsfSpec::parse(spec_text).expect("grid PSF");
        for noise in NOISE {
            let mut sums = [0.0f64; 5];
            for (name, img) in &photos {
                let input = blurred(img, &spec, noise);
                let mut figures = vec![psnr(img, &input)];
                for method in methods {
                    let config = DeblurConfig {
                        psf: Some(spec.clone()),
                        method,
                        ..DeblurConfig::default()
                    };
                    let out = deblur(&input, &config).expect("deblur");
                    figures.push(psnr(img, &out.image));
                }
                let blind = deblur(&input, &DeblurConfig::default()).expect("deblur");
                let blind_psnr = psnr(img, &blind.image);
                figures.push(blind_psnr);
                for (s, f) in sums.iter_mut().zip(&figures) {
                    *s += f;
                }
                println!(
                    "{name} {spec_text} {noise} | {:.2} {:.2} {:.2} {:.2} | {} {:.2}",
                    figures[0], figures[1], figures[2], figures[3], blind.psf_text, blind_psnr
                );
            }
            let n = photos.len() as f64;
            println!(
                "MEAN {spec_text} {noise} | {:.2} {:.2} {:.2} {:.2} | blind {:.2}",
                sums[0] / n,
                sums[1] / n,
                sums[2] / n,
                sums[3] / n,
                sums[4] / n
            );
        }
    }
}

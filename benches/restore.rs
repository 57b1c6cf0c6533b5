//! Criterion benches: Richardson-Lucy (30 iterations) and Wiener on 1 megapixel, blind
//! estimation and `restore_for_features` on 256x256.

use criterion::{Criterion, criterion_group, criterion_main};
use lookalike::restore::fft::convolve;
use lookalike::restore::noise::add_gaussian_noise;
use lookalike::restore::{
    HyperParams, Plane, Psf, RlParams, WienerParams, estimate_blur, hyper_laplacian,
    restore_for_features, richardson_lucy, wiener,
};

fn scene(h: usize, w: usize) -> Plane {
    Plane::from_shape_fn((h, w), |(r, c)| {
        let (x, y) = (c as f32 / w as f32, r as f32 / h as f32);
        let mut v = 0.4 + 0.2 * (23.0 * x + 7.0 * y).sin() * (11.0 * y).cos();
        if ((c / 37) + (r / 29)) % 2 == 0 {
            v += 0.2;
        }
        v.clamp(0.0, 1.0)
    })
}

fn benches(c: &mut Criterion) {
    let psf = Psf::gaussian(2.0).unwrap();
    let big = add_gaussian_noise(&convolve(&scene(1024, 1024), &psf), 0.005, 0);
    let small = add_gaussian_noise(&convolve(&scene(256, 256), &psf), 0.005, 0);
    let mut g = c.benchmark_group("restore");
    g.sample_size(10);
    g.bench_function("richardson_lucy_30_1mp", |b| {
        let p = RlParams {
            iterations: 30,
            stop_at_noise: false,
            ..RlParams::default()
        };
        b.iter(|| richardson_lucy(&big, &psf, &p))
    });
    g.bench_function("richardson_lucy_30_1mp_fft_disk", |b| {
        let p = RlParams {
            iterations: 30,
            stop_at_noise: false,
            ..RlParams::default()
        };
        let disk = Psf::disk(3.0).unwrap();
        b.iter(|| richardson_lucy(&big, &disk, &p))
    });
    g.bench_function("wiener_1mp", |b| {
        b.iter(|| wiener(&big, &psf, &WienerParams::default()))
    });
    g.bench_function("hyper_laplacian_1mp", |b| {
        b.iter(|| hyper_laplacian(&big, &psf, &HyperParams::default()))
    });
    g.sample_size(30);
    g.bench_function("estimate_blur_256", |b| b.iter(|| estimate_blur(&small)));
    g.bench_function("restore_for_features_256", |b| {
        b.iter(|| restore_for_features(&small))
    });
    g.finish();
}

criterion_group!(restore, benches);
criterion_main!(restore);

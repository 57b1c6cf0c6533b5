//! Helpers shared by the unit tests.

/// The largest absolute difference between paired values (0 for none).
pub(crate) fn largest_difference<'a>(
    a: impl IntoIterator<Item = &'a f32>,
    b: impl IntoIterator<Item = &'a f32>,
) -> f32 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A textured background with a textured disc in front of it at `(cx, cy)` (fractions of the
/// sides): moving the disc gives another shot of the scene, with parallax.
pub(crate) fn shot(w: u32, h: u32, cx: f32, cy: f32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let inside = (fx - cx).powi(2) + (fy - cy).powi(2) < 0.06;
        let v = if inside {
            let (u, v) = (fx - cx, fy - cy);
            128.0 + 100.0 * (u * 47.0).sin() * (v * 31.0).cos()
        } else {
            110.0 + 60.0 * (fx * 23.0 + fy * 5.0).sin() + 50.0 * (fy * 37.0 - fx * 11.0).cos()
        };
        let v = v.clamp(0.0, 255.0) as u8;
        image::Rgb([v, v.saturating_add(20), 255 - v])
    })
}

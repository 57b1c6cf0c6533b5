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

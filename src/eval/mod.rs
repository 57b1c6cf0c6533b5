//! Accuracy evaluation: ground truth, ranking metrics, distortions, rankings dumps and reports.

pub mod distort;
pub mod duplicates;
pub mod groundtruth;
pub mod metrics;
pub mod rankings;
pub mod report;
pub mod run;
pub mod table;

pub use groundtruth::GroundTruth;

/// FNV-1a 64-bit hash: stable across Rust versions and platforms (used for file names and seeds).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

//! Feature families: pure functions from a working image to an `f32` vector, each versioned,
//! plus the fusion of per-family vectors into the one vector the ANN index searches.

pub(crate) mod color;
pub(crate) mod conv;
pub mod deconv;
pub mod dup;
pub(crate) mod lbp;
pub(crate) mod orient;

use std::ops::Range;

use image::RgbImage;
use ndarray::Array2;

use crate::error::{Error, Result};

/// One feature vector as stored: its family, version and parameter fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    /// Feature family name, e.g. "color" or "conv".
    pub family: String,
    pub(crate) version: u32,
    pub(crate) params: String,
    /// The feature vector.
    pub vector: Vec<f32>,
}

/// What every extractor receives: the working image and its luminance, computed once.
#[derive(Debug, Clone)]
pub struct FeatureInput {
    pub(crate) rgb: RgbImage,
    /// Rec. 601 luma in [0, 1], rows x cols.
    pub luma: Array2<f32>,
    /// Luma of the picture the working image was shrunk from, when it was larger: the
    /// families that read fine detail ([`Extractor::reads_fine_luma`]) see this one.
    fine_luma: Option<Array2<f32>>,
    /// Filter-bank energies of `luma`, kept for the next family that runs the same bank
    /// (`deconv` on a sharp image runs exactly `conv`'s).
    bank_energies: std::sync::OnceLock<(conv::FilterBank, Vec<f32>)>,
}

impl FeatureInput {
    /// Wraps a working image and computes its luma.
    pub fn new(rgb: RgbImage) -> Self {
        let luma = luma_plane(&rgb);
        FeatureInput {
            rgb,
            luma,
            fine_luma: None,
            bank_energies: std::sync::OnceLock::new(),
        }
    }

    /// The input of a registry whose families read luma alone ([`Registry::reads_luma_only`]):
    /// the plane, with no colour picture.
    pub(crate) fn luma_only(luma: Array2<f32>) -> Self {
        FeatureInput {
            rgb: RgbImage::new(0, 0),
            luma,
            fine_luma: None,
            bank_energies: std::sync::OnceLock::new(),
        }
    }

    /// The input of `picture` shrunk to fit `working_side`, keeping `picture`'s luma as the
    /// fine luma when shrinking changed it.
    fn shrunk_from(picture: RgbImage, working_side: u32) -> Self {
        let (w, h) = picture.dimensions();
        if w <= working_side && h <= working_side {
            return FeatureInput::new(picture);
        }
        let fine_luma = luma_plane(&picture);
        FeatureInput {
            fine_luma: Some(fine_luma),
            ..FeatureInput::new(crate::decode::shrunk_to_fit(&picture, working_side))
        }
    }

    /// The luma of the largest picture this input holds: the fine luma, else the working
    /// image's.
    pub(crate) fn fine_luma(&self) -> &Array2<f32> {
        self.fine_luma.as_ref().unwrap_or(&self.luma)
    }

    /// `bank.describe(&self.luma)`, computed once per input for the first bank asked.
    pub(crate) fn bank_energies(&self, bank: &conv::FilterBank) -> Vec<f32> {
        let (cached_bank, energies) = self
            .bank_energies
            .get_or_init(|| (bank.clone(), bank.describe(&self.luma)));
        if cached_bank == bank {
            energies.clone()
        } else {
            bank.describe(&self.luma)
        }
    }
}

/// Rec. 601 luma of an RGB image, in [0, 1].
pub fn luma_plane(rgb: &RgbImage) -> Array2<f32> {
    // Each channel's weighted levels from a table, then one division over the whole plane:
    // the same operations in the same order as `(0.299 r + 0.587 g + 0.114 b) / 255`
    // per pixel, in a form the compiler vectorises.
    static WEIGHTED: std::sync::OnceLock<[[f32; 256]; 3]> = std::sync::OnceLock::new();
    let [red, green, blue] = WEIGHTED.get_or_init(|| {
        let table = |weight: f32| std::array::from_fn(|level| weight * level as f32);
        [table(0.299), table(0.587), table(0.114)]
    });
    let (w, h) = rgb.dimensions();
    let mut values: Vec<f32> = rgb
        .as_raw()
        .chunks_exact(3)
        .take(w as usize * h as usize)
        .map(|p| red[usize::from(p[0])] + green[usize::from(p[1])] + blue[usize::from(p[2])])
        .collect();
    for v in &mut values {
        *v /= 255.0;
    }
    Array2::from_shape_vec((h as usize, w as usize), values).expect("one value per pixel")
}

/// The columns of each of `grid` cells across `len` columns, left to right: column `x` lies in
/// cell `min(x * grid / len, grid - 1)` (the last cell takes what is left over).
pub(crate) fn grid_runs(len: usize, grid: usize) -> Vec<Range<usize>> {
    let cell_of = |x: usize| (x * grid / len).min(grid - 1);
    (0..grid)
        .map(|c| {
            let first = (0..len).find(|&x| cell_of(x) >= c).unwrap_or(len);
            let end = (first..len).find(|&x| cell_of(x) > c).unwrap_or(len);
            first..end
        })
        .collect()
}

/// One feature family. Implementations are pure: no I/O, deterministic output.
pub trait Extractor: Send + Sync {
    /// Stable family name stored in the database (`color`, `conv`, `deconv`).
    fn family(&self) -> &'static str;
    /// Bumped whenever the output for the same input changes.
    fn version(&self) -> u32;
    /// Fingerprint of the parameters; a stored row with another fingerprint is re-extracted.
    fn params(&self) -> String;
    /// Length of the vector `extract` returns.
    fn dim(&self) -> usize;
    /// True when `extract` reads the input's fine luma, the picture at the full profile's
    /// side, rather than the working image.
    fn reads_fine_luma(&self) -> bool {
        false
    }
    /// The feature vector.
    fn extract(&self, input: &FeatureInput) -> Vec<f32>;
}

/// Working side of the full profile, and of every index made before profiles existed.
pub(crate) const FULL_WORKING_SIZE: u32 = 256;

/// Side of the picture the fine-detail families read, whatever the working side: the full
/// profile's, so that every profile stores the same duplicate signature of a picture.
pub(crate) const FINE_SIZE: u32 = FULL_WORKING_SIZE;

/// What an index computes per image: a collection records one and every image of it is
/// described the same way, so switching re-extracts the whole collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// All five families on a 256-pixel working image, deconvolution included.
    #[default]
    Full,
    /// Colour, LBP and orientation histograms on a 96-pixel working image: no filter bank,
    /// blur estimate or deconvolution. Several times faster to index (BENCHMARKS.md).
    Fast,
    /// The duplicate signature alone, all that `lookalike duplicates` reads: no similarity
    /// ranking, graph or thumbnails until the collection is indexed with another profile.
    Duplicates,
}

impl Profile {
    /// Every profile, the default first.
    pub(crate) const ALL: [Profile; 3] = [Profile::Full, Profile::Fast, Profile::Duplicates];

    /// The name recorded in the collection and accepted by `--profile`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Profile::Full => "full",
            Profile::Fast => "fast",
            Profile::Duplicates => "duplicates",
        }
    }

    /// The profile recorded under `name`, if this version knows it.
    pub(crate) fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// What the profile computes, in one sentence (the `--profile` help).
    pub fn description(self) -> &'static str {
        match self {
            Profile::Full => {
                "All five families on a 256-pixel working image, deconvolution included"
            }
            Profile::Fast => {
                "Colour, LBP and orientation histograms on a 96-pixel working image: no filter bank, blur estimate or deconvolution. Several times faster to index (BENCHMARKS.md)"
            }
            Profile::Duplicates => {
                "The duplicate signature only, what `lookalike duplicates` reads: no similarity ranking (`query`, `serve`) until indexed with another profile"
            }
        }
    }

    /// True when the profile describes images for similarity ranking: it has ranking
    /// families, a graph and thumbnails.
    pub(crate) fn ranks(self) -> bool {
        self != Profile::Duplicates
    }

    /// The working image fits in a square of this side.
    pub(crate) fn working_size(self) -> u32 {
        match self {
            Profile::Full => FULL_WORKING_SIZE,
            Profile::Fast => 96,
            // The signature reads the picture at this side: nothing smaller is needed.
            Profile::Duplicates => FINE_SIZE,
        }
    }
}

/// The set of families an index computes, and the side of the working image they see.
/// Adding a family is adding an entry here.
pub struct Registry {
    extractors: Vec<Box<dyn Extractor>>,
    working_size: u32,
    profile: Profile,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("families", &self.families())
            .field("working_size", &self.working_size)
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::for_profile(Profile::Full)
    }
}

impl Registry {
    /// The families and working side of `profile`.
    pub fn for_profile(profile: Profile) -> Self {
        let extractors: Vec<Box<dyn Extractor>> = match profile {
            Profile::Full => vec![
                Box::new(color::ColorHistogram::default()),
                Box::new(conv::FilterBank::default()),
                Box::new(deconv::DeconvFeatures::default()),
                Box::new(lbp::LocalBinaryPatterns::default()),
                Box::new(orient::OrientationHistograms::default()),
                Box::new(dup::DuplicateSignature),
            ],
            Profile::Fast => vec![
                Box::new(color::ColorHistogram::default()),
                Box::new(lbp::LocalBinaryPatterns::default()),
                Box::new(orient::OrientationHistograms::default()),
                Box::new(dup::DuplicateSignature),
            ],
            Profile::Duplicates => vec![Box::new(dup::DuplicateSignature)],
        };
        Registry {
            extractors,
            working_size: profile.working_size(),
            profile,
        }
    }

    /// True when every family reads the luma plane alone, at the working side: a JPEG's own
    /// luma (its Y channel) is then read without decoding its colour
    /// ([`crate::decode::decode_jpeg_luma`]).
    pub(crate) fn reads_luma_only(&self) -> bool {
        self.profile == Profile::Duplicates
    }

    /// True when indexing stores a thumbnail of each image (for `serve`; `duplicates` makes
    /// the few it needs from the files).
    pub(crate) fn makes_thumbnails(&self) -> bool {
        self.profile.ranks()
    }

    /// Names of the families, in registry order.
    pub fn families(&self) -> Vec<&'static str> {
        self.extractors.iter().map(|e| e.family()).collect()
    }

    /// The extractors.
    pub fn extractors(&self) -> &[Box<dyn Extractor>] {
        &self.extractors
    }

    /// Side of the square the working image fits in.
    pub(crate) fn working_size(&self) -> u32 {
        self.working_size
    }

    /// Side of the square the picture is decoded to before [`Registry::input`] shrinks it:
    /// the working side, or [`FINE_SIZE`] when a family reads fine detail and that is larger.
    pub(crate) fn picture_size(&self) -> u32 {
        self.extractors
            .iter()
            .map(|e| self.side_read_by(e.as_ref()))
            .fold(self.working_size, u32::max)
    }

    /// Side of the picture `extractor` reads: the working side, or [`FINE_SIZE`] for a
    /// fine-detail family when that is larger.
    fn side_read_by(&self, extractor: &dyn Extractor) -> u32 {
        if extractor.reads_fine_luma() {
            self.working_size.max(FINE_SIZE)
        } else {
            self.working_size
        }
    }

    /// What the families see of `picture`, which fits in the registry's picture side: the
    /// picture shrunk to the working side, and its own luma for the fine-detail families.
    pub fn input(&self, picture: RgbImage) -> FeatureInput {
        FeatureInput::shrunk_from(picture, self.working_size)
    }

    /// The parameter fingerprint stored with a family's rows: the extractor's own, with the
    /// side it reads appended when it is not the full profile's (so rows made before profiles
    /// existed stay current, and rows of another side are re-extracted), and `jpeg-y` when a
    /// JPEG's luma is its Y channel rather than the luma of its decoded colours.
    fn params_of(&self, extractor: &dyn Extractor) -> String {
        let side = self.side_read_by(extractor);
        let params = if side == FULL_WORKING_SIZE {
            extractor.params()
        } else {
            format!("{} @{}px", extractor.params(), side)
        };
        if self.reads_luma_only() {
            format!("{params} jpeg-y")
        } else {
            params
        }
    }

    /// `(family, version, params)` of each family, as stored with every row.
    pub(crate) fn signatures(&self) -> Vec<(String, u32, String)> {
        self.extractors
            .iter()
            .map(|e| {
                (
                    e.family().to_string(),
                    e.version(),
                    self.params_of(e.as_ref()),
                )
            })
            .collect()
    }

    /// Runs every family on one image.
    pub fn extract_all(&self, input: &FeatureInput) -> Vec<FeatureRow> {
        self.extractors
            .iter()
            .map(|e| FeatureRow {
                family: e.family().to_string(),
                version: e.version(),
                params: self.params_of(e.as_ref()),
                vector: e.extract(input),
            })
            .collect()
    }
}

/// Vector length of a family of the default registry (0 for an unknown name).
pub(crate) fn family_dim(family: &str) -> usize {
    static DIMS: std::sync::OnceLock<Vec<(&'static str, usize)>> = std::sync::OnceLock::new();
    DIMS.get_or_init(|| {
        Registry::default()
            .extractors()
            .iter()
            .map(|e| (e.family(), e.dim()))
            .collect()
    })
    .iter()
    .find(|(f, _)| *f == family)
    .map_or(0, |d| d.1)
}

/// Scales a vector to unit L2 norm (a zero vector stays zero).
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 1e-12 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Largest weight `--weights` accepts (weights are relative; larger ones only risk overflow).
pub(crate) const MAX_WEIGHT: f64 = 1000.0;
/// Smallest weight above 0 `--weights` accepts: smaller ones change no ranking that 0 would
/// not, and near the float limits turn every distance to 0.
pub(crate) const MIN_WEIGHT: f64 = 0.001;

/// How per-family vectors are combined: each is L2-normalised, then scaled by sqrt(weight),
/// so the squared distance between fused vectors is the weighted sum of per-family ones.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fusion {
    /// `(family, weight)`, in the order the vectors are concatenated.
    pub(crate) weights: Vec<(String, f32)>,
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::for_profile(Profile::Full)
    }
}

impl Fusion {
    /// The weights an index of `profile` ranks with.
    pub fn for_profile(profile: Profile) -> Self {
        if profile == Profile::Duplicates {
            // Nothing is ranked: no family is fused.
            return Fusion {
                weights: Vec::new(),
            };
        }
        if profile == Profile::Fast {
            // The full profile's weights for the families it keeps: wang mAP 0.6099,
            // ukbench1000 N-S 3.856 (BENCHMARKS.md, "Retrieval accuracy").
            return Fusion {
                weights: vec![
                    ("color".into(), 1.0),
                    ("lbp".into(), 1.5),
                    ("orient".into(), 0.5),
                ],
            };
        }
        Fusion {
            // Measured (exact search; BENCHMARKS.md, "How the weights were chosen"): colour
            // alone wang mAP 0.526, ukbench1000 N-S 3.653; + conv 0.5 0.530 / 3.666; + lbp 1.5
            // 0.550 / 3.724; colour global bins
            // 16x6x4: 0.553 / 3.744 (then query expansion n=2: 0.571 / 3.795). deconv's 0.75
            // is its bank (0.25, the conv bank on the restored image) plus its blur-canonical
            // texture (0.5, two thirds of the family): wang 0.6238 -> 0.6235, ukbench1000
            // 3.869 -> 3.855, and blurred examples rank by that texture (`query_view`).
            weights: vec![
                ("color".into(), 1.0),
                ("conv".into(), 0.25),
                ("deconv".into(), 0.75),
                ("lbp".into(), 1.5),
                ("orient".into(), 0.5),
            ],
        }
    }

    /// Parses `color=1,conv=0.5` (families left out get weight 0) or a single family name.
    pub fn parse(spec: &str, known: &[&str]) -> Result<Fusion> {
        let mut weights = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, w) = match part.split_once('=') {
                Some((n, w)) => {
                    // read wide, so that a value under f32's least is not taken as 0
                    let w: f64 = w.trim().parse().map_err(|_| {
                        Error::InvalidInput(format!(
                            "bad weight '{w}' for '{n}' in --weights: use numbers like color=1,conv=0.5"
                        ))
                    })?;
                    (n.trim(), w)
                }
                None => (part, 1.0),
            };
            if !known.contains(&name) {
                return Err(Error::InvalidInput(format!(
                    "unknown feature family '{name}': choose from {}",
                    known.join(", ")
                )));
            }
            if !(w.is_finite() && (w == 0.0 || (MIN_WEIGHT..=MAX_WEIGHT).contains(&w))) {
                return Err(Error::InvalidInput(format!(
                    "weight for '{name}' in --weights must be 0 or a number from {MIN_WEIGHT} to {MAX_WEIGHT} (weights are relative)"
                )));
            }
            if !seen.insert(name) {
                return Err(Error::InvalidInput(format!(
                    "'{name}' is given twice in --weights: give each family once"
                )));
            }
            if w > 0.0 {
                weights.push((name.to_string(), w as f32));
            }
        }
        if weights.is_empty() {
            return Err(Error::InvalidInput(
                "--weights selects no family: give at least one weight above 0".into(),
            ));
        }
        Ok(Fusion { weights })
    }

    /// Length of the fused vectors it makes: the sum of its families' lengths.
    pub fn dim(&self) -> usize {
        self.weights.iter().map(|(f, _)| family_dim(f)).sum()
    }

    /// Families in fusion order.
    pub fn families(&self) -> Vec<&str> {
        self.weights.iter().map(|(f, _)| f.as_str()).collect()
    }

    /// A stable text form, recorded with the HNSW dump.
    pub(crate) fn fingerprint(&self) -> String {
        self.weights
            .iter()
            .map(|(f, w)| format!("{f}={w}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Where a family's block lies in a fused vector, and its weight.
    fn block(&self, family: &str) -> Option<(Range<usize>, f32)> {
        let mut start = 0;
        for (f, w) in &self.weights {
            let end = start + family_dim(f);
            if f == family {
                return Some((start..end, *w));
            }
            start = end;
        }
        None
    }

    /// For a blurred example, how its comparison changes: the LBP block to leave out, the deconv
    /// texture block, and the factor on the texture's weight; `None` for anything else.
    fn blurred_example(&self, fused: &[f32]) -> Option<(Range<usize>, Range<usize>, f32)> {
        let (deconv_at, deconv_w) = self.block("deconv")?;
        let (lbp_at, lbp_w) = self.block("lbp")?;
        static DECONV: std::sync::OnceLock<deconv::DeconvFeatures> = std::sync::OnceLock::new();
        let deconv = DECONV.get_or_init(deconv::DeconvFeatures::default);
        if fused.len() < lbp_at.end.max(deconv_at.end)
            || !deconv.records_blur(&fused[deconv_at.clone()])
        {
            return None;
        }
        let texture = deconv.texture_range();
        let texture_at = deconv_at.start + texture.start..deconv_at.start + texture.end;
        Some((
            lbp_at,
            texture_at,
            1.0 + lbp_w / (deconv_w * deconv.texture_share),
        ))
    }

    /// The vector a search ranks with, from an example's fused vector. When the deconv family
    /// records that the example is blurred, LBP (micro-texture, which blur erases) is left out
    /// of the comparison and its weight moves onto the deconv family's blur-canonical texture,
    /// which describes a blurred copy and its sharp original alike. Anything else is returned
    /// as it is.
    ///
    /// Leaving a block out is zeroing it: every indexed vector's block has the same length
    /// (`sqrt(weight)`), so a zero block adds the same amount to every squared distance and
    /// the ranking follows the other blocks. Scaling the texture block by `s` multiplies its
    /// part of the cross term `-2 q.x` by `s`, i.e. its weight in the ranking.
    pub(crate) fn query_view(&self, fused: &[f32]) -> Vec<f32> {
        let mut out = fused.to_vec();
        if let Some((lbp, texture, scale)) = self.blurred_example(fused) {
            out[lbp].fill(0.0);
            out[texture].iter_mut().for_each(|x| *x *= scale);
        }
        out
    }

    /// Distance from an example's fused vector to an indexed one, with the weights
    /// [`query_view`](Self::query_view) ranks by: plain L2 for a sharp example; for a blurred
    /// one, LBP left out and the texture's squared differences weighted by the same factor.
    /// It orders indexed vectors as the view does, and is zero for an identical vector.
    pub(crate) fn example_distance(&self, example: &[f32], indexed: &[f32]) -> f32 {
        let sq = |r: Range<usize>| crate::vector::squared_l2(&example[r.clone()], &indexed[r]);
        let n = example.len().min(indexed.len());
        let all = sq(0..n);
        match self.blurred_example(example) {
            Some((lbp, texture, scale)) if indexed.len() == example.len() => (all - sq(lbp)
                + (scale - 1.0) * sq(texture))
            .max(0.0)
            .sqrt(),
            _ => all.sqrt(),
        }
    }

    /// Fuses vectors named by family, in any order (`parts[i]` belongs to `names[i]`);
    /// a family of the fusion that is missing counts as an empty vector.
    pub fn fuse_named<S: AsRef<str>>(&self, names: &[S], parts: &[Vec<f32>]) -> Vec<f32> {
        let picked: Vec<Vec<f32>> = self
            .families()
            .iter()
            .map(|f| {
                names
                    .iter()
                    .position(|n| n.as_ref() == *f)
                    .map(|i| parts[i].clone())
                    .unwrap_or_default()
            })
            .collect();
        self.fuse(&picked)
    }

    /// Concatenates per-family vectors given in `families()` order. A part that is empty (an
    /// image stored before its family existed) or of another length (stored by an older version
    /// of its family), whose file was not indexed again, becomes zeros of the family's length,
    /// so the image stays searchable by its other families.
    pub fn fuse(&self, parts: &[Vec<f32>]) -> Vec<f32> {
        let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for ((family, w), part) in self.weights.iter().zip(parts) {
            if part.len() != family_dim(family) {
                out.resize(out.len() + family_dim(family), 0.0);
                continue;
            }
            let mut v = part.clone();
            l2_normalize(&mut v);
            let s = w.sqrt();
            out.extend(v.into_iter().map(|x| x * s));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table form of the luma is the per-pixel formula, bit for bit, at every level of
    /// every channel.
    #[test]
    fn luma_is_the_rec601_formula_bit_for_bit() {
        let rgb = RgbImage::from_fn(256, 3, |x, y| {
            let l = x as u8;
            match y {
                0 => image::Rgb([l, 255 - l, l / 2]),
                1 => image::Rgb([l / 3, l, 255 - l]),
                _ => image::Rgb([255 - l, l / 5, l]),
            }
        });
        let luma = luma_plane(&rgb);
        for (x, y, p) in rgb.enumerate_pixels() {
            let [r, g, b] = p.0.map(f32::from);
            let want = (0.299 * r + 0.587 * g + 0.114 * b) / 255.0;
            assert_eq!(
                luma[[y as usize, x as usize]].to_bits(),
                want.to_bits(),
                "{p:?}"
            );
        }
    }

    /// The fast profile shrinks the picture for its other families but signs the picture
    /// itself, and the duplicates profile signs it alone: every profile stores the same
    /// duplicate signature of a picture.
    #[test]
    fn every_profile_signs_the_same_picture_alike() {
        let picture = crate::test_support::shot(256, 170, 0.4, 0.6);
        let dup_of = |profile: Profile| {
            let registry = Registry::for_profile(profile);
            assert_eq!(registry.picture_size(), FINE_SIZE);
            let input = registry.input(picture.clone());
            assert!(input.rgb.width() <= profile.working_size());
            let row = registry
                .extract_all(&input)
                .into_iter()
                .find(|r| r.family == "dup")
                .unwrap();
            (row.vector, row.params)
        };
        let (full, fast) = (dup_of(Profile::Full), dup_of(Profile::Fast));
        assert_eq!(full, fast);
        // The duplicates profile signs a colour picture alike too; its fingerprint says that a
        // JPEG's luma is read from the file's Y channel.
        let only = dup_of(Profile::Duplicates);
        assert_eq!(
            (&only.0, only.1.as_str()),
            (&full.0, format!("{} jpeg-y", full.1).as_str())
        );
        assert_eq!(
            Registry::for_profile(Profile::Duplicates).families(),
            ["dup"]
        );
        assert!(Fusion::for_profile(Profile::Duplicates).weights.is_empty());
        assert!(full.0.iter().any(|&v| v != 0.0));
        // The families that read the working image keep the side in their fingerprint.
        let lbp = |p: Profile| {
            Registry::for_profile(p).signatures()[..]
                .iter()
                .find(|s| s.0 == "lbp")
                .cloned()
                .unwrap()
                .2
        };
        assert_ne!(lbp(Profile::Full), lbp(Profile::Fast));
    }

    #[test]
    fn grid_runs_follow_the_cell_formula() {
        for (len, grid) in [(81, 2), (79, 3), (7, 3), (2, 3), (254, 2), (1, 1)] {
            let runs = grid_runs(len, grid);
            assert_eq!(runs.len(), grid);
            for (cell, run) in runs.iter().enumerate() {
                for x in run.clone() {
                    assert_eq!((x * grid / len).min(grid - 1), cell, "{len}/{grid}: {x}");
                }
            }
            // Contiguous and covering every column once.
            let covered: Vec<usize> = runs.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(covered, (0..len).collect::<Vec<_>>(), "{len}/{grid}");
        }
    }

    #[test]
    fn a_missing_or_outdated_family_fuses_as_zeros_of_its_length() {
        let f = Fusion::default();
        let registry = Registry::default();
        let mut parts: Vec<Vec<f32>> = registry
            .extractors()
            .iter()
            .map(|e| vec![1.0; e.dim()])
            .collect();
        let full = f.fuse(&parts);
        let orient = f.families().iter().position(|n| *n == "orient").unwrap();
        parts[orient].clear();
        let partial = f.fuse(&parts);
        assert_eq!(partial.len(), full.len());
        parts[orient] = vec![1.0; 3];
        assert_eq!(
            f.fuse(&parts),
            partial,
            "a part of an older length counts as missing"
        );
        let start: usize = parts[..orient].iter().map(Vec::len).sum();
        let len = family_dim("orient");
        assert!(partial[start..start + len].iter().all(|&x| x == 0.0));
        assert_eq!(partial[..start], full[..start]);
    }

    #[test]
    fn fusion_distance_is_weighted_sum_of_family_distances() {
        let f = Fusion::parse("color=2,conv=0.5", &["color", "conv"]).unwrap();
        let basis = |family: &str, i: usize, scale: f32| {
            let mut v = vec![0.0; family_dim(family)];
            v[i] = scale;
            v
        };
        let a = f.fuse(&[basis("color", 0, 1.0), basis("conv", 1, 3.0)]);
        let b = f.fuse(&[basis("color", 1, 1.0), basis("conv", 1, 1.0)]);
        let d: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert!((d - 2.0 * 2.0).abs() < 1e-6, "{d}");
    }

    #[test]
    fn query_view_moves_lbp_weight_onto_the_canonical_texture_only_for_a_blurred_example() {
        let fusion = Fusion::default();
        let registry = Registry::default();
        let scene = RgbImage::from_fn(160, 128, |x, y| {
            let v = 120.0 + 60.0 * ((x as f32) * 0.4).sin() * ((y as f32) * 0.3).cos();
            let edge = if (x / 20 + y / 16) % 2 == 0 {
                40.0
            } else {
                0.0
            };
            let g = (v + edge).clamp(0.0, 255.0) as u8;
            image::Rgb([g, g / 2 + 40, 255 - g])
        });
        let fused = |img: RgbImage| {
            let rows = registry.extract_all(&FeatureInput::new(img));
            let (names, parts): (Vec<String>, Vec<Vec<f32>>) =
                rows.into_iter().map(|r| (r.family, r.vector)).unzip();
            fusion.fuse_named(&names, &parts)
        };
        let sharp = fused(scene.clone());
        assert_eq!(fusion.query_view(&sharp), sharp);

        let blurred = fused(crate::restore::color::map_rgb(&scene, |p| {
            crate::restore::fft::convolve(p, &crate::restore::Psf::gaussian_clamped(2.0))
        }));
        let view = fusion.query_view(&blurred);
        let (lbp, lbp_w) = fusion.block("lbp").unwrap();
        let (deconv, deconv_w) = fusion.block("deconv").unwrap();
        let d = deconv::DeconvFeatures::default();
        let texture = deconv.start + d.texture_range().start..deconv.start + d.texture_range().end;
        let scale = 1.0 + lbp_w / (deconv_w * d.texture_share);
        for i in 0..blurred.len() {
            let want = if lbp.contains(&i) {
                0.0
            } else if texture.contains(&i) {
                blurred[i] * scale
            } else {
                blurred[i]
            };
            assert!(
                (view[i] - want).abs() < 1e-6,
                "index {i}: {} vs {want}",
                view[i]
            );
        }
        assert!(blurred[lbp.clone()].iter().any(|&x| x != 0.0));

        // The reported distance orders indexed vectors as the view does, and is 0 to itself.
        assert_eq!(fusion.example_distance(&blurred, &blurred), 0.0);
        let plain = |a: &[f32], b: &[f32]| crate::vector::squared_l2(a, b).sqrt();
        let sharp_to_blurred = fusion.example_distance(&sharp, &blurred);
        assert!((sharp_to_blurred - plain(&sharp, &blurred)).abs() < 1e-5);
        // Squared view distances exceed squared example distances by the same constant.
        let (near, view_near) = (
            fusion.example_distance(&blurred, &sharp),
            plain(&view, &sharp),
        );
        let offset = |d: f32, v: f32| v * v - d * d;
        let other = fused(RgbImage::from_fn(160, 128, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 3 % 256) as u8,
                ((x * y) % 256) as u8,
            ])
        }));
        let a = offset(near, view_near);
        let b = offset(
            fusion.example_distance(&blurred, &other),
            plain(&view, &other),
        );
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }

    #[test]
    fn fusion_parse_errors_are_clear() {
        let known = ["color", "conv"];
        assert!(
            Fusion::parse("colour=1", &known)
                .unwrap_err()
                .to_string()
                .contains("unknown feature family 'colour'")
        );
        assert!(
            Fusion::parse("color=x", &known)
                .unwrap_err()
                .to_string()
                .contains("bad weight")
        );
        assert!(Fusion::parse("color=0", &known).is_err());
        assert_eq!(
            Fusion::parse("conv", &known).unwrap().families(),
            vec!["conv"]
        );
    }

    /// Repeated, negative, non-finite, huge, tiny and all-zero weights are refused with a reason.
    #[test]
    fn fusion_parse_rejects_absurd_weights() {
        let known = ["color", "conv"];
        let msg = |s: &str| Fusion::parse(s, &known).unwrap_err().to_string();
        assert!(
            msg("color=1,color=2").contains("given twice"),
            "{}",
            msg("color=1,color=2")
        );
        assert!(msg("color,color=0").contains("given twice"));
        for bad in [
            "color=-1",
            "color=NaN",
            "color=inf",
            "color=-inf",
            "color=1e30",
            "color=1e-45",
            "color=1e-46,conv=1",
            "color=1,conv=0.0009",
        ] {
            assert!(
                msg(bad).contains("0 or a number from"),
                "{bad}: {}",
                msg(bad)
            );
        }
        assert!(msg("color=0,conv=0").contains("at least one weight above 0"));
        assert!(msg("").contains("at least one weight above 0"));
        assert_eq!(
            Fusion::parse("color=1000,conv=0", &known)
                .unwrap()
                .families(),
            vec!["color"]
        );
        // both bounds are taken as written, not as their nearest f32
        assert_eq!(
            Fusion::parse("color=0.001,conv=1", &known)
                .unwrap()
                .families(),
            vec!["color", "conv"]
        );
    }

    #[test]
    fn registry_vectors_have_declared_lengths() {
        let reg = Registry::default();
        let img = RgbImage::from_fn(97, 61, |x, y| {
            image::Rgb([(x * 2) as u8, (y * 4) as u8, ((x + y) % 256) as u8])
        });
        let rows = reg.extract_all(&FeatureInput::new(img));
        for (row, e) in rows.iter().zip(reg.extractors()) {
            assert_eq!(row.vector.len(), e.dim(), "{}", e.family());
            assert!(row.vector.iter().all(|x| x.is_finite()), "{}", e.family());
        }
    }
}

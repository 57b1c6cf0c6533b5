//! Point-spread functions: the user-facing `PsfSpec` (parse/print) and the normalised kernel `Psf`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ndarray::Array2;

use crate::{Error, Result};

/// Largest Gaussian sigma, disk radius or motion length accepted (pixels); larger kernels are
/// not blur a photo can be restored from and would only make FFTs huge.
pub(crate) const MAX_EXTENT: f32 = 100.0;

/// True for a Gaussian sigma, disk radius or motion length accepted: 0 to [`MAX_EXTENT`] pixels.
pub(crate) fn extent_accepted(x: f32) -> bool {
    x.is_finite() && (0.0..=MAX_EXTENT).contains(&x)
}

/// Refuses a Gaussian sigma, disk radius or motion length (`what`) that
/// [`extent_accepted`] does not accept.
fn check_extent(what: &str, x: f32) -> Result<()> {
    if extent_accepted(x) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "PSF {what} {x} is out of range: use 0 to {MAX_EXTENT} pixels"
        )))
    }
}

/// `x` brought into 0 to [`MAX_EXTENT`]; a NaN becomes 0 (no blur).
fn clamped_extent(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, MAX_EXTENT)
    }
}

/// True for a motion angle accepted: -360 to 360 degrees.
pub(crate) fn angle_accepted(degrees: f32) -> bool {
    degrees.is_finite() && degrees.abs() <= 360.0
}

/// Largest PSF file read, in bytes (a kernel matrix is a few kilobytes).
const MAX_PSF_FILE_SIZE: u64 = 16 << 20;
/// Share of a kernel's weight off its centre below which it is no blur.
const IDENTITY_TOLERANCE: f32 = 1e-3;
/// Largest kernel side accepted: that of the widest named PSF, a Gaussian of sigma
/// [`MAX_EXTENT`] (radius three sigma).
const MAX_KERNEL_SIDE: usize = 6 * MAX_EXTENT as usize + 1;

const SPEC_HELP: &str = "use gaussian:SIGMA, disk:RADIUS, motion:LENGTH,ANGLE, file:PATH or none";

/// What the user asks for: a parametric blur or a kernel read from a text file.
#[derive(Debug, Clone, PartialEq)]
pub enum PsfSpec {
    /// No blur: the one-pixel kernel.
    None,
    /// Isotropic Gaussian with standard deviation `sigma` pixels, truncated at `ceil(3 sigma)`.
    Gaussian {
        /// Standard deviation in pixels (0 to 100).
        sigma: f32,
    },
    /// Uniform (anti-aliased) disk of `radius` pixels: out-of-focus blur.
    Disk {
        /// Radius in pixels (0 to 100).
        radius: f32,
    },
    /// Uniform line of `length` pixels at `angle_deg` degrees anticlockwise from the +x axis.
    Motion {
        /// Length of the line in pixels (0 to 100).
        length: f32,
        /// Direction in degrees, anticlockwise from the +x axis.
        angle_deg: f32,
    },
    /// Whitespace-separated matrix, one kernel row a line (like the reference script's psf.txt).
    File(PathBuf),
}

impl PsfSpec {
    /// Parses `gaussian:2`, `disk:3`, `motion:15,30`, `file:psf.txt` or `none`.
    pub fn parse(s: &str) -> Result<PsfSpec> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Ok(PsfSpec::None);
        }
        if s.split_once(':')
            .is_some_and(|(kind, _)| kind.trim().eq_ignore_ascii_case("none"))
        {
            return Err(Error::InvalidInput(format!(
                "PSF '{s}': none takes no parameters (write `none`)"
            )));
        }
        let (kind, arg) = s.split_once(':').ok_or_else(|| {
            Error::InvalidInput(format!("PSF '{s}' has no parameters: {SPEC_HELP}"))
        })?;
        let kind_l = kind.trim().to_ascii_lowercase();
        let num = |what: &str, v: &str| -> Result<f32> {
            let x: f32 = v.trim().parse().map_err(|_| {
                Error::InvalidInput(format!(
                    "PSF '{s}': {what} '{}' is not a number: {SPEC_HELP}",
                    v.trim()
                ))
            })?;
            if !extent_accepted(x) {
                return Err(Error::InvalidInput(format!(
                    "PSF '{s}': {what} must be between 0 and {MAX_EXTENT} pixels"
                )));
            }
            Ok(x)
        };
        match kind_l.as_str() {
            "gaussian" | "gauss" => Ok(PsfSpec::Gaussian {
                sigma: num("sigma", arg)?,
            }),
            "disk" | "defocus" => Ok(PsfSpec::Disk {
                radius: num("radius", arg)?,
            }),
            "motion" => {
                let (l, a) = arg.split_once(',').ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "PSF '{s}': motion needs LENGTH,ANGLE (e.g. motion:15,30)"
                    ))
                })?;
                let angle: f32 = a.trim().parse().map_err(|_| {
                    Error::InvalidInput(format!(
                        "PSF '{s}': angle '{}' is not a number of degrees",
                        a.trim()
                    ))
                })?;
                if !angle_accepted(angle) {
                    return Err(Error::InvalidInput(format!(
                        "PSF '{s}': angle must be a number of degrees from -360 to 360"
                    )));
                }
                Ok(PsfSpec::Motion {
                    length: num("length", l)?,
                    angle_deg: angle,
                })
            }
            "file" => {
                if arg.trim().is_empty() {
                    return Err(Error::InvalidInput(format!(
                        "PSF '{s}': file: needs a path to a text matrix"
                    )));
                }
                Ok(PsfSpec::File(PathBuf::from(arg.trim())))
            }
            _ => Err(Error::InvalidInput(format!(
                "unknown PSF kind '{}': {SPEC_HELP}",
                kind.trim()
            ))),
        }
    }

    /// Refuses a sigma, radius or length outside 0 to 100 pixels, or an angle
    /// outside -360 to 360 degrees, as [`PsfSpec::parse`] does: the fields are public, so a
    /// spec need not come from `parse`.
    pub fn check(&self) -> Result<()> {
        match self {
            PsfSpec::None | PsfSpec::File(_) => Ok(()),
            PsfSpec::Gaussian { sigma } => check_extent("Gaussian sigma", *sigma),
            PsfSpec::Disk { radius } => check_extent("disk radius", *radius),
            PsfSpec::Motion { length, angle_deg } => {
                check_extent("motion length", *length)?;
                if angle_accepted(*angle_deg) {
                    Ok(())
                } else {
                    Err(Error::InvalidInput(format!(
                        "PSF motion angle {angle_deg} is out of range: use -360 to 360 degrees"
                    )))
                }
            }
        }
    }

    /// Builds the normalised kernel (reads the file for `File`) once [`PsfSpec::check`] passes.
    pub fn to_psf(&self) -> Result<Psf> {
        self.check()?;
        match self {
            PsfSpec::None => Psf::new(Array2::ones((1, 1))),
            PsfSpec::Gaussian { sigma } => Ok(Psf::gaussian_clamped(*sigma)),
            PsfSpec::Disk { radius } => Ok(Psf::disk_clamped(*radius)),
            PsfSpec::Motion { length, angle_deg } => Ok(Psf::motion_clamped(*length, *angle_deg)),
            PsfSpec::File(path) => Psf::from_file(path),
        }
    }
}

impl FromStr for PsfSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PsfSpec::parse(s)
    }
}

impl fmt::Display for PsfSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PsfSpec::None => write!(f, "none"),
            PsfSpec::Gaussian { sigma } => write!(f, "gaussian:{sigma}"),
            PsfSpec::Disk { radius } => write!(f, "disk:{radius}"),
            PsfSpec::Motion { length, angle_deg } => write!(f, "motion:{length},{angle_deg}"),
            PsfSpec::File(p) => write!(f, "file:{}", crate::path_repr::shown(p)),
        }
    }
}

/// A blur kernel: odd-sized, non-negative, summing to 1, centred on its middle element.
#[derive(Debug, Clone, PartialEq)]
pub struct Psf {
    kernel: Array2<f32>,
}

impl Psf {
    /// Validates and normalises a kernel. Even dimensions are padded with a zero row/column
    /// at the bottom/right so that the middle element is the centre.
    pub(crate) fn new(kernel: Array2<f32>) -> Result<Psf> {
        let (h, w) = kernel.dim();
        if h == 0 || w == 0 {
            return Err(Error::InvalidInput("PSF kernel is empty".into()));
        }
        if h > MAX_KERNEL_SIDE || w > MAX_KERNEL_SIDE {
            return Err(Error::InvalidInput(format!(
                "PSF kernel is {w}x{h}: at most {MAX_KERNEL_SIDE} values a side are accepted \
                 (a Gaussian of sigma {MAX_EXTENT} needs that many)"
            )));
        }
        if kernel.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(
                "PSF kernel holds values that are not numbers, infinite or too large (a kernel's weights are relative: scale them down)".into(),
            ));
        }
        if kernel.iter().any(|&v| v < 0.0) {
            return Err(Error::InvalidInput(
                "PSF kernel holds negative values: a blur kernel's weights are 0 or more".into(),
            ));
        }
        let sum: f64 = kernel.iter().map(|&v| v as f64).sum();
        if sum <= 0.0 {
            return Err(Error::InvalidInput(
                "PSF kernel sums to zero or less: a blur kernel must have positive total weight"
                    .into(),
            ));
        }
        let (hh, ww) = (h | 1, w | 1);
        let mut k = Array2::<f32>::zeros((hh, ww));
        k.slice_mut(ndarray::s![..h, ..w]).assign(&kernel);
        k.mapv_inplace(|v| (v as f64 / sum) as f32);
        Ok(Psf { kernel: k })
    }

    /// Reads a whitespace-separated matrix, one kernel row a line; `#` starts a comment.
    pub fn from_file(path: &Path) -> Result<Psf> {
        let bytes = crate::decode::read_file_bounded(path, MAX_PSF_FILE_SIZE, "PSF kernel")
            .map_err(|e| Error::io(path, e))?;
        // a byte-order mark, as some editors save, is not part of the matrix
        let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => rest.to_vec(),
            None => bytes,
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::InvalidInput(format!(
                "{}: not a text file; a PSF file is a whitespace-separated matrix",
                crate::path_repr::shown(path)
            ))
        })?;
        let bad = |line: usize, reason: String| Error::Parse {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut rows: Vec<Vec<f32>> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let row = line
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.parse::<f32>().map_err(|_| {
                        bad(
                            i + 1,
                            format!(
                                "'{t}' is not a number: a PSF file is a whitespace-separated matrix"
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<f32>>>()?;
            if let Some(first) = rows.first()
                && first.len() != row.len()
            {
                return Err(bad(
                    i + 1,
                    format!(
                        "row has {} but the first row has {}: every row needs the same count",
                        crate::text::counted(row.len(), "value", "values"),
                        first.len()
                    ),
                ));
            }
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(bad(
                1,
                "no numbers found: write the kernel as a matrix".into(),
            ));
        }
        let (h, w) = (rows.len(), rows[0].len());
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        let arr = Array2::from_shape_vec((h, w), flat).expect("rows checked to be equal length");
        Psf::new(arr).map_err(|e| match e {
            Error::InvalidInput(m) => bad(1, m),
            other => other,
        })
    }

    /// Gaussian of standard deviation `sigma`, radius `ceil(3 sigma)` (as the reference script).
    /// A sigma outside 0 to 100 pixels (or NaN) is refused.
    pub fn gaussian(sigma: f32) -> Result<Psf> {
        check_extent("Gaussian sigma", sigma)?;
        Ok(Psf::gaussian_clamped(sigma))
    }

    /// [`Psf::gaussian`] with `sigma` brought into its range (a NaN: no blur), for sizes
    /// computed here rather than given.
    pub(crate) fn gaussian_clamped(sigma: f32) -> Psf {
        let sigma = clamped_extent(sigma);
        if sigma <= 1e-3 {
            return Psf::delta();
        }
        let r = (3.0 * sigma as f64).ceil() as isize;
        let n = (2 * r + 1) as usize;
        let s2 = 2.0 * (sigma as f64).powi(2);
        let mut k = Array2::<f32>::zeros((n, n));
        let mut sum = 0.0f64;
        let g: Vec<f64> = (-r..=r).map(|x| (-(x * x) as f64 / s2).exp()).collect();
        for i in 0..n {
            for j in 0..n {
                let v = g[i] * g[j];
                sum += v;
                k[[i, j]] = v as f32;
            }
        }
        k.mapv_inplace(|v| (v as f64 / sum) as f32);
        Psf { kernel: k }
    }

    /// Uniform disk of the given radius, anti-aliased by 8x8 supersampling of each pixel. A
    /// radius outside 0 to 100 pixels (or NaN) is refused.
    pub fn disk(radius: f32) -> Result<Psf> {
        check_extent("disk radius", radius)?;
        Ok(Psf::disk_clamped(radius))
    }

    /// [`Psf::disk`] with `radius` brought into its range (a NaN: no blur), for sizes
    /// computed here rather than given.
    pub(crate) fn disk_clamped(radius: f32) -> Psf {
        let radius = clamped_extent(radius);
        if radius <= 0.5 {
            return Psf::delta();
        }
        let r = radius as f64;
        let half = (r - 1e-6).ceil() as isize;
        let n = (2 * half + 1) as usize;
        let mut k = Array2::<f32>::zeros((n, n));
        const SS: usize = 8;
        for i in 0..n {
            for j in 0..n {
                let mut inside = 0usize;
                for a in 0..SS {
                    for b in 0..SS {
                        let y = (i as isize - half) as f64 - 0.5 + (a as f64 + 0.5) / SS as f64;
                        let x = (j as isize - half) as f64 - 0.5 + (b as f64 + 0.5) / SS as f64;
                        if x * x + y * y <= r * r {
                            inside += 1;
                        }
                    }
                }
                k[[i, j]] = inside as f32;
            }
        }
        Psf::new(k).expect("disk kernel has positive sum")
    }

    /// Uniform line of `length` pixels at `angle_deg` degrees anticlockwise from +x (image rows
    /// grow downwards), rasterised by bilinear splatting of dense samples along the segment;
    /// `length` is brought into 0 to [`MAX_EXTENT`] and a NaN or infinite angle reads as 0.
    pub(crate) fn motion_clamped(length: f32, angle_deg: f32) -> Psf {
        let length = clamped_extent(length);
        let angle_deg = if angle_deg.is_finite() {
            angle_deg
        } else {
            0.0
        };
        if length <= 1.0 {
            return Psf::delta();
        }
        let l = length as f64;
        let t = (angle_deg as f64).to_radians();
        let (dx, dy) = (t.cos(), -t.sin());
        let half = (l / 2.0).ceil() as isize + 1;
        let n = (2 * half + 1) as usize;
        let mut k = Array2::<f64>::zeros((n, n));
        let samples = (l * 16.0).ceil() as usize + 1;
        for s in 0..samples {
            let u = -l / 2.0 + l * (s as f64 + 0.5) / samples as f64;
            let x = u * dx + half as f64;
            let y = u * dy + half as f64;
            let (x0, y0) = (x.floor(), y.floor());
            let (fx, fy) = (x - x0, y - y0);
            let (xi, yi) = (x0 as usize, y0 as usize);
            k[[yi, xi]] += (1.0 - fx) * (1.0 - fy);
            k[[yi, xi + 1]] += fx * (1.0 - fy);
            k[[yi + 1, xi]] += (1.0 - fx) * fy;
            k[[yi + 1, xi + 1]] += fx * fy;
        }
        Psf::new(trim_centred(k.mapv(|v| v as f32))).expect("motion kernel has positive sum")
    }

    /// True when the kernel equals its own left-right and up-down mirror images (to float
    /// rounding): Gaussians, disks, level and upright lines.
    pub(crate) fn is_mirror_symmetric(&self) -> bool {
        let k = &self.kernel;
        let (h, w) = k.dim();
        let tol = 1e-6 * k.iter().fold(0.0f32, |m, &v| m.max(v));
        k.indexed_iter().all(|((i, j), &v)| {
            (v - k[[h - 1 - i, j]]).abs() <= tol && (v - k[[i, w - 1 - j]]).abs() <= tol
        })
    }

    /// The kernel as text, one row a line, values separated by spaces: what
    /// [`Psf::from_file`] reads back (to float rounding: it normalises the sum again).
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for row in self.kernel.rows() {
            let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            text.push_str(&cells.join(" "));
            text.push('\n');
        }
        text
    }

    /// The identity kernel (no blur).
    pub(crate) fn delta() -> Psf {
        Psf {
            kernel: Array2::from_elem((1, 1), 1.0),
        }
    }

    /// Whether the kernel is no blur: its centre holds all but [`IDENTITY_TOLERANCE`] of the
    /// weight, so it moves no pixel by more than a quarter of an 8-bit grey level (a single
    /// pixel, `gaussian:0.1`, a 3x3 kernel with one weight in the middle).
    pub(crate) fn is_identity(&self) -> bool {
        let (h, w) = self.kernel.dim();
        self.kernel[[h / 2, w / 2]] >= 1.0 - IDENTITY_TOLERANCE
    }

    /// The kernel, odd-sized and summing to 1.
    pub(crate) fn kernel(&self) -> &Array2<f32> {
        &self.kernel
    }

    /// Half-size of the kernel: (rows, cols).
    pub(crate) fn radius(&self) -> (usize, usize) {
        let (h, w) = self.kernel.dim();
        (h / 2, w / 2)
    }

    /// The kernel as `(column, row)` factors when it is separable (rank one), as Gaussians are.
    pub(crate) fn separable(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        let k = &self.kernel;
        let col: Vec<f64> = k
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&v| v as f64).sum())
            .collect();
        let row: Vec<f64> = k
            .columns()
            .into_iter()
            .map(|c| c.iter().map(|&v| v as f64).sum())
            .collect();
        let peak = k.iter().fold(0.0f32, |m, &v| m.max(v.abs())) as f64;
        for (i, c) in col.iter().enumerate() {
            for (j, r) in row.iter().enumerate() {
                if (c * r - k[[i, j]] as f64).abs() > 1e-5 * peak {
                    return None;
                }
            }
        }
        Some((
            col.iter().map(|&v| v as f32).collect(),
            row.iter().map(|&v| v as f32).collect(),
        ))
    }
}

/// A blur known only up to small changes: the mean kernel of a family of PSFs and the mean of
/// their autocorrelations, whose spectra are `E[H]` and `E[|H|^2]` over the family.
///
/// Dividing by `E[|H|^2]` instead of `|E[H]|^2` keeps a deconvolution from trusting spectral
/// zeros that move within the family: a long line's comb of zeros shifts with its length, and
/// a real shake is never exactly the line a blind estimate reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PsfFamily {
    /// The family's mean kernel.
    pub(crate) mean: Psf,
    /// The mean of the members' autocorrelations `sum_p k(p) k(p + d)` (sums to 1).
    pub(crate) autocorrelation: Psf,
}

impl PsfFamily {
    /// The moments of `members` (at least one).
    pub(crate) fn new(members: &[Psf]) -> PsfFamily {
        assert!(!members.is_empty(), "a PSF family needs a member");
        let (ry, rx) = members.iter().fold((0, 0), |(a, b), m| {
            let (y, x) = m.radius();
            (a.max(y), b.max(x))
        });
        let n = members.len() as f64;
        let mut mean = Array2::<f64>::zeros((2 * ry + 1, 2 * rx + 1));
        let mut auto = Array2::<f64>::zeros((4 * ry + 1, 4 * rx + 1));
        for m in members {
            let k = m.kernel();
            let (my, mx) = m.radius();
            let taps: Vec<(usize, usize, f64)> = k
                .indexed_iter()
                .filter(|&(_, &v)| v != 0.0)
                .map(|((i, j), &v)| (i + ry - my, j + rx - mx, v as f64))
                .collect();
            for &(i, j, v) in &taps {
                mean[[i, j]] += v / n;
                for &(a, b, w) in &taps {
                    auto[[a + 2 * ry - i, b + 2 * rx - j]] += v * w / n;
                }
            }
        }
        let to_psf = |k: Array2<f64>| {
            Psf::new(trim_centred(k.mapv(|v| v as f32))).expect("a PSF family's sums are 1")
        };
        PsfFamily {
            mean: to_psf(mean),
            autocorrelation: to_psf(auto),
        }
    }
}

/// Removes all-zero outer rows/columns in symmetric pairs so that the kernel stays centred.
fn trim_centred(k: Array2<f32>) -> Array2<f32> {
    let (h, w) = k.dim();
    let zero_row = |i: usize| k.row(i).iter().all(|&v| v <= 1e-9);
    let zero_col = |j: usize| k.column(j).iter().all(|&v| v <= 1e-9);
    let mut a = 0;
    while a + 1 < h / 2 + 1 && zero_row(a) && zero_row(h - 1 - a) {
        a += 1;
    }
    let mut b = 0;
    while b + 1 < w / 2 + 1 && zero_col(b) && zero_col(w - 1 - b) {
        b += 1;
    }
    k.slice(ndarray::s![a..h - a, b..w - b]).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_has_the_mean_spectrum_and_mean_power_of_its_members() {
        use crate::restore::fft::psf_spectrum;
        let members = [
            Psf::motion_clamped(30.0, 0.0),
            Psf::motion_clamped(31.0, 1.0),
            Psf::gaussian_clamped(1.5),
        ];
        let family = PsfFamily::new(&members);
        let (rows, cols) = (96, 96);
        let spectra: Vec<_> = members
            .iter()
            .map(|m| psf_spectrum(m, rows, cols))
            .collect();
        let mean = psf_spectrum(&family.mean, rows, cols);
        let power = psf_spectrum(&family.autocorrelation, rows, cols);
        for i in 0..mean.data.len() {
            let want_mean = spectra
                .iter()
                .map(|s| s.data[i])
                .sum::<rustfft::num_complex::Complex32>()
                / 3.0;
            let want_power = spectra.iter().map(|s| s.data[i].norm_sqr()).sum::<f32>() / 3.0;
            assert!((mean.data[i] - want_mean).norm() < 1e-4, "mean at {i}");
            assert!((power.data[i].re - want_power).abs() < 1e-4, "power at {i}");
            assert!(power.data[i].im.abs() < 1e-4);
        }
        // a spread of lengths fills the spectral zeros of any one line
        let lines: Vec<Psf> = (0..7)
            .map(|i| Psf::motion_clamped(32.0 * (1.0 + 0.01 * (i as f32 - 3.0)), 0.0))
            .collect();
        let family = PsfFamily::new(&lines);
        let line = psf_spectrum(&Psf::motion_clamped(32.0, 0.0), 64, 256);
        let power = psf_spectrum(&family.autocorrelation, 64, 256);
        // the line's first zero is at 256 / 32 = 8 samples
        let along: Vec<usize> = (0..line.data.len())
            .filter(|&i| {
                let (fy, fx) = crate::restore::fft::freq_of(i, 64, 256);
                fy == 0.0 && (3.0..10.0).contains(&(fx.abs() * 256.0))
            })
            .collect();
        let deepest = along
            .into_iter()
            .min_by(|&a, &b| line.data[a].norm().total_cmp(&line.data[b].norm()))
            .unwrap();
        let (single, spread) = (line.data[deepest].norm_sqr(), power.data[deepest].re);
        assert!(single < 0.05 * spread, "{single} against {spread}");
    }

    #[test]
    fn sizes_and_angles_out_of_range_are_refused_however_the_psf_is_made() {
        let refused = |made: Result<Psf>, what: &str| match made {
            Err(Error::InvalidInput(m)) => assert!(m.contains("out of range"), "{what}: {m}"),
            other => panic!("{what}: {other:?}"),
        };
        for bad in [f32::NAN, f32::INFINITY, -1.0, 1e6] {
            refused(Psf::gaussian(bad), &format!("Psf::gaussian({bad})"));
            refused(Psf::disk(bad), &format!("Psf::disk({bad})"));
            for spec in [
                PsfSpec::Gaussian { sigma: bad },
                PsfSpec::Disk { radius: bad },
                PsfSpec::Motion {
                    length: bad,
                    angle_deg: 0.0,
                },
            ] {
                refused(spec.to_psf(), &spec.to_string());
            }
        }
        for bad in [f32::NAN, f32::NEG_INFINITY, 1e6] {
            let spec = PsfSpec::Motion {
                length: 9.0,
                angle_deg: bad,
            };
            refused(spec.to_psf(), &spec.to_string());
        }
        assert_eq!(Psf::gaussian(2.0).unwrap(), Psf::gaussian_clamped(2.0));
        assert_eq!(Psf::disk(MAX_EXTENT).unwrap(), Psf::disk_clamped(1e6));
        assert_eq!(Psf::gaussian_clamped(f32::NAN), Psf::delta());
    }

    #[test]
    fn kernels_that_are_no_blur_or_too_wide_are_refused() {
        let sharpen = Array2::from_shape_vec((3, 3), vec![0., -1., 0., -1., 5., -1., 0., -1., 0.]);
        let e = Psf::new(sharpen.unwrap()).unwrap_err().to_string();
        assert!(e.contains("negative"), "{e}");
        let wide = Array2::<f32>::ones((1, MAX_KERNEL_SIDE + 2));
        let e = Psf::new(wide).unwrap_err().to_string();
        assert!(e.contains("at most"), "{e}");
        assert!(Psf::new(Array2::<f32>::ones((1, MAX_KERNEL_SIDE))).is_ok());
        // a tiny but positive total weight is a kernel like any other
        assert!(Psf::new(Array2::from_elem((3, 3), 1e-30f32)).is_ok());
        assert_eq!(
            Psf::gaussian_clamped(MAX_EXTENT).kernel().dim().0,
            MAX_KERNEL_SIDE
        );
    }

    #[test]
    fn parse_and_display_round_trip() {
        for s in [
            "gaussian:2",
            "disk:3.5",
            "motion:15,30",
            "motion:9,-45",
            "file:psf.txt",
        ] {
            let spec = PsfSpec::parse(s).unwrap();
            assert_eq!(spec.to_string(), s);
            assert_eq!(PsfSpec::parse(&spec.to_string()).unwrap(), spec);
        }
        assert_eq!(
            PsfSpec::parse("motion:15,30").unwrap(),
            PsfSpec::Motion {
                length: 15.0,
                angle_deg: 30.0
            }
        );
    }

    #[test]
    fn bad_specs_give_clear_errors() {
        let msg = |s: &str| PsfSpec::parse(s).unwrap_err().to_string();
        assert!(msg("box:3").contains("unknown PSF kind 'box'"));
        assert!(msg("box:3").contains("gaussian:SIGMA"));
        assert!(msg("gaussian").contains("no parameters"));
        assert!(msg("gaussian:abc").contains("'abc' is not a number"));
        assert!(msg("disk:-2").contains("between 0 and"));
        assert!(msg("motion:15").contains("LENGTH,ANGLE"));
        assert!(msg("file:").contains("path"));
        let e = PsfSpec::parse("file:/nonexistent/psf.txt")
            .unwrap()
            .to_psf()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/psf.txt"), "{e}");
    }

    #[test]
    fn kernels_are_normalised_odd_and_centred() {
        for p in [
            Psf::gaussian_clamped(2.0),
            Psf::disk_clamped(3.0),
            Psf::motion_clamped(15.0, 30.0),
            Psf::motion_clamped(9.0, 90.0),
        ] {
            let (h, w) = p.kernel().dim();
            assert!(!h.is_multiple_of(2) && !w.is_multiple_of(2));
            let s: f32 = p.kernel().sum();
            assert!((s - 1.0).abs() < 1e-5);
            // centroid at the middle element
            let (mut cy, mut cx) = (0.0f32, 0.0f32);
            for ((i, j), &v) in p.kernel().indexed_iter() {
                cy += v * (i as f32 - (h / 2) as f32);
                cx += v * (j as f32 - (w / 2) as f32);
            }
            assert!(cy.abs() < 1e-3 && cx.abs() < 1e-3, "{cy} {cx}");
        }
        assert_eq!(Psf::gaussian_clamped(2.0).kernel().dim(), (13, 13));
        assert!(Psf::gaussian_clamped(2.0).separable().is_some());
        assert!(Psf::disk_clamped(3.0).separable().is_none());
    }

    #[test]
    fn file_psf_reads_matrix_and_reports_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.txt");
        std::fs::write(&p, "0 1 0\n1 4 1\n0 1 0\n").unwrap();
        let psf = PsfSpec::parse(&format!("file:{}", p.display()))
            .unwrap()
            .to_psf()
            .unwrap();
        assert!((psf.kernel()[[1, 1]] - 0.5).abs() < 1e-6);
        std::fs::write(&p, "0 1 0\n1 4\n").unwrap();
        let e = Psf::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("k.txt:2") && e.contains("same count"), "{e}");
    }

    #[test]
    fn mirror_symmetry_is_told() {
        assert!(Psf::gaussian_clamped(2.0).is_mirror_symmetric());
        assert!(Psf::disk_clamped(3.0).is_mirror_symmetric());
        assert!(Psf::motion_clamped(9.0, 0.0).is_mirror_symmetric());
        assert!(Psf::motion_clamped(9.0, 90.0).is_mirror_symmetric());
        assert!(!Psf::motion_clamped(15.0, 30.0).is_mirror_symmetric());
    }

    #[test]
    fn a_kernel_written_as_text_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.txt");
        for psf in [
            Psf::gaussian_clamped(1.3),
            Psf::disk_clamped(3.0),
            Psf::motion_clamped(15.0, 30.0),
        ] {
            std::fs::write(&p, psf.to_text()).unwrap();
            let back = Psf::from_file(&p).unwrap();
            assert_eq!(back.kernel().dim(), psf.kernel().dim());
            for (a, b) in back.kernel().iter().zip(psf.kernel()) {
                assert!((a - b).abs() <= 1e-6 * b.max(1e-3), "{a} vs {b}");
            }
        }
    }
}

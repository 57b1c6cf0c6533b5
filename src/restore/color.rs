//! Conversions between images and planes, and running plane operations per colour channel.

use image::{DynamicImage, GrayImage, RgbImage};
#[cfg(test)]
use rayon::prelude::*;

use super::Plane;
use super::fft::convolve;
use super::psf::Psf;
use crate::{Error, Result};

/// An image as one plane (grey) or three (R, G, B), values in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Planes {
    /// Single-channel image.
    Grey(Plane),
    /// Red, green and blue planes.
    Rgb([Plane; 3]),
}

impl Planes {
    /// Converts a decoded image: grey stays grey (alpha is dropped), everything else becomes RGB.
    pub fn from_image(img: &DynamicImage) -> Planes {
        // 16-bit and float images keep their precision: two such images an 8-bit step apart
        // or less are not the same image
        match img {
            DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_) => {
                Planes::Grey(gray_to_plane(&img.to_luma8()))
            }
            DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) => {
                let grey = img.to_luma32f();
                let (w, h) = grey.dimensions();
                Planes::Grey(
                    Plane::from_shape_vec((h as usize, w as usize), grey.into_raw())
                        .expect("buffer matches dimensions")
                        .mapv_into(|v| v.clamp(0.0, 1.0)),
                )
            }
            DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => {
                Planes::Rgb(rgb_to_planes(&img.to_rgb8()))
            }
            _ => {
                let rgb = img.to_rgb32f();
                let (w, h) = (rgb.width() as usize, rgb.height() as usize);
                let raw = rgb.as_raw();
                Planes::Rgb(std::array::from_fn(|c| {
                    Plane::from_shape_fn((h, w), |(r, x)| raw[(r * w + x) * 3 + c].clamp(0.0, 1.0))
                }))
            }
        }
    }

    /// Refuses colour planes of different sizes (the variants are public, so nothing else
    /// keeps them equal).
    pub fn check(&self) -> Result<()> {
        let sizes: Vec<(usize, usize)> = self.channels().iter().map(|p| p.dim()).collect();
        if sizes.iter().all(|&s| s == sizes[0]) {
            return Ok(());
        }
        let shown: Vec<String> = sizes.iter().map(|(h, w)| format!("{w}x{h}")).collect();
        Err(Error::InvalidInput(format!(
            "the colour planes are {}: an image's red, green and blue planes must be the same size",
            shown.join(", ")
        )))
    }

    /// Back to an 8-bit image (values rounded and clamped); colour planes of different sizes
    /// are refused ([`Planes::check`]).
    pub fn to_image(&self) -> Result<DynamicImage> {
        self.check()?;
        Ok(match self {
            Planes::Grey(p) => DynamicImage::ImageLuma8(plane_to_gray(p)),
            Planes::Rgb(p) => DynamicImage::ImageRgb8(planes_to_rgb(p)),
        })
    }

    /// Back to a 16-bit image, for an input of more than 8 bits a channel (values rounded and
    /// clamped); `alpha`, when given, is widened to 16 bits beside them. Colour planes of
    /// different sizes are refused ([`Planes::check`]).
    pub fn to_image16(&self, alpha: Option<&GrayImage>) -> Result<DynamicImage> {
        self.check()?;
        let (h, w) = self.dim();
        let channels = self.channels();
        let alpha = alpha.filter(|a| a.dimensions() == (w as u32, h as u32));
        let per_pixel = channels.len() + usize::from(alpha.is_some());
        let mut raw = Vec::with_capacity(h * w * per_pixel);
        for r in 0..h {
            for x in 0..w {
                raw.extend(channels.iter().map(|c| to_u16(c[[r, x]])));
                if let Some(a) = alpha {
                    raw.push(u16::from(a.get_pixel(x as u32, r as u32)[0]) * 257);
                }
            }
        }
        let (w, h) = (w as u32, h as u32);
        let built = match (channels.len(), alpha.is_some()) {
            (1, false) => image::ImageBuffer::from_raw(w, h, raw).map(DynamicImage::ImageLuma16),
            (1, true) => image::ImageBuffer::from_raw(w, h, raw).map(DynamicImage::ImageLumaA16),
            (_, false) => image::ImageBuffer::from_raw(w, h, raw).map(DynamicImage::ImageRgb16),
            (_, true) => image::ImageBuffer::from_raw(w, h, raw).map(DynamicImage::ImageRgba16),
        };
        Ok(built.expect("buffer matches dimensions"))
    }

    /// `(rows, cols)`.
    pub fn dim(&self) -> (usize, usize) {
        match self {
            Planes::Grey(p) => p.dim(),
            Planes::Rgb(p) => p[0].dim(),
        }
    }

    /// Applies `f` to every channel (in parallel for colour).
    #[cfg(test)]
    pub(crate) fn map(&self, f: impl Fn(&Plane) -> Plane + Sync) -> Planes {
        match self {
            Planes::Grey(p) => Planes::Grey(f(p)),
            Planes::Rgb(p) => {
                let v: Vec<Plane> = p.par_iter().map(&f).collect();
                let [r, g, b]: [Plane; 3] = v.try_into().expect("three channels");
                Planes::Rgb([r, g, b])
            }
        }
    }

    /// The channels: one for grey, red, green and blue for colour.
    pub fn channels(&self) -> Vec<&Plane> {
        match self {
            Planes::Grey(p) => vec![p],
            Planes::Rgb(p) => p.iter().collect(),
        }
    }

    /// One plane makes a grey image, three a colour one (as [`Planes::channels`] gives them).
    ///
    /// # Panics
    /// On any other number of planes.
    pub fn from_channels(planes: Vec<Plane>) -> Planes {
        match <[Plane; 3]>::try_from(planes) {
            Ok(rgb) => Planes::Rgb(rgb),
            Err(mut one) if one.len() == 1 => Planes::Grey(one.remove(0)),
            Err(other) => panic!("{} planes make no image", other.len()),
        }
    }

    /// Gives fully transparent pixels (alpha 0) colours spread from the visible ones, so that a
    /// blur or a deconvolution carries none of the hidden colours into visible pixels. Each
    /// hidden pixel takes the visible colours' weighted mean at the smallest Gaussian scale that
    /// reaches one (sigma 2, 8, then 32 pixels), else the mean of all visible pixels.
    pub(crate) fn fill_hidden(&mut self, alpha: &GrayImage) {
        let (h, w) = self.dim();
        if alpha.dimensions() != (w as u32, h as u32) {
            return;
        }
        let hidden = |r: usize, c: usize| alpha.get_pixel(c as u32, r as u32)[0] == 0;
        let visible = Plane::from_shape_fn((h, w), |(r, c)| f32::from(!hidden(r, c)));
        let count = visible.sum();
        if count == 0.0 || count == (h * w) as f32 {
            return;
        }
        let mut pending = visible.mapv(|v| v == 0.0);
        let channels: Vec<&mut Plane> = match self {
            Planes::Grey(p) => vec![p],
            Planes::Rgb(p) => p.iter_mut().collect(),
        };
        let weighted: Vec<Plane> = channels.iter().map(|p| &**p * &visible).collect();
        let means: Vec<f32> = weighted.iter().map(|p| p.sum() / count).collect();
        let mut filled: Vec<Plane> = channels.iter().map(|p| (*p).clone()).collect();
        for sigma in [2.0, 8.0, 32.0] {
            if !pending.iter().any(|&p| p) {
                break;
            }
            let psf = Psf::gaussian_clamped(sigma);
            let reach = convolve(&visible, &psf);
            let spread: Vec<Plane> = weighted.iter().map(|p| convolve(p, &psf)).collect();
            for ((r, c), still) in pending.indexed_iter_mut() {
                if *still && reach[[r, c]] > 1e-3 {
                    for (out, s) in filled.iter_mut().zip(&spread) {
                        out[[r, c]] = s[[r, c]] / reach[[r, c]];
                    }
                    *still = false;
                }
            }
        }
        for ((r, c), still) in pending.indexed_iter() {
            if *still {
                for (out, m) in filled.iter_mut().zip(&means) {
                    out[[r, c]] = *m;
                }
            }
        }
        for (p, f) in channels.into_iter().zip(filled) {
            *p = f;
        }
    }

    /// Luminance plane (Rec. 601 weights, as `image`'s grey conversion) or the grey plane.
    pub(crate) fn luma(&self) -> Plane {
        match self {
            Planes::Grey(p) => p.clone(),
            Planes::Rgb([r, g, b]) => {
                // written around green so that a grey pixel (r = g = b) gives exactly its level
                let mut out = g.clone();
                ndarray::Zip::from(&mut out)
                    .and(r)
                    .and(b)
                    .for_each(|y, &r, &b| *y += 0.299 * (r - *y) + 0.114 * (b - *y));
                out
            }
        }
    }
}

/// 8-bit grey image to a plane in `[0, 1]`.
pub fn gray_to_plane(img: &GrayImage) -> Plane {
    let (w, h) = img.dimensions();
    Plane::from_shape_vec(
        (h as usize, w as usize),
        img.as_raw().iter().map(|&v| v as f32 / 255.0).collect(),
    )
    .expect("buffer matches dimensions")
}

/// Plane to an 8-bit grey image (rounded, clamped).
pub(crate) fn plane_to_gray(p: &Plane) -> GrayImage {
    let (h, w) = p.dim();
    let raw = p.iter().map(|&v| to_u8(v)).collect();
    GrayImage::from_raw(w as u32, h as u32, raw).expect("buffer matches dimensions")
}

/// RGB image to three planes in `[0, 1]`.
pub(crate) fn rgb_to_planes(img: &RgbImage) -> [Plane; 3] {
    let (w, h) = img.dimensions();
    let (w, h) = (w as usize, h as usize);
    let raw = img.as_raw();
    std::array::from_fn(|c| {
        Plane::from_shape_fn((h, w), |(r, x)| raw[(r * w + x) * 3 + c] as f32 / 255.0)
    })
}

/// Three planes to an RGB image (rounded, clamped).
pub(crate) fn planes_to_rgb(p: &[Plane; 3]) -> RgbImage {
    let (h, w) = p[0].dim();
    let mut raw = Vec::with_capacity(h * w * 3);
    for r in 0..h {
        for x in 0..w {
            for c in p {
                raw.push(to_u8(c[[r, x]]));
            }
        }
    }
    RgbImage::from_raw(w as u32, h as u32, raw).expect("buffer matches dimensions")
}

/// Runs a plane operation on each channel of an RGB image.
#[cfg(test)]
pub(crate) fn map_rgb(img: &RgbImage, f: impl Fn(&Plane) -> Plane + Sync) -> RgbImage {
    match Planes::Rgb(rgb_to_planes(img)).map(f) {
        Planes::Rgb(p) => planes_to_rgb(&p),
        Planes::Grey(_) => unreachable!("map keeps the channel count"),
    }
}

fn to_u8(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

fn to_u16(v: f32) -> u16 {
    (v * 65535.0).round().clamp(0.0, 65535.0) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 9]));
        assert_eq!(planes_to_rgb(&rgb_to_planes(&img)), img);
        assert_eq!(map_rgb(&img, |p| p.clone()), img);
    }

    #[test]
    fn the_luma_of_grey_levels_as_rgb_is_those_levels() {
        let grey = GrayImage::from_fn(256, 1, |x, _| image::Luma([x as u8]));
        let plane = gray_to_plane(&grey);
        let as_rgb = Planes::Rgb([plane.clone(), plane.clone(), plane.clone()]);
        let off: Vec<(usize, f32)> = (0..256)
            .map(|x| (x, as_rgb.luma()[[0, x]]))
            .filter(|&(x, y)| y != plane[[0, x]])
            .collect();
        assert!(
            off.is_empty(),
            "levels whose luma is not themselves: {off:?}"
        );
        // the weights are still Rec. 601's
        let pure = |c: usize| {
            let mut p: [Plane; 3] = std::array::from_fn(|_| Plane::zeros((1, 1)));
            p[c][[0, 0]] = 1.0;
            Planes::Rgb(p).luma()[[0, 0]]
        };
        let weights = [pure(0), pure(1), pure(2)];
        for (got, want) in weights.iter().zip([0.299f32, 0.587, 0.114]) {
            assert!((got - want).abs() < 1e-6, "{weights:?}");
        }
    }

    #[test]
    fn planes_of_different_sizes_make_no_image() {
        let p = |h, w| Plane::from_elem((h, w), 0.5);
        let planes = Planes::Rgb([p(64, 64), p(32, 48), p(80, 80)]);
        for made in [planes.to_image(), planes.to_image16(None)] {
            match made {
                Err(Error::InvalidInput(m)) => assert!(m.contains("64x64, 48x32, 80x80"), "{m}"),
                other => panic!("{:?}", other.map(|i| (i.width(), i.height()))),
            }
        }
        let same = Planes::Rgb([p(5, 7), p(5, 7), p(5, 7)]);
        let image = same.to_image().unwrap();
        assert_eq!((image.width(), image.height()), (7, 5));
    }

    #[test]
    fn hidden_colours_never_reach_visible_pixels() {
        // the left half is visible mid grey; the right half hides pure white
        let (h, w) = (40, 60);
        let plane = Plane::from_shape_fn((h, w), |(_, c)| if c < 30 { 0.5 } else { 1.0 });
        let alpha = GrayImage::from_fn(w as u32, h as u32, |x, _| {
            image::Luma([if x < 30 { 255 } else { 0 }])
        });
        let mut planes = Planes::Grey(plane.clone());
        planes.fill_hidden(&alpha);
        let Planes::Grey(filled) = planes else {
            unreachable!()
        };
        let blurred = convolve(&filled, &Psf::gaussian_clamped(3.0));
        let worst = (0..h)
            .flat_map(|r| (0..30).map(move |c| (r, c)))
            .map(|(r, c)| (blurred[[r, c]] - 0.5).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "a visible pixel moved by {worst}");
        // unfilled, the hidden white bleeds in
        let bled = convolve(&plane, &Psf::gaussian_clamped(3.0))[[20, 29]];
        assert!(bled > 0.55, "{bled}");
    }
}

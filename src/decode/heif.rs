//! HEIC/HEIF and AVIF through libheif, the system library, loaded when first needed.
//!
//! Loading at run time keeps building and testing free of system packages: a machine without
//! libheif records these files as failures that say what to install.

// The calls into libheif's C API. Each relies only on what libheif's header (heif.h, stable
// since 1.x) documents: ownership of the objects it returns, and planes that live as long as
// their image.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};
use std::path::Path;
use std::sync::OnceLock;

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage, RgbaImage};
use libloading::Library;

use super::{DecodeConfig, bad, check_memory, check_size};
use crate::error::Result;

/// Environment variable naming libheif's shared library, for installs outside the usual paths.
pub(crate) const LIBHEIF_ENV: &str = "LOOKALIKE_LIBHEIF";

const CANDIDATES: &[&str] = &[
    "libheif.so.1",
    "libheif.so",
    "libheif.1.dylib",
    "/opt/homebrew/lib/libheif.1.dylib",
    "/usr/local/lib/libheif.1.dylib",
    "libheif.dll",
    "heif.dll",
];

// Values from heif.h.
const COLORSPACE_RGB: c_int = 1;
const CHROMA_INTERLEAVED_RGB: c_int = 10;
const CHROMA_INTERLEAVED_RGBA: c_int = 11;
const CHANNEL_INTERLEAVED: c_int = 10;

#[repr(C)]
struct HeifError {
    code: c_int,
    subcode: c_int,
    message: *const c_char,
}

type Context = c_void;
type Handle = c_void;
type Image = c_void;

struct Api {
    context_alloc: unsafe extern "C" fn() -> *mut Context,
    context_free: unsafe extern "C" fn(*mut Context),
    read_from_memory:
        unsafe extern "C" fn(*mut Context, *const c_void, usize, *const c_void) -> HeifError,
    set_maximum_size: unsafe extern "C" fn(*mut Context, c_int),
    primary_handle: unsafe extern "C" fn(*mut Context, *mut *mut Handle) -> HeifError,
    handle_release: unsafe extern "C" fn(*const Handle),
    handle_width: unsafe extern "C" fn(*const Handle) -> c_int,
    handle_height: unsafe extern "C" fn(*const Handle) -> c_int,
    handle_has_alpha: unsafe extern "C" fn(*const Handle) -> c_int,
    decode_image: unsafe extern "C" fn(
        *const Handle,
        *mut *mut Image,
        c_int,
        c_int,
        *const c_void,
    ) -> HeifError,
    image_release: unsafe extern "C" fn(*const Image),
    plane: unsafe extern "C" fn(*const Image, c_int, *mut c_int) -> *const u8,
    image_width: unsafe extern "C" fn(*const Image, c_int) -> c_int,
    image_height: unsafe extern "C" fn(*const Image, c_int) -> c_int,
    metadata_ids: unsafe extern "C" fn(*const Handle, *const c_char, *mut u32, c_int) -> c_int,
    metadata_size: unsafe extern "C" fn(*const Handle, u32) -> usize,
    metadata: unsafe extern "C" fn(*const Handle, u32, *mut c_void) -> HeifError,
    // Kept last so that the function pointers above never outlive the library.
    _library: Library,
}

fn load() -> std::result::Result<Api, String> {
    let names: Vec<String> = match std::env::var(LIBHEIF_ENV) {
        Ok(path) if !path.is_empty() => vec![path],
        _ => CANDIDATES.iter().map(|s| s.to_string()).collect(),
    };
    let mut last_error = String::new();
    for name in &names {
        // SAFETY: loading runs libheif's initialisers, which only set up its codec tables.
        match unsafe { Library::new(name) } {
            Ok(library) => {
                return bind(library).map_err(|e| {
                    format!(
                        "{name} is not a usable libheif ({e}); install libheif \
                         (Debian/Ubuntu: apt install libheif1) or set {LIBHEIF_ENV} to its path"
                    )
                });
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(format!(
        "HEIC/HEIF and AVIF files need libheif, which was not found ({last_error}); install it \
         (Debian/Ubuntu: apt install libheif1, Fedora: dnf install libheif, macOS: brew install \
         libheif) or set {LIBHEIF_ENV} to its path"
    ))
}

fn bind(library: Library) -> std::result::Result<Api, libloading::Error> {
    // SAFETY: each symbol is given the signature heif.h declares for it; C enums are `int`.
    unsafe {
        macro_rules! sym {
            ($name:literal) => {{
                let symbol: libloading::Symbol<'_, _> = library.get($name)?;
                *symbol
            }};
        }
        // heif_init registers the decoder plugins; libheif before 1.13 has none to register.
        if let Ok(init) =
            library.get::<unsafe extern "C" fn(*const c_void) -> HeifError>(b"heif_init\0")
        {
            init(std::ptr::null());
        }
        Ok(Api {
            context_alloc: sym!(b"heif_context_alloc\0"),
            context_free: sym!(b"heif_context_free\0"),
            read_from_memory: sym!(b"heif_context_read_from_memory_without_copy\0"),
            set_maximum_size: sym!(b"heif_context_set_maximum_image_size_limit\0"),
            primary_handle: sym!(b"heif_context_get_primary_image_handle\0"),
            handle_release: sym!(b"heif_image_handle_release\0"),
            handle_width: sym!(b"heif_image_handle_get_width\0"),
            handle_height: sym!(b"heif_image_handle_get_height\0"),
            handle_has_alpha: sym!(b"heif_image_handle_has_alpha_channel\0"),
            decode_image: sym!(b"heif_decode_image\0"),
            image_release: sym!(b"heif_image_release\0"),
            plane: sym!(b"heif_image_get_plane_readonly\0"),
            image_width: sym!(b"heif_image_get_width\0"),
            image_height: sym!(b"heif_image_get_height\0"),
            metadata_ids: sym!(b"heif_image_handle_get_list_of_metadata_block_IDs\0"),
            metadata_size: sym!(b"heif_image_handle_get_metadata_size\0"),
            metadata: sym!(b"heif_image_handle_get_metadata\0"),
            _library: library,
        })
    }
}

fn api() -> std::result::Result<&'static Api, String> {
    static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn check(err: HeifError, what: &str) -> std::result::Result<(), String> {
    if err.code == 0 {
        return Ok(());
    }
    let message = if err.message.is_null() {
        String::new()
    } else {
        // SAFETY: libheif's messages are static, NUL-terminated strings.
        unsafe { CStr::from_ptr(err.message) }
            .to_string_lossy()
            .trim()
            .to_string()
    };
    Err(format!("{what}: {message}"))
}

struct ContextGuard<'a>(&'a Api, *mut Context);
impl Drop for ContextGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the context came from heif_context_alloc and is freed once.
        unsafe { (self.0.context_free)(self.1) }
    }
}

struct HandleGuard<'a>(&'a Api, *mut Handle);
impl Drop for HandleGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from libheif and is released once.
        unsafe { (self.0.handle_release)(self.1) }
    }
}

struct ImageGuard<'a>(&'a Api, *mut Image);
impl Drop for ImageGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the image came from heif_decode_image and is released once.
        unsafe { (self.0.image_release)(self.1) }
    }
}

/// The EXIF orientation of the image behind `handle`, if it has an EXIF block that gives one.
///
/// # Safety
/// `handle` is a live image handle of `api`.
unsafe fn exif_orientation(api: &Api, handle: *const Handle) -> Option<Orientation> {
    let mut id: u32 = 0;
    // SAFETY: room for one id is given; the block is read into a buffer of the size libheif
    // reports for it.
    unsafe {
        if (api.metadata_ids)(handle, c"Exif".as_ptr(), &mut id, 1) < 1 {
            return None;
        }
        let size = (api.metadata_size)(handle, id);
        if !(8..=1 << 20).contains(&size) {
            return None;
        }
        let mut block = vec![0u8; size];
        if (api.metadata)(handle, id, block.as_mut_ptr().cast()).code != 0 {
            return None;
        }
        // The block starts with the offset of the TIFF header from the end of that field.
        let offset = u32::from_be_bytes(block[..4].try_into().ok()?) as usize;
        Orientation::from_exif_chunk(block.get(4usize.checked_add(offset)?..)?)
    }
}

/// True when the file's item properties include a rotation or mirroring (`irot`, `imir`):
/// the container then orients the image, and its EXIF orientation must not be applied again.
fn has_transform_property(bytes: &[u8]) -> bool {
    /// The (type, body) of each box in `data`.
    fn boxes(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut at = 0usize;
        std::iter::from_fn(move || {
            let header = data.get(at..at.checked_add(8)?)?;
            let size = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
            let (start, end) = match size {
                0 => (at + 8, data.len()),
                1 => {
                    let large = data.get(at + 8..at + 16)?;
                    let large = usize::try_from(u64::from_be_bytes(large.try_into().ok()?)).ok()?;
                    (at + 16, at.checked_add(large)?)
                }
                s if s >= 8 => (at + 8, at.checked_add(s)?),
                _ => return None,
            };
            let body = data.get(start..end.min(data.len()))?;
            let kind = &header[4..8];
            at = end;
            Some((kind, body))
        })
    }
    fn child<'a>(data: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
        boxes(data).find(|(k, _)| *k == kind).map(|(_, b)| b)
    }
    // `meta` is a full box: four bytes of version and flags come before its children.
    let properties = child(bytes, b"meta")
        .and_then(|meta| meta.get(4..))
        .and_then(|meta| child(meta, b"iprp"))
        .and_then(|iprp| child(iprp, b"ipco"));
    properties.is_some_and(|ipco| boxes(ipco).any(|(k, _)| k == b"irot" || k == b"imir"))
}

/// Decodes the primary image of a HEIF/AVIF file, upright: libheif applies the container's
/// rotation, mirroring and crop; a file without them that has an EXIF orientation (as some
/// encoders write) is turned by that.
pub(crate) fn decode(bytes: &[u8], path: &Path, cfg: &DecodeConfig) -> Result<DynamicImage> {
    let api = api().map_err(|e| bad(path, e))?;
    let fail = |e: String| bad(path, e);
    // SAFETY: `bytes` outlives the context (it is freed by its guard before returning), as
    // reading "without copy" requires; every pointer libheif returns is checked before use.
    unsafe {
        let ctx = (api.context_alloc)();
        if ctx.is_null() {
            return Err(fail("libheif could not allocate a context".into()));
        }
        let ctx = ContextGuard(api, ctx);
        (api.set_maximum_size)(ctx.1, cfg.max_side.min(i32::MAX as u32) as c_int);
        check(
            (api.read_from_memory)(ctx.1, bytes.as_ptr().cast(), bytes.len(), std::ptr::null()),
            "not a readable HEIF/AVIF file",
        )
        .map_err(fail)?;
        let mut handle = std::ptr::null_mut();
        check((api.primary_handle)(ctx.1, &mut handle), "no primary image").map_err(fail)?;
        let handle = HandleGuard(api, handle);
        let w = (api.handle_width)(handle.1).max(0) as u32;
        let h = (api.handle_height)(handle.1).max(0) as u32;
        check_size(w, h, path, cfg)?;
        let alpha = (api.handle_has_alpha)(handle.1) != 0;
        // The coded planes, the interleaved output and the 8-bit RGB copy after it.
        let pixels = u64::from(w) * u64::from(h);
        check_memory(pixels * 10, w, h, path, cfg)?;
        let chroma = if alpha {
            CHROMA_INTERLEAVED_RGBA
        } else {
            CHROMA_INTERLEAVED_RGB
        };
        let mut image = std::ptr::null_mut();
        check(
            (api.decode_image)(
                handle.1,
                &mut image,
                COLORSPACE_RGB,
                chroma,
                std::ptr::null(),
            ),
            "could not decode the image",
        )
        .map_err(fail)?;
        let image = ImageGuard(api, image);
        let iw = (api.image_width)(image.1, CHANNEL_INTERLEAVED);
        let ih = (api.image_height)(image.1, CHANNEL_INTERLEAVED);
        let mut stride: c_int = 0;
        let plane = (api.plane)(image.1, CHANNEL_INTERLEAVED, &mut stride);
        let channels = if alpha { 4 } else { 3 };
        if plane.is_null() || iw <= 0 || ih <= 0 || (stride as i64) < i64::from(iw) * channels {
            return Err(fail("libheif returned no pixels".into()));
        }
        let (iw, ih) = (iw as u32, ih as u32);
        check_size(iw, ih, path, cfg)?;
        let row = iw as usize * channels as usize;
        let mut data = Vec::with_capacity(row * ih as usize);
        for y in 0..ih as usize {
            let start = plane.add(y * stride as usize);
            data.extend_from_slice(std::slice::from_raw_parts(start, row));
        }
        let image = if alpha {
            RgbaImage::from_raw(iw, ih, data).map(DynamicImage::ImageRgba8)
        } else {
            RgbImage::from_raw(iw, ih, data).map(DynamicImage::ImageRgb8)
        };
        let mut image = image.ok_or_else(|| fail("libheif returned a short image".into()))?;
        if !has_transform_property(bytes)
            && let Some(orientation) = exif_orientation(api, handle.1)
        {
            image.apply_orientation(orientation);
        }
        Ok(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn heif_with(properties: &[&[u8; 4]]) -> Vec<u8> {
        let ipco: Vec<u8> = properties.iter().flat_map(|k| boxed(k, &[0; 4])).collect();
        let iprp = boxed(b"iprp", &boxed(b"ipco", &ipco));
        let mut meta_body = vec![0; 4];
        meta_body.extend(boxed(b"hdlr", &[0; 24]));
        meta_body.extend(iprp);
        let mut file = boxed(b"ftyp", b"heic\0\0\0\0mif1heic");
        file.extend(boxed(b"meta", &meta_body));
        file.extend(boxed(b"mdat", &[1, 2, 3]));
        file
    }

    #[test]
    fn container_rotation_and_mirroring_are_found_in_the_item_properties() {
        assert!(!has_transform_property(&heif_with(&[b"ispe", b"hvcC"])));
        assert!(has_transform_property(&heif_with(&[b"ispe", b"irot"])));
        assert!(has_transform_property(&heif_with(&[b"imir"])));
        // Truncated or garbled boxes end the search without a panic.
        let file = heif_with(&[b"irot"]);
        for cut in 0..file.len() {
            let _ = has_transform_property(&file[..cut]);
        }
        assert!(!has_transform_property(&[
            0, 0, 0, 3, b'm', b'e', b't', b'a'
        ]));
    }
}

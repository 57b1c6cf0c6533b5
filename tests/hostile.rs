//! Hostile inputs: a generated corpus of broken, odd and adversarial files. Each one is indexed
//! correctly or recorded as a failure with a clear reason; nothing panics; the rest is indexed.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use image::{DynamicImage, Rgb, RgbImage};
use lookalike::collection::Collection;
use lookalike::crawl::CrawlConfig;
use lookalike::index::{IndexConfig, IndexSummary, run};

fn encode(img: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut buf = Vec::new();
    img.write_to(&mut Cursor::new(&mut buf), format).unwrap();
    buf
}

fn photo(w: u32, h: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            ((x * 7 + seed * 31) % 256) as u8,
            ((y * 5 + seed * 17) % 256) as u8,
            (((x ^ y) + seed) % 256) as u8,
        ])
    })
}

fn png_with_header(w: u32, h: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png
}

/// Writes the corpus; returns (files expected indexed, files expected failed).
fn make_corpus(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut put = |name: &Path, bytes: &[u8], ok: bool| {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        if ok { good.push(p) } else { bad.push(p) }
    };
    let jpeg = encode(
        &DynamicImage::ImageRgb8(photo(300, 200, 1)),
        image::ImageFormat::Jpeg,
    );
    let png = encode(
        &DynamicImage::ImageRgb8(photo(120, 90, 2)),
        image::ImageFormat::Png,
    );
    put(Path::new("zero.jpg"), b"", false);
    put(Path::new("truncated.jpg"), &jpeg[..jpeg.len() / 4], false);
    put(Path::new("truncated.png"), &png[..png.len() / 2], false);
    let noise: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    put(Path::new("random.jpg"), &noise, false);
    put(
        Path::new("notes.png"),
        b"this is a text file with an image name\n",
        false,
    );
    put(
        Path::new("bomb.png"),
        &png_with_header(100_000, 100_000),
        false,
    );
    // Good but odd ones.
    put(Path::new("good.jpg"), &jpeg, true);
    put(Path::new("good.png"), &png, true);
    put(
        Path::new("tiny 1x1.png"),
        &encode(
            &DynamicImage::ImageRgb8(photo(1, 1, 3)),
            image::ImageFormat::Png,
        ),
        true,
    );
    put(
        Path::new("strip10000x1.png"),
        &encode(
            &DynamicImage::ImageRgb8(photo(10_000, 1, 4)),
            image::ImageFormat::Png,
        ),
        true,
    );
    let g16 = DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(64, 48, |x, y| {
        Rgb([(x * 1000) as u16, (y * 1300) as u16, 40_000])
    }));
    put(
        Path::new("deep16.png"),
        &encode(&g16, image::ImageFormat::Png),
        true,
    );
    let mut cmyk = Vec::new();
    let pixels: Vec<u8> = (0..64 * 64)
        .flat_map(|i| [(i % 200) as u8, 30, 60, 10])
        .collect();
    jpeg_encoder::Encoder::new(&mut cmyk, 90)
        .encode(&pixels, 64, 64, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    put(Path::new("cmyk.jpg"), &cmyk, true);
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        let frames = (0..3).map(|i| {
            let rgba = DynamicImage::ImageRgb8(photo(40, 30, 10 + i)).into_rgba8();
            image::Frame::new(rgba)
        });
        enc.encode_frames(frames).unwrap();
    }
    put(Path::new("animated.gif"), &gif, true);
    let bmp = encode(
        &DynamicImage::ImageRgb8(photo(50, 40, 5)),
        image::ImageFormat::Bmp,
    );
    put(Path::new("naïve café/été.bmp"), &bmp, true);
    let tiff = encode(
        &DynamicImage::ImageRgb8(photo(50, 40, 6)),
        image::ImageFormat::Tiff,
    );
    put(Path::new("no extension"), &tiff, true);
    let grey = encode(
        &DynamicImage::ImageLuma8(image::GrayImage::from_fn(70, 50, |x, _| {
            image::Luma([(x * 3) as u8])
        })),
        image::ImageFormat::Png,
    );
    put(Path::new("grey.png"), &grey, true);
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"bad-\xff\xfe-utf8.png");
        let webp = encode(
            &DynamicImage::ImageRgb8(photo(33, 22, 7)),
            image::ImageFormat::WebP,
        );
        put(Path::new(name), &webp, true);
    }
    (good, bad)
}

fn index(collection: &Collection, root: &Path, follow: bool) -> IndexSummary {
    let cfg = IndexConfig {
        crawl: CrawlConfig {
            roots: vec![root.to_path_buf()],
            follow_symlinks: follow,
            ..Default::default()
        },
        ..Default::default()
    };
    run(collection, &cfg, &|_| {}, &AtomicBool::new(false)).unwrap()
}

#[test]
fn every_hostile_file_is_indexed_or_recorded_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    let (good, bad) = make_corpus(&root);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&root, root.join("loop")).unwrap();
    let collection = Collection::at(tmp.path().join("idx"));
    let summary = index(&collection, &root, true);

    let failed: Vec<&Path> = summary.failed.iter().map(|f| f.path.as_path()).collect();
    for p in &bad {
        let canon = std::fs::canonicalize(p).unwrap();
        let f = summary
            .failed
            .iter()
            .find(|f| f.path == canon)
            .unwrap_or_else(|| panic!("{} not recorded as failed: {failed:?}", p.display()));
        assert!(!f.reason.is_empty());
    }
    assert_eq!(summary.failed.len(), bad.len(), "{:?}", summary.failed);
    assert_eq!(summary.total_images, good.len(), "{summary:?}");
    let reason = |name: &str| {
        summary
            .failed
            .iter()
            .find(|f| f.path.ends_with(name))
            .unwrap()
            .reason
            .clone()
    };
    assert!(reason("zero.jpg").contains("0 bytes"));
    assert!(reason("bomb.png").contains("decompression bomb"));
    assert!(reason("notes.png").contains("not a recognised image format"));
    assert!(
        summary.problems.iter().any(|p| p.reason.contains("loop")),
        "{:?}",
        summary.problems
    );

    // Everything is in the database too, and stays put on a second run.
    let store = collection.open_store_read_only().unwrap();
    assert_eq!(store.failures().unwrap().len(), bad.len());
    store.integrity_check().unwrap();
    let again = index(&collection, &root, true);
    assert_eq!(again.unchanged, good.len());
    assert_eq!(again.still_failing, bad.len());
    assert!(again.failed.is_empty());

    // A fixed file is picked up; a removed broken file is forgotten.
    std::fs::copy(&good[0], root.join("zero.jpg")).unwrap();
    std::fs::remove_file(root.join("random.jpg")).unwrap();
    let fixed = index(&collection, &root, true);
    assert_eq!(fixed.duplicates, 1, "{fixed:?}");
    let store = collection.open_store_read_only().unwrap();
    assert_eq!(store.failures().unwrap().len(), bad.len() - 2);
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_recorded_unless_running_as_root() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("p");
    std::fs::create_dir_all(&root).unwrap();
    let locked = root.join("locked.png");
    std::fs::write(
        &locked,
        encode(
            &DynamicImage::ImageRgb8(photo(20, 20, 1)),
            image::ImageFormat::Png,
        ),
    )
    .unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let readable = std::fs::read(&locked).is_ok(); // root reads anything
    let summary = index(&Collection::at(tmp.path().join("idx")), &root, false);
    if readable {
        assert_eq!(summary.total_images, 1);
    } else {
        assert_eq!(summary.failed.len(), 1);
        assert!(
            summary.failed[0].reason.contains("cannot read"),
            "{:?}",
            summary.failed
        );
    }
}

//! The formats of real photo libraries: HEIC, AVIF, JPEG XL and DNG copies of sample photos
//! index without failures and each finds its JPEG original first; damaged copies and a missing
//! libheif are failures that name the file and what to do.
//!
//! HEIC, AVIF and JPEG XL copies are made with Debian's encoders (libheif-examples,
//! libavif-bin, libjxl-tools); without them those cases are skipped, unless
//! `LOOKALIKE_REQUIRE_FORMAT_TOOLS=1` (as in CI) makes that a failure. DNG copies are written
//! by the tests themselves.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;
#[path = "common/dng.rs"]
mod dng;
use common::{lookalike, sample};

const PHOTOS: [&str; 6] = [
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "rocket",
];

/// True when every encoder is on the PATH; when one is missing, the test is skipped unless the
/// environment requires the tools.
fn encoders_available() -> bool {
    let missing: Vec<&str> = ["heif-enc", "avifenc", "cjxl"]
        .into_iter()
        .filter(|tool| {
            !std::env::var_os("PATH").is_some_and(|paths| {
                std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file())
            })
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("LOOKALIKE_REQUIRE_FORMAT_TOOLS").as_deref() != Ok("1"),
        "encoders missing: {missing:?} (apt install libheif-examples libavif-bin libjxl-tools)"
    );
    eprintln!("skipped: encoders missing: {missing:?}");
    false
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes the encoders' copies of `jpeg` into `dir` as `stem.heic`, `.avif` and `.jxl`.
fn encode_copies(jpeg: &Path, dir: &Path, stem: &str) {
    let out = |ext: &str| dir.join(format!("{stem}.{ext}"));
    run(Command::new("heif-enc")
        .args(["-q", "80", "-o"])
        .arg(out("heic"))
        .arg(jpeg));
    run(Command::new("avifenc")
        .args(["-s", "8", "--min", "20", "--max", "30"])
        .arg(jpeg)
        .arg(out("avif")));
    run(Command::new("cjxl")
        .arg(jpeg)
        .arg(out("jxl"))
        .arg("--quiet"));
}

fn write_dng(jpeg: &Path, out: &Path, preview: bool, orientation: u16) {
    let bytes = std::fs::read(jpeg).unwrap();
    let rgb = image::load_from_memory(&bytes).unwrap().into_rgb8();
    let options = dng::DngOptions {
        preview_jpeg: preview.then_some(bytes),
        preview_size: rgb.dimensions(),
        orientation,
        default_crop_size: None,
        thumbnail_first: None,
    };
    std::fs::write(out, dng::dng_from_rgb(&rgb, &options)).unwrap();
}

/// `lookalike index` of `folder` into `index`, with extra arguments and environment.
fn index(
    index: &Path,
    folder: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = lookalike();
    cmd.arg("--index-dir")
        .arg(index)
        .args(["-q", "index"])
        .args(extra)
        .arg(folder);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn status(index: &Path) -> Value {
    let out = lookalike()
        .arg("--index-dir")
        .arg(index)
        .args(["status", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The failures in an index, as (file name, reason).
fn failures(index: &Path) -> Vec<(String, String)> {
    status(index)["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = Path::new(f["path"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, f["reason"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The file name of the first hit for `query` in `index`.
fn first_hit(index: &Path, query: &Path) -> String {
    let (doc, _) = json_of(
        lookalike()
            .arg("--index-dir")
            .arg(index)
            .arg("query")
            .arg(query)
            .args(["-k", "1"]),
    );
    let path = PathBuf::from(doc["hits"][0]["path"].as_str().unwrap());
    path.file_name().unwrap().to_string_lossy().into_owned()
}

struct Folders {
    _tmp: tempfile::TempDir,
    originals: PathBuf,
    copies: PathBuf,
    root: PathBuf,
}

fn folders() -> Folders {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let (originals, copies) = (root.join("originals"), root.join("copies"));
    std::fs::create_dir_all(&originals).unwrap();
    std::fs::create_dir_all(&copies).unwrap();
    for p in PHOTOS {
        std::fs::copy(
            sample(p, "original.jpg"),
            originals.join(format!("{p}.jpg")),
        )
        .unwrap();
    }
    Folders {
        _tmp: tmp,
        originals,
        copies,
        root,
    }
}

#[test]
fn copies_in_every_format_index_cleanly_and_find_their_originals() {
    let f = folders();
    let encoders = encoders_available();
    let mut expected = Vec::new();
    for p in PHOTOS {
        let jpeg = f.originals.join(format!("{p}.jpg"));
        write_dng(&jpeg, &f.copies.join(format!("{p}.dng")), true, 1);
        expected.push(format!("{p}.dng"));
        if encoders {
            encode_copies(&jpeg, &f.copies, p);
            expected.extend(["heic", "avif", "jxl"].map(|e| format!("{p}.{e}")));
            // JPEG XL encoded from pixels, not a transcoded JPEG.
            run(Command::new("cjxl")
                .arg(&jpeg)
                .arg(f.copies.join(format!("{p}-pixels.jxl")))
                .args(["--lossless_jpeg=0", "-q", "85", "--quiet"]));
            expected.push(format!("{p}-pixels.jxl"));
        }
    }
    // Sensor data only (no preview), and a camera held upright (orientation 6).
    write_dng(
        &f.originals.join("camera.jpg"),
        &f.copies.join("camera-sensor.dng"),
        false,
        1,
    );
    write_dng(
        &f.originals.join("rocket.jpg"),
        &f.copies.join("rocket-upright.dng"),
        true,
        6,
    );
    expected.extend(["camera-sensor.dng".into(), "rocket-upright.dng".into()]);

    let copies_index = f.root.join("copies-index");
    let out = index(&copies_index, &f.copies, &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(failures(&copies_index), vec![]);
    assert_eq!(status(&copies_index)["images"], expected.len());

    let originals_index = f.root.join("originals-index");
    assert!(
        index(&originals_index, &f.originals, &[], &[])
            .status
            .success()
    );
    for name in &expected {
        let original = format!("{}.jpg", name.split(['.', '-']).next().unwrap());
        let hit = first_hit(&originals_index, &f.copies.join(name));
        assert_eq!(hit, original, "{name} should find {original} first");
    }
    // The upright DNG is indexed with its sides swapped, as the camera showed it.
    let db = rusqlite::Connection::open(copies_index.join("lookalike.db")).unwrap();
    let (format, w, h): (String, u32, u32) = db
        .query_row(
            "SELECT format, width, height FROM images WHERE CAST(rel_path AS TEXT) = 'rocket-upright.dng'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let original = image::image_dimensions(f.originals.join("rocket.jpg")).unwrap();
    assert_eq!((format.as_str(), w, h), ("dng", original.1, original.0));
}

/// A progressive JPEG of `jpeg`'s pixels (what many cameras and web tools write).
fn progressive_jpeg(jpeg: &Path, out: &Path) {
    let rgb = image::open(jpeg).unwrap().into_rgb8();
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    compress.set_size(rgb.width() as usize, rgb.height() as usize);
    compress.set_quality(90.0);
    compress.set_progressive_mode();
    let mut started = compress.start_compress(Vec::new()).unwrap();
    started.write_scanlines(rgb.as_raw()).unwrap();
    let bytes = started.finish().unwrap();
    // SOF2: progressive, Huffman
    assert!(bytes.windows(2).any(|m| m == [0xFF, 0xC2]));
    std::fs::write(out, bytes).unwrap();
}

/// Some progressive JPEGs transcoded into JPEG XL trip an assertion in the decoder's JPEG
/// reconstruction; their pixels are rendered instead, and no panic text reaches the user.
#[test]
fn transcoded_progressive_jpegs_are_read_from_their_pixels_when_reconstruction_fails() {
    if !encoders_available() {
        return;
    }
    let f = folders();
    for p in PHOTOS {
        let progressive = f.copies.join(format!("{p}-progressive.jpg"));
        progressive_jpeg(&f.originals.join(format!("{p}.jpg")), &progressive);
        run(Command::new("cjxl")
            .arg(&progressive)
            .arg(f.copies.join(format!("{p}-progressive.jxl")))
            .arg("--quiet"));
        std::fs::remove_file(&progressive).unwrap();
    }
    let copies_index = f.root.join("copies-index");
    let out = index(&copies_index, &f.copies, &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(failures(&copies_index), vec![]);
    let originals_index = f.root.join("originals-index");
    assert!(
        index(&originals_index, &f.originals, &[], &[])
            .status
            .success()
    );
    for p in PHOTOS {
        let hit = first_hit(
            &originals_index,
            &f.copies.join(format!("{p}-progressive.jxl")),
        );
        assert_eq!(hit, format!("{p}.jpg"));
    }
}

#[test]
fn damaged_copies_are_failures_naming_the_file_and_the_rest_is_indexed() {
    let f = folders();
    let encoders = encoders_available();
    let jpeg = f.originals.join("camera.jpg");
    let work = f.root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    write_dng(&jpeg, &work.join("camera.dng"), false, 1);
    let mut damaged = vec!["camera.dng"];
    if encoders {
        encode_copies(&jpeg, &work, "camera");
        damaged.extend(["camera.heic", "camera.avif", "camera.jxl"]);
    }
    for name in &damaged {
        let bytes = std::fs::read(work.join(name)).unwrap();
        let cut = format!("cut-{name}");
        std::fs::write(f.copies.join(&cut), &bytes[..bytes.len() * 2 / 3]).unwrap();
        // Not an image at all, under the format's name.
        std::fs::write(f.copies.join(format!("text-{name}")), b"hello\n").unwrap();
    }
    std::fs::copy(&jpeg, f.copies.join("camera.jpg")).unwrap();
    let idx = f.root.join("idx");
    let out = index(&idx, &f.copies, &[], &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit status 3: some files failed"
    );
    let failed = failures(&idx);
    assert_eq!(failed.len(), damaged.len() * 2, "{failed:?}");
    for (name, reason) in &failed {
        assert!(!reason.is_empty(), "{name}");
    }
    let jxl = failed.iter().find(|(n, _)| n == "cut-camera.jxl");
    if let Some((_, reason)) = jxl {
        assert!(reason.contains("truncated"), "{reason}");
    }
    assert_eq!(status(&idx)["images"], 1);
}

#[test]
fn without_libheif_heic_and_avif_are_failures_that_say_what_to_install() {
    if !encoders_available() {
        return;
    }
    let f = folders();
    encode_copies(&f.originals.join("coffee.jpg"), &f.copies, "coffee");
    std::fs::copy(f.originals.join("coffee.jpg"), f.copies.join("coffee.jpg")).unwrap();
    let idx = f.root.join("idx");
    let out = index(
        &idx,
        &f.copies,
        &[],
        &[("LOOKALIKE_LIBHEIF", "/nonexistent/libheif.so.1")],
    );
    assert_eq!(out.status.code(), Some(3));
    let mut failed = failures(&idx);
    failed.sort();
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["coffee.avif", "coffee.heic"]);
    for (_, reason) in &failed {
        assert!(
            reason.contains("libheif") && reason.contains("install"),
            "{reason}"
        );
    }
    // With libheif found again, a retry reads them.
    let out = index(&idx, &f.copies, &["--retry-failed"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(failures(&idx), vec![]);
    assert_eq!(status(&idx)["images"], 4);
}

/// A RAW file read through a preview smaller than its sensor image is listed at the sensor's
/// size, so `--keep best` (most pixels) keeps it over a web export between the two sizes.
#[test]
fn a_raw_read_from_a_small_preview_counts_its_sensor_pixels_and_is_kept_as_best() {
    let f = folders();
    let original = image::open(f.originals.join("coffee.jpg")).unwrap();
    let resized = |w: u32, h: u32| original.resize_exact(w, h, image::imageops::Triangle);
    let sensor = resized(640, 426).into_rgb8();
    let mut preview = Vec::new();
    resized(320, 213)
        .write_to(
            &mut std::io::Cursor::new(&mut preview),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let options = dng::DngOptions {
        preview_jpeg: Some(preview),
        preview_size: (320, 213),
        orientation: 1,
        default_crop_size: None,
        thumbnail_first: None,
    };
    let raw = f.copies.join("DSC_0001.dng");
    std::fs::write(&raw, dng::dng_from_rgb(&sensor, &options)).unwrap();
    resized(480, 320)
        .save(f.copies.join("DSC_0001_web.jpg"))
        .unwrap();
    let (json, _) = json_of(
        lookalike()
            .arg("--index-dir")
            .arg(f.root.join("idx"))
            .args(["-q", "duplicates", "--keep", "best"])
            .arg(&f.copies),
    );
    let group = &json["groups"][0];
    let shown = |v: &Value| {
        let name = Path::new(v["path"].as_str().unwrap()).file_name().unwrap();
        format!("{} {}x{}", name.to_string_lossy(), v["width"], v["height"])
    };
    assert_eq!(shown(&group["keep"]), "DSC_0001.dng 640x426", "{json}");
    assert_eq!(shown(&group["copies"][0]), "DSC_0001_web.jpg 480x320");
}

#[test]
fn a_raw_file_over_the_memory_budget_is_a_failure_until_the_budget_is_raised() {
    let f = folders();
    // 1,280 x 1,200 pixels without a preview: developing needs about 70 MiB.
    let rgb = image::RgbImage::from_fn(1280, 1200, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let options = dng::DngOptions {
        orientation: 1,
        ..Default::default()
    };
    let path = f.copies.join("big.dng");
    std::fs::write(&path, dng::dng_from_rgb(&rgb, &options)).unwrap();
    // older than the file system's time granularity, so that its recorded stamp is settled
    // and it counts as unchanged since it failed
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let idx = f.root.join("idx");
    let run = |extra: &[&str]| index(&idx, &f.copies, extra, &[]);
    assert_eq!(run(&["--memory-budget", "64"]).status.code(), Some(3));
    let failed = failures(&idx);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].1.contains("--memory-budget"), "{}", failed[0].1);
    // the same budget leaves it failed; a larger one tries it again, as its message says
    assert_eq!(run(&["--memory-budget", "64"]).status.code(), Some(3));
    assert_eq!(failures(&idx).len(), 1);
    let out = run(&["--memory-budget", "128"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status(&idx)["images"], 1);
    // Absurd budgets are refused before anything runs.
    assert_eq!(run(&["--memory-budget", "0"]).status.code(), Some(2));
}

/// A camera RAW file `deblur` leaves unchanged is written as the TIFF its output names, not
/// copied there: a DNG is TIFF-structured, but its bytes are no TIFF picture of it.
#[test]
fn a_raw_file_left_unchanged_is_written_in_the_output_format_not_copied() {
    let f = folders();
    let dng = f.copies.join("camera.dng");
    write_dng(&sample("camera", "original.jpg"), &dng, true, 1);
    let out = f.root.join("camera.tif");
    let done = lookalike()
        .args(["deblur", "--psf", "none", "--json"])
        .arg(&dng)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let doc: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(doc["copied"], false, "{doc}");
    assert_ne!(std::fs::read(&out).unwrap(), std::fs::read(&dng).unwrap());
    let original = image::open(sample("camera", "original.jpg")).unwrap();
    let written = image::open(&out).unwrap();
    assert_eq!(
        (written.width(), written.height()),
        (original.width(), original.height())
    );
}

/// `quality --json`'s `first_frames_only` and `deblur --json`'s `lossy` for `file` (compared
/// with `reference`), and whether `deblur` notes that only a first frame is read.
fn frames_and_lossy(file: &Path, reference: &Path) -> (bool, bool, bool) {
    let (quality, _) = json_of(lookalike().arg("quality").arg(reference).arg(file));
    let output = file.with_extension("out.png");
    let (deblur, stderr) = json_of(lookalike().arg("deblur").arg(file).arg(&output));
    (
        quality["first_frames_only"].as_bool().unwrap(),
        stderr.contains("only its first frame is read"),
        deblur["lossy"].as_bool().unwrap(),
    )
}

/// Runs `command` with `--json`, which must succeed: its output and what it told on stderr.
fn json_of(command: &mut Command) -> (Value, String) {
    let out = command.arg("--json").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

/// Animated JPEG XL and AVIF are read at their first frame and say so, as GIF does; a
/// lossless JPEG XL is no lossy file, a lossy one is, and AVIF counts as lossy (libheif does
/// not tell).
#[test]
fn animated_and_lossless_jpeg_xl_and_avif_are_told() {
    if !encoders_available() {
        return;
    }
    let f = folders();
    let dir = &f.copies;
    let frames: Vec<image::RgbaImage> = ["chelsea", "astronaut", "rocket"]
        .iter()
        .map(|p| {
            image::open(f.originals.join(format!("{p}.jpg")))
                .unwrap()
                .resize_exact(240, 160, image::imageops::Triangle)
                .into_rgba8()
        })
        .collect();
    for (k, frame) in frames.iter().enumerate() {
        frame.save(dir.join(format!("f{k}.png"))).unwrap();
    }
    let gif = dir.join("anim.gif");
    let mut encoder = image::codecs::gif::GifEncoder::new(std::fs::File::create(&gif).unwrap());
    for frame in &frames {
        let delay = image::Delay::from_numer_denom_ms(100, 1);
        encoder
            .encode_frame(image::Frame::from_parts(frame.clone(), 0, 0, delay))
            .unwrap();
    }
    drop(encoder);
    let first = dir.join("f0.png");
    let cjxl = |args: &[&str], input: &Path, name: &str| {
        run(Command::new("cjxl")
            .args(args)
            .arg(input)
            .arg(dir.join(name))
            .arg("--quiet"));
        dir.join(name)
    };
    let animated_jxl = cjxl(&["-d", "0"], &gif, "anim.jxl");
    let lossless_jxl = cjxl(&["-d", "0"], &first, "lossless.jxl");
    let lossy_jxl = cjxl(&["-q", "90"], &first, "lossy.jxl");
    let animated_avif = dir.join("anim.avif");
    run(Command::new("avifenc")
        .arg("-l")
        .args(["f0.png", "f1.png", "f2.png"])
        .arg(&animated_avif)
        .current_dir(dir));
    let lossless_avif = dir.join("lossless.avif");
    run(Command::new("avifenc")
        .arg("-l")
        .arg(&first)
        .arg(&lossless_avif));
    // (first_frames_only, note, lossy)
    assert_eq!(frames_and_lossy(&gif, &first), (true, true, false));
    assert_eq!(frames_and_lossy(&animated_jxl, &first), (true, true, false));
    assert_eq!(frames_and_lossy(&animated_avif, &first), (true, true, true));
    assert_eq!(
        frames_and_lossy(&lossless_jxl, &first),
        (false, false, false)
    );
    assert_eq!(frames_and_lossy(&lossy_jxl, &first), (false, false, true));
    assert_eq!(
        frames_and_lossy(&lossless_avif, &first),
        (false, false, true)
    );
}

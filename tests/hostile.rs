//! Hostile inputs: a generated corpus of broken, odd and adversarial files. Each one is indexed
//! correctly or recorded as a failure with a clear reason; nothing panics; the rest is indexed.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use image::{DynamicImage, Rgb, RgbImage};
use lookalike::collection::Collection;
use lookalike::crawl::CrawlConfig;
use lookalike::index::{IndexConfig, IndexSummary, run};

mod common;
use common::{png_with_header, readable_by_all_writable_by_owner};

/// Tests here spawn processes while others hold the index's write lock (an open file, which a
/// forked child shares until it executes): they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

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

/// A GIF of a few dozen bytes whose logical screen is `side` x `side` with a 1x1 frame.
fn huge_screen_gif(side: u16) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&side.to_le_bytes());
    g.extend_from_slice(&side.to_le_bytes());
    g.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
    g.extend_from_slice(&[2, 2, 0x4C, 0x01, 0, 0x3B]);
    g
}

/// A small JPEG whose frame header is rewritten to claim `w` x `h` pixels.
fn lying_jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut buf = encode(
        &DynamicImage::ImageRgb8(photo(64, 64, 9)),
        image::ImageFormat::Jpeg,
    );
    let sof = buf
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline frame header");
    buf[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    buf[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    buf
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
    put(Path::new("screen.gif"), &huge_screen_gif(14_000), false);
    put(Path::new("liar.jpg"), &lying_jpeg(14_000, 14_000), false);
    put(Path::new("huge.jpg"), b"", false);
    // Sparse: over the file size cap without using the disk.
    std::fs::File::options()
        .write(true)
        .open(dir.join("huge.jpg"))
        .unwrap()
        .set_len(lookalike::decode::DEFAULT_MAX_FILE_SIZE + 1)
        .unwrap();
    // Good but odd ones.
    put(
        Path::new("targa.tga"),
        &encode(
            &DynamicImage::ImageRgb8(photo(40, 30, 8)),
            image::ImageFormat::Tga,
        ),
        true,
    );
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
    let _serial = serial();
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
        reason("screen.gif").contains("memory budget"),
        "{}",
        reason("screen.gif")
    );
    assert!(
        reason("liar.jpg").contains("truncated or damaged JPEG"),
        "{}",
        reason("liar.jpg")
    );
    assert!(
        reason("huge.jpg").contains("over the limit"),
        "{}",
        reason("huge.jpg")
    );
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
    // Files written within two seconds of the first run are read again by the second.
    assert_eq!(again.still_failing + again.failed.len(), bad.len());

    // A fixed file is picked up; a removed broken file is forgotten.
    // (TGA has no signature: its bytes are recognised by the .tga name only.)
    let jpeg = good
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "jpg"))
        .unwrap();
    std::fs::copy(jpeg, root.join("zero.jpg")).unwrap();
    std::fs::remove_file(root.join("random.jpg")).unwrap();
    let fixed = index(&collection, &root, true);
    // A copy of content read again in the same run is extracted rather than copied.
    assert_eq!(fixed.duplicates + fixed.new, 1, "{fixed:?}");
    let store = collection.open_store_read_only().unwrap();
    assert_eq!(store.failures().unwrap().len(), bad.len() - 2);
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_recorded_unless_running_as_root() {
    let _serial = serial();
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

/// A folder that cannot be read is reported with exit status 3, and its images stay indexed.
#[cfg(unix)]
#[test]
fn an_unreadable_folder_keeps_its_images_and_exits_3() {
    let _serial = serial();
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let open = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    open(tmp.path(), 0o777);
    let photos = tmp.path().join("photos");
    let sub = photos.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    for (i, dir) in [&photos, &sub].into_iter().enumerate() {
        let img = DynamicImage::ImageRgb8(photo(40, 30, i as u32 + 3));
        std::fs::write(dir.join("p.png"), encode(&img, image::ImageFormat::Png)).unwrap();
    }
    let gone = photos.join("gone.png");
    let img = DynamicImage::ImageRgb8(photo(40, 30, 9));
    std::fs::write(&gone, encode(&img, image::ImageFormat::Png)).unwrap();
    let idx = tmp.path().join("idx");
    let index_args = [std::ffi::OsStr::new("index"), photos.as_os_str()];
    let Some(mut first) = as_nobody(&idx, &index_args) else {
        return;
    };
    let out = first.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    open(&sub, 0o000);
    // a deletion beside the unreadable folder is still seen
    std::fs::remove_file(&gone).unwrap();
    let out = as_nobody(
        &idx,
        &[
            std::ffi::OsStr::new("index"),
            std::ffi::OsStr::new("--json"),
        ],
    )
    .unwrap()
    .output()
    .unwrap();
    open(&sub, 0o755);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("sub") && err.contains("Permission denied"),
        "{err}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["total_images"], 2, "{summary}");
    assert_eq!(summary["removed"], 1, "{summary}");
}

#[test]
fn a_broken_link_is_named_and_hides_no_deletion_beside_it() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for i in 0..2 {
        let img = DynamicImage::ImageRgb8(photo(40, 30, i + 3));
        std::fs::write(
            photos.join(format!("p{i}.png")),
            encode(&img, image::ImageFormat::Png),
        )
        .unwrap();
    }
    let idx = tmp.path().join("idx");
    let run = || {
        lookalike(&idx)
            .args(["index", "--json", "--follow-symlinks"])
            .arg(&photos)
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), photos.join("dangling.jpg")).unwrap();
    std::fs::remove_file(photos.join("p1.png")).unwrap();
    let out = run();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("dangling.jpg") && err.contains("symbolic link to nothing"),
        "{err}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            summary["removed"].as_u64(),
            summary["total_images"].as_u64()
        ),
        (Some(1), Some(1)),
        "{summary}"
    );
}

/// A folder of four small photos indexed into `<tmp>/idx`; returns (photos, index folder).
fn small_index(tmp: &Path) -> (PathBuf, PathBuf) {
    let photos = tmp.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for i in 0..4 {
        std::fs::write(
            photos.join(format!("p{i}.png")),
            encode(
                &DynamicImage::ImageRgb8(photo(64, 48, i * 20)),
                image::ImageFormat::Png,
            ),
        )
        .unwrap();
    }
    let idx = tmp.join("idx");
    let summary = index(&Collection::at(idx.clone()), &photos, false);
    assert_eq!(summary.total_images, 4, "{summary:?}");
    (photos, idx)
}

fn lookalike(idx: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("lookalike").unwrap();
    c.env_remove("LOOKALIKE_INDEX").arg("--index-dir").arg(idx);
    c
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[cfg(unix)]
#[test]
fn only_regular_files_are_read_as_images_or_kernels() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, idx) = small_index(tmp.path());
    let out = lookalike(&idx)
        .args(["query", "/dev/zero"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
    let fifo = tmp.path().join("pipe.jpg");
    if std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        // Nothing ever writes to the pipe: reading it would wait for ever.
        let out = lookalike(&idx).arg("query").arg(&fifo).output().unwrap();
        let err = stderr_of(&out);
        assert!(
            !out.status.success() && err.contains("not a regular file"),
            "{err}"
        );
        // Indexing a folder holding the pipe neither waits on it nor records it.
        std::fs::rename(&fifo, photos.join("pipe.jpg")).unwrap();
        let summary = index(&Collection::at(idx.clone()), &photos, false);
        assert!(summary.failed.is_empty(), "{summary:?}");
    }
    let out = lookalike(&idx)
        .arg("deblur")
        .arg(photos.join("p0.png"))
        .arg(tmp.path().join("out.png"))
        .args(["--psf", "file:/dev/zero"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(
        !out.status.success() && err.contains("not a regular file"),
        "{err}"
    );
    let out = lookalike(&idx)
        .args(["quality", "/dev/zero"])
        .arg(photos.join("p0.png"))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(
        !out.status.success() && err.contains("not a regular file"),
        "{err}"
    );
}

#[test]
fn blur_and_deblur_never_write_over_their_input() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, idx) = small_index(tmp.path());
    let input = photos.join("p0.png");
    let before = std::fs::read(&input).unwrap();
    // the same file by another spelling too
    let other_spelling = photos.join(".").join("p0.png");
    for (cmd, out) in [
        ("blur", &input),
        ("deblur", &input),
        ("blur", &other_spelling),
        ("deblur", &other_spelling),
    ] {
        let mut c = lookalike(&idx);
        c.arg(cmd).arg(&input).arg(out);
        if cmd == "blur" {
            c.args(["--psf", "gaussian:2"]);
        }
        let result = c.output().unwrap();
        let err = stderr_of(&result);
        assert_eq!(result.status.code(), Some(2), "{cmd}: {err}");
        assert!(err.contains("is the input"), "{cmd}: {err}");
    }
    assert_eq!(
        std::fs::read(&input).unwrap(),
        before,
        "the input was overwritten"
    );
    let out = lookalike(&idx)
        .arg("deblur")
        .arg(&input)
        .arg(tmp.path().join("no-such-folder").join("out.png"))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(
        out.status.code() == Some(2) && err.contains("no-such-folder does not exist"),
        "{err}"
    );
}

/// The binary with `args`, run as user `nobody` when this test runs as root (root ignores
/// file permissions, so only another user sees a read-only index); `None` when that is not
/// possible here.
#[cfg(unix)]
fn as_nobody(idx: &Path, args: &[&std::ffi::OsStr]) -> Option<std::process::Command> {
    let uid = std::process::Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("skipped: not root, so cannot run as another user");
        return None;
    }
    let switch = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    if std::process::Command::new("setpriv")
        .args(switch)
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        let mut c = std::process::Command::new("setpriv");
        c.args(switch)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_lookalike"))
            .env_remove("LOOKALIKE_INDEX")
            .arg("--index-dir")
            .arg(idx)
            .args(args);
        Some(c)
    } else {
        eprintln!("skipped: setpriv cannot switch to user nobody here");
        None
    }
}

#[cfg(unix)]
#[test]
fn writing_to_a_read_only_index_is_refused_with_what_to_do() {
    let _serial = serial();
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (photos, idx) = small_index(tmp.path());
    readable_by_all_writable_by_owner(tmp.path());
    std::fs::write(
        photos.join("new.png"),
        std::fs::read(photos.join("p1.png")).unwrap(),
    )
    .unwrap();
    // the index folder belongs to the user, its database is read-only
    for entry in walkdir::WalkDir::new(&idx) {
        std::os::unix::fs::chown(entry.unwrap().path(), Some(65534), Some(65534)).unwrap();
    }
    std::fs::set_permissions(
        idx.join("lookalike.db"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    let before = std::fs::read(idx.join("lookalike.db")).unwrap();
    for args in [
        vec!["index".as_ref(), photos.as_os_str()],
        vec!["forget".as_ref(), photos.as_os_str()],
    ] {
        let Some(mut cmd) = as_nobody(&idx, &args) else {
            return;
        };
        let out = cmd.output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("lookalike.db")
                && err.contains("make its folder and the files in it writable"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(idx.join("lookalike.db")).unwrap(), before);
}

#[cfg(unix)]
#[test]
fn a_read_only_index_can_be_queried() {
    let _serial = serial();
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (photos, idx) = small_index(tmp.path());
    readable_by_all_writable_by_owner(tmp.path());
    let example = photos.join("p1.png");
    let query: [&std::ffi::OsStr; 4] = [
        "query".as_ref(),
        example.as_ref(),
        "-k".as_ref(),
        "2".as_ref(),
    ];
    let Some(mut query) = as_nobody(&idx, &query) else {
        return;
    };
    let out = query.output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("p1.png"), "{text}");
    let out = as_nobody(&idx, &["status".as_ref(), "--check".as_ref()])
        .unwrap()
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("integrity: ok"), "{text}");

    // a result whose file this user may no longer read is left out as unreadable, not
    // called gone or changed
    std::fs::set_permissions(
        photos.join("p2.png"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let query: [&std::ffi::OsStr; 5] = [
        "query".as_ref(),
        example.as_ref(),
        "-k".as_ref(),
        "4".as_ref(),
        "--json".as_ref(),
    ];
    let out = as_nobody(&idx, &query).unwrap().output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["stale"], serde_json::json!([]), "{json}");
    let unreadable = json["unreadable"].as_array().unwrap();
    assert!(
        unreadable.len() == 1 && unreadable[0].as_str().unwrap().ends_with("p2.png"),
        "{json}"
    );
    let out = as_nobody(&idx, &query[..4]).unwrap().output().unwrap();
    assert!(
        stderr_of(&out).contains("cannot be read by this user"),
        "{}",
        stderr_of(&out)
    );
}

#[cfg(unix)]
#[test]
fn a_dry_run_warns_when_the_index_folder_cannot_keep_the_journal() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, idx) = small_index(tmp.path());
    std::fs::copy(photos.join("p1.png"), photos.join("p1 copy.png")).unwrap();
    lookalike(&idx).arg("-q").arg("index").assert().success();
    readable_by_all_writable_by_owner(tmp.path());
    // a home with a desktop trash this user can write: only the journal is out of reach
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let Some(mut dry) = as_nobody(&idx, &["duplicates".as_ref(), "--trash".as_ref()]) else {
        return;
    };
    let out = dry
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("p1 copy.png"),
        "the dry run still lists the plan"
    );
    assert!(
        err.contains("cannot be written by this user")
            && err.contains("applying will fail")
            && err.contains(&idx.display().to_string()),
        "{err}"
    );
    // as the owner, nothing to warn of
    let out = lookalike(&idx)
        .args(["duplicates", "--trash"])
        .env("XDG_CACHE_HOME", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert!(
        !stderr_of(&out).contains("cannot be written"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn damaged_vectors_fail_the_check_are_left_out_of_searches_and_are_taken_again_by_index_repair() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, idx) = small_index(tmp.path());
    let db = Collection::at(idx.clone()).db_path();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        // p1: one family's vector cut short; p2: a value made NaN.
        let id_of = |name: &str| -> i64 {
            conn.query_row(
                "SELECT id FROM images WHERE CAST(rel_path AS TEXT) = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap()
        };
        let (p1, p2) = (id_of("p1.png"), id_of("p2.png"));
        conn.execute(
            "UPDATE features SET vector = substr(vector, 1, 16) WHERE image_id = ?1 AND family = 'color'",
            [p1],
        )
        .unwrap();
        let blob: Vec<u8> = conn
            .query_row(
                "SELECT vector FROM features WHERE image_id = ?1 AND family = 'lbp'",
                [p2],
                |r| r.get(0),
            )
            .unwrap();
        let mut blob = blob;
        blob[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
        conn.execute(
            "UPDATE features SET vector = ?1 WHERE image_id = ?2 AND family = 'lbp'",
            rusqlite::params![blob, p2],
        )
        .unwrap();
    }
    let out = lookalike(&idx)
        .args(["status", "--check"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("2 damaged stored vectors")
            && text.contains("p1.png")
            && text.contains("p2.png"),
        "{text}"
    );
    // A search space rebuilt in memory (the dump removed) neither panics on the NaN nor takes
    // the damaged images in; neither does an exact search.
    let dumps = idx.join("ann");
    assert!(dumps.is_dir(), "no graph dump in {}", idx.display());
    std::fs::remove_dir_all(&dumps).unwrap();
    for exact in [false, true] {
        let mut q = lookalike(&idx);
        q.arg("query").arg(photos.join("p0.png")).args(["-k", "10"]);
        if exact {
            q.arg("--exact");
        }
        let out = q.output().unwrap();
        let err = stderr_of(&out);
        assert!(out.status.success(), "{err}");
        // images left out of the search: warnings
        assert!(err.contains("warning: 2 images left out"), "{err}");
        assert!(
            err.contains("warning: 2 indexed images have no usable vector"),
            "{err}"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("p0.png") && !text.contains("p1.png") && !text.contains("p2.png"),
            "{text}"
        );
    }
    // A damaged image as the example: described from its file, and not listed itself.
    let out = lookalike(&idx)
        .arg("query")
        .arg(photos.join("p2.png"))
        .args(["-k", "10", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = json["hits"].as_array().unwrap();
    assert!(!results.is_empty(), "{json}");
    for r in results {
        assert!(r["distance"].is_number(), "{json}");
        let path = r["path"].as_str().unwrap();
        assert!(
            !path.ends_with("p1.png") && !path.ends_with("p2.png"),
            "{json}"
        );
    }
    // `index --repair` takes both images again from their files: the check passes and
    // searches find them.
    let out = lookalike(&idx)
        .args(["index", "--repair"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("2 images had a damaged stored vector"),
        "{err}"
    );
    let out = lookalike(&idx)
        .args(["status", "--check"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let out = lookalike(&idx)
        .arg("query")
        .arg(photos.join("p0.png"))
        .args(["-k", "10"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("p1.png") && text.contains("p2.png"), "{text}");
}

/// A meta value whose bytes are not UTF-8: the graph dump's record (a cache) is rebuilt, and
/// one that is truth (the feature profile) is reported as a damaged index naming the record
/// (exit 4, with what to do); neither is an internal error.
#[test]
fn a_meta_value_that_is_not_utf8_is_a_damaged_cache_or_a_damaged_index() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, idx) = small_index(tmp.path());
    let db = Collection::at(idx.clone()).db_path();
    // the value `{"`, a byte 0xFF, `}`, written as text
    let spoil = |key: &str| {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, CAST(X'7B22FF7D' AS TEXT))
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key],
        )
        .unwrap();
    };
    spoil("ann_dump");
    let query = |idx: &Path| {
        let mut q = lookalike(idx);
        q.arg("query").arg(photos.join("p0.png")).args(["-k", "10"]);
        q.output().unwrap()
    };
    let out = lookalike(&idx)
        .args(["status", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let out = query(&idx);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("p1.png"));
    let out = lookalike(&idx)
        .args(["index", "--repair"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let record: Vec<u8> = conn
        .query_row(
            "SELECT CAST(value AS BLOB) FROM meta WHERE key = 'ann_dump'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        std::str::from_utf8(&record).is_ok(),
        "the record is not rewritten"
    );
    drop(conn);
    let out = query(&idx);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));

    spoil("feature_profile");
    for args in [&["status", "--check"][..], &["index", "--repair"][..]] {
        let out = lookalike(&idx).args(args).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {err}");
        assert!(
            err.contains("damaged") && err.contains("lookalike.db"),
            "{args:?}: {err}"
        );
        // the record is named, and so is what to do
        assert!(
            err.contains("the index record `feature_profile` is not UTF-8 text")
                && err.contains("restore lookalike.db from a backup"),
            "{args:?}: {err}"
        );
    }
    let out = query(&idx);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("`feature_profile`"), "{err}");
}

/// An indexed file this user may no longer read: `index` keeps its image and exits 3, and
/// `status` lists it as a failure, as `index` says.
#[cfg(unix)]
#[test]
fn an_indexed_file_that_became_unreadable_is_listed_by_status() {
    let _serial = serial();
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (photos, idx) = small_index(tmp.path());
    // root reads any file: the runs are then made as user nobody, who owns everything
    let as_root = as_nobody(&idx, &[]).is_some();
    if as_root {
        for entry in walkdir::WalkDir::new(tmp.path()) {
            let entry = entry.unwrap();
            std::os::unix::fs::chown(entry.path(), Some(65534), Some(65534)).unwrap();
        }
    }
    let locked = photos.join("p2.png");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let run = |args: &[&str]| {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        match as_nobody(&idx, &args) {
            Some(mut c) => c.output().unwrap(),
            None => lookalike(&idx).args(&args).output().unwrap(),
        }
    };
    let out = run(&["index"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("p2.png") && err.contains("is kept"), "{err}");
    let out = run(&["status", "--json"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failures = json["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{json}");
    assert!(
        failures[0]["path"].as_str().unwrap().ends_with("p2.png")
            && failures[0]["reason"].as_str().unwrap().contains("is kept"),
        "{json}"
    );
    assert_eq!(json["images"], 4, "{json}");
    // readable again: indexed as before, and no longer a failure
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&["index"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["failures"], serde_json::json!([]), "{json}");
    assert_eq!(json["images"], 4, "{json}");
}

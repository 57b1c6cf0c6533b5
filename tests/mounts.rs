//! Folders reached through mounts: a tracked folder or the index folder shown again under
//! another name by a bind mount, and a disk unmounted between a run and its undo. Each scenario
//! runs in a mount namespace of its own (`unshare`), so its mounts vanish with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sample(photo: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join(photo)
        .join("original.jpg")
}

/// A work folder, its path resolved.
fn work() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().canonicalize().unwrap();
    (tmp, w)
}

/// Runs `script` with `sh -eu` in a mount namespace of its own, `$L` being lookalike, `$W` the
/// work folder and `$S` a photo; its output. `None` (and why, printed) where this machine
/// permits no mount, unless LOOKALIKE_REQUIRE_MOUNTS=1 makes that a failure.
fn in_mount_namespace(w: &Path, script: &str) -> Option<Output> {
    let probe = "mkdir -p \"$W/.probe\"; mount -t tmpfs tmpfs \"$W/.probe\"; umount \"$W/.probe\"; rmdir \"$W/.probe\"";
    let run = |unshare: &[&str], script: &str| {
        Command::new("unshare")
            .args(unshare)
            .args(["sh", "-eu", "-c", script])
            .env("L", env!("CARGO_BIN_EXE_lookalike"))
            .env("W", w)
            .env("S", sample("camera"))
            .env("HOME", w)
            .env("XDG_DATA_HOME", w.join("data"))
            .env_remove("LOOKALIKE_INDEX")
            .output()
    };
    let mut why = String::new();
    // as root, then as root of a user namespace of its own
    for unshare in [&["--mount"][..], &["--user", "--map-root-user", "--mount"]] {
        match run(unshare, probe) {
            Ok(out) if out.status.success() => return Some(run(unshare, script).unwrap()),
            Ok(out) => why = String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => why = format!("unshare: {e}"),
        }
    }
    assert!(
        std::env::var_os("LOOKALIKE_REQUIRE_MOUNTS").is_none_or(|v| v != "1"),
        "LOOKALIKE_REQUIRE_MOUNTS=1, but no mount is permitted here: {why}"
    );
    eprintln!("skipped: no mount is permitted here ({why})");
    None
}

/// The script's standard output, then its standard error, for assertions and their messages.
fn said(out: &Output) -> String {
    format!(
        "{}\n--- stderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A tracked folder, or the index folder, reached through a bind mount is no --move-to
/// folder, as it is not under its own name: both ways, inside it or holding it.
#[test]
fn a_move_target_reached_through_a_bind_mount_is_refused() {
    let (_tmp, w) = work();
    let Some(out) = in_mount_namespace(
        &w,
        r#"
        mkdir -p "$W/top/photos" "$W/alias" "$W/top-alias" "$W/idx-alias"
        cp "$S" "$W/top/photos/a.jpg"; cp "$S" "$W/top/photos/b.jpg"
        "$L" --index-dir "$W/idx" -q duplicates "$W/top/photos" >/dev/null
        mount --bind "$W/top/photos" "$W/alias"
        mount --bind "$W/top" "$W/top-alias"
        mount --bind "$W/idx" "$W/idx-alias"
        for dest in alias/dupes top-alias idx-alias/dupes; do
            code=0
            "$L" --index-dir "$W/idx" -q duplicates --move-to "$W/$dest" 2>"$W/err" >/dev/null || code=$?
            echo "$dest: $code $(cat "$W/err")"
        done
        "$L" --index-dir "$W/idx" -q duplicates --move-to "$W/alias/dupes" --apply 2>/dev/null || true
        find "$W/top" "$W/idx" -name '*.jpg' | sort
        "#,
    ) else {
        return;
    };
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    for line in ["alias/dupes: 2 ", "top-alias: 2 ", "idx-alias/dupes: 2 "] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert_eq!(
        text.matches("overlaps the indexed folder").count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches("overlaps the index folder").count(),
        1,
        "{text}"
    );
    // nothing moved into the indexed folder
    assert!(!w.join("top/photos/dupes").exists(), "{text}");
    assert_eq!(text.matches(".jpg").count(), 2, "{text}");
}

/// One folder tracked under two names (a bind mount of it) is one folder: each file is one
/// image, and the second name is told an alias of the first.
#[test]
fn a_folder_tracked_again_through_a_bind_mount_is_indexed_once() {
    let (_tmp, w) = work();
    let Some(out) = in_mount_namespace(
        &w,
        r#"
        mkdir -p "$W/a/sub" "$W/b" "$W/c"
        cp "$S" "$W/a/h.jpg"
        cp "$(dirname "$S")/../coffee/original.jpg" "$W/a/sub/c.jpg"
        mount --bind "$W/a" "$W/b"
        mount --bind "$W/a/sub" "$W/c"
        "$L" --index-dir "$W/idx" index "$W/a" "$W/b" "$W/c" --json
        "#,
    ) else {
        return;
    };
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(json["total_images"], 2, "{text}");
    assert_eq!(
        json["aliased"][0]["path"],
        w.join("b").to_str().unwrap(),
        "{text}"
    );
    assert_eq!(
        json["aliased"][0]["into"],
        w.join("a").to_str().unwrap(),
        "{text}"
    );
}

/// A bind mount of a folder inside a tracked folder is walked once, links followed or not; and
/// a tracked folder shown again inside another (a bind mount there) keeps its images under the
/// name tracked first, whether one folder or all are refreshed.
#[test]
fn a_folder_met_under_two_names_is_walked_once_under_the_name_tracked_first() {
    let (_tmp, w) = work();
    let Some(out) = in_mount_namespace(
        &w,
        r#"
        mkdir -p "$W/a/sub" "$W/a/zz" "$W/b/photos" "$W/a/mnt"
        cp "$S" "$W/a/h.jpg"
        cp "$(dirname "$S")/../coffee/original.jpg" "$W/a/sub/c.jpg"
        cp "$(dirname "$S")/../rocket/original.jpg" "$W/b/photos/r.jpg"
        mount --bind "$W/a/sub" "$W/a/zz"
        "$L" --index-dir "$W/idx" -q index "$W/a" --json >"$W/plain.json"
        "$L" --index-dir "$W/idx-follow" -q index --follow-symlinks "$W/a" --json >"$W/follow.json"
        mount --bind "$W/b/photos" "$W/a/mnt"
        "$L" --index-dir "$W/idx2" -q index "$W/b/photos" >/dev/null
        "$L" --index-dir "$W/idx2" -q index "$W/a" --json >"$W/one.json"
        "$L" --index-dir "$W/idx2" -q index --json >"$W/all.json"
        "#,
    ) else {
        return;
    };
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    let json = |name: &str| -> serde_json::Value {
        let bytes = std::fs::read(w.join(name)).unwrap();
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}: {text}"))
    };
    let figures: Vec<(u64, usize)> = ["plain.json", "follow.json", "one.json", "all.json"]
        .iter()
        .map(|name| {
            let j = json(name);
            let aliased = j["aliased"].as_array().map_or(0, Vec::len);
            (j["total_images"].as_u64().unwrap(), aliased)
        })
        .collect();
    // (images, tracked folders told aliases of another)
    assert_eq!(
        figures,
        [(2, 0), (2, 0), (3, 0), (3, 0)],
        "left: {figures:?}; all: {}",
        json("all.json")["aliased"]
    );
}

/// A disk unmounted after a move: undo makes no folder on the mount point's own disk, where
/// the file would be hidden once the disk is mounted again; it says why, exits 3 and keeps the
/// journal, and once the disk is back the file goes back to it.
#[test]
fn undo_puts_nothing_back_on_a_disk_not_mounted() {
    let (_tmp, w) = work();
    let apply_then_unmount = r#"
        mkdir -p "$W/disk/photos" "$W/usb"
        cp "$S" "$W/disk/photos/a.jpg"; cp "$S" "$W/disk/photos/b.jpg"
        mount --bind "$W/disk" "$W/usb"
        move() {
            "$L" --index-dir "$W/idx" -q duplicates "$W/usb/photos" --keep 'match:**/a.jpg' \
                --move-to "$W/dupes" "$@" >/dev/null
        }
        move; move --apply
        umount "$W/usb"
        code=0
        "$L" --index-dir "$W/idx" undo 2>&1 || code=$?
        echo "undo: $code"
        "#;
    let Some(out) = in_mount_namespace(&w, apply_then_unmount) else {
        return;
    };
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("undo: 3"), "{text}");
    assert!(text.contains("is gone"), "{text}");
    assert!(
        !w.join("usb/photos").exists(),
        "made on the mount point: {text}"
    );
    assert!(w.join("dupes/photos/b.jpg").is_file(), "{text}");
    // the disk mounted again: the journal kept brings the file home
    let Some(out) = in_mount_namespace(
        &w,
        r#"mount --bind "$W/disk" "$W/usb"; "$L" --index-dir "$W/idx" -q undo"#,
    ) else {
        return;
    };
    assert!(out.status.success(), "{}", said(&out));
    assert!(w.join("disk/photos/b.jpg").is_file(), "{}", said(&out));
    assert!(!w.join("usb/photos").exists());
}

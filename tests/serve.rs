//! `lookalike serve` over real HTTP on loopback: pages, thumbnails and files by id, traversal
//! attempts, the token and origin checks, bad uploads, duplicate actions with undo, and an
//! index run while the server answers.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Collection, Server, lookalike, sample};
use serde_json::Value;

/// `lookalike index --profile PROFILE` on the collection's index.
fn reindex_with_profile(c: &Collection, profile: &str) {
    let status = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(["-q", "index", "--profile", profile])
        .status()
        .unwrap();
    assert!(status.success());
}

fn image_ids(server: &Server) -> Vec<(i64, String)> {
    let list = server.get("/api/images?limit=500").json();
    list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().unwrap(),
                i["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn pages_thumbnails_files_and_lookalikes_are_served_by_id() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let page = server.get("/");
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(server.get("/app.js").status, 200);
    assert_eq!(server.get("/app.css").status, 200);
    let status = server.get("/api/status").json();
    assert_eq!(status["images"], 8);
    assert_eq!(status["folders"][0]["images"], 8);

    let folders = server.get("/api/folders").json();
    assert_eq!(
        (
            folders["images"].as_u64(),
            folders["folders"][0]["images"].as_u64()
        ),
        (Some(8), Some(8))
    );
    let ids = image_ids(&server);
    assert_eq!(ids.len(), 8);
    let page = server.get("/api/images?offset=6&limit=5").json();
    assert_eq!(
        (
            page["total"].as_u64(),
            page["images"].as_array().unwrap().len()
        ),
        (Some(8), 2)
    );
    // a page of none is a page of none, with the total
    let none = server.get("/api/images?limit=0").json();
    assert_eq!(
        (
            none["total"].as_u64(),
            none["images"].as_array().map(Vec::len)
        ),
        (Some(8), Some(0)),
        "{none}"
    );
    let beyond = server.get("/api/images?offset=9223372036854775808").json();
    assert_eq!(
        beyond["images"].as_array().map(Vec::len),
        Some(0),
        "{beyond}"
    );

    let (camera, _) = ids.iter().find(|i| i.1 == "camera.jpg").unwrap().clone();
    let thumb = server.get(&format!("/thumbs/{camera}"));
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type").as_deref(), Some("image/jpeg"));
    let small = image::load_from_memory(&thumb.body).unwrap();
    assert!(small.width().max(small.height()) <= 256);
    let etag = thumb.header("etag").unwrap();
    let again = server.raw(
        "GET",
        &format!("/thumbs/{camera}"),
        &[("if-none-match", &etag)],
        b"",
    );
    assert_eq!(again.status, 304);

    let file = server.get(&format!("/files/{camera}"));
    assert_eq!(file.status, 200);
    assert_eq!(
        file.body,
        std::fs::read(c.photos.join("camera.jpg")).unwrap()
    );

    // touched since indexing, the file holds the bytes indexed: shown as /files serves it
    std::fs::File::options()
        .write(true)
        .open(c.photos.join("camera.jpg"))
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000))
        .unwrap();
    assert_eq!(server.get(&format!("/files/{camera}")).status, 200);
    let doc = server.get(&format!("/api/images/{camera}?k=3")).json();
    assert_eq!(doc["image"]["name"], "camera.jpg");
    assert_eq!(doc["image"]["viewable"], true, "{doc}");
    let hits = doc["lookalikes"]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["name"], "camera-small.jpg", "{hits:?}");
    assert!(hits.iter().all(|h| h["id"] != camera));
    // the list says the same of it
    let list = server.get("/api/images?limit=500").json();
    let listed = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == camera)
        .expect("camera listed");
    assert_eq!(listed["viewable"], true, "{listed}");

    for bad in ["/thumbs/999999", "/files/999999", "/api/images/999999"] {
        assert_eq!(server.get(bad).status, 404, "{bad}");
    }
    assert_eq!(server.get("/api/images/1?k=0").status, 400);
    assert_eq!(server.get("/api/images/1?k=100000").status, 400);
    // the framework's own refusals are JSON too
    for bad in [
        "/api/images?limit=abc",
        "/api/images?limit=-1",
        "/api/images/99999999999999999999",
    ] {
        let answer = server.get(bad);
        assert_eq!(answer.status, 400, "{bad}");
        assert!(
            answer.json()["error"].is_string(),
            "{bad}: {}",
            answer.text()
        );
    }
}

#[test]
fn paths_in_requests_never_reach_files() {
    let c = Collection::new();
    let secret = c.root.join("secret.txt");
    std::fs::write(&secret, "root:x:0:0 secret").unwrap();
    let reports = c.root.join("reports");
    std::fs::create_dir_all(reports.join("one/thumbs")).unwrap();
    std::fs::write(reports.join("one/index.html"), "<p>report</p>").unwrap();
    std::fs::write(reports.join("one/report.json"), "{}").unwrap();
    std::fs::write(reports.join("one/thumbs/a.jpg"), b"\xFF\xD8\xFF").unwrap();
    std::fs::write(reports.join("one/notes.txt"), "not served").unwrap();
    // A photo replaced by a symlink to the same bytes outside the collection.
    let outside = c.root.join("outside.jpg");
    std::fs::copy(c.photos.join("rocket.jpg"), &outside).unwrap();
    std::fs::remove_file(c.photos.join("rocket.jpg")).unwrap();
    std::os::unix::fs::symlink(&outside, c.photos.join("rocket.jpg")).unwrap();

    let server = c.serve(&["--reports", reports.to_str().unwrap()]);
    assert_eq!(server.get("/reports/0/index.html").status, 200);
    assert_eq!(server.get("/reports/0/thumbs/a.jpg").status, 200);
    let traversal = [
        "/files/../../secret.txt",
        "/files/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/files/..%2fsecret.txt",
        "//secret.txt",
        "/files/1/../../../secret.txt",
        "/thumbs/..%2f..%2fsecret.txt",
        "/reports/0/../../secret.txt",
        "/reports/0/%2e%2e/%2e%2e/secret.txt",
        "/reports/0/thumbs/..%2f..%2f..%2fsecret.txt",
        "/reports/0/notes.txt",
        "/reports/0/thumbs/.hidden.jpg",
        "/reports/1/index.html",
        "/reports/-1/index.html",
        "/files/-1",
        "/files/1e3",
        &format!("/files/{}", c.root.join("secret.txt").display()),
        "/api/images/1%00",
    ];
    for target in traversal {
        let a = server.get(target);
        assert!(a.status >= 400, "{target} answered {}", a.status);
        assert!(!a.text().contains("root:x"), "{target} leaked the file");
    }
    let rocket = image_ids(&server)
        .into_iter()
        .find(|i| i.1 == "rocket.jpg")
        .unwrap()
        .0;
    let a = server.get(&format!("/files/{rocket}"));
    assert_eq!(a.status, 403, "{}", a.text());
    // A file changed after indexing is not served as if it were the indexed one.
    let camera = image_ids(&server)
        .into_iter()
        .find(|i| i.1 == "camera.jpg")
        .unwrap()
        .0;
    std::fs::copy(
        sample("coffee", "original.jpg"),
        c.photos.join("camera.jpg"),
    )
    .unwrap();
    assert_eq!(server.get(&format!("/files/{camera}")).status, 409);
    let about = server.get(&format!("/api/images/{camera}"));
    assert_eq!(about.json()["image"]["viewable"], false, "{}", about.text());
    // a change of one byte keeps the size
    let coffee = image_ids(&server)
        .into_iter()
        .find(|i| i.1 == "coffee.jpg")
        .unwrap()
        .0;
    let path = c.photos.join("coffee.jpg");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let about = server.get(&format!("/api/images/{coffee}"));
    assert_eq!(about.json()["image"]["viewable"], false, "{}", about.text());
}

/// Bound to every address, the app still refuses a request by a name made to point at this
/// machine (DNS rebinding); addresses and names allowed with --allow-host are answered.
#[test]
fn bound_to_every_address_it_answers_addresses_and_allowed_names_only() {
    let c = Collection::new();
    let server = c.serve(&["--bind", "0.0.0.0", "--allow-host", "Photos.lan"]);
    let port = server.http.addr.port();
    let status = |host: String| {
        server
            .raw("GET", "/api/status", &[("host", host.as_str())], b"")
            .status
    };
    assert_eq!(status(format!("evil.example:{port}")), 421);
    assert_eq!(status(format!("127.0.0.1.nip.io:{port}")), 421);
    assert_eq!(status(format!("192.0.2.7:{port}")), 200);
    assert_eq!(status(format!("[2001:db8::7]:{port}")), 200);
    assert_eq!(status(format!("photos.lan:{port}")), 200);
    assert_eq!(status(format!("localhost:{port}")), 200);
    // the page's token does not leak to a rebound name either
    let page = server.raw(
        "GET",
        "/",
        &[("host", &format!("evil.example:{port}"))],
        b"",
    );
    assert_eq!(page.status, 421);
    assert!(!page.text().contains(&server.token));
}

#[test]
fn changes_need_the_token_from_this_site() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let json = ("content-type", "application/json");
    let body = br#"{"action":"trash","apply":false}"#;
    for headers in [
        vec![json],
        vec![
            json,
            ("x-lookalike-token", "0123456789abcdef0123456789abcdef"),
        ],
        vec![json, ("x-lookalike-token", "")],
    ] {
        let a = server.raw("POST", "/api/duplicates/action", &headers, body);
        assert_eq!(a.status, 403, "{headers:?}: {}", a.text());
        assert_eq!(server.raw("POST", "/api/undo", &headers, b"").status, 403);
        assert_eq!(server.raw("POST", "/api/query", &headers, b"x").status, 403);
    }
    let token = server.token.clone();
    let with_token = [json, ("x-lookalike-token", token.as_str())];
    let mut evil = with_token.to_vec();
    evil.push(("origin", "http://evil.example"));
    assert_eq!(server.raw("POST", "/api/undo", &evil, b"").status, 403);
    // Another host name pointing at loopback (DNS rebinding) gets nothing, not even pages.
    assert_eq!(
        server
            .raw("GET", "/api/status", &[("host", "evil.example:80")], b"")
            .status,
        421
    );
    assert_eq!(
        server
            .raw("GET", "/", &[("host", "evil.example")], b"")
            .status,
        421
    );
    // A form post (no JSON) is refused even with the token; changes are never GETs.
    let form = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-lookalike-token", token.as_str()),
    ];
    assert!(
        server
            .raw(
                "POST",
                "/api/duplicates/action",
                &form,
                b"action=trash&apply=true"
            )
            .status
            >= 400
    );
    assert_eq!(server.get("/api/undo").status, 405);
    let ok = server.raw("POST", "/api/undo", &with_token, b"");
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["undone"], Value::Null);
}

#[test]
fn bad_uploads_are_refused_and_good_ones_find_their_twin() {
    let c = Collection::new();
    let server = c.serve(&["--max-upload-mib", "1"]);
    let bin = "application/octet-stream";
    let empty = server.post("/api/query", bin, b"");
    assert_eq!(empty.status, 400, "{}", empty.text());
    let junk = server.post("/api/query", bin, b"this is not an image at all");
    assert_eq!(junk.status, 422, "{}", junk.text());
    assert!(
        junk.json()["error"]
            .as_str()
            .unwrap()
            .contains("not a recognised image")
    );
    let mut truncated = std::fs::read(sample("camera", "original.jpg")).unwrap();
    truncated.truncate(truncated.len() / 2);
    assert_eq!(server.post("/api/query", bin, &truncated).status, 422);
    let big = vec![0u8; 2 << 20];
    let too_big = server.post("/api/query", bin, &big);
    assert_eq!(too_big.status, 413);
    assert!(
        too_big.json()["error"].as_str().unwrap().contains("MiB"),
        "{}",
        too_big.text()
    );
    // A 20000 x 20000 PNG header: refused by the decoding limits, not allocated.
    let bomb_png = common::png_with_header(20_000, 20_000);
    assert_eq!(server.post("/api/query", bin, &bomb_png).status, 422);

    let blurred = std::fs::read(sample("coffee", "blur.jpg")).unwrap();
    let a = server.post("/api/query?k=4", bin, &blurred);
    assert_eq!(a.status, 200, "{}", a.text());
    let doc = a.json();
    assert_eq!(doc["indexed"], false);
    let first = doc["hits"][0]["name"].as_str().unwrap();
    assert!(first.starts_with("coffee"), "{doc}");
    // Nothing was written next to the photos.
    assert_eq!(std::fs::read_dir(&c.photos).unwrap().count(), 8);
}

/// The web app's move-to names each indexed folder's destination as `duplicates --move-to`
/// does, among all the index's folders: with a second folder named `photos` that holds no
/// copy, the copies of the first still go to `photos-` and 8 hex digits, as listed and moved.
#[test]
fn move_to_in_the_web_app_names_folders_as_the_command_line_does() {
    let c = Collection::new();
    let other = c.root.join("elsewhere/photos");
    std::fs::create_dir_all(&other).unwrap();
    image::RgbImage::from_fn(96, 64, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 3) as u8, 90])
    })
    .save(other.join("alone.png"))
    .unwrap();
    let status = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(["-q", "index"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let dest = c.root.join("dupes");
    let moves = |steps: &Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = steps
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let target = s["target"].as_str().unwrap().to_string();
                (s["path"].as_str().unwrap().to_string(), target)
            })
            .collect();
        v.sort();
        v
    };
    let cli = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(["-q", "duplicates", "--json", "--move-to"])
        .arg(&dest)
        .env("XDG_DATA_HOME", c.root.join("data"))
        .env("XDG_CACHE_HOME", c.root.join("cache"))
        .output()
        .unwrap();
    assert!(cli.status.success(), "{cli:?}");
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    let cli = moves(&cli["action"]["steps"]);
    assert!(!cli.is_empty());
    let server = c.serve(&[]);
    let (dry, apply) = dry_run_and_apply(
        &server,
        serde_json::json!({"action": "move-to", "target": dest}),
    );
    assert_eq!(moves(&dry["steps"]), cli, "{dry}");
    for (_, target) in &cli {
        let under = Path::new(target).strip_prefix(&dest).unwrap();
        let folder = under.components().next().unwrap().as_os_str();
        let folder = folder.to_str().unwrap();
        assert!(
            folder.starts_with("photos-") && folder.len() == 15,
            "{target}"
        );
    }
    assert_eq!(apply.status, 200, "{}", apply.text());
    assert_eq!(moves(&apply.json()["steps"]), cli);
    assert!(cli.iter().all(|(_, target)| Path::new(target).is_file()));
}

#[test]
fn duplicate_groups_are_reviewed_dry_run_first_and_undone() {
    let c = Collection::new();
    std::fs::copy(
        c.photos.join("camera.jpg"),
        c.photos.join("camera copy.jpg"),
    )
    .unwrap();
    c.index();
    let server = c.serve(&[]);
    let doc = server.get("/api/duplicates").json();
    let groups = doc["groups"].as_array().unwrap();
    let camera = groups
        .iter()
        .find(|g| {
            g["copies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["exact"] == true)
        })
        .expect("the exact copy forms a group");
    let keeper = camera["keep"]["id"].as_i64().unwrap();
    assert!(doc["shown"][keeper.to_string()]["name"].is_string());

    let dest = c.root.join("set aside");
    let request = |apply: bool, plan: &Value| {
        serde_json::json!({
            "action": "move-to", "target": dest, "apply": apply, "keepers": [keeper], "plan": plan,
        })
        .to_string()
    };
    let act = |apply: bool, plan: &Value| {
        server.post(
            "/api/duplicates/action",
            "application/json",
            request(apply, plan).as_bytes(),
        )
    };
    let dry = act(false, &Value::Null);
    assert_eq!(dry.status, 200, "{}", dry.text());
    let dry = dry.json();
    assert_eq!(dry["applied"], false);
    let steps = dry["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert!(steps.iter().all(|s| s["outcome"] == "would_do"));
    assert!(!dest.exists(), "a dry run changed nothing");
    let moved: Vec<PathBuf> = steps
        .iter()
        .map(|s| PathBuf::from(s["path"].as_str().unwrap()))
        .collect();
    let moved_bytes: u64 = moved
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();

    // The apply acts on the reviewed plan only: without it, or after the duplicates changed
    // (a new copy indexed since the dry run), it does nothing.
    let plan = dry["plan"].clone();
    assert!(plan.is_string(), "{dry}");
    assert_eq!(act(true, &Value::Null).status, 409);
    std::fs::copy(
        c.photos.join("camera.jpg"),
        c.photos.join("camera again.jpg"),
    )
    .unwrap();
    c.index();
    let stale = act(true, &plan);
    assert_eq!(stale.status, 409, "{}", stale.text());
    assert!(stale.text().contains("differs from the dry run"));
    assert!(!dest.exists(), "nothing was moved");
    std::fs::remove_file(c.photos.join("camera again.jpg")).unwrap();
    c.index();
    let done = act(true, &plan).json();
    assert!(
        done["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["outcome"] == "done"),
        "{done}"
    );
    assert!(moved.iter().all(|p| !p.exists()));
    // what the run freed: the bytes of the copies moved
    assert_eq!(done["freed_bytes"], moved_bytes, "{done}");

    // the plan is spent: applied again, it would redo the run
    assert_eq!(act(true, &plan).status, 409);
    let undone = server.post("/api/undo", "application/json", b"").json();
    assert_eq!(undone["undone"]["action"], "move");
    assert!(
        moved.iter().all(|p| p.exists()),
        "undo brought every copy back"
    );
    // and after the undo, the old plan would redo what was undone
    assert_eq!(act(true, &plan).status, 409);
    assert!(moved.iter().all(|p| p.exists()));

    // an apply that did nothing spends its plan too: its copies made read-only after the dry
    // run were skipped, and made writable again they are not moved by the same request
    c.index();
    let plan = act(false, &Value::Null).json()["plan"].clone();
    let set_readonly = |readonly: bool| {
        for p in &moved {
            let mut perms = std::fs::metadata(p).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(readonly);
            std::fs::set_permissions(p, perms).unwrap();
        }
    };
    set_readonly(true);
    let skipped = act(true, &plan).json();
    assert!(
        skipped["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["outcome"] == "skipped"),
        "{skipped}"
    );
    set_readonly(false);
    assert_eq!(act(true, &plan).status, 409);
    assert!(moved.iter().all(|p| p.exists()));

    // A move into the indexed folder itself is refused; delete needs its confirmation.
    let inside =
        serde_json::json!({"action": "move-to", "target": c.photos.join("x"), "apply": false});
    assert_eq!(
        server
            .post(
                "/api/duplicates/action",
                "application/json",
                inside.to_string().as_bytes()
            )
            .status,
        400
    );
    let delete = serde_json::json!({"action": "delete", "apply": true});
    assert_eq!(
        server
            .post(
                "/api/duplicates/action",
                "application/json",
                delete.to_string().as_bytes()
            )
            .status,
        400
    );
    assert!(moved.iter().all(|p| p.exists()));
}

/// A running server reads the index's profile at each request: after a change of profile its
/// pooled connections still see every duplicate signature (every profile signs a picture
/// alike), not none.
#[test]
fn duplicates_are_the_same_after_a_profile_change_under_a_running_server() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let groups = |server: &Server| {
        let doc = server.get("/api/duplicates").json();
        (
            doc["groups"].as_array().map(Vec::len),
            doc["without_signature"].as_u64(),
        )
    };
    let before = groups(&server);
    assert!(before.0.is_some_and(|n| n > 0), "{before:?}");
    reindex_with_profile(&c, "duplicates");
    assert_eq!(groups(&server), before);
}

/// An image whose stored vectors are not the profile's (a profile change not finished) has no
/// look-alikes, and the page says why rather than promising them in a moment.
#[test]
fn an_image_without_the_profiles_vectors_says_why_it_has_no_lookalikes() {
    let c = Collection::new();
    let id: i64 = {
        let db = rusqlite::Connection::open(c.index.join("lookalike.db")).unwrap();
        let id = db
            .query_row("SELECT MIN(id) FROM images", [], |r| r.get(0))
            .unwrap();
        db.execute(
            "UPDATE features SET params = 'another profile' WHERE image_id = ?1 AND family = 'color'",
            [id],
        )
        .unwrap();
        id
    };
    let server = c.serve(&[]);
    let doc = server.get(&format!("/api/images/{id}")).json();
    assert_eq!(doc["lookalikes"]["hits"].as_array().map(Vec::len), Some(0));
    let note = doc["lookalikes"]["note"].as_str().unwrap_or("");
    assert!(note.contains("no usable vector"), "{doc}");
}

#[test]
fn the_server_follows_an_index_run() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let before = image_ids(&server);
    // Loads the search space at the current state.
    assert_eq!(
        server.get(&format!("/api/images/{}", before[0].0)).status,
        200
    );
    std::fs::copy(
        sample("chelsea", "original.jpg"),
        c.photos.join("chelsea.jpg"),
    )
    .unwrap();
    std::fs::remove_file(c.photos.join("rocket-small.jpg")).unwrap();
    c.index();
    let after = image_ids(&server);
    assert_eq!(after.len(), 8);
    assert!(after.iter().any(|i| i.1 == "chelsea.jpg"));
    assert!(!after.iter().any(|i| i.1 == "rocket-small.jpg"));
    let chelsea = after.iter().find(|i| i.1 == "chelsea.jpg").unwrap().0;
    assert_eq!(server.get(&format!("/thumbs/{chelsea}")).status, 200);
    // The look-alikes come from the reloaded search space within a few seconds.
    let start = Instant::now();
    loop {
        let doc = server.get(&format!("/api/images/{chelsea}?k=7")).json();
        let hits = doc["lookalikes"]["hits"].as_array().unwrap().clone();
        if !hits.is_empty() {
            assert!(hits.iter().all(|h| h["name"] != "rocket-small.jpg"));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never reloaded: {doc}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A space the server loaded between a run's last change and the dump it then records (the
/// data version moved, the graph not yet written) is loaded again from that dump: searches
/// said "index changed since the HNSW dump was written" until the server stopped, while
/// `lookalike query` read the dump.
#[test]
fn a_dump_recorded_after_the_server_loaded_its_space_is_loaded() {
    let c = Collection::new();
    // settled stamps: the runs below change nothing but the graph
    std::thread::sleep(Duration::from_millis(2100));
    c.index();
    let server = c.serve(&[]);
    let id = image_ids(&server)[0].0;
    let lookalikes = |server: &Server| server.get(&format!("/api/images/{id}?k=3")).json();
    let fresh = lookalikes(&server);
    assert!(fresh["lookalikes"]["note"].is_null(), "{fresh}");
    // the data version moves as a run's writes move it, before its graph is written
    rusqlite::Connection::open(c.index.join("lookalike.db"))
        .unwrap()
        .execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'data_version'",
            [],
        )
        .unwrap();
    let stale = "index changed since the HNSW dump was written";
    let start = Instant::now();
    loop {
        let doc = lookalikes(&server);
        if doc["lookalikes"]["note"]
            .as_str()
            .is_some_and(|n| n.contains(stale))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never reloaded: {doc}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // the run's graph: recorded at the same data version
    c.index();
    let start = Instant::now();
    loop {
        let doc = lookalikes(&server);
        if doc["lookalikes"]["note"].is_null() {
            assert_eq!(
                doc["lookalikes"]["hits"], fresh["lookalikes"]["hits"],
                "{doc}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the recorded dump is never loaded: {doc}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An index with the `duplicates` profile ranks nothing, but its images still have their pages.
#[test]
fn an_index_that_ranks_nothing_still_describes_its_images() {
    let c = Collection::new();
    reindex_with_profile(&c, "duplicates");
    let server = c.serve(&[]);
    let (id, name) = image_ids(&server).into_iter().next().unwrap();
    let answer = server.get(&format!("/api/images/{id}"));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let doc = answer.json();
    assert_eq!(doc["image"]["name"].as_str(), Some(name.as_str()), "{doc}");
    assert_eq!(doc["lookalikes"]["hits"].as_array().map(Vec::len), Some(0));
    assert!(
        doc["lookalikes"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("ranks nothing")),
        "{doc}"
    );
}

/// An index deleted and made again in the same folder, under a running server, is the one the
/// server answers from: its pooled connections and search space were of the deleted file.
#[test]
fn an_index_made_again_in_its_folder_is_the_one_served() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let before = image_ids(&server);
    assert_eq!(before.len(), 8);
    let bin = "application/octet-stream";
    let camera = std::fs::read(sample("camera", "original.jpg")).unwrap();
    assert_eq!(server.post("/api/query", bin, &camera).status, 200);
    std::fs::remove_dir_all(&c.index).unwrap();
    let other = c.root.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let others = ["chelsea", "horse", "grass", "gravel"];
    for p in others {
        std::fs::copy(sample(p, "original.jpg"), other.join(format!("{p}.jpg"))).unwrap();
    }
    let status = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(["-q", "index"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let names: Vec<String> = image_ids(&server).into_iter().map(|i| i.1).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| others.iter().any(|p| *n == format!("{p}.jpg"))),
        "{names:?}"
    );
    let horse = std::fs::read(sample("horse", "original.jpg")).unwrap();
    let found = server.post("/api/query", bin, &horse).json();
    assert_eq!(found["hits"][0]["name"], "horse.jpg", "{found}");
}

/// A dry run then its apply, with `fields` added to both requests.
fn dry_run_and_apply(server: &Server, fields: Value) -> (Value, common::Answer) {
    let mut request = serde_json::json!({"action": "trash", "apply": false});
    request
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let dry = server.post(
        "/api/duplicates/action",
        "application/json",
        request.to_string().as_bytes(),
    );
    assert_eq!(dry.status, 200, "{}", dry.text());
    let dry = dry.json();
    request["apply"] = Value::Bool(true);
    request["plan"] = dry["plan"].clone();
    let apply = server.post(
        "/api/duplicates/action",
        "application/json",
        request.to_string().as_bytes(),
    );
    (dry, apply)
}

#[test]
fn a_keep_pattern_that_matches_no_copy_is_refused_as_on_the_command_line() {
    let c = Collection::new();
    let copy = c.photos.join("camera copy.jpg");
    std::fs::copy(c.photos.join("camera.jpg"), &copy).unwrap();
    c.index();
    let server = c.serve(&[]);
    let keep = "match:**/no-such-folder/**";
    let (dry, apply) = dry_run_and_apply(&server, serde_json::json!({ "keep": keep }));
    let said = "no copy matches in any of the";
    assert!(
        dry["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w.as_str().unwrap().contains(said))),
        "{dry}"
    );
    assert_eq!(apply.status, 400, "{}", apply.text());
    let web = apply.json()["error"].as_str().unwrap().to_string();
    assert!(copy.exists(), "nothing was trashed");
    // the command line refuses the same pattern in the same words
    let cli = |apply: bool| {
        let mut cmd = common::lookalike();
        cmd.arg("--index-dir")
            .arg(&c.index)
            .args(["duplicates", "--trash", "--keep", keep])
            .env("XDG_DATA_HOME", c.root.join("data"))
            .env("XDG_CACHE_HOME", c.root.join("cache"));
        if apply {
            cmd.arg("--apply");
        }
        cmd.output().unwrap()
    };
    assert!(cli(false).status.success());
    let out = cli(true);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    let words = web.split_once(' ').unwrap().1;
    assert!(
        web.starts_with("keep ") && text.contains(words),
        "{web} | {text}"
    );
    assert!(copy.exists());
}

#[test]
fn json_bodies_have_their_own_limit_and_say_so() {
    let c = Collection::new();
    let server = c.serve(&["--max-upload-mib", "1"]);
    // a list of keepers of 3 MB is a request like any other
    let mut keepers = "1,".repeat(1_500_000);
    keepers.pop();
    let body = format!(r#"{{"action":"trash","keepers":[{keepers}]}}"#);
    let a = server.post(
        "/api/duplicates/action",
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    // over the limit, the answer says what was too large
    let body = format!(
        r#"{{"action":"trash","target":"{}"}}"#,
        "x".repeat(17 << 20)
    );
    let a = server.post(
        "/api/duplicates/action",
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(a.status, 413, "{}", a.text());
    let why = a.json()["error"].as_str().unwrap().to_string();
    assert!(
        why.contains("request body is over 16 MiB") && !why.contains("upload"),
        "{why}"
    );
    // an upload over its own limit still says so
    let a = server.post(
        "/api/query",
        "application/octet-stream",
        &vec![0u8; 2 << 20],
    );
    assert_eq!(a.status, 413);
    assert!(a.text().contains("--max-upload-mib"), "{}", a.text());
}

#[test]
fn unknown_fields_and_parameters_are_refused_by_name() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let a = server.post(
        "/api/duplicates/action",
        "application/json",
        br#"{"action":"trash","aply":true}"#,
    );
    assert_eq!(a.status, 400, "{}", a.text());
    let why = a.json()["error"].as_str().unwrap().to_string();
    assert!(why.contains("unknown field `aply`"), "{why}");
    // a field of the wrong type is a client error too, said plainly
    let a = server.post(
        "/api/duplicates/action",
        "application/json",
        br#"{"action":"trash","apply":"yes"}"#,
    );
    assert_eq!(a.status, 400, "{}", a.text());
    for target in [
        "/api/images?limt=5",
        "/api/images/1?kk=3",
        "/api/duplicates?kep=newest",
    ] {
        let a = server.get(target);
        assert_eq!(a.status, 400, "{target}: {}", a.text());
        let name = target.split_once('?').unwrap().1.split('=').next().unwrap();
        assert!(
            a.json()["error"].as_str().unwrap().contains(name),
            "{target}: {}",
            a.text()
        );
    }
    // a deletion confirmed for another action is refused: it confirms nothing
    let a = server.post(
        "/api/duplicates/action",
        "application/json",
        br#"{"action":"trash","apply":false,"confirm_delete":true}"#,
    );
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.text().contains("confirm_delete"), "{}", a.text());
}

/// Every endpoint, those that take no parameter too, refuses a query parameter or body field
/// it does not know, naming it (addresses outside `/api/` in an HTML page); a `target` goes
/// with `move-to` only.
#[test]
fn every_endpoint_refuses_what_it_does_not_know_by_name() {
    let c = Collection::new();
    let reports = c.root.join("reports");
    std::fs::create_dir_all(reports.join("one")).unwrap();
    std::fs::write(reports.join("one/index.html"), "<p>report</p>").unwrap();
    std::fs::write(reports.join("one/report.json"), "{}").unwrap();
    let server = c.serve(&["--reports", reports.to_str().unwrap()]);
    let id = image_ids(&server)[0].0;
    // in JSON under /api/, elsewhere in an HTML page
    let named = |what: &str, a: &common::Answer, name: &str| {
        assert_eq!(a.status, 400, "{what}: {}", a.text());
        if what.starts_with('/') && !what.starts_with("/api/") {
            let page = a.text();
            assert!(
                page.contains(&format!("<code>{name}</code>")),
                "{what}: {page}"
            );
            return;
        }
        let error = a.json()["error"].as_str().unwrap_or("").to_string();
        assert!(error.contains(&format!("`{name}`")), "{what}: {error}");
    };
    for target in [
        "/?foo=1".to_string(),
        "/app.js?foo=1".to_string(),
        "/app.css?foo=1".to_string(),
        "/api/status?foo=bar".to_string(),
        "/api/folders?foo=5".to_string(),
        "/api/reports?foo=1".to_string(),
        format!("/thumbs/{id}?foo=1"),
        format!("/files/{id}?foo=1"),
        "/reports/0/index.html?foo=1".to_string(),
    ] {
        named(&target, &server.get(&target), "foo");
    }
    // a parameter of another endpoint is unknown here
    named(
        "folders?limit",
        &server.get("/api/folders?limit=5"),
        "limit",
    );
    for target in ["/api/undo?foo=1", "/api/duplicates/action?foo=1"] {
        let a = server.post(target, "application/json", br#"{"action":"trash"}"#);
        named(target, &a, "foo");
    }
    named(
        "query?foo",
        &server.post(
            "/api/query?foo=1",
            "application/octet-stream",
            &std::fs::read(c.photos.join("camera.jpg")).unwrap(),
        ),
        "foo",
    );
    named(
        "undo body",
        &server.post("/api/undo", "application/json", br#"{"x":1}"#),
        "x",
    );
    let a = server.post(
        "/api/duplicates/action",
        "application/json",
        br#"{"action":"trash","target":"/tmp/x"}"#,
    );
    named("target with trash", &a, "target");
    assert!(a.text().contains("move-to"), "{}", a.text());
    // what the endpoints know is still taken: no body or an empty one to undo
    assert_eq!(
        server.post("/api/undo", "application/json", b"").status,
        200
    );
    assert_eq!(
        server.post("/api/undo", "application/json", b"{}").status,
        200
    );
    let a = server.post(
        "/api/duplicates/action",
        "application/json",
        br#"{"action":"trash","target":null}"#,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(server.get(&format!("/thumbs/{id}")).status, 200);
}

/// A search by example on an index of no images is refused as `query` refuses it, saying how
/// to fill the index.
#[test]
fn a_search_by_example_on_an_empty_index_is_refused_saying_so() {
    let c = Collection::new();
    let running = c.serve(&[]);
    let example = std::fs::read(sample("rocket", "blur.jpg")).unwrap();
    let a = running.post("/api/query", "application/octet-stream", &example);
    assert_eq!(a.status, 200, "{}", a.text());
    let status = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(["-q", "forget"])
        .arg(&c.photos)
        .status()
        .unwrap();
    assert!(status.success());
    // emptied under a running server, and empty when the server starts
    let started = c.serve(&[]);
    for server in [&running, &started] {
        let a = server.post("/api/query", "application/octet-stream", &example);
        assert_eq!(a.status, 409, "{}", a.text());
        let error = a.json()["error"].as_str().unwrap_or("").to_string();
        assert!(
            error.contains("holds no images yet") && error.contains(" index DIR`"),
            "{error}"
        );
    }
}

/// An indexed file replaced by a folder is gone: 404 saying what stands there now, for the
/// file and for a thumbnail made from it.
#[test]
fn a_file_replaced_by_a_folder_is_gone_not_forbidden() {
    let c = Collection::new();
    index_without_thumbnails(&c);
    let server = c.serve(&[]);
    let ids = image_ids(&server);
    let camera = ids.iter().find(|i| i.1 == "camera.jpg").unwrap().0;
    std::fs::remove_file(c.photos.join("camera.jpg")).unwrap();
    std::fs::create_dir(c.photos.join("camera.jpg")).unwrap();
    for endpoint in ["files", "thumbs"] {
        let a = server.get(&format!("/{endpoint}/{camera}"));
        let error = a.text();
        assert_eq!(a.status, 404, "{endpoint}: {error}");
        assert!(
            error.contains("camera.jpg")
                && error.contains("a folder now stands")
                && error.contains(&refresh_command(&c.index)),
            "{endpoint}: {error}"
        );
    }
    // the image's page says why it offers no original
    let doc = server.get(&format!("/api/images/{camera}")).json();
    assert_eq!(doc["image"]["viewable"], false, "{doc}");
    let why = doc["image"]["why_not_viewable"].as_str().unwrap_or("");
    assert!(why.contains("a folder now stands"), "{doc}");
}

/// An address with a trailing slash or an extra path segment is refused with the app's own
/// answer: the HTML refusal page (linking to the address without the slash) for addresses a
/// browser opens, JSON under `/api/`; never an empty body.
#[test]
fn addresses_with_a_trailing_slash_or_an_extra_segment_are_refused_in_the_apps_words() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let id = image_ids(&server)[0].0;
    for target in [
        format!("/files/{id}/"),
        format!("/files/{id}/x"),
        format!("/thumbs/{id}/"),
        "/app.js/".to_string(),
        "/nowhere".to_string(),
    ] {
        let a = server.get(&target);
        assert_eq!(a.status, 404, "{target}");
        assert!(
            a.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{target}: {:?}",
            a.header("content-type")
        );
        let text = a.text();
        assert!(
            text.contains("Address refused") && text.contains("start page"),
            "{target}: {text}"
        );
        if target.ends_with('/') {
            let href = format!("href=\"{}\"", target.trim_end_matches('/'));
            assert!(text.contains(&href), "{target}: {text}");
        }
    }
    for target in [
        format!("/api/images/{id}/"),
        "/api/status/".to_string(),
        "/api/images/1/x".to_string(),
    ] {
        let a = server.get(&target);
        assert_eq!(a.status, 404, "{target}");
        let error = a.json()["error"].as_str().unwrap_or("").to_string();
        assert!(error.contains("no endpoint at"), "{target}: {error}");
    }
}

/// The page of an image whose file is gone says so once, in `why_not_viewable`: the image is
/// never listed among its own look-alikes, as a hit or as one left out.
#[test]
fn a_gone_image_is_not_left_out_of_its_own_lookalikes() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let ids = image_ids(&server);
    let camera = ids.iter().find(|i| i.1 == "camera.jpg").unwrap().0;
    let rocket = ids.iter().find(|i| i.1 == "rocket.jpg").unwrap().0;
    std::fs::remove_file(c.photos.join("camera.jpg")).unwrap();
    let doc = server.get(&format!("/api/images/{camera}?k=3")).json();
    let own = c.photos.join("camera.jpg");
    let listed = |key: &str| -> Vec<String> {
        doc["lookalikes"][key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| p.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        !listed("stale").contains(&own.display().to_string()),
        "{doc}"
    );
    assert!(listed("stale").is_empty(), "{doc}");
    let hits = doc["lookalikes"]["hits"].as_array().unwrap();
    assert!(hits.iter().all(|h| h["id"] != camera), "{doc}");
    assert_eq!(doc["image"]["viewable"], false, "{doc}");
    let why = doc["image"]["why_not_viewable"].as_str().unwrap_or("");
    assert!(why.contains("gone"), "{doc}");
    // another image's page still lists the gone one as left out
    let other = server.get(&format!("/api/images/{rocket}?k=7")).json();
    let stale: Vec<&str> = other["lookalikes"]["stale"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(stale, vec![own.to_str().unwrap()], "{other}");
}

/// A reports folder given twice, however spelled, or given with one of its reports, lists
/// each report once.
#[test]
fn the_same_reports_folder_given_twice_is_listed_once() {
    let c = Collection::new();
    let reports = c.root.join("reports");
    for name in ["one", "two"] {
        std::fs::create_dir_all(reports.join(name)).unwrap();
        std::fs::write(reports.join(name).join("index.html"), "<p>report</p>").unwrap();
        std::fs::write(reports.join(name).join("report.json"), "{}").unwrap();
    }
    let plain = reports.to_str().unwrap().to_string();
    let slashed = format!("{plain}/");
    let dotted = format!("{plain}/./../reports");
    let one = reports.join("one");
    let server = c.serve(&[
        "--reports",
        &plain,
        "--reports",
        &slashed,
        "--reports",
        &dotted,
        "--reports",
        one.to_str().unwrap(),
    ]);
    let list = server.get("/api/reports").json();
    let names: Vec<&str> = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two"], "{list}");
}

/// `lookalike ARGS` (a `serve`) that must refuse to start: its exit code and what it said on
/// stderr and stdout. One that starts instead is killed and fails the test within 20 s.
fn refused_start_saying(c: &Collection, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let what = format!("serve {args:?}, which should have refused to start,");
    common::exit_within(&mut child, Duration::from_secs(20), &what);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `lookalike -q serve ARGS` that must refuse to start: its exit code and what it said.
fn refused_start(c: &Collection, args: &[&str]) -> (Option<i32>, String) {
    let mut quiet = vec!["-q", "serve"];
    quiet.extend_from_slice(args);
    let (code, err, _) = refused_start_saying(c, &quiet);
    (code, err)
}

#[test]
fn a_reports_folder_that_is_missing_is_refused_at_start() {
    let c = Collection::new();
    let missing = c.root.join("no reports here");
    let (code, err) = refused_start(&c, &["--port", "0", "--reports", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no reports here") && err.contains("does not exist"),
        "{err}"
    );
    let file = c.photos.join("camera.jpg");
    let (code, err) = refused_start(&c, &["--port", "0", "--reports", file.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not a folder"), "{err}");
}

#[test]
fn an_address_or_port_that_cannot_be_bound_gets_advice_for_its_cause() {
    let c = Collection::new();
    // an address of the documentation range, not this machine's
    let (code, err) = refused_start(&c, &["--bind", "192.0.2.1", "--port", "0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("192.0.2.1 is not an address of this machine") && !err.contains("--port"),
        "{err}"
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, err) = refused_start(&c, &["--port", &port]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("choose another --port"), "{err}");
}

/// Runs as user nobody (when the tests run as root and `setpriv` can switch), else `None`.
fn as_nobody() -> Option<std::process::Command> {
    let uid = std::process::Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("skipped: not root, so cannot run as another user");
        return None;
    }
    let switch = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let works = std::process::Command::new("setpriv")
        .args(switch)
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        eprintln!("skipped: setpriv cannot switch to user nobody here");
        return None;
    }
    let mut c = std::process::Command::new("setpriv");
    c.args(switch)
        .arg("--")
        .arg(assert_cmd::cargo::cargo_bin("lookalike"))
        .env_remove("LOOKALIKE_INDEX");
    Some(c)
}

#[cfg(unix)]
#[test]
fn a_dry_run_warns_when_the_index_folder_cannot_keep_the_journal() {
    let c = Collection::new();
    std::fs::copy(
        c.photos.join("camera.jpg"),
        c.photos.join("camera copy.jpg"),
    )
    .unwrap();
    c.index();
    let Some(nobody) = as_nobody() else {
        return;
    };
    // everything readable by all, writable by its owner (root) only
    common::readable_by_all_writable_by_owner(&c.root);
    // but a desktop trash this user can write: only the journal is out of reach
    let data = c.root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let server = c.serve_through(nobody, &[]);
    let (dry, apply) = dry_run_and_apply(&server, serde_json::json!({}));
    let warnings = dry["warnings"].to_string();
    assert!(
        warnings.contains("cannot be written by this user")
            && warnings.contains("applying will fail")
            && warnings.contains(&c.index.display().to_string()),
        "{dry}"
    );
    assert!(apply.status >= 400, "{}", apply.text());
    // a folder it can write: no warning
    drop(server);
    let server = c.serve(&[]);
    let dry = server.post(
        "/api/duplicates/action",
        "application/json",
        br#"{"action":"trash"}"#,
    );
    assert_eq!(
        dry.json()["warnings"],
        serde_json::json!([]),
        "{}",
        dry.text()
    );
}

/// An index run whose process was killed (no outcome, no writer) is told `killed`, with the
/// command that resumes it, as `lookalike status` tells it; the page words it from `state`.
#[test]
fn a_killed_index_run_is_told_killed_with_the_command_that_resumes_it() {
    let c = Collection::new();
    let collection = lookalike::collection::Collection::at(&c.index);
    collection
        .open_store()
        .unwrap()
        .begin_run(std::slice::from_ref(&c.photos))
        .unwrap();
    let server = c.serve(&[]);
    let status = server.get("/api/status").json();
    let run = &status["last_run"];
    assert_eq!(run["state"], "killed", "{status}");
    assert_eq!(run["outcome"], Value::Null, "{status}");
    let resume = run["resume"].as_str().unwrap_or_else(|| panic!("{status}"));
    assert!(
        resume.starts_with("lookalike --index-dir ")
            && resume.contains(" index ")
            && resume.ends_with(&c.photos.display().to_string()),
        "{resume}"
    );
}

/// The collection indexed anew with the duplicates profile, which stores no thumbnails:
/// `/thumbs` makes them from the files.
fn index_without_thumbnails(c: &Collection) {
    std::fs::remove_dir_all(&c.index).unwrap();
    let indexed = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(["-q", "index", "--profile", "duplicates"])
        .arg(&c.photos)
        .status()
        .unwrap();
    assert!(indexed.success());
}

/// Files the server may not read answer 403 and say so, for the file and its thumbnail: a
/// file of mode 000, and one in a folder of mode 000; a file really gone answers 404.
#[cfg(unix)]
#[test]
fn files_the_server_may_not_read_are_forbidden_not_gone() {
    use std::os::unix::fs::PermissionsExt;
    let c = Collection::new();
    let locked = c.photos.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::copy(sample("coffee", "original.jpg"), locked.join("inside.jpg")).unwrap();
    index_without_thumbnails(&c);
    let Some(nobody) = as_nobody() else {
        return;
    };
    common::readable_by_all_writable_by_owner(&c.root);
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode(&c.photos.join("camera.jpg"), 0o000);
    mode(&locked, 0o000);
    std::fs::remove_file(c.photos.join("rocket.jpg")).unwrap();
    let server = c.serve_through(nobody, &[]);
    let ids = image_ids(&server);
    let id = |name: &str| ids.iter().find(|i| i.1 == name).unwrap().0;
    for name in ["camera.jpg", "locked/inside.jpg"] {
        for endpoint in ["files", "thumbs"] {
            let answer = server.get(&format!("/{endpoint}/{}", id(name)));
            let error = answer.text();
            assert_eq!(answer.status, 403, "{endpoint} {name}: {error}");
            assert!(
                error.contains("permission denied")
                    && error.contains("read access")
                    && !error.contains(" index`"),
                "{endpoint} {name}: {error}"
            );
        }
    }
    for endpoint in ["files", "thumbs"] {
        let answer = server.get(&format!("/{endpoint}/{}", id("rocket.jpg")));
        assert_eq!(answer.status, 404, "{endpoint}: {}", answer.text());
        assert!(
            answer.text().contains(&refresh_command(&c.index)),
            "{}",
            answer.text()
        );
    }
    mode(&locked, 0o755);
}

/// A page past the end is an empty page with the total; a negative page is refused naming
/// the parameter and its range.
#[test]
fn a_page_past_the_end_has_the_total_and_a_negative_one_is_refused_by_name() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let past = server.get("/api/images?offset=600&limit=60").json();
    assert_eq!(past["total"], 8, "{past}");
    assert_eq!(past["images"], serde_json::json!([]), "{past}");
    for (bad, name) in [("offset=-60", "offset=-60"), ("limit=-1", "limit=-1")] {
        let answer = server.get(&format!("/api/images?{bad}"));
        assert_eq!(answer.status, 400, "{bad}");
        let error = answer.json()["error"].as_str().unwrap_or("").to_string();
        assert!(
            error.starts_with(name) && error.contains("a whole number from 0"),
            "{bad}: {error}"
        );
    }
}

/// A tracked folder inside another (`index photos photos/trip`) holds the images below it,
/// although each file is stored once, under the outermost folder: its count on the folder
/// list and the Status page, and its folder view, are those images (`photos/trip2`, not
/// tracked, is not part of it), and the total counts each image once.
#[cfg(unix)]
#[test]
fn a_tracked_folder_inside_another_lists_and_counts_the_images_below_it() {
    use std::os::unix::ffi::OsStrExt;
    let c = Collection::new();
    let trip = c.photos.join("trip");
    let trip2 = c.photos.join("trip2");
    std::fs::create_dir_all(&trip).unwrap();
    std::fs::create_dir_all(&trip2).unwrap();
    // a name that is not UTF-8: paths are compared by their bytes
    let odd = trip.join(std::ffi::OsStr::from_bytes(b"camera\xff.jpg"));
    std::fs::rename(c.photos.join("astronaut.jpg"), trip.join("astronaut.jpg")).unwrap();
    std::fs::rename(c.photos.join("camera.jpg"), &odd).unwrap();
    std::fs::rename(c.photos.join("coffee.jpg"), trip2.join("coffee.jpg")).unwrap();
    std::fs::rename(c.photos.join("rocket.jpg"), trip2.join("rocket.jpg")).unwrap();
    let indexed = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(["-q", "index"])
        .arg(&c.photos)
        .arg(&trip)
        .status()
        .unwrap();
    assert!(indexed.success());
    let server = c.serve(&[]);

    let listed = server.get("/api/folders").json();
    let counts: Vec<(String, u64)> = listed["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["images"].as_u64().unwrap(),
            )
        })
        .collect();
    let shown = |p: &Path| p.to_string_lossy().into_owned();
    let want = vec![(shown(&c.photos), 8), (shown(&trip), 2)];
    assert_eq!(
        (listed["images"].as_u64(), &counts),
        (Some(8), &want),
        "{listed}"
    );
    let status = server.get("/api/status").json();
    assert_eq!(status["images"], 8, "{status}");
    assert_eq!(status["folders"], listed["folders"], "{status}");

    let id_of = |path: &Path| {
        listed["folders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == shown(path).as_str())
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let paths = |target: &str| {
        let page = server.get(target).json();
        let mut paths: Vec<String> = page["images"]
            .as_array()
            .unwrap_or_else(|| panic!("{target}: {page}"))
            .iter()
            .map(|i| i["path"].as_str().unwrap().to_string())
            .collect();
        paths.sort();
        (page["total"].as_u64(), paths)
    };
    let trip_id = id_of(&trip);
    let in_trip = vec![shown(&trip.join("astronaut.jpg")), shown(&odd)];
    assert_eq!(
        paths(&format!("/api/images?folder={trip_id}")),
        (Some(2), in_trip.clone())
    );
    // pages of the folder view split those images
    let first = paths(&format!("/api/images?folder={trip_id}&limit=1"));
    let second = paths(&format!("/api/images?folder={trip_id}&limit=1&offset=1"));
    assert_eq!((first.0, second.0), (Some(2), Some(2)));
    let mut both = [first.1, second.1].concat();
    both.sort();
    assert_eq!(both, in_trip);
    let outer = paths(&format!("/api/images?folder={}", id_of(&c.photos)));
    assert_eq!((outer.0, outer.1.len()), (Some(8), 8), "{outer:?}");
    assert!(outer.1.contains(&shown(&trip2.join("coffee.jpg"))));
}

/// In the view of a tracked folder inside another, an image stored under the outer one is
/// named relative to the folder viewed; the outer folder's view and the all-images view name
/// it relative to the outer one.
#[test]
fn a_tracked_folder_inside_another_names_its_images_relative_to_it() {
    use std::os::unix::ffi::OsStrExt;
    let c = Collection::new();
    let trip = c.photos.join("trip");
    std::fs::create_dir_all(&trip).unwrap();
    std::fs::rename(c.photos.join("astronaut.jpg"), trip.join("astronaut.jpg")).unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"camera\xff.jpg");
    std::fs::rename(c.photos.join("camera.jpg"), trip.join(odd)).unwrap();
    let indexed = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(["-q", "index"])
        .arg(&c.photos)
        .arg(&trip)
        .status()
        .unwrap();
    assert!(indexed.success());
    let server = c.serve(&[]);
    let folders = server.get("/api/folders").json();
    let id_of = |path: &Path| {
        folders["folders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path.to_string_lossy().as_ref())
            .unwrap_or_else(|| panic!("{folders}"))["id"]
            .as_i64()
            .unwrap()
    };
    let names = |target: &str| {
        let page = server.get(target).json();
        let mut names: Vec<(String, Value)> = page["images"]
            .as_array()
            .unwrap_or_else(|| panic!("{target}: {page}"))
            .iter()
            .filter(|i| i["path"].as_str().unwrap().contains("/trip/"))
            .map(|i| {
                (
                    i["name"].as_str().unwrap().to_string(),
                    i["name_bytes"].clone(),
                )
            })
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names
    };
    let bytes = |b: &[u8]| serde_json::json!(b);
    assert_eq!(
        names(&format!("/api/images?folder={}", id_of(&trip))),
        vec![
            ("astronaut.jpg".to_string(), Value::Null),
            ("camera\u{fffd}.jpg".to_string(), bytes(b"camera\xff.jpg")),
        ]
    );
    let outer = vec![
        ("trip/astronaut.jpg".to_string(), Value::Null),
        (
            "trip/camera\u{fffd}.jpg".to_string(),
            bytes(b"trip/camera\xff.jpg"),
        ),
    ];
    assert_eq!(
        names(&format!("/api/images?folder={}", id_of(&c.photos))),
        outer
    );
    assert_eq!(names("/api/images"), outer);
}

/// Request text a refusal quotes (an id, a parameter's name or value) has its control,
/// invisible and bidi characters escaped as names are, and a bad id or folder is refused in
/// the app's words, not the parser's.
#[test]
fn refusals_escape_the_request_text_they_quote_and_speak_the_apps_words() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let page = |target: &str| {
        let a = server.get(target);
        assert_eq!(a.status, 400, "{target}: {}", a.text());
        let text = a.text();
        assert!(
            !text.contains(['\0', '\u{202e}']) && !text.contains("Invalid URL"),
            "{target}: {text:?}"
        );
        text
    };
    let nul = page("/files/1%00");
    assert!(nul.contains(r"`1\u{0}` is not an image id"), "{nul}");
    let bidi = page("/thumbs/1%e2%80%ae%0a");
    assert!(bidi.contains(r"`1\u{202e}\n` is not an image id"), "{bidi}");
    let name = page("/?%e2%80%aelmth.exe=1");
    assert!(name.contains(r"<code>\u{202e}lmth.exe</code>"), "{name}");
    let report = page("/reports/x%0a/index.html");
    assert!(report.contains(r"`x\n` is not a report number"), "{report}");
    let error = |target: &str| {
        let a = server.get(target);
        assert_eq!(a.status, 400, "{target}: {}", a.text());
        a.json()["error"].as_str().unwrap().to_string()
    };
    assert_eq!(
        error("/api/images/1%e2%80%ae%0a"),
        r"`1\u{202e}\n` is not an image id: ids are whole numbers (/api/images lists them)"
    );
    assert_eq!(
        error("/api/images?folder=abc"),
        "folder=abc: not a folder id: folder ids are whole numbers (/api/folders lists them)"
    );
    assert_eq!(
        error("/api/images?limit=%e2%80%ae9"),
        r"limit=\u{202e}9: give a whole number from 0 (images a page lists, at most 500)"
    );
    let unknown = error("/api/status?%e2%80%aex%1b=1");
    assert!(
        unknown.contains(r"unknown query parameter `\u{202e}x\u{1b}`"),
        "{unknown}"
    );
}

/// A thumbnail the server's memory budget is too small to make (of an image indexed under
/// a larger one) says which flag to raise, once.
#[test]
fn a_thumbnail_over_the_servers_memory_budget_names_the_flag_to_raise_once() {
    let c = Collection::new();
    image::GrayImage::from_fn(4000, 4000, |x, y| image::Luma([((x + y) / 32) as u8]))
        .save(c.photos.join("large.png"))
        .unwrap();
    index_without_thumbnails(&c);
    let server = c.serve(&["--memory-budget", "64"]);
    let ids = image_ids(&server);
    let large = ids.iter().find(|i| i.1 == "large.png").unwrap().0;
    let answer = server.get(&format!("/thumbs/{large}"));
    let error = answer.text();
    assert_eq!(answer.status, 422, "{error}");
    assert!(
        error.contains("memory budget of 64 MiB")
            && error.contains(&format!(
                "`lookalike --index-dir {} serve --memory-budget MIB`",
                c.index.display()
            )),
        "{error}"
    );
    assert!(
        error.matches("--memory-budget").count() == 1 && error.matches("64 MiB").count() == 1,
        "{error}"
    );
    // the other images' thumbnails are made under it
    let small = ids.iter().find(|i| i.1 == "camera.jpg").unwrap().0;
    assert_eq!(server.get(&format!("/thumbs/{small}")).status, 200);
}

/// A file the server may not read is not `viewable`, even with its stamp as indexed (its mode
/// was 000 when it was indexed): the page says why instead of offering the original, which
/// `/files` would refuse with 403.
#[cfg(unix)]
#[test]
fn a_file_the_server_may_not_open_is_not_viewable_even_as_indexed() {
    use std::os::unix::fs::PermissionsExt;
    let c = Collection::new();
    let Some(nobody) = as_nobody() else {
        return;
    };
    common::readable_by_all_writable_by_owner(&c.root);
    let locked = c.photos.join("camera.jpg");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // indexed at mode 000 (root reads it): its stamp is the one recorded
    c.index();
    common::readable_by_all_writable_by_owner(&c.index);
    let server = c.serve_through(nobody, &[]);
    let ids = image_ids(&server);
    let id = ids.iter().find(|i| i.1 == "camera.jpg").unwrap().0;
    let listed = server.get("/api/images?limit=500").json();
    let shown = listed["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap()
        .clone();
    let page = server.get(&format!("/api/images/{id}?k=1")).json();
    for image in [&shown, &page["image"]] {
        assert_eq!(image["viewable"], false, "{image}");
        let why = image["why_not_viewable"].as_str().unwrap_or("");
        assert!(why.contains("permission denied"), "{image}");
    }
    assert_eq!(server.get(&format!("/files/{id}")).status, 403);
    // the others are still viewable
    let other = ids.iter().find(|i| i.1 == "rocket.jpg").unwrap().0;
    let page = server.get(&format!("/api/images/{other}?k=1")).json();
    assert_eq!(page["image"]["viewable"], true, "{page}");
    assert_eq!(server.get(&format!("/files/{other}")).status, 200);
}

/// The web app notes the images a search left out for a damaged stored vector with the count
/// `lookalike query` gives for the same index: every image with a damaged vector, not only
/// those the search read.
#[test]
fn the_damage_note_counts_what_the_command_line_counts() {
    let c = Collection::new();
    let db = rusqlite::Connection::open(c.index.join("lookalike.db")).unwrap();
    for name in ["camera.jpg", "rocket-small.jpg"] {
        let changed = db
            .execute(
                "UPDATE features SET vector = substr(vector, 1, 10) WHERE family = 'color' AND image_id = (SELECT id FROM images WHERE rel_path = ?1)",
                [name.as_bytes()],
            )
            .unwrap();
        assert_eq!(changed, 1, "{name}");
    }
    drop(db);
    let example = c.photos.join("camera.jpg");
    let cli = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(["query", "-k", "1"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(cli.status.success());
    let stderr = String::from_utf8_lossy(&cli.stderr).to_string();
    let said = "2 images left out because a stored vector is damaged";
    assert!(stderr.contains(said), "{stderr}");
    let server = c.serve(&[]);
    let a = server.post(
        "/api/query?k=1",
        "application/octet-stream",
        &std::fs::read(&example).unwrap(),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let note = a.json()["note"].as_str().unwrap_or("").to_string();
    assert!(note.contains(said), "{}", a.text());
    // an image's page, whose search reads other candidates, says the same count
    let ids = image_ids(&server);
    let coffee = ids.iter().find(|i| i.1 == "coffee.jpg").unwrap().0;
    let page = server.get(&format!("/api/images/{coffee}?k=1")).json();
    let note = page["lookalikes"]["note"].as_str().unwrap_or("");
    assert!(!note.contains("damaged") || note.contains(said), "{page}");
}

/// An address a browser opens, with a query parameter it does not know (a tracking tag a
/// shared link picked up), answers an HTML page that names the parameter and links to the
/// same address without it; the API answers JSON.
#[test]
fn a_page_with_an_unknown_parameter_answers_a_page_linking_without_it() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let id = image_ids(&server)[0].0;
    for (target, names, link) in [
        (
            "/?utm_source=x".to_string(),
            vec!["utm_source"],
            "/".to_string(),
        ),
        (
            "/?fbclid=IwAR0&utm_source=a%3Cb".to_string(),
            vec!["fbclid", "utm_source"],
            "/".to_string(),
        ),
        (
            format!("/files/{id}?fbclid=1"),
            vec!["fbclid"],
            format!("/files/{id}"),
        ),
        (
            "/?%3Cscript%3E=1".to_string(),
            vec!["&lt;script&gt;"],
            "/".to_string(),
        ),
    ] {
        let a = server.get(&target);
        assert_eq!(a.status, 400, "{target}: {}", a.text());
        assert!(
            a.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{target}: {}",
            a.head
        );
        let page = a.text();
        for name in names {
            assert!(
                page.contains(&format!("<code>{name}</code>")),
                "{target}: {page}"
            );
        }
        assert!(
            page.contains(&format!("<a href=\"{link}\">")),
            "{target}: {page}"
        );
        assert!(!page.contains("<script>"), "{target}: {page}");
        // the link answers
        assert_eq!(server.get(&link).status, 200, "{link}");
    }
    // a path the framework cannot read answers the same kind of page, not plain text
    for target in ["/thumbs/%2e%2e", "/files/x1"] {
        let a = server.get(target);
        assert_eq!(a.status, 400, "{target}: {}", a.text());
        assert!(
            a.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{target}: {}",
            a.head
        );
        assert!(
            a.text().contains("<h1>Address refused</h1>"),
            "{}",
            a.text()
        );
    }
    let api = server.get("/api/status?utm_source=x");
    assert_eq!(api.status, 400);
    assert!(
        api.json()["error"]
            .as_str()
            .unwrap()
            .contains("`utm_source`"),
        "{}",
        api.text()
    );
}

/// Every refusal takes the form of its address: at the addresses a browser opens (thumbnails,
/// files, reports, the page, an address of nothing) the app's HTML page, under `/api/` JSON,
/// whether the id is unknown, not a number, negative or too large.
#[test]
fn refusals_are_html_pages_at_browser_addresses_and_json_under_api() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let is_page = |target: &str, a: &common::Answer| {
        assert!(
            a.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{target}: {}\n{}",
            a.head,
            a.text()
        );
        assert!(
            a.text().contains("<h1>Address refused</h1>"),
            "{target}: {}",
            a.text()
        );
    };
    let is_json = |target: &str, a: &common::Answer| {
        assert!(
            a.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{target}: {}\n{}",
            a.head,
            a.text()
        );
        assert!(a.json()["error"].is_string(), "{target}: {}", a.text());
    };
    let ids = [
        ("99999999", 404),
        ("-1", 404),
        ("abc", 400),
        ("99999999999999999999", 400),
    ];
    for (id, status) in ids {
        for target in [
            format!("/thumbs/{id}"),
            format!("/files/{id}"),
            format!("/reports/{id}/index.html"),
        ] {
            let a = server.get(&target);
            // a report's number is never negative: -1 is not one
            let status = if target.starts_with("/reports/") && id == "-1" {
                400
            } else {
                status
            };
            assert_eq!(a.status, status, "{target}: {}", a.text());
            is_page(&target, &a);
        }
        let target = format!("/api/images/{id}");
        let a = server.get(&target);
        assert_eq!(a.status, status, "{target}: {}", a.text());
        is_json(&target, &a);
    }
    // an unknown id's page says what the JSON said
    let a = server.get("/thumbs/99999999");
    assert!(
        a.text().contains("no image with this id in the index"),
        "{}",
        a.text()
    );
    // an address of nothing, a method an address does not take, a refused host
    for (target, method, host, status) in [
        ("/thumbs", "GET", None, 404),
        ("/nothing/here", "GET", None, 404),
        ("/reports/0/index.html", "DELETE", None, 405),
        ("/thumbs/1", "GET", Some("attacker.example"), 421),
    ] {
        let headers: Vec<(&str, &str)> = host.map(|h| ("host", h)).into_iter().collect();
        let a = server.raw(method, target, &headers, b"");
        assert_eq!(a.status, status, "{method} {target}: {}", a.text());
        is_page(target, &a);
        let api = format!("/api{target}");
        let a = server.raw(method, &api, &headers, b"");
        assert!(a.status >= 400, "{method} {api}: {}", a.status);
        is_json(&api, &a);
    }
    let a = server.raw(
        "POST",
        "/thumbs/1",
        &[("x-lookalike-token", &server.token)],
        b"",
    );
    assert_eq!(a.status, 405, "{}", a.text());
    is_page("POST /thumbs/1", &a);
    assert!(a.header("allow").is_some(), "{}", a.head);
}

/// The web app's own name escaping (app.js, run in Node) shows every name as the command line
/// does, a name in NFD apart from its NFC twin. Skipped, and says so, without `node`.
#[cfg(unix)]
#[test]
fn the_web_app_shows_names_as_the_command_line_does() {
    use std::os::unix::ffi::OsStrExt;
    let Ok(version) = std::process::Command::new("node").arg("--version").output() else {
        eprintln!("skipped: node is not installed");
        return;
    };
    assert!(version.status.success());
    let app = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/serve/assets/app.js"),
    )
    .unwrap();
    let function = |name: &str| {
        let start = app.find(&format!("function {name}(")).unwrap();
        let end = start + app[start..].find("\n}\n").unwrap() + 3;
        app[start..end].to_string()
    };
    let names: Vec<Vec<u8>> = [
        "caf\u{e9}.png",
        "cafe\u{301}.png",
        "a\u{301}\u{323}/\u{1112}\u{1161}\u{11ab}.jpg",
        "\u{212b}\\x.jpg\n",
    ]
    .iter()
    .map(|n| n.as_bytes().to_vec())
    .chain([b"cafe\xcc\x81\xff.png".to_vec()])
    .collect();
    let script = format!(
        "{}\nconst names = {};\nconsole.log(JSON.stringify(names.map((b) => {{\n  const text = Buffer.from(b).toString('utf8');\n  return Buffer.from(text, 'utf8').equals(Buffer.from(b)) ? escapeText(text) : escapeBytes(b);\n}})));",
        ["escapeText", "joinsBefore", "escapeChar", "escapeBytes"]
            .map(function)
            .join("\n"),
        serde_json::to_string(&names).unwrap()
    );
    let out = std::process::Command::new("node")
        .args(["-e", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let want: Vec<String> = names
        .iter()
        .map(|b| lookalike::path_repr::shown(std::path::Path::new(std::ffi::OsStr::from_bytes(b))))
        .collect();
    assert_eq!(shown, want);
    assert_eq!(shown[1], r"cafe\u{301}.png");
    assert_ne!(shown[0], shown[1]);
}

/// An image in a format browsers do not show (`viewable` false) offers no original: `/files`
/// refuses it with the reason the JSON gives.
#[test]
fn a_file_the_json_calls_not_viewable_is_not_served() {
    let c = Collection::new();
    let img = image::open(sample("camera", "original.jpg"))
        .unwrap()
        .to_rgb8();
    img.save(c.photos.join("camera.tiff")).unwrap();
    c.index();
    let server = c.serve(&[]);
    let (tiff, _) = image_ids(&server)
        .into_iter()
        .find(|i| i.1 == "camera.tiff")
        .expect("the TIFF is indexed");
    let doc = server.get(&format!("/api/images/{tiff}")).json();
    assert_eq!(doc["image"]["viewable"], false, "{doc}");
    let why = doc["image"]["why_not_viewable"]
        .as_str()
        .unwrap()
        .to_string();
    let file = server.get(&format!("/files/{tiff}"));
    assert_eq!(file.status, 404, "{}", file.text());
    assert!(file.text().contains(&why), "{}", file.text());
}

/// A number parameter out of its range, or not a number, is refused with the range; a folder
/// id the index does not hold is 404, naming it.
#[test]
fn parameters_out_of_range_are_refused_with_the_range() {
    let c = Collection::new();
    let server = c.serve(&[]);
    for k in ["-1", "0", "abc", "201", "99999999999999999999999"] {
        let answer = server.get(&format!("/api/images/1?k={k}"));
        assert_eq!(answer.status, 400, "k={k}");
        let why = answer.json()["error"].as_str().unwrap().to_string();
        assert!(
            why.contains(&format!("k={k}")) && why.contains("1 to 200"),
            "{why}"
        );
    }
    let limit = server.get("/api/images?limit=600");
    assert_eq!(limit.status, 400, "{}", limit.text());
    let why = limit.json()["error"].as_str().unwrap().to_string();
    assert!(
        why.contains("limit=600") && why.contains("0 to 500"),
        "{why}"
    );
    assert_eq!(server.get("/api/images?limit=500").status, 200);
    let folder = server.get("/api/images?folder=999");
    assert_eq!(folder.status, 404, "{}", folder.text());
    assert!(
        folder.json()["error"]
            .as_str()
            .unwrap()
            .contains("folder=999")
    );
    let known = server.get("/api/folders").json()["folders"][0]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        server.get(&format!("/api/images?folder={known}")).status,
        200
    );
}

/// `serve` stopped by Ctrl-C, SIGTERM or SIGHUP shuts down and exits 130, as the other commands.
#[cfg(unix)]
#[test]
fn serve_stopped_by_a_signal_exits_130() {
    let c = Collection::new();
    for signal in ["INT", "TERM", "HUP"] {
        let mut server = c.serve(&[]);
        assert_eq!(server.get("/api/status").status, 200);
        let status = server.stop_with(signal);
        assert_eq!(status.code(), Some(130), "{signal}: {status:?}");
    }
}

/// `serve` on a damaged index database refuses to start, with exit status 4 and the advice the
/// other commands give, instead of answering some pages and failing others.
#[test]
fn serve_refuses_a_damaged_database_at_start() {
    let c = Collection::new();
    let db = c.index.join("lookalike.db");
    let mut bytes = std::fs::read(&db).unwrap();
    // every page but the first (the schema) overwritten
    let page = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => n as usize,
    };
    assert!(bytes.len() > page, "{} bytes", bytes.len());
    for b in &mut bytes[page..] {
        *b = 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    for side in ["lookalike.db-wal", "lookalike.db-shm"] {
        let _ = std::fs::remove_file(c.index.join(side));
    }
    let (code, err, out) = refused_start_saying(&c, &["serve", "--port", "0"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("restore lookalike.db from a backup"), "{err}");
    assert!(out.is_empty(), "it listened: {out}");
}

/// Damage confined to the thumbnails' pages, which `status` does not read, is found at start
/// too: `serve` refuses with exit status 4 and the advice, instead of answering thumbnails 500.
#[test]
fn serve_refuses_a_database_with_damaged_thumbnails_at_start() {
    let c = Collection::new();
    let db = c.index.join("lookalike.db");
    let thumbnails: Vec<Vec<u8>> = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut stmt = conn.prepare("SELECT jpeg FROM thumbnails").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert!(!thumbnails.is_empty());
    let mut bytes = std::fs::read(&db).unwrap();
    let page = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => n as usize,
    };
    // An overflow page holds a 4-byte link, then a stretch of one thumbnail's JPEG bytes: the
    // pages whose first 64 bytes after the link are found in a thumbnail are the thumbnails'.
    let mut damaged = 0;
    for start in (page..bytes.len()).step_by(page) {
        let probe = &bytes[start + 4..start + 68];
        if thumbnails
            .iter()
            .any(|jpeg| jpeg.windows(probe.len()).any(|w| w == probe))
        {
            bytes[start..start + page].fill(0x5a);
            damaged += 1;
        }
    }
    assert!(damaged > 0, "no thumbnail page found");
    std::fs::write(&db, &bytes).unwrap();
    for side in ["lookalike.db-wal", "lookalike.db-shm"] {
        let _ = std::fs::remove_file(c.index.join(side));
    }
    // what `status` reads is sound
    let status = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .arg("status")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let (code, err, out) = refused_start_saying(&c, &["serve", "--port", "0"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("restore lookalike.db from a backup"), "{err}");
    assert!(out.is_empty(), "it listened: {out}");
}

/// The first search after an `index` run is answered from the space loaded before it while the
/// new one loads: the answer says so rather than passing old results off as current.
#[test]
fn a_search_answered_from_before_an_index_run_says_so() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let camera = image_ids(&server)
        .into_iter()
        .find(|i| i.1 == "camera.jpg")
        .unwrap()
        .0;
    let lookalikes = |server: &Server| {
        server
            .get(&format!("/api/images/{camera}?k=20"))
            .json()
            .get("lookalikes")
            .cloned()
            .unwrap()
    };
    let fresh = lookalikes(&server);
    assert!(fresh["note"].is_null(), "{fresh}");
    std::fs::copy(
        sample("chelsea", "original.jpg"),
        c.photos.join("chelsea.jpg"),
    )
    .unwrap();
    c.index();
    let first = lookalikes(&server);
    let said = first["note"].as_str().unwrap_or("");
    assert!(
        said.contains("the index changed") && said.contains("reloading"),
        "{first}"
    );
    assert!(
        !first["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "chelsea.jpg"),
        "{first}"
    );
    // once reloaded, the new image is among the look-alikes and the note is gone
    let start = Instant::now();
    loop {
        let doc = lookalikes(&server);
        if doc["note"].is_null() {
            let hits = doc["hits"].as_array().unwrap();
            assert!(hits.iter().any(|h| h["name"] == "chelsea.jpg"), "{doc}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never reloaded: {doc}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An address or head over what the HTTP layer reads is refused in the form of its address,
/// as every other refusal: JSON under `/api/`, the refusal page elsewhere; it was an empty body.
#[test]
fn a_request_over_the_http_limits_is_refused_in_the_form_of_its_address() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let long = "9".repeat(70_000);
    let api = server.get(&format!("/api/images?limit={long}"));
    assert_eq!(api.status, 414, "{}", api.head);
    let error = api.json()["error"].as_str().unwrap_or("").to_string();
    assert!(error.contains("address is over"), "{error}");
    let page = server.get(&format!("/?q={long}"));
    assert_eq!(page.status, 414, "{}", page.head);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
            && page.text().contains("Address refused"),
        "{}",
        page.text()
    );
    let headers: Vec<(String, String)> = (0..120).map(|n| (format!("x-{n}"), "1".into())).collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let many = server.raw("GET", "/api/status", &headers, b"");
    assert_eq!(many.status, 431, "{}", many.head);
    let error = many.json()["error"].as_str().unwrap_or("").to_string();
    assert!(error.contains("headers"), "{error}");
}

/// A head of megabytes, over what the HTTP layer reads and more than the connection's buffers
/// hold, gets its 431 as a smaller one does: the rest of it is read before the connection
/// closes, which would otherwise be reset while the client still sends.
#[test]
fn a_head_of_megabytes_is_refused_not_reset() {
    let c = Collection::new();
    let server = c.serve(&[]);
    let value = "a".repeat(1 << 20);
    let headers: Vec<(String, &str)> = (0..16)
        .map(|n| (format!("x-{n}"), value.as_str()))
        .collect();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    for target in ["/api/status", "/"] {
        let big = server.raw("GET", target, &headers, b"");
        assert_eq!(big.status, 431, "{target}: {}", big.head);
    }
}

/// `serve --open` where the opener fails (no browser) says so in one line of its own, with the
/// address to open by hand, and not in the opener's words.
#[cfg(unix)]
#[test]
fn a_browser_that_cannot_be_opened_is_told_in_one_warning() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let c = Collection::new();
    let bin = c.root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for opener in ["xdg-open", "open"] {
        let script = bin.join(opener);
        std::fs::write(
            &script,
            "#!/bin/sh\necho 'xdg-open: no method available for opening junk' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut child = common::lookalike()
        .arg("--index-dir")
        .arg(&c.index)
        .args(["-q", "serve", "--port", "0", "--open"])
        .env("PATH", &bin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            if lines.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while let Ok(line) = said.recv_timeout(Duration::from_secs(60)) {
        let warned = line.starts_with("warning:");
        seen.push(line);
        if warned {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let url = url.trim();
    assert!(
        seen.len() == 1 && seen[0].contains("could not open a browser") && seen[0].contains(url),
        "{seen:?}"
    );
}

/// The web app's refusals name its own parameters and how to start it on its index, not the
/// command line's flags as if they had been typed.
#[test]
fn the_web_apps_refusals_speak_of_its_own_parameters() {
    let c = Collection::new();
    let server = c.serve(&["--memory-budget", "64"]);
    let keep = server.get("/api/duplicates?keep=match:");
    assert_eq!(keep.status, 400, "{}", keep.text());
    let error = keep.json()["error"].as_str().unwrap_or("").to_string();
    assert!(
        !error.contains("--keep") && error.starts_with("the keep parameter \"match:\""),
        "{error}"
    );
    let mut large = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_fn(4000, 4000, |x, y| image::Luma([((x + y) / 32) as u8]))
        .write_to(&mut large, image::ImageFormat::Png)
        .unwrap();
    let upload = server.post("/api/query", "application/octet-stream", large.get_ref());
    let error = upload.json()["error"].as_str().unwrap_or("").to_string();
    assert!(
        !error.contains("the command")
            && error.contains(&format!(
                "start `lookalike --index-dir {} serve --memory-budget MIB` with a larger budget",
                c.index.display()
            )),
        "{}: {error}",
        upload.status
    );
}

/// The page names its icon and the icon is served, so no page load asks for a missing
/// `/favicon.ico`.
#[test]
fn the_page_names_an_icon_that_is_served() {
    let c = Collection::new();
    let server = c.serve(&[]);
    assert!(
        server
            .get("/")
            .text()
            .contains(r#"<link rel="icon" href="/favicon.ico""#)
    );
    let icon = server.get("/favicon.ico");
    assert_eq!(icon.status, 200, "{}", icon.text());
    assert_eq!(icon.header("content-type").as_deref(), Some("image/png"));
    assert!(image::load_from_memory(&icon.body).is_ok());
}

/// A method an address does not take is refused with 405 and the methods it takes (`Allow`),
/// whatever token it carries, in the form of its address; HEAD is GET without the body.
#[test]
fn a_method_an_address_does_not_take_is_refused_whatever_its_token() {
    let c = Collection::new();
    let report = c.root.join("reports").join("one");
    std::fs::create_dir_all(&report).unwrap();
    std::fs::write(report.join("index.html"), "<p>report</p>").unwrap();
    std::fs::write(report.join("report.json"), "{}").unwrap();
    let server = c.serve(&["--reports", report.to_str().unwrap()]);
    let id = image_ids(&server)[0].0;
    let token = server.token.clone();
    let gets = [
        "/".to_string(),
        "/app.js".into(),
        "/app.css".into(),
        "/favicon.ico".into(),
        "/api/status".into(),
        "/api/folders".into(),
        "/api/images".into(),
        format!("/api/images/{id}"),
        format!("/thumbs/{id}"),
        format!("/files/{id}"),
        "/api/duplicates".into(),
        "/api/reports".into(),
        "/reports/0/index.html".into(),
    ];
    let posts = ["/api/query", "/api/duplicates/action", "/api/undo"];
    let not_get = ["OPTIONS", "PUT", "DELETE", "PATCH", "POST"];
    let not_post = ["OPTIONS", "PUT", "DELETE", "PATCH", "GET", "HEAD"];
    let refused = gets
        .iter()
        .map(|a| (a.as_str(), &not_get[..], "GET,HEAD"))
        .chain(posts.iter().map(|a| (*a, &not_post[..], "POST")));
    for (address, methods, allow) in refused {
        for method in methods {
            for headers in [vec![], vec![("x-lookalike-token", token.as_str())]] {
                let a = server.raw(method, address, &headers, b"");
                let what = format!("{method} {address} {headers:?}: {}", a.text());
                assert_eq!(a.status, 405, "{what}");
                assert_eq!(a.header("allow").as_deref(), Some(allow), "{what}");
                if *method == "HEAD" {
                    assert!(a.body.is_empty(), "{what}");
                } else if address.starts_with("/api/") {
                    assert_eq!(a.json()["error"], "method not allowed", "{what}");
                } else {
                    assert!(a.text().contains("Address refused"), "{what}");
                }
            }
        }
    }
    for address in &gets {
        let get = server.get(address);
        let head = server.raw("HEAD", address, &[], b"");
        assert_eq!((get.status, head.status), (200, 200), "{address}");
        assert!(!get.body.is_empty() && head.body.is_empty(), "{address}");
        assert_eq!(head.header("content-type"), get.header("content-type"));
    }
}

/// The command the web app advises to bring the index at `index` up to date.
fn refresh_command(index: &Path) -> String {
    format!("`lookalike --index-dir {} index`", index.display())
}

/// The web app's advice is read in a browser, whatever folder the user's shell is in: each
/// command it advises names the index folder, even the default `./.lookalike` of the folder the
/// server was started in (where the command line's own advice leaves the flag out).
#[test]
fn the_web_apps_advice_names_the_index_folder_even_when_it_is_the_default() {
    let c = Collection::new();
    let index = c.root.join(".lookalike");
    let out = lookalike()
        .current_dir(&c.root)
        .args(["-q", "index", "photos"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(c.photos.join("rocket.jpg")).unwrap();
    let mut in_its_folder = lookalike();
    in_its_folder.current_dir(&c.root);
    let server = c.serve_index_through(in_its_folder, Path::new(".lookalike"), &[]);
    let advised = refresh_command(&index);
    let page = server.get("/").text();
    assert!(
        page.contains(&format!(
            "name=\"lookalike-refresh\" content=\"{}\"",
            advised.trim_matches('`')
        )),
        "{page}"
    );
    let ids = image_ids(&server);
    let rocket = ids.iter().find(|i| i.1 == "rocket.jpg").unwrap().0;
    let gone = server.get(&format!("/files/{rocket}")).text();
    assert!(gone.contains(&advised), "{gone}");
    let doc = server.get(&format!("/api/images/{rocket}")).json();
    let why = doc["image"]["why_not_viewable"].as_str().unwrap_or("");
    assert!(why.contains(&advised), "{doc}");
}

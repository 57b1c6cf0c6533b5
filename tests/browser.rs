//! The web app in real headless Chromium, driven over WebDriver: the start page, an image and
//! its look-alikes, a search by upload, a duplicate group's dry run, apply and undo, and the
//! phone layout.
//! Screenshots go to `target/tmp/browser/`. Skipped (and says so) when Chromium or
//! ChromeDriver is not installed (`apt-get install chromium chromium-driver`), unless
//! `LOOKALIKE_REQUIRE_BROWSER` is set, as `.ci/run` does.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Collection, Http, sample};
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn installed(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    path.is_file().then_some(path)
}

/// Waits until `done` holds, for a minute at most.
fn until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Driver {
    child: Child,
    http: Http,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self
            .http
            .raw("DELETE", &format!("/session/{}", self.session), &[], b"");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(chromedriver: &Path, chromium: &Path, profile: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = Http {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(http.addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.display()), "--window-size=1280,900"],
            },
        }}});
        let mut driver = Driver {
            child,
            http,
            session: String::new(),
        };
        let answer = driver.call("POST", "/session", Some(caps));
        driver.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        driver
    }

    /// One WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = if path == "/session" {
            path.to_string()
        } else {
            format!("/session/{}{path}", self.session)
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let a = self.http.raw(
            method,
            &path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        );
        let doc = a.json();
        assert!(a.status < 300, "{method} {path}: {doc}");
        doc["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    /// The elements matching `css`, waiting up to a minute for at least one.
    fn wait_for(&self, css: &str) -> Vec<String> {
        let start = Instant::now();
        loop {
            let found = self.find_all(css);
            if !found.is_empty() {
                return found;
            }
            let body = self.text_of_page();
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {css} on the page; it shows: {body}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn text_of_page(&self) -> String {
        self.find_all("body")
            .first()
            .map(|b| self.text(b))
            .unwrap_or_default()
    }

    /// The page's text once it shows `needle` (the page is redrawn when an answer comes), or
    /// as it is after a minute.
    fn text_once_shown(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let page = self.text_of_page();
            if page.contains(needle) || Instant::now() > deadline {
                return page;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn click(&self, element: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    /// Runs `script` in the page with `args`; its return value.
    fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Runs `script`, which ends by calling its last argument with its answer.
    fn execute_async(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    fn screenshot(&self, to: &Path) {
        let b64 = self.call("GET", "/screenshot", None);
        let png = decode_base64(b64.as_str().unwrap());
        std::fs::write(to, &png).unwrap();
        let shot = image::load_from_memory(&png).unwrap();
        assert!(shot.width() > 100 && shot.height() > 100);
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// ChromeDriver and Chromium, or `None` (said) when either is missing.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let (Some(driver_bin), Some(chromium)) = (
        installed("CHROMEDRIVER", "/usr/bin/chromedriver"),
        installed("CHROMIUM", "/usr/bin/chromium"),
    ) else {
        assert!(
            std::env::var_os("LOOKALIKE_REQUIRE_BROWSER").is_none(),
            "LOOKALIKE_REQUIRE_BROWSER is set but Chromium or ChromeDriver is missing"
        );
        eprintln!(
            "browser test skipped: Chromium or ChromeDriver is not installed (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    Some((driver_bin, chromium))
}

/// Names that differ are shown differently: a byte that is not UTF-8 as `\xNN`, a backslash
/// as `\\`, markup as text.
#[cfg(unix)]
#[test]
fn names_that_differ_never_look_alike_in_the_browser() {
    use std::os::unix::ffi::OsStrExt;
    let Some((driver_bin, chromium)) = browser() else {
        return;
    };
    let c = Collection::new();
    let names: [&[u8]; 3] = [b"caf\xe9.jpg", b"caf\\xe9.jpg", b"<b>bold.jpg"];
    for (name, photo) in names.iter().zip(["coffee", "rocket", "camera"]) {
        std::fs::copy(
            sample(photo, "original.jpg"),
            c.photos.join(std::ffi::OsStr::from_bytes(name)),
        )
        .unwrap();
    }
    c.index();
    let server = c.serve(&[]);
    let driver = Driver::start(&driver_bin, &chromium, &c.root.join("chromium-profile"));
    driver.go(&format!("http://{}/", server.http.addr));
    let cards = driver.wait_for(".grid .card");
    let shown: Vec<String> = cards.iter().map(|c| driver.text(c)).collect();
    for want in ["caf\\xe9.jpg", "caf\\\\xe9.jpg", "<b>bold.jpg"] {
        assert!(shown.iter().any(|s| s == want), "{want} not in {shown:?}");
    }
    assert!(!shown.iter().any(|s| s.contains('\u{fffd}')), "{shown:?}");
    assert!(
        driver.find_all(".card b").is_empty(),
        "a name was read as markup"
    );
}

#[test]
fn the_web_app_works_in_a_real_browser() {
    let Some((driver_bin, chromium)) = browser() else {
        return;
    };
    let c = Collection::new();
    std::fs::copy(
        c.photos.join("coffee.jpg"),
        c.photos.join("coffee copy.jpg"),
    )
    .unwrap();
    c.index();
    let server = c.serve(&[]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let driver = Driver::start(&driver_bin, &chromium, &c.root.join("chromium-profile"));
    let url = format!("http://{}/", server.http.addr);

    // The start page: a grid of thumbnails.
    driver.go(&url);
    let cards = driver.wait_for(".grid .card");
    assert_eq!(cards.len(), 9);
    driver.screenshot(&shots.join("collection.png"));

    // An image and its look-alikes.
    let camera = cards
        .iter()
        .find(|c| driver.text(c).starts_with("camera.jpg"))
        .expect("camera.jpg on the start page")
        .clone();
    driver.click(&camera);
    driver.wait_for("img.large");
    let lookalikes = driver.wait_for(".grid .card");
    assert!(driver.text(&lookalikes[0]).starts_with("camera-small.jpg"));
    let shown = driver.text_of_page();
    assert!(!shown.lines().any(|l| l.trim() == "null"), "{shown}");
    driver.screenshot(&shots.join("image.png"));

    // A search by example: a blurred photo chosen from the computer.
    driver.go(&format!("{url}#/query"));
    search_by_example(&driver, &sample("rocket", "blur.jpg"));
    let hits = driver.wait_for("#results .card");
    assert!(
        driver.text(&hits[0]).starts_with("rocket"),
        "{}",
        driver.text(&hits[0])
    );
    driver.screenshot(&shots.join("query.png"));

    // A duplicate group reviewed, then a dry run: nothing changes.
    driver.go(&format!("{url}#/duplicates"));
    driver.wait_for(".group");
    let keep_badges = driver.find_all(".group .badge:not(.copy)");
    assert!(!keep_badges.is_empty(), "every group marks its keeper");
    let dry = driver.wait_for("#dry-run");
    driver.click(&dry[0]);
    let summary = driver.wait_for("#outcome-summary");
    assert!(
        driver.text(&summary[0]).contains("would do"),
        "{}",
        driver.text(&summary[0])
    );
    assert!(c.photos.join("coffee copy.jpg").exists());
    driver.screenshot(&shots.join("duplicates.png"));
    // Applied as reviewed (to the trash), then undone.
    let apply = driver.wait_for("#apply");
    driver.click(&apply[0]);
    let applied = driver.text_once_shown("Done (");
    assert!(
        applied.contains("Done (") && applied.contains(" done"),
        "{applied}"
    );
    // the command it advises names this index, for a shell in any folder
    let refresh = format!("`lookalike --index-dir {} index`", c.index.display());
    assert!(applied.contains(&refresh), "{applied}");
    assert!(!c.photos.join("coffee copy.jpg").exists());
    let undo = driver.wait_for("#undo");
    driver.click(&undo[0]);
    until(|| c.photos.join("coffee copy.jpg").exists());
    assert!(
        c.photos.join("coffee copy.jpg").exists(),
        "undo brought it back"
    );
    // The file is back before the page has its answer: wait for the page's own word.
    let undone = driver.text_once_shown("ndone: ");
    assert!(
        undone.contains("Undone: ") && !undone.contains("Partly undone"),
        "{undone}"
    );
    // in the words of `lookalike undo`
    let back = format!("restored: {}", c.photos.join("coffee copy.jpg").display());
    assert!(
        undone.contains(&back) && undone.contains("5 restored"),
        "{undone}"
    );

    // Trashed again, then a new file saved under the copy's name: the undo is partial, and
    // the page says so rather than "Undone".
    let dry = driver.wait_for("#dry-run");
    driver.click(&dry[0]);
    driver.text_once_shown("Dry run: nothing changed yet");
    let apply = driver.wait_for("#apply");
    driver.click(&apply[0]);
    until(|| !c.photos.join("coffee copy.jpg").exists());
    std::fs::write(c.photos.join("coffee copy.jpg"), b"saved since").unwrap();
    // Undo waits for the apply's answer
    driver.text_once_shown("Done (");
    let undo = driver.wait_for("#undo");
    driver.click(&undo[0]);
    let partial = driver.text_once_shown("undone: ");
    assert!(
        partial.contains("Partly undone: ") && partial.contains("Undo last run again"),
        "{partial}"
    );
    assert_eq!(
        std::fs::read(c.photos.join("coffee copy.jpg")).unwrap(),
        b"saved since"
    );

    // An index run whose process was killed: the status page says so, as `status` does.
    lookalike::collection::Collection::at(&c.index)
        .open_store()
        .unwrap()
        .begin_run(std::slice::from_ref(&c.photos))
        .unwrap();
    driver.go(&format!("{url}#/status"));
    driver.wait_for("table.facts");
    let status = driver.text_of_page();
    assert!(
        status.contains("interrupted (its process was killed)")
            && status.contains("resumes it")
            && !status.contains("running"),
        "{status}"
    );

    // A page past the end says so and leads back to the first page.
    driver.go(&format!("{url}#/all/5"));
    let first = driver.wait_for("#first-page");
    let past = driver.text_of_page();
    assert!(
        past.contains("Page 6 is past the end") && !past.contains("No images here yet"),
        "{past}"
    );
    driver.click(&first[0]);
    assert_eq!(driver.wait_for(".grid .card").len(), 9);

    // A look-alike changed since indexing is left out and named, as `query` names it; the
    // changed image's own page offers no original and says why.
    let ids: Vec<(i64, String)> = server.get("/api/images?limit=500").json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().unwrap(),
                i["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    let id = |name: &str| ids.iter().find(|i| i.1 == name).unwrap().0;
    let mut changed = std::fs::read(c.photos.join("rocket-small.jpg")).unwrap();
    changed.extend_from_slice(b"changed since");
    std::fs::write(c.photos.join("rocket-small.jpg"), changed).unwrap();
    driver.go(&format!("{url}#/image/{}", id("rocket.jpg")));
    driver.wait_for("#left-out");
    let page = driver.text_of_page();
    assert!(
        page.contains("stale: ")
            && page.contains("rocket-small.jpg is gone or changed since it was indexed; left out"),
        "{page}"
    );
    driver.go(&format!("{url}#/image/{}", id("rocket-small.jpg")));
    driver.wait_for("#not-viewable");
    let page = driver.text_of_page();
    assert!(
        !page.contains("Open the original")
            && page.contains("The original is not shown: the file changed since it was indexed"),
        "{page}"
    );

    // A phone-sized window.
    driver.call(
        "POST",
        "/window/rect",
        Some(json!({"width": 390, "height": 844})),
    );
    driver.go(&url);
    driver.wait_for(".grid .card");
    driver.screenshot(&shots.join("collection-phone.png"));
    eprintln!("screenshots in {}", shots.display());
}

/// A collection with an exact copy of coffee.jpg, served, and a browser on it.
fn duplicates_served(driver_bin: &Path, chromium: &Path) -> (Collection, common::Server, Driver) {
    let c = Collection::new();
    std::fs::copy(
        c.photos.join("coffee.jpg"),
        c.photos.join("coffee copy.jpg"),
    )
    .unwrap();
    c.index();
    let server = c.serve(&[]);
    let driver = Driver::start(driver_bin, chromium, &c.root.join("chromium-profile"));
    driver.go(&format!("http://{}/#/duplicates", server.http.addr));
    driver.wait_for(".group");
    (c, server, driver)
}

/// Sets a control of the page as a user would: its value, then its own event.
fn set(driver: &Driver, id: &str, value: &str, event: &str) {
    driver.execute(
        "const c = document.getElementById(arguments[0]); c.value = arguments[1]; c.dispatchEvent(new Event(arguments[2]));",
        json!([id, value, event]),
    );
}

/// The duplicates page's settings and the keepers of the groups left unticked.
fn duplicates_state(driver: &Driver) -> Value {
    driver.execute(
        "const v = (id) => document.getElementById(id).value;
         return [v('similarity'), v('keep'), v('action'), v('target'),
           [...document.querySelectorAll('input[data-keeper]')].filter((b) => !b.checked).map((b) => b.dataset.keeper)];",
        json!([]),
    )
}

/// A double click on Apply sends one request: the buttons wait for its answer, and the page
/// shows the run done, never a refusal of the second click.
#[test]
fn a_double_click_on_apply_acts_once_and_shows_the_run() {
    let Some((driver_bin, chromium)) = browser() else {
        return;
    };
    let (c, _server, driver) = duplicates_served(&driver_bin, &chromium);
    let dry = driver.wait_for("#dry-run");
    driver.click(&dry[0]);
    driver.text_once_shown("Dry run: nothing changed yet");
    let clicked = driver.execute(
        "window.sent = 0;
         const fetched = window.fetch;
         window.fetch = (...a) => { if (String(a[0]).endsWith('/api/duplicates/action')) window.sent++; return fetched(...a); };
         const b = (id) => document.getElementById(id);
         b('apply').click(); b('apply').click();
         return [window.sent, b('dry-run').disabled, b('apply').disabled, b('undo').disabled];",
        json!([]),
    );
    assert_eq!(
        clicked,
        json!([1, true, true, true]),
        "requests sent, buttons disabled"
    );
    let done = driver.text_once_shown("Done (");
    assert!(
        done.contains("Done (") && !done.contains("nothing was done"),
        "{done}"
    );
    assert!(!c.photos.join("coffee copy.jpg").exists());
    assert_eq!(
        driver.execute("return document.getElementById('undo').disabled", json!([])),
        json!(false)
    );
}

/// A copy put back by hand before Undo is told `already back`, as `lookalike undo` tells it.
#[test]
fn undo_tells_a_copy_already_back_as_the_command_line_does() {
    let Some((driver_bin, chromium)) = browser() else {
        return;
    };
    let (c, _server, driver) = duplicates_served(&driver_bin, &chromium);
    let moved = c.root.join("moved");
    set(&driver, "action", "move-to", "change");
    set(&driver, "target", moved.to_str().unwrap(), "input");
    driver.click(&driver.wait_for("#dry-run")[0]);
    driver.text_once_shown("Dry run: nothing changed yet");
    driver.click(&driver.wait_for("#apply")[0]);
    driver.text_once_shown("Done (");
    let copy = c.photos.join("coffee copy.jpg");
    std::fs::rename(moved.join("photos").join("coffee copy.jpg"), &copy).unwrap();
    driver.click(&driver.wait_for("#undo")[0]);
    let undone = driver.text_once_shown("ndone: ");
    let line = format!(
        "already back: {}: it is already back in place",
        copy.display()
    );
    assert!(
        undone.contains(&line) && !undone.contains(&format!("done: {}", copy.display())),
        "{undone}"
    );
}

/// The duplicates page keeps its settings and the groups left unticked through an image
/// opened and Back, and through a reload: a group left out is never ticked again unseen.
#[test]
fn the_duplicates_page_keeps_its_settings_and_unticked_groups_through_back_and_reload() {
    let Some((driver_bin, chromium)) = browser() else {
        return;
    };
    let (c, _server, driver) = duplicates_served(&driver_bin, &chromium);
    set(&driver, "keep", "newest", "change");
    driver.wait_for(".group");
    set(&driver, "action", "move-to", "change");
    let folder = c.root.join("moved");
    set(&driver, "target", folder.to_str().unwrap(), "input");
    let boxes = driver.find_all("input[data-keeper]");
    driver.click(boxes.last().unwrap());
    let chosen = duplicates_state(&driver);
    assert_eq!(chosen[1], "newest");
    assert_eq!(chosen[4].as_array().unwrap().len(), 1, "{chosen}");

    driver.click(&driver.find_all(".group .card")[0]);
    driver.wait_for("img.large");
    driver.call("POST", "/back", Some(json!({})));
    driver.wait_for(".group");
    assert_eq!(duplicates_state(&driver), chosen, "after Back");
    driver.call("POST", "/refresh", Some(json!({})));
    driver.wait_for(".group");
    assert_eq!(duplicates_state(&driver), chosen, "after a reload");
}

/// A look-alike's distance stays in view beside a long name, on a wide screen and a phone.
#[test]
fn a_lookalikes_distance_stays_visible_beside_a_long_name() {
    let Some((driver_bin, chromium)) = browser() else {
        return;
    };
    let c = Collection::new();
    std::fs::copy(
        c.photos.join("coffee.jpg"),
        c.photos.join("coffee_2019_holiday_copy_from_the_phone.jpg"),
    )
    .unwrap();
    c.index();
    let server = c.serve(&[]);
    let coffee = server.get("/api/images?limit=500").json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "coffee.jpg")
        .unwrap()["id"]
        .clone();
    let driver = Driver::start(&driver_bin, &chromium, &c.root.join("chromium-profile"));
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    for (width, height) in [(1280, 900), (390, 844)] {
        driver.call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
        driver.go(&format!("http://{}/#/image/{coffee}", server.http.addr));
        driver.wait_for(".grid .card .dist");
        let hidden = driver.execute(
            "return [...document.querySelectorAll('.grid .cap')].filter((c) => {
               const d = c.querySelector('.dist').getBoundingClientRect(), r = c.getBoundingClientRect();
               return d.width === 0 || d.left < r.left || d.right > r.right;
             }).map((c) => c.textContent);",
            json!([]),
        );
        assert_eq!(hidden, json!([]), "{width} px wide: distances cut off");
        driver.screenshot(&shots.join(format!("lookalikes-{width}.png")));
    }
}

/// A dropped example takes the place of the file chosen before in the file box; one the
/// browser cannot show is said so in words, not shown as a broken image.
#[test]
fn a_dropped_example_replaces_the_chosen_file_and_one_not_shown_is_said_so() {
    let Some((driver_bin, chromium)) = browser() else {
        return;
    };
    let c = Collection::new();
    let server = c.serve(&[]);
    let driver = Driver::start(&driver_bin, &chromium, &c.root.join("chromium-profile"));
    driver.go(&format!("http://{}/#/query", server.http.addr));
    search_by_example(&driver, &sample("rocket", "blur.jpg"));
    let id = driver.wait_for("#results .card");
    let id = driver.call(
        "GET",
        &format!("/element/{}/attribute/data-id", id[0]),
        None,
    );
    let drop = "const done = arguments[arguments.length - 1];
        const bytes = arguments[0] === null ? Promise.resolve(new Blob(['not an image']))
          : fetch('/thumbs/' + arguments[0]).then((r) => r.blob());
        bytes.then((b) => {
          const dt = new DataTransfer();
          dt.items.add(new File([b], arguments[1], { type: arguments[2] }));
          document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
          done(document.getElementById('example').files[0].name);
        });";
    let named = driver.execute_async(drop, json!([id, "dropped.jpg", "image/jpeg"]));
    assert_eq!(named, "dropped.jpg", "the file box after a drop");
    driver.wait_for("#drop img");
    driver.execute_async(drop, json!([null, "example.heic", "image/heic"]));
    let said = driver.wait_for("#no-preview");
    assert!(
        driver.text(&said[0]).contains("example.heic"),
        "{}",
        driver.text(&said[0])
    );
    assert!(driver.find_all("#drop img").is_empty(), "a broken preview");
}

/// A search's results come back after opening one of them and going Back.
#[test]
fn a_searchs_results_come_back_after_back() {
    let Some((driver_bin, chromium)) = browser() else {
        return;
    };
    let c = Collection::new();
    let server = c.serve(&[]);
    let driver = Driver::start(&driver_bin, &chromium, &c.root.join("chromium-profile"));
    driver.go(&format!("http://{}/#/query", server.http.addr));
    search_by_example(&driver, &sample("rocket", "blur.jpg"));
    let hits = driver.wait_for("#results .card");
    let first = driver.text(&hits[0]);
    driver.click(&hits[0]);
    driver.wait_for("img.large");
    driver.call("POST", "/back", Some(json!({})));
    let hits = driver.wait_for("#results .card");
    assert_eq!(driver.text(&hits[0]), first);
    assert!(driver.text_of_page().contains("blur.jpg"));
}

/// On a page of many groups the actions are reached at once: a button before the groups
/// takes the keyboard to them.
#[test]
fn the_duplicates_actions_are_reached_before_the_groups() {
    let Some((driver_bin, chromium)) = browser() else {
        return;
    };
    let (_c, _server, driver) = duplicates_served(&driver_bin, &chromium);
    let link = driver.wait_for("#to-actions");
    let before = driver.execute(
        "return !!(document.getElementById('to-actions').compareDocumentPosition(document.querySelector('.group')) & Node.DOCUMENT_POSITION_FOLLOWING);",
        json!([]),
    );
    assert_eq!(before, json!(true), "the link comes before the groups");
    driver.click(&link[0]);
    assert_eq!(
        driver.execute("return document.activeElement.id", json!([])),
        json!("action")
    );
}

/// Chooses `example` in the search page's file box, which starts the search.
fn search_by_example(driver: &Driver, example: &Path) {
    let input = driver.wait_for("input#example");
    driver.call(
        "POST",
        &format!("/element/{}/value", input[0]),
        Some(json!({"text": example.to_str().unwrap()})),
    );
}

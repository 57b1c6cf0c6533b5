//! Shared by the integration tests: a small collection of sample photos with its index, a
//! server on a free loopback port, a minimal HTTP/1.1 client, and hostile image bytes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const PHOTOS: [&str; 4] = ["astronaut", "camera", "coffee", "rocket"];

pub fn sample(photo: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join(photo)
        .join(name)
}

pub fn lookalike() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("lookalike"));
    c.env_remove("LOOKALIKE_INDEX");
    c
}

/// A folder of photos (two versions of each of four) and its index.
pub struct Collection {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub photos: PathBuf,
    pub index: PathBuf,
}

impl Collection {
    pub fn new() -> Collection {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let photos = root.join("photos");
        std::fs::create_dir_all(&photos).unwrap();
        for p in PHOTOS {
            std::fs::copy(sample(p, "original.jpg"), photos.join(format!("{p}.jpg"))).unwrap();
            std::fs::copy(sample(p, "half.jpg"), photos.join(format!("{p}-small.jpg"))).unwrap();
        }
        let c = Collection {
            index: root.join("idx"),
            photos,
            root,
            _tmp: tmp,
        };
        c.index();
        c
    }

    pub fn index(&self) {
        let status = lookalike()
            .arg("--index-dir")
            .arg(&self.index)
            .args(["-q", "index"])
            .arg(&self.photos)
            .status()
            .unwrap();
        assert!(status.success(), "index failed: {status}");
    }

    pub fn serve(&self, extra: &[&str]) -> Server {
        self.serve_through(lookalike(), extra)
    }

    /// `serve` run by `command`, which is `lookalike` itself or a program that runs it (the
    /// binary is then its last argument).
    pub fn serve_through(&self, command: Command, extra: &[&str]) -> Server {
        self.serve_index_through(command, &self.index, extra)
    }

    /// `serve` run by `command` on the index `--index-dir index` names.
    pub fn serve_index_through(
        &self,
        mut command: Command,
        index: &Path,
        extra: &[&str],
    ) -> Server {
        let mut child = command
            .arg("--index-dir")
            .arg(index)
            .args(["-q", "serve", "--port", "0"])
            .args(extra)
            // each server's trash and action lock are its own
            .env("XDG_DATA_HOME", self.root.join("data"))
            .env("XDG_CACHE_HOME", self.root.join("cache"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let addr: SocketAddr = url
            .parse()
            .unwrap_or_else(|_| panic!("serve printed {line:?}"));
        let mut server = Server {
            child,
            http: Http { addr },
            token: String::new(),
        };
        let page = server.get("/");
        assert_eq!(page.status, 200);
        let html = page.text();
        let marker = "name=\"lookalike-token\" content=\"";
        let at = html.find(marker).unwrap() + marker.len();
        server.token = html[at..at + 32].to_string();
        server
    }
}

/// The exit status of `child` once it exits within `limit`; past it the child is killed and the
/// test fails naming `what`, so a command that hangs fails fast instead of stalling the run.
pub fn exit_within(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `lookalike serve`, stopped when dropped.
pub struct Server {
    child: Child,
    pub http: Http,
    /// The token the start page carries.
    pub token: String,
}

/// A minimal HTTP/1.1 client: one connection per request.
pub struct Http {
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

impl Http {
    /// One HTTP/1.1 request with the given raw target and headers; the whole answer.
    pub fn raw(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut req = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        s.write_all(req.as_bytes()).unwrap();
        // The server may answer (413) before reading a large body.
        let _ = s.write_all(body);
        // Read up to the end of the body the head announces: not every server closes.
        let mut all = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            if let Some(split) = all.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&all[..split]).to_ascii_lowercase();
                let have = all.len() - split - 4;
                let length = head.lines().find_map(|l| {
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                });
                let done = match length {
                    Some(n) => have >= n,
                    None if head.contains("transfer-encoding: chunked") => {
                        all.ends_with(b"0\r\n\r\n")
                    }
                    None => false,
                };
                if done {
                    break;
                }
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        let split = all
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP answer to {method} {target}"));
        let head = String::from_utf8_lossy(&all[..split]).into_owned();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut body = all[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = unchunk(&body);
        }
        Answer { status, head, body }
    }
}

impl Server {
    /// Sends the server `signal` (`TERM`, `INT`, `HUP`) and waits for its exit status.
    pub fn stop_with(&mut self, signal: &str) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        exit_within(
            &mut self.child,
            Duration::from_secs(30),
            &format!("serve after SIG{signal}"),
        )
    }

    pub fn raw(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        self.http.raw(method, target, headers, body)
    }

    pub fn get(&self, target: &str) -> Answer {
        self.raw("GET", target, &[], b"")
    }

    /// A POST carrying the page's token.
    pub fn post(&self, target: &str, content_type: &str, body: &[u8]) -> Answer {
        let token = self.token.clone();
        self.raw(
            "POST",
            target,
            &[
                ("x-lookalike-token", &token),
                ("content-type", content_type),
            ],
            body,
        )
    }
}

fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// Makes every folder and file under `dir` readable by all and writable by its owner only.
#[cfg(unix)]
pub fn readable_by_all_writable_by_owner(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        let mode = if entry.file_type().is_dir() {
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// A PNG of a few dozen bytes whose header declares `w` x `h` pixels (a decompression bomb).
pub fn png_with_header(w: u32, h: u32) -> Vec<u8> {
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

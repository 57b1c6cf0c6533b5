//! `lookalike serve`: a local web app over an index. Pages and assets are built into the
//! binary; images are served by id only; file-changing actions need the run's token.
//!
//! The server answers from its own read-only connections while `index` writes: a page reads
//! the database as it is, and the search space is reloaded in the background when the
//! database's data version moves or another HNSW dump is recorded; searches answered from the
//! previous space meanwhile say so.

mod overlong;
mod routes;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::collection::Collection;
use crate::decode::DecodeConfig;
use crate::error::{Error, Result};
use crate::features::Fusion;
use crate::query::Searcher;
use crate::store::Store;

/// How to serve.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    /// The address to listen on; loopback unless the user asks otherwise.
    pub(crate) bind: IpAddr,
    /// 0 picks a free port.
    pub(crate) port: u16,
    /// Folders holding `eval --report` outputs to list.
    pub(crate) reports: Vec<PathBuf>,
    /// Limits for decoding uploaded examples and making missing thumbnails.
    pub(crate) decode: DecodeConfig,
    /// Largest upload accepted for a query by example, in bytes.
    pub(crate) max_upload: usize,
    /// Host names answered besides the machine's addresses (`--allow-host`).
    pub(crate) allow_hosts: Vec<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            reports: Vec::new(),
            decode: DecodeConfig::default(),
            max_upload: DEFAULT_MAX_UPLOAD,
            allow_hosts: Vec::new(),
        }
    }
}

/// Uploads above this size are refused (413).
pub(crate) const DEFAULT_MAX_UPLOAD: usize = 32 << 20;

/// Thumbnails made on request for images indexed before thumbnails were stored, kept in memory.
const MADE_THUMBNAILS_KEPT: usize = 4096;

/// Idle read-only connections kept for later requests.
const IDLE_READERS_KEPT: usize = 8;

/// The note of a search answered from the space loaded before the index's last change, while
/// the current one loads.
const BEHIND_NOTE: &str = "the index changed: these results are from before its last change, while the search is reloading; ask again in a moment for current ones";

/// A bound server, ready to run.
pub(crate) struct Server {
    listener: TcpListener,
    app: Arc<App>,
}

/// A database file as (device, inode), where the platform tells.
type FileId = Option<(u64, u64)>;

/// The search space as loaded at one data version and dump record of one database file.
struct Loaded {
    version: u64,
    /// The HNSW dump's record as read before loading (`None`: no dump recorded).
    dump: Option<String>,
    database: FileId,
    searcher: Mutex<Searcher>,
}

/// State shared by every request.
pub(crate) struct App {
    collection: Collection,
    /// The command that brings this index up to date, as the pages advise it.
    refresh: String,
    /// The command that starts a server on this index, as its advice names it.
    serve: String,
    /// Random per run; POSTs that change files must carry it.
    token: String,
    /// Host headers accepted (DNS rebinding).
    hosts: HostRule,
    reports: Vec<PathBuf>,
    decode: DecodeConfig,
    max_upload: usize,
    /// Idle read connections, each with the database file (device, inode) it opened: an index
    /// deleted and made again at the same folder is another file.
    readers: Mutex<Vec<(FileId, Store)>>,
    loaded: RwLock<Option<Arc<Loaded>>>,
    reloading: AtomicBool,
    made_thumbnails: Mutex<HashMap<[u8; 32], Arc<Vec<u8>>>>,
    /// One file-changing action at a time.
    acting: Mutex<()>,
    /// The copies each recent dry run (by its plan's digest) left alone: its apply leaves them
    /// alone too.
    reviewed: Mutex<Vec<crate::cleanup::Reviewed>>,
}

impl Server {
    /// Binds the listening socket. The index must exist (made by `lookalike index`).
    pub(crate) fn bind(collection: Collection, cfg: ServeConfig) -> Result<Server> {
        if !collection.exists() {
            return Err(Error::NoIndex(collection.dir().to_path_buf()));
        }
        // Checks the schema now rather than on the first page, reads what `lookalike status`
        // reads and checks every page (thumbnails too): a damaged database is refused at start,
        // as the other commands refuse it, not met later as a failing page.
        collection.open_store_read_only()?.quick_check()?;
        crate::status::status(&collection, false)?;
        for dir in &cfg.reports {
            if !dir.is_dir() {
                let what = if dir.exists() {
                    "is not a folder"
                } else {
                    "does not exist"
                };
                return Err(Error::InvalidInput(format!(
                    "--reports {}: {what}; give a folder holding `lookalike eval --report` outputs (or one report's folder)",
                    crate::path_repr::shown(dir)
                )));
            }
        }
        let addr = SocketAddr::new(cfg.bind, cfg.port);
        let listener = TcpListener::bind(addr).map_err(|e| {
            Error::InvalidInput(format!(
                "cannot listen on {addr}: {}",
                bind_advice(addr, &e)
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io(Path::new("socket"), e))?
            .port();
        let mut names = vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            format!("{}:{port}", host_form(cfg.bind)),
        ];
        for name in &cfg.allow_hosts {
            names.push(format!("{name}:{port}"));
            if port == 80 {
                names.push(name.clone());
            }
        }
        let hosts = HostRule {
            names,
            any_address: !cfg.bind.is_loopback(),
            port,
        };
        let app = App {
            refresh: crate::collection::advised_command(collection.dir(), "index"),
            serve: crate::collection::advised_command(collection.dir(), "serve"),
            collection,
            token: new_token(),
            hosts,
            reports: cfg.reports,
            decode: cfg.decode,
            max_upload: cfg.max_upload,
            readers: Mutex::new(Vec::new()),
            loaded: RwLock::new(None),
            reloading: AtomicBool::new(false),
            made_thumbnails: Mutex::new(HashMap::new()),
            acting: Mutex::new(()),
            reviewed: Mutex::new(Vec::new()),
        };
        Ok(Server {
            listener,
            app: Arc::new(app),
        })
    }

    /// The address actually bound (the port chosen when 0 was asked for).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// The start page's address.
    pub(crate) fn url(&self) -> String {
        let addr = self.local_addr();
        format!("http://{}:{}/", host_form(addr.ip()), addr.port())
    }

    /// Serves until `stop` is set (by a signal), then lets the requests under way finish, for
    /// a few seconds at most.
    pub(crate) fn run(self, stop: &Arc<AtomicBool>) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(32)
            .enable_io()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the server runtime: {e}")))?;
        let io = |e: std::io::Error| Error::io(Path::new("socket"), e);
        self.listener.set_nonblocking(true).map_err(io)?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener).map_err(io)?;
            let stop = Arc::clone(stop);
            let stopped = async move {
                let _ = tokio::task::spawn_blocking(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    // a connection kept open by a client does not hold the exit up for long
                    std::thread::spawn(|| {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        std::process::exit(130);
                    });
                })
                .await;
            };
            axum::serve(overlong::Refusing(listener), routes::router(self.app))
                .with_graceful_shutdown(stopped)
                .await
                .map_err(io)
        })
    }
}

impl App {
    /// Runs `f` with a read-only connection of the pool (opened when none is idle).
    /// Connections to a database file that is no longer the index's are dropped.
    fn with_store<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let database = self.database();
        let idle = {
            let mut idle = self.readers.lock().expect("reader pool");
            idle.retain(|(opened, _)| *opened == database);
            idle.pop()
        };
        let store = match idle {
            Some((_, s)) => s,
            None => self.collection.open_store_read_only()?,
        };
        let out = f(&store);
        let mut idle = self.readers.lock().expect("reader pool");
        if idle.len() < IDLE_READERS_KEPT {
            idle.push((database, store));
        }
        out
    }

    /// The index's database file as (device, inode), where the platform tells.
    fn database(&self) -> FileId {
        crate::cleanup::file_id(&self.collection.db_path())
    }

    /// The search space at the database's current data version and dump: loaded on first use,
    /// then reloaded in the background when `index` has changed the database or recorded
    /// another dump, and at once when the database is another file (the index was deleted and
    /// made again: the previous space is of other images). A run's last write comes before its
    /// dump is recorded: a space loaded between the two holds a graph rebuilt in memory, and is
    /// loaded again from the dump. While a reload runs the previous space answers (a graph
    /// rebuilt for a large index takes minutes), with [`BEHIND_NOTE`] as the second value.
    fn searcher(self: &Arc<Self>) -> Result<(Arc<Loaded>, Option<&'static str>)> {
        let database = self.database();
        let (version, dump, images) = self.with_store(|s| {
            Ok((
                s.data_version()?,
                s.cached_meta(crate::collection::DUMP_KEY)?,
                s.image_count()?,
            ))
        })?;
        // emptied since the space was loaded, the space still holds the images it had
        if images == 0 {
            return Err(self.with_store(|s| Ok(self.collection.empty_index(s)))?);
        }
        let current = self.loaded.read().expect("search space").clone();
        match current {
            Some(loaded) if loaded.database != database => {
                Ok((self.load(version, dump, database)?, None))
            }
            Some(loaded) if is_current(&loaded, version, dump.as_deref()) => Ok((loaded, None)),
            Some(loaded) => {
                if !self.reloading.swap(true, Ordering::AcqRel) {
                    let app = Arc::clone(self);
                    std::thread::spawn(move || {
                        // A failed reload keeps the previous space; the next request retries.
                        let _ = app.load(version, dump, database);
                        app.reloading.store(false, Ordering::Release);
                    });
                }
                Ok((loaded, Some(BEHIND_NOTE)))
            }
            None => Ok((self.load(version, dump, database)?, None)),
        }
    }

    /// Loads the space; `version` and `dump` are read before it, so that a change made while
    /// it loads is met by the next request.
    fn load(&self, version: u64, dump: Option<String>, database: FileId) -> Result<Arc<Loaded>> {
        let fusion = Fusion::for_profile(self.collection.recorded_profile()?);
        let searcher = Searcher::open(&self.collection, &fusion)?;
        let loaded = Arc::new(Loaded {
            version,
            dump,
            database,
            searcher: Mutex::new(searcher),
        });
        *self.loaded.write().expect("search space") = Some(Arc::clone(&loaded));
        Ok(loaded)
    }

    /// A thumbnail made now from the file, when the index has none stored for it and the
    /// file still holds the indexed bytes; kept in memory. `None` when the file is gone or
    /// changed; an error when it cannot be read (as one the server may not read).
    fn made_thumbnail(&self, path: &Path, hash: &[u8; 32]) -> Result<Option<Arc<Vec<u8>>>> {
        if let Some(t) = self.made_thumbnails.lock().expect("thumbnails").get(hash) {
            return Ok(Some(Arc::clone(t)));
        }
        let bytes = match crate::decode::read_file_bounded(path, self.decode.max_file_size, "image")
        {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(Error::io(path, e));
            }
            Err(_) => return Ok(None),
        };
        if blake3::hash(&bytes).as_bytes() != hash {
            return Ok(None);
        }
        let jpeg = Arc::new(crate::thumbnail::from_bytes(&bytes, path, &self.decode)?);
        let mut made = self.made_thumbnails.lock().expect("thumbnails");
        if made.len() >= MADE_THUMBNAILS_KEPT {
            made.clear();
        }
        made.insert(*hash, Arc::clone(&jpeg));
        Ok(Some(jpeg))
    }

    /// Report folders: each given folder holding `index.html` and `report.json`, or its
    /// sub-folders that do, in name order.
    fn report_dirs(&self) -> Vec<PathBuf> {
        let is_report =
            |d: &Path| d.join("index.html").is_file() && d.join("report.json").is_file();
        let mut out = Vec::new();
        // a report reached twice (a folder given twice, or with one of its reports) is one
        let mut seen = std::collections::HashSet::new();
        let mut add = |out: &mut Vec<PathBuf>, dir: PathBuf| {
            if seen.insert(std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone())) {
                out.push(dir);
            }
        };
        for dir in &self.reports {
            if is_report(dir) {
                add(&mut out, dir.clone());
                continue;
            }
            let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| is_report(p))
                .collect();
            subs.sort();
            for sub in subs {
                add(&mut out, sub);
            }
        }
        out
    }
}

/// True when `loaded` was loaded at data version `version` with the dump recorded as `dump`:
/// a dump recorded since (a run's graph, written after its last change) is loaded again.
fn is_current(loaded: &Loaded, version: u64, dump: Option<&str>) -> bool {
    loaded.version == version && loaded.dump.as_deref() == dump
}

/// An address as written in a URL's host part.
/// Which Host headers are answered. A page from another site whose name was made to point at
/// this machine (DNS rebinding) sends its own name: only the machine's loopback names, its
/// listening address and the names allowed with `--allow-host` are answered. Bound to a
/// non-loopback address, any address written as an IP (how other machines reach it without a
/// name) is answered too: no DNS answer can stand behind an address.
pub(crate) struct HostRule {
    names: Vec<String>,
    any_address: bool,
    port: u16,
}

impl HostRule {
    pub(crate) fn allows(&self, host: &str) -> bool {
        if self.names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
            return true;
        }
        if !self.any_address {
            return false;
        }
        // `name[:port]`, the name of an IPv6 address in brackets
        let (name, port) = match host.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((v6, "")) => (v6, None),
                Some((v6, port)) => match port.strip_prefix(':') {
                    Some(port) => (v6, Some(port)),
                    None => return false,
                },
                None => return false,
            },
            None => match host.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            },
        };
        let port_ok = match port {
            Some(p) => p.parse::<u16>() == Ok(self.port),
            None => self.port == 80,
        };
        port_ok && name.parse::<IpAddr>().is_ok()
    }
}

/// What went wrong binding `addr`, and what to do about it.
fn bind_advice(addr: SocketAddr, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => format!(
            "{e}; another program uses port {}: choose another --port (0 picks a free one)",
            addr.port()
        ),
        ErrorKind::AddrNotAvailable => format!(
            "{e}; {} is not an address of this machine: use --bind 127.0.0.1 (this machine only) or one of this machine's own addresses",
            addr.ip()
        ),
        ErrorKind::PermissionDenied => format!(
            "{e}; ports under 1024 need administrator privileges: choose --port 1024 or above (0 picks a free one)"
        ),
        _ => format!("{e}; check --bind and --port"),
    }
}

fn host_form(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// 128 random bits in hex, from the operating system.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_err() {
        // No /dev/urandom: the hash of the clock, the process and an address is still not
        // guessable from another site.
        let seed = format!(
            "{:?}{}{:p}",
            std::time::SystemTime::now(),
            std::process::id(),
            &bytes
        );
        bytes.copy_from_slice(&blake3::hash(seed.as_bytes()).as_bytes()[..16]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_bind_gets_advice_for_its_cause() {
        use std::io::{Error as IoError, ErrorKind};
        let addr = SocketAddr::from(([192, 0, 2, 1], 8080));
        let in_use = bind_advice(addr, &IoError::from(ErrorKind::AddrInUse));
        assert!(in_use.contains("choose another --port"), "{in_use}");
        let foreign = bind_advice(addr, &IoError::from(ErrorKind::AddrNotAvailable));
        assert!(
            foreign.contains("192.0.2.1 is not an address of this machine")
                && foreign.contains("--bind 127.0.0.1")
                && !foreign.contains("--port"),
            "{foreign}"
        );
        let low = bind_advice(
            SocketAddr::from(([127, 0, 0, 1], 80)),
            &IoError::from(ErrorKind::PermissionDenied),
        );
        assert!(
            low.contains("ports under 1024 need administrator privileges"),
            "{low}"
        );
    }

    #[test]
    fn host_names_answered_are_the_machines_own_and_those_allowed() {
        let loopback = HostRule {
            names: vec!["127.0.0.1:8080".into(), "localhost:8080".into()],
            any_address: false,
            port: 8080,
        };
        assert!(loopback.allows("LOCALHOST:8080"));
        assert!(!loopback.allows("192.168.1.5:8080"));
        assert!(!loopback.allows("evil.example:8080"));
        let open = HostRule {
            names: vec!["photos.lan:8080".into()],
            any_address: true,
            port: 8080,
        };
        for ok in ["192.168.1.5:8080", "[fe80::1]:8080", "photos.lan:8080"] {
            assert!(open.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "192.168.1.5:8081",
            "192.168.1.5",
            "[fe80::1]",
            "[fe80::1:8080",
            "1.2.3.4.evil.example:8080",
            "",
        ] {
            assert!(!open.allows(refused), "{refused}");
        }
        let on_80 = HostRule {
            names: Vec::new(),
            any_address: true,
            port: 80,
        };
        assert!(on_80.allows("10.0.0.2") && on_80.allows("10.0.0.2:80"));
    }
}

//! `lookalike serve`: arguments to [`crate::serve`], the address printed, the browser opened.

use super::PathArg;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::collection::Collection;
use crate::error::Result;
use crate::serve::{DEFAULT_MAX_UPLOAD, ServeConfig, Server};

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on. Anything but a loopback address lets other machines in.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Open the app in the default browser.
    #[arg(long)]
    open: bool,
    /// A folder of `eval --report` outputs (or one report) to list; repeatable.
    #[arg(long, value_name = "DIR", value_parser = PathArg)]
    reports: Vec<PathBuf>,
    /// Largest upload for a search by example, in MiB (1-1024).
    #[arg(long, default_value_t = DEFAULT_MAX_UPLOAD >> 20, value_parser = super::usize_in(1..=1024))]
    max_upload_mib: usize,
    /// Memory decoding one uploaded example or missing thumbnail may use, in MiB (64 to 65536;
    /// default 512).
    #[arg(long, value_name = "MIB", value_parser = super::usize_in(64..=65_536))]
    memory_budget: Option<usize>,
    /// Also answer requests addressed to this host name (the machine's name on the network);
    /// repeatable. Other names are refused, so that no web page can reach the app through a
    /// name made to point here (DNS rebinding).
    #[arg(long, value_name = "NAME", value_parser = parse_host_name)]
    allow_host: Vec<String>,
}

/// A host name as a Host header carries it: letters, digits, dots and dashes.
fn parse_host_name(s: &str) -> std::result::Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "'{s}' is not a host name (letters, digits, dots and dashes, without a port)"
        ))
    }
}

pub(crate) fn cmd_serve(collection: &Collection, args: ServeArgs, quiet: bool) -> Result<ExitCode> {
    let config = ServeConfig {
        bind: args.bind,
        port: args.port,
        reports: args.reports,
        max_upload: args.max_upload_mib << 20,
        decode: super::decode_config(args.memory_budget),
        allow_hosts: args.allow_host,
    };
    crate::collection::name_the_index_in_every_advice();
    let server = Server::bind(collection.clone(), config)?;
    let url = server.url();
    if !args.bind.is_loopback() {
        note!(
            "warning: listening on {}: anyone who can reach this machine can browse the indexed images and, with the page's token, act on duplicates (requests by name are refused unless allowed with --allow-host)",
            server.local_addr()
        );
    }
    // The address goes to stdout (scripts read it); the rest to stderr.
    println!("{url}");
    if !quiet {
        note!(
            "serving the index at {} on {url} (Ctrl-C stops)",
            crate::path_repr::shown(collection.dir())
        );
    }
    if args.open {
        open_in_browser(&url);
    }
    // Ctrl-C, SIGTERM or SIGHUP stop the server as they stop the other commands: exit 130
    let stop = super::install_stop_flag_saying("answering the requests under way");
    server.run(&stop)?;
    Ok(ExitCode::from(super::EXIT_INTERRUPTED))
}

/// Opens `url` in the default browser. The opener's own output is not shown: when it cannot
/// be run or fails (no browser), one warning says to open the address by hand.
fn open_in_browser(url: &str) {
    use std::process::{Command, Stdio};
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let by_hand = move |why: String, url: &str| {
        note!("warning: could not open a browser ({opener}: {why}); open {url} by hand");
    };
    let spawned = Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Err(e) => by_hand(e.to_string(), url),
        // the opener may wait for the browser: the server starts meanwhile
        Ok(mut child) => {
            let url = url.to_string();
            std::thread::spawn(move || match child.wait() {
                Ok(status) if status.success() => {}
                Ok(status) => by_hand(status.to_string(), &url),
                Err(e) => by_hand(e.to_string(), &url),
            });
        }
    }
}

//! The web app's routes: the page and its assets, JSON endpoints, thumbnails and image files
//! by id, duplicate actions and undo, eval reports; and the guard every request passes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{
    DefaultBodyLimit, FromRequestParts, Json, Path as UrlPath, Query, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use crate::cleanup::{self, Action};
use crate::duplicates::{KeepRule, Similarity, find_in_store, listing_json};
use crate::error::{Error, Result};
use crate::query::{QueryConfig, QueryResult};
use crate::store::ImageRecord;

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");
/// The page's icon, also where browsers look for one unasked.
const ICON: &[u8] = include_bytes!("assets/favicon.png");

/// The page's own scripts and styles only; images from this server (and dropped files).
const PAGE_POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'";
/// Eval reports: inline styles and pictures, no scripts, no network.
const REPORT_POLICY: &str =
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox";
/// A refused address's page: text and a link, nothing else.
pub(super) const REFUSAL_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'";
/// Image files: shown, never run.
const FILE_POLICY: &str = "default-src 'none'; sandbox";

/// Header carrying the run's token on requests that change anything.
const TOKEN_HEADER: &str = "x-lookalike-token";

/// Look-alikes listed on an image's page unless asked otherwise.
const DEFAULT_LOOKALIKES: usize = 24;
/// Grid page size bounds.
const MAX_PAGE: u64 = 500;
const DEFAULT_PAGE: u64 = 60;
/// Largest JSON request body: a plan request lists at most one keeper per group.
const MAX_JSON_BODY: usize = 16 << 20;

pub(super) fn router(app: Arc<App>) -> Router {
    let upload_limit = DefaultBodyLimit::max(app.max_upload);
    let json_limit = DefaultBodyLimit::max(MAX_JSON_BODY);
    // on the POSTs alone: a method an address does not take is 405, whatever it carries
    let changes = middleware::from_fn_with_state(Arc::clone(&app), token_and_origin);
    Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route("/app.css", get(style))
        .route("/favicon.ico", get(icon))
        .route("/api/status", get(status))
        .route("/api/folders", get(folders))
        .route("/api/images", get(images))
        .route("/api/images/{id}", get(image))
        .route("/thumbs/{id}", get(thumbnail))
        .route("/files/{id}", get(file))
        .route(
            "/api/query",
            post(query).layer(upload_limit).route_layer(changes.clone()),
        )
        .route("/api/duplicates", get(duplicates))
        .route(
            "/api/duplicates/action",
            post(act).layer(json_limit).route_layer(changes.clone()),
        )
        .route(
            "/api/undo",
            post(undo).layer(json_limit).route_layer(changes),
        )
        .route("/api/reports", get(reports))
        .route("/reports/{n}/{*file}", get(report_file))
        .fallback(unknown_address)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), guard))
        .with_state(app)
}

/// Refuses requests for another host name (DNS rebinding); gives every refusal the form of its
/// address (JSON under `/api/`, the HTML page elsewhere); adds the headers every answer carries.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let response = checked(&app, req, next).await;
    let mut response = if response.status().is_client_error() || response.status().is_server_error()
    {
        refusal_for(api, response).await
    } else {
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The answer to `req` once its host passes; a body over its limit is told with the limit to
/// keep to.
async fn checked(app: &App, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !app.hosts.allows(&host) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only for its own addresses (Host header refused); to reach it by a name, start it with --allow-host NAME",
        );
    }
    let upload = req.uri().path() == "/api/query";
    let response = next.run(req).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || json {
        return response;
    }
    let why = if upload {
        format!(
            "the upload is over {} MiB: send a smaller image (or start the server with a larger --max-upload-mib)",
            app.max_upload >> 20
        )
    } else {
        format!(
            "the request body is over {} MiB, the most a JSON request may carry: send a smaller one (fewer keepers, or none for every group)",
            MAX_JSON_BODY >> 20
        )
    };
    refuse(StatusCode::PAYLOAD_TOO_LARGE, &why)
}

/// Refuses a POST without the run's token or from another origin (another site's page);
/// routed to the POST handlers only.
async fn token_and_origin(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let token_ok = req
        .headers()
        .get(TOKEN_HEADER)
        .is_some_and(|t| t.as_bytes() == app.token.as_bytes());
    if !token_ok {
        return refuse(
            StatusCode::FORBIDDEN,
            "missing or wrong token: reload the page (each server run has its own)",
        );
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if let Some(origin) = req.headers().get(header::ORIGIN)
        && origin.as_bytes() != format!("http://{host}").as_bytes()
    {
        return refuse(StatusCode::FORBIDDEN, "request from another site refused");
    }
    next.run(req).await
}

/// A refusal (status 400 or above) in the form of its address: under `/api/` (`api`) JSON
/// `{"error"}`, elsewhere (addresses a browser opens) the HTML page. The framework's own
/// refusals come in plain text or empty, the handlers' in JSON: their words are kept, and
/// their headers but the body's own (`Allow` of a 405).
async fn refusal_for(api: bool, response: Response) -> Response {
    let content_type = |r: &Response, prefix: &[u8]| {
        r.headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(prefix))
    };
    if (api && content_type(&response, b"application/json"))
        || (!api && content_type(&response, b"text/html"))
    {
        return response;
    }
    let status = response.status();
    let from_json = content_type(&response, b"application/json");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = if from_json {
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_default()
    } else {
        String::from_utf8_lossy(&bytes).trim().to_string()
    };
    let why = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    } else {
        text
    };
    let mut refusal = if api {
        refuse(status, &why)
    } else {
        refusal_page(
            status,
            &format!(
                "<p>The address was refused: {}.</p>\n<p><a href=\"/\">/</a> is the app's start page.</p>",
                page_text(why.trim_end_matches('.'))
            ),
        )
    };
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && name != header::CONTENT_SECURITY_POLICY
        {
            refusal.headers_mut().append(name, value.clone());
        }
    }
    refusal
}

/// An address the app has no page for (a trailing slash, an extra path segment): 404 in JSON
/// under `/api/`, else the refusal page, linking to the address without its trailing slash.
async fn unknown_address(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!(
                "no endpoint at {path}: /api/status, /api/folders, /api/images, /api/images/ID, /api/query, /api/duplicates, /api/duplicates/action, /api/undo and /api/reports are"
            ),
        );
    }
    let esc = crate::eval::report::html::escape;
    let trimmed = path.trim_end_matches('/');
    let without = if path.ends_with('/') && !trimmed.is_empty() {
        format!(
            "<p>Without its trailing slash: <a href=\"{0}\">{0}</a>.</p>\n",
            esc(trimmed)
        )
    } else {
        String::new()
    };
    refusal_page(
        StatusCode::NOT_FOUND,
        &format!(
            "<p>The address was refused: the app has no page at {}.</p>\n{without}<p><a href=\"/\">/</a> is the app's start page.</p>",
            page_text(path)
        ),
    )
}

/// A refusal in JSON `{"error"}`; control and invisible characters in `why` (request text
/// it quotes) are escaped, as the command line escapes its messages.
fn refuse(status: StatusCode, why: &str) -> Response {
    let why = crate::path_repr::escape_message(why);
    (status, Json(json!({ "error": why }))).into_response()
}

/// Text of a request quoted in a refusal: control and invisible characters escaped, a
/// backslash doubled, as names are shown.
fn quoted(text: &str) -> String {
    crate::path_repr::escape_text(text)
}

/// A refusal's words for an HTML page: escaped as [`refuse`] escapes them, then as HTML.
fn page_text(why: &str) -> String {
    crate::eval::report::html::escape(&crate::path_repr::escape_message(why))
}

/// The query parameters an endpoint takes, as `T` (`#[serde(deny_unknown_fields)]`); any
/// other, or one of the wrong type, is refused with 400 naming it: in JSON under `/api/`, and
/// elsewhere (addresses a browser opens: the page, files, thumbnails, reports) as an HTML page
/// that links to the same address without the parameters it does not know.
struct Params<T>(T);

/// The image id of an address (`/api/images/ID`, `/thumbs/ID`, `/files/ID`); any other text
/// is refused with 400 in the app's words.
struct ImageId(i64);

impl<S: Send + Sync> FromRequestParts<S> for ImageId {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Self, Response> {
        let text = path_text(parts, state).await?;
        text.parse().map(ImageId).map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                &format!(
                    "`{}` is not an image id: ids are whole numbers (/api/images lists them)",
                    quoted(&text)
                ),
            )
        })
    }
}

/// The one segment an address takes (decoded), or its refusal when it is not UTF-8.
async fn path_text<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> std::result::Result<String, Response> {
    match UrlPath::<String>::from_request_parts(parts, state).await {
        Ok(UrlPath(text)) => Ok(text),
        Err(_) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "the address holds bytes that are not UTF-8 where an id goes: ids are whole numbers",
        )),
    }
}

/// For endpoints that take no query parameter (or no body field).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> std::result::Result<Self, Response> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(t)) => Ok(Params(t)),
            Err(rejection) => {
                let why = query_refusal(&rejection);
                if parts.uri.path().starts_with("/api/") {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        &format!("the query was refused: {why}"),
                    ));
                }
                Err(refused_page::<T>(parts.uri.path(), parts.uri.query(), &why))
            }
        }
    }
}

/// The deserializer's words for a refused query, without the framework's lead.
fn query_refusal(rejection: &dyn std::error::Error) -> String {
    let mut why = rejection.to_string();
    let mut source = rejection.source();
    while let Some(e) = source {
        why = e.to_string();
        source = e.source();
    }
    why.replace("unknown field", "unknown query parameter")
        .replace("there are no fields", "this address takes none")
}

/// The name in a refusal of an unknown query parameter.
fn unknown_parameter(why: &str) -> Option<&str> {
    why.split_once("unknown query parameter `")?
        .1
        .split_once('`')
        .map(|(name, _)| name)
}

/// The answer to a refused query at an address a browser opens: an HTML page (400) naming the
/// parameters the address does not know and linking to it without them (tracking tags such
/// as `utm_source` or `fbclid` that a shared link picked up).
fn refused_page<T: serde::de::DeserializeOwned>(
    path: &str,
    query: Option<&str>,
    why: &str,
) -> Response {
    let mut kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    let mut unknown: Vec<String> = Vec::new();
    let mut last = why.to_string();
    // one unknown parameter is named at a time: left out, the rest is tried again
    while let Some(name) = unknown_parameter(&last).map(str::to_string) {
        let before = kept.len();
        kept.retain(|pair| query_key(pair).as_deref() != Some(name.as_str()));
        unknown.push(name);
        if kept.len() == before {
            // not found as written: the link leaves the whole query out
            break;
        }
        let uri = format!("{path}?{}", kept.join("&"));
        match uri
            .parse::<axum::http::Uri>()
            .map_err(|e| e.to_string())
            .and_then(|u| Query::<T>::try_from_uri(&u).map_err(|e| query_refusal(&e)))
        {
            Ok(_) => {
                last.clear();
                break;
            }
            Err(why) => last = why,
        }
    }
    // a bad value of a known parameter: the link leaves the query out
    if !last.is_empty() {
        kept.clear();
    }
    // a path of one leading slash: `//host` would lead off this server
    let mut href = format!("/{}", path.trim_start_matches('/'));
    if !kept.is_empty() {
        href = format!("{href}?{}", kept.join("&"));
    }
    let link = format!(
        "<a href=\"{0}\">{0}</a>",
        crate::eval::report::html::escape(&href)
    );
    let what = if unknown.is_empty() {
        format!(
            "<p>The address was refused: {}.</p>\n<p>{link} is the same address without its query.</p>",
            page_text(why)
        )
    } else {
        let names: Vec<String> = unknown
            .iter()
            .map(|n| format!("<code>{}</code>", page_text(&quoted(n))))
            .collect();
        let (noun, them) = if unknown.len() == 1 {
            ("parameter", "it")
        } else {
            ("parameters", "them")
        };
        format!(
            "<p>This address does not know the query {noun} {} (added to a shared link, as tracking tags are).</p>\n<p>{link} is the same address without {them}.</p>",
            names.join(", ")
        )
    };
    refusal_page(StatusCode::BAD_REQUEST, &what)
}

/// The HTML page refusing an address a browser opens, with `status` and `what` (HTML) says.
fn refusal_page(status: StatusCode, what: &str) -> Response {
    let mut r = with_type(
        refusal_html(what),
        "text/html; charset=utf-8",
        REFUSAL_POLICY,
    );
    *r.status_mut() = status;
    r
}

/// The refusal page's HTML, with what `what` (HTML) says.
pub(super) fn refusal_html(what: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Address refused: lookalike</title></head>\n<body><h1>Address refused</h1>\n{what}\n</body></html>\n"
    )
}

/// The decoded name of one `name=value` pair of a query.
fn query_key(pair: &str) -> Option<String> {
    let uri = format!("/?{pair}").parse::<axum::http::Uri>().ok()?;
    Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .ok()?
        .0
        .pop()
        .map(|(name, _)| name)
}

/// The answer for an error of the library: its message, with a status saying whose fault.
fn error_response(e: &Error, serve: &str) -> Response {
    let (status, why) = error_answer(e, serve);
    refuse(status, &why)
}

/// The status and message of [`error_response`]: a damaged database is told with what to do,
/// as the command line tells it; `serve` starts a server on this index.
fn error_answer(e: &Error, serve: &str) -> (StatusCode, String) {
    let status = match e {
        Error::InvalidInput(_) | Error::InvalidWithCommand { .. } | Error::Parse { .. } => {
            StatusCode::BAD_REQUEST
        }
        Error::Decode { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::NoIndex(_) => StatusCode::NOT_FOUND,
        Error::EmptyIndex { .. } | Error::Locked { .. } | Error::ActionRunning(_) => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    match e {
        Error::Db { path, .. } if e.is_corrupt() => (
            status,
            format!(
                "the index database {} is damaged: {}",
                crate::path_repr::shown(path),
                crate::error::damaged_database_advice(path)
            ),
        ),
        _ => (status, in_web_terms(&e.to_string(), serve)),
    }
}

/// The command line's words in the library's messages, and the web app's for the same: its
/// parameters and actions, and how the server is started.
const WEB_TERMS: [(&str, &str); 13] = [
    ("--keep \"", "the keep parameter \""),
    ("(`--keep`)", "(the keep parameter)"),
    (
        "give the command a larger `--memory-budget MIB`",
        "start `{serve} --memory-budget MIB` with a larger budget",
    ),
    (
        "try a larger `--memory-budget MIB`",
        "start `{serve} --memory-budget MIB` with a larger budget",
    ),
    (
        "a larger `--memory-budget MIB` raises the limit in proportion",
        "starting `{serve} --memory-budget MIB` with a larger budget raises the limit in proportion",
    ),
    ("use --move-to DIR", "use the move-to action"),
    ("(use --move-to for it)", "(use the move-to action for it)"),
    (
        "(use --move-to or --trash for it)",
        "(use the move-to or trash action for it)",
    ),
    ("inside the --move-to folder", "inside the move-to target"),
    (
        "--move-to needs a folder",
        "the move-to action needs a target folder",
    ),
    ("--move-to: ", "the move-to target: "),
    ("--move-to ", "the move-to target "),
    ("--trash: ", "the trash action: "),
];

/// A message of the library in the web app's terms ([`WEB_TERMS`]): no flag is named as if
/// the user had typed it, and a server to start again is `serve`, the command that starts one
/// on this index.
fn in_web_terms(why: &str, serve: &str) -> String {
    WEB_TERMS.iter().fold(why.to_string(), |why, (cli, web)| {
        why.replace(cli, &web.replace("{serve}", serve))
    })
}

/// A decoder's refusal without its closing advice in parentheses to raise `--memory-budget`,
/// for a message that gives the advice in its own words.
fn without_budget_advice(reason: &str) -> &str {
    match reason.rfind(" (") {
        Some(at) if reason.ends_with(')') && reason[at..].contains("--memory-budget") => {
            &reason[..at]
        }
        _ => reason,
    }
}

/// The reasons (`reason`, `left_alone`) anywhere in `doc` in the web app's terms.
fn reasons_in_web_terms(doc: &mut Value, serve: &str) {
    match doc {
        Value::Object(m) => {
            for (key, value) in m.iter_mut() {
                match value {
                    Value::String(why) if key == "reason" || key == "left_alone" => {
                        *why = in_web_terms(why, serve);
                    }
                    _ => reasons_in_web_terms(value, serve),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| reasons_in_web_terms(item, serve)),
        _ => {}
    }
}

/// The answer for an indexed file (or a folder on its way) that cannot be opened: 404 only
/// when it is gone, 403 when this server may not read it.
fn unreadable_file(path: &Path, e: &std::io::Error, refresh: &str) -> Response {
    use std::io::ErrorKind;
    let shown = crate::path_repr::shown(path);
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => refuse(
            StatusCode::NOT_FOUND,
            &format!("{shown}: the file is gone: run `{refresh}` to bring the index up to date"),
        ),
        ErrorKind::PermissionDenied => refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "{shown}: permission denied: the server cannot read this file or a folder on its way; give the user running `lookalike serve` read access to them (or run the server as a user who has it)"
            ),
        ),
        _ => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{shown}: cannot be read: {e}"),
        ),
    }
}

/// The answer for an indexed file whose path now holds a folder: the file is gone (404).
fn now_a_folder(path: &Path, refresh: &str) -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        &format!(
            "{}: a folder now stands at this path; the indexed file is gone: run `{refresh}` to bring the index up to date",
            crate::path_repr::shown(path)
        ),
    )
}

/// Runs blocking work (the database, decoding, files) off the async workers.
async fn blocking(
    serve: String,
    f: impl FnOnce() -> Result<Response> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => error_response(&e, &serve),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "request handler crashed"),
    }
}

fn with_type(body: impl Into<Body>, content_type: &'static str, policy: &'static str) -> Response {
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    r
}

async fn page(State(app): State<Arc<App>>, _: Params<Nothing>) -> Response {
    let mut r = with_type(
        PAGE.replace("{{token}}", &app.token).replace(
            "{{refresh}}",
            &crate::eval::report::html::escape(&app.refresh),
        ),
        "text/html; charset=utf-8",
        PAGE_POLICY,
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn script(_: Params<Nothing>) -> Response {
    with_type(SCRIPT, "text/javascript; charset=utf-8", PAGE_POLICY)
}

async fn style(_: Params<Nothing>) -> Response {
    with_type(STYLE, "text/css; charset=utf-8", PAGE_POLICY)
}

async fn icon(_: Params<Nothing>) -> Response {
    with_type(ICON, "image/png", FILE_POLICY)
}

/// An image as the pages show it. `viewable` only when `/files/ID` would serve it: the file
/// is opened as serving opens it, so one this server may not read is not viewable even with
/// its stamp unchanged. A file whose stamp changed (touched, its mode changed) is viewable when
/// it still holds the bytes indexed; only such files of the indexed size are read.
fn image_json(r: &ImageRecord, refresh: &str) -> Value {
    let mut m = crate::path_repr::object("path", &r.path);
    // Relative to its folder: names like "original.jpg" repeat across sub-folders.
    crate::path_repr::insert(&mut m, "name", &r.rel_path);
    m.insert("id".into(), json!(r.id));
    crate::path_repr::insert(&mut m, "folder", &r.root);
    m.insert("width".into(), json!(r.width));
    m.insert("height".into(), json!(r.height));
    m.insert("bytes".into(), json!(r.stamp.size));
    m.insert("format".into(), json!(r.format));
    // A stamp recorded as unsettled holds no time; the file's own says when it was written.
    let modified = if r.stamp.mtime_ns == crate::store::FileStamp::UNSETTLED_MTIME {
        std::fs::metadata(&r.path).ok().map(|m| {
            crate::store::FileStamp::of(&m)
                .mtime_ns
                .div_euclid(1_000_000_000)
        })
    } else {
        Some(r.stamp.mtime_ns.div_euclid(1_000_000_000))
    };
    m.insert("modified_unix".into(), json!(modified));
    // what `/files/ID` serves: a browser format, a regular file inside its folder that this
    // server can open, with the bytes indexed (told here by the file's stamp; an unsettled one
    // by its size and change time)
    let opened = open_served(r);
    let as_indexed = opened.as_ref().is_ok_and(|(_, file, meta)| {
        let now = crate::store::FileStamp::of(meta);
        now.matches(&r.stamp)
            || (r.stamp.mtime_ns == crate::store::FileStamp::UNSETTLED_MTIME
                && now.size == r.stamp.size
                && r.stamp.ctime_ns != 0
                && now.ctime_ns == r.stamp.ctime_ns)
            || (meta.len() == r.stamp.size && {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut &*file, &mut bytes).is_ok()
                    && blake3::hash(&bytes).as_bytes() == &r.hash
            })
    });
    let viewable = browser_type(&r.format).is_some() && as_indexed;
    m.insert("viewable".into(), json!(viewable));
    // a gone or changed file is told so whatever its format
    let why = match &opened {
        _ if viewable => None,
        Err(not) => Some(not.why(refresh)),
        Ok(_) if !as_indexed => Some(format!(
            "the file changed since it was indexed: run `{refresh}` to bring the index up to date"
        )),
        Ok(_) => Some(not_shown_by_browsers(&r.format)),
    };
    m.insert("why_not_viewable".into(), json!(why));
    Value::Object(m)
}

/// An image of a folder's view, named relative to the folder viewed: in the view of a tracked
/// folder inside another, an image stored under the outer one is `100.jpg`, not `trip/100.jpg`.
fn image_in_folder_json(r: &ImageRecord, viewed: &Path, refresh: &str) -> Value {
    let mut v = image_json(r, refresh);
    if let (Ok(rel), Some(m)) = (r.path.strip_prefix(viewed), v.as_object_mut()) {
        m.remove("name_bytes");
        crate::path_repr::insert(m, "name", rel);
    }
    v
}

/// Why `/files/ID` does not serve an indexed file, found before its bytes are read.
enum NotServed {
    /// The file, or its indexed folder, cannot be opened: gone, or not readable by this server.
    Unopened(PathBuf, std::io::Error),
    /// A folder stands at the file's path.
    Folder,
    /// The path leads out of its indexed folder (a symlink).
    Outside,
    /// Not a regular file.
    Special,
}

impl NotServed {
    /// The refusal `/files/ID` answers.
    fn response(&self, r: &ImageRecord, refresh: &str) -> Response {
        match self {
            NotServed::Unopened(path, e) => unreadable_file(path, e, refresh),
            NotServed::Folder => now_a_folder(&r.path, refresh),
            NotServed::Outside => refuse(
                StatusCode::FORBIDDEN,
                "the file leads out of its indexed folder (a symlink): not served",
            ),
            NotServed::Special => refuse(StatusCode::FORBIDDEN, "not a regular file: not served"),
        }
    }

    /// The same, in the words a page shows next to the image.
    fn why(&self, refresh: &str) -> String {
        use std::io::ErrorKind;
        match self {
            NotServed::Unopened(_, e) if e.kind() == ErrorKind::PermissionDenied => {
                "the server cannot read this file or a folder on its way (permission denied)".into()
            }
            NotServed::Unopened(_, e)
                if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) =>
            {
                format!("the file is gone from disk: run `{refresh}` to bring the index up to date")
            }
            NotServed::Unopened(_, e) => format!("the file cannot be read ({e})"),
            NotServed::Folder => format!(
                "a folder now stands at this path; the indexed file is gone: run `{refresh}` to bring the index up to date"
            ),
            NotServed::Outside => {
                "the file leads out of its indexed folder (a symlink), so it is not served".into()
            }
            NotServed::Special => "it is not a regular file, so it is not served".into(),
        }
    }
}

/// Opens an indexed file as `/files/ID` does before reading it: a regular file inside its
/// indexed folder, opened for reading by this server. Gives its real path, the open file and
/// its metadata.
fn open_served(
    r: &ImageRecord,
) -> std::result::Result<(PathBuf, std::fs::File, std::fs::Metadata), NotServed> {
    let real =
        std::fs::canonicalize(&r.path).map_err(|e| NotServed::Unopened(r.path.clone(), e))?;
    let root =
        std::fs::canonicalize(&r.root).map_err(|e| NotServed::Unopened(r.root.clone(), e))?;
    if !real.starts_with(&root) {
        return Err(NotServed::Outside);
    }
    let meta = std::fs::metadata(&real).map_err(|e| NotServed::Unopened(r.path.clone(), e))?;
    if meta.is_dir() {
        return Err(NotServed::Folder);
    }
    if !meta.is_file() {
        return Err(NotServed::Special);
    }
    let file = std::fs::File::open(&real).map_err(|e| NotServed::Unopened(r.path.clone(), e))?;
    Ok((real, file, meta))
}

/// Why an image in `format`, which browsers do not show, offers no original.
fn not_shown_by_browsers(format: &str) -> String {
    format!("browsers do not show {format} files; the thumbnail stands for it")
}

/// The content type of a format browsers show, if they do.
fn browser_type(format: &str) -> Option<&'static str> {
    Some(match format {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "ico" => "image/x-icon",
        "avif" => "image/avif",
        _ => return None,
    })
}

async fn status(State(app): State<Arc<App>>, _: Params<Nothing>) -> Response {
    blocking(app.serve.clone(), move || {
        let report = crate::status::status(&app.collection, false)?;
        let mut doc = report.to_json(app.collection.dir());
        // the command that resumes the last run, as `lookalike status` gives it
        if let (Some(run), Some(Value::Object(last))) = (&report.last_run, doc.get_mut("last_run"))
        {
            let resume = crate::status::resume_command(&app.collection, run, &report.roots);
            last.insert("resume".into(), json!(resume));
        }
        let loaded = app
            .loaded
            .read()
            .expect("search space")
            .as_ref()
            .map(|l| l.version);
        let (version, folders) = app.with_store(|s| Ok((s.data_version()?, folders_json(s)?)))?;
        doc["folders"] = folders;
        doc["data_version"] = json!(version);
        doc["search_space_version"] = json!(loaded);
        doc["reports"] = json!(app.report_dirs().len());
        Ok(Json(doc).into_response())
    })
    .await
}

/// Tracked folders in path order, each with its id and image count.
fn folders_json(s: &crate::store::Store) -> Result<Value> {
    let counts = s.image_counts()?;
    let mut folders: Vec<(i64, PathBuf)> = s.roots()?.into_iter().collect();
    folders.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(folders
        .iter()
        .map(|(id, path)| {
            let mut m = crate::path_repr::object("path", path);
            m.insert("id".into(), json!(id));
            m.insert("images".into(), json!(counts.get(id).copied().unwrap_or(0)));
            Value::Object(m)
        })
        .collect())
}

async fn folders(State(app): State<Arc<App>>, _: Params<Nothing>) -> Response {
    blocking(app.serve.clone(), move || {
        app.with_store(|s| {
            let doc = json!({"images": s.image_count()?, "folders": folders_json(s)?});
            Ok(Json(doc).into_response())
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageParams {
    /// Taken as text, as the two below: a refusal names the parameter in the app's words.
    folder: Option<String>,
    /// Taken as text: a refusal names the parameter and its range.
    offset: Option<String>,
    limit: Option<String>,
}

/// A page parameter: a whole number from 0 (`default` when absent).
fn page_number(name: &str, value: Option<&str>, default: u64, range: &str) -> Result<u64> {
    match value {
        None => Ok(default),
        Some(v) => v.trim().parse::<u64>().map_err(|_| {
            Error::InvalidInput(format!(
                "{name}={}: give a whole number from 0 ({range})",
                quoted(v)
            ))
        }),
    }
}

async fn images(State(app): State<Arc<App>>, Params(p): Params<PageParams>) -> Response {
    blocking(app.serve.clone(), move || {
        let limit = page_number(
            "limit",
            p.limit.as_deref(),
            DEFAULT_PAGE,
            "images a page lists, at most 500",
        )?;
        if limit > MAX_PAGE {
            return Err(Error::InvalidInput(format!(
                "limit={limit}: give a whole number from 0 to {MAX_PAGE} (images a page lists); ask for the next page with offset"
            )));
        }
        let offset = page_number(
            "offset",
            p.offset.as_deref(),
            0,
            "the position of the page's first image; 0 is the first page",
        )?;
        let folder = match p.folder.as_deref().map(|v| (v, v.trim().parse::<i64>())) {
            None => None,
            Some((_, Ok(id))) => Some(id),
            Some((v, Err(_))) => {
                return Err(Error::InvalidInput(format!(
                    "folder={}: not a folder id: folder ids are whole numbers (/api/folders lists them)",
                    quoted(v)
                )));
            }
        };
        app.with_store(|s| {
            let roots = s.roots()?;
            let viewed = folder.and_then(|f| roots.get(&f));
            let total = match folder {
                Some(f) if viewed.is_none() => {
                    return Ok(refuse(
                        StatusCode::NOT_FOUND,
                        &format!(
                            "folder={f}: no folder with this id in the index (/api/folders lists them)"
                        ),
                    ));
                }
                Some(f) => s.image_counts()?.get(&f).copied().unwrap_or(0),
                None => s.image_count()?,
            };
            let page = s.image_page(folder, offset, limit)?;
            let images: Vec<Value> = page
                .iter()
                .map(|r| match viewed {
                    Some(folder) => image_in_folder_json(r, folder, &app.refresh),
                    None => image_json(r, &app.refresh),
                })
                .collect();
            Ok(Json(json!({"total": total, "offset": offset, "images": images})).into_response())
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookalikeParams {
    /// Taken as text: any value outside 1 to 200, a malformed one too, gets the range.
    k: Option<String>,
}

fn lookalikes_k(k: Option<&str>) -> Result<usize> {
    match k.map(|v| (v, v.trim().parse::<usize>())) {
        None => Ok(DEFAULT_LOOKALIKES),
        Some((_, Ok(k @ 1..=200))) => Ok(k),
        Some((v, _)) => Err(Error::InvalidInput(format!(
            "k={}: ask for 1 to 200 look-alikes",
            quoted(v)
        ))),
    }
}

/// A distance as `query --json` writes it: the shortest decimal that reads back as the same
/// `f32` (`0.45115`), not the digits of its widening to `f64` (`0.45115000009536743`).
fn f32_json(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .map_or(Value::Null, |v| json!(v))
}

/// The hits of a query with what the pages show of each; `behind` is the note of a search
/// answered from the space loaded before the index's last change.
fn hits_json(
    app: &App,
    result: &QueryResult,
    skip: Option<i64>,
    behind: Option<&str>,
) -> Result<Value> {
    let hits: Vec<Value> = app.with_store(|s| {
        let mut out = Vec::new();
        for h in result.hits.iter().filter(|h| Some(h.id) != skip) {
            if let Some(r) = s.image_record(h.id)? {
                let mut v = image_json(&r, &app.refresh);
                v["distance"] = f32_json(h.distance);
                out.push(v);
            }
        }
        Ok(out)
    })?;
    // the graph's note and the damaged vectors' note, as `query` gives them on two lines
    let notes: Vec<&str> = behind
        .into_iter()
        .chain(
            [&result.note, &result.damage_note]
                .into_iter()
                .flatten()
                .map(String::as_str),
        )
        .collect();
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    let mut doc = json!({"hits": hits, "mode": result.mode, "note": note});
    crate::path_repr::insert_list(
        doc.as_object_mut().expect("an object"),
        "stale",
        result.stale.iter().map(PathBuf::as_path),
    );
    crate::path_repr::insert_list(
        doc.as_object_mut().expect("an object"),
        "unreadable",
        result.unreadable.iter().map(PathBuf::as_path),
    );
    Ok(doc)
}

async fn image(
    State(app): State<Arc<App>>,
    ImageId(id): ImageId,
    Params(p): Params<LookalikeParams>,
) -> Response {
    blocking(app.serve.clone(), move || {
        let k = lookalikes_k(p.k.as_deref())?;
        let Some(record) = app.with_store(|s| s.image_record(id))? else {
            return Ok(refuse(StatusCode::NOT_FOUND, "no image with this id in the index"));
        };
        let profile = app.collection.recorded_profile()?;
        if !profile.ranks() {
            let lookalikes = json!({
                "hits": [],
                "note": format!("the {} profile ranks nothing: `{}` makes look-alikes searchable", profile.name(), crate::collection::advised_command(app.collection.dir(), "index --profile full")),
            });
            return Ok(
                Json(json!({"image": image_json(&record, &app.refresh), "lookalikes": lookalikes}))
                    .into_response(),
            );
        }
        let (loaded, behind) = app.searcher()?;
        let searcher = loaded.searcher.lock().expect("searcher");
        // damage met by an earlier request that ended before its answer is not this search's
        searcher.store().take_damaged();
        let lookalikes = match searcher.example_of_id(id)? {
            Some(example) => {
                let cfg = QueryConfig {
                    k: k + 1,
                    ..Default::default()
                };
                let mut result = searcher.answer(&record.path, example, &cfg)?;
                drop(searcher);
                // the image is no look-alike of itself: when its own file is gone or changed,
                // `why_not_viewable` says so once, not the look-alikes left out
                result.stale.retain(|p| *p != record.path);
                result.unreadable.retain(|p| *p != record.path);
                let mut doc = hits_json(&app, &result, Some(id), behind)?;
                if let Some(hits) = doc["hits"].as_array_mut() {
                    hits.truncate(k);
                }
                doc
            }
            None => {
                drop(searcher);
                let fusion = crate::features::Fusion::for_profile(profile);
                let families = fusion.families();
                let has_vectors =
                    app.with_store(|s| Ok(!s.vectors_of(&[id], &families)?.is_empty()))?;
                let note = if has_vectors {
                    "this image was indexed after the search space was loaded; its look-alikes appear in a moment".to_string()
                } else {
                    format!("this image has no usable vector of the index's profile yet (a profile change not finished, or damage), so it is left out of searches until `{}` extracts it", app.refresh)
                };
                json!({"hits": [], "note": note})
            }
        };
        Ok(Json(json!({"image": image_json(&record, &app.refresh), "lookalikes": lookalikes})).into_response())
    })
    .await
}

async fn query(
    State(app): State<Arc<App>>,
    Params(p): Params<LookalikeParams>,
    body: Bytes,
) -> Response {
    blocking(app.serve.clone(), move || {
        let k = lookalikes_k(p.k.as_deref())?;
        if body.is_empty() {
            return Err(Error::InvalidInput(
                "the upload is empty: choose or drop an image file".into(),
            ));
        }
        let name = Path::new("uploaded image");
        let (loaded, behind) = app.searcher()?;
        let searcher = loaded.searcher.lock().expect("searcher");
        // damage met by an earlier request that ended before its answer is not this search's
        searcher.store().take_damaged();
        let example = searcher.example_of_bytes(&body, name, &app.decode)?;
        let cfg = QueryConfig {
            k,
            ..Default::default()
        };
        let result = searcher.answer(name, example, &cfg)?;
        drop(searcher);
        let mut doc = hits_json(&app, &result, None, behind)?;
        doc["indexed"] = json!(result.indexed);
        Ok(Json(doc).into_response())
    })
    .await
}

async fn thumbnail(
    State(app): State<Arc<App>>,
    ImageId(id): ImageId,
    _: Params<Nothing>,
    headers: HeaderMap,
) -> Response {
    blocking(app.serve.clone(), move || {
        let Some(record) = app.with_store(|s| s.image_record(id))? else {
            return Ok(refuse(
                StatusCode::NOT_FOUND,
                "no image with this id in the index",
            ));
        };
        let etag = format!("\"{}\"", blake3::Hash::from(record.hash).to_hex());
        if headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
        {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
        let jpeg = match app.with_store(|s| s.thumbnail(&record.hash))? {
            Some(jpeg) => jpeg,
            None => match app.made_thumbnail(&record.path, &record.hash) {
                Err(Error::Io { path, source }) => {
                    return Ok(unreadable_file(&path, &source, &app.refresh));
                }
                Err(Error::Decode { path, reason }) if reason.contains("--memory-budget") => {
                    return Ok(refuse(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &format!(
                            "{}: no thumbnail under this server's memory budget: {}; the image was indexed under a larger one: start the server with `{} --memory-budget MIB` as large as the one it was indexed with",
                            crate::path_repr::shown(&path),
                            without_budget_advice(&reason),
                            app.serve
                        ),
                    ));
                }
                Err(e) => return Err(e),
                Ok(Some(jpeg)) => jpeg.as_ref().clone(),
                Ok(None) if record.path.is_dir() => {
                    return Ok(now_a_folder(&record.path, &app.refresh));
                }
                Ok(None) => {
                    return Ok(refuse(
                        StatusCode::NOT_FOUND,
                        &format!(
                            "the file changed or went since it was indexed: run `{}`",
                            app.refresh
                        ),
                    ));
                }
            },
        };
        let mut r = with_type(jpeg, "image/jpeg", FILE_POLICY);
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        Ok(r)
    })
    .await
}

/// An image file by id: only a regular file inside its indexed folder (symlinks that lead out
/// are refused) and only with the bytes that were indexed.
async fn file(State(app): State<Arc<App>>, ImageId(id): ImageId, _: Params<Nothing>) -> Response {
    blocking(app.serve.clone(), move || {
        let Some(record) = app.with_store(|s| s.image_record(id))? else {
            return Ok(refuse(
                StatusCode::NOT_FOUND,
                "no image with this id in the index",
            ));
        };
        // as the JSON says (`viewable`): no original is offered in a format browsers do not show
        if browser_type(&record.format).is_none() {
            return Ok(refuse(
                StatusCode::NOT_FOUND,
                &not_shown_by_browsers(&record.format),
            ));
        }
        let real = match open_served(&record) {
            Ok((real, _, _)) => real,
            Err(not) => return Ok(not.response(&record, &app.refresh)),
        };
        let bytes = match crate::decode::read_image_file(&real, &app.decode) {
            Ok(bytes) => bytes,
            Err(Error::Io { path, source }) => {
                return Ok(unreadable_file(&path, &source, &app.refresh));
            }
            Err(e) => return Err(e),
        };
        if blake3::hash(&bytes).as_bytes() != &record.hash {
            return Ok(refuse(
                StatusCode::CONFLICT,
                &format!(
                    "the file changed since it was indexed: run `{}`",
                    app.refresh
                ),
            ));
        }
        let content_type = browser_type(&record.format).unwrap_or("application/octet-stream");
        let mut r = with_type(bytes, content_type, FILE_POLICY);
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(r)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DuplicateParams {
    similarity: Option<String>,
    keep: Option<String>,
}

async fn duplicates(State(app): State<Arc<App>>, Params(p): Params<DuplicateParams>) -> Response {
    blocking(app.serve.clone(), move || {
        let test = Similarity::parse(p.similarity.as_deref().unwrap_or("default"))?.test();
        let keep = KeepRule::parse(p.keep.as_deref().unwrap_or("best"))?;
        let findings = app.with_store(|s| find_in_store(s, &[], test, &keep))?;
        let mut doc = listing_json(
            &findings,
            &crate::cleanup::left_alone_each(&findings.groups),
        );
        let images: std::collections::HashMap<i64, Value> = findings
            .groups
            .iter()
            .flat_map(|g| &g.members)
            .map(|m| (m.record.id, image_json(&m.record, &app.refresh)))
            .collect();
        doc["shown"] = json!(images);
        reasons_in_web_terms(&mut doc, &app.serve);
        Ok(Json(doc).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    /// `move-to`, `trash`, `hardlink` or `delete`.
    action: String,
    /// The folder for `move-to`.
    target: Option<String>,
    /// False: a dry run.
    #[serde(default)]
    apply: bool,
    /// `delete` with `apply` needs this too.
    #[serde(default)]
    confirm_delete: bool,
    similarity: Option<String>,
    keep: Option<String>,
    /// Only the groups whose proposed keeper has one of these ids (all groups when absent).
    keepers: Option<Vec<i64>>,
    /// With `apply`: the `plan` of the dry run the user reviewed. The apply acts only when
    /// the plan is still exactly that one.
    plan: Option<String>,
}

/// A JSON body that does not parse as the request, refused with what was wrong in it (an
/// unknown field, a wrong type, bad JSON) as a client error; the framework's other refusals
/// (a body too large, not JSON) keep their status.
fn bad_body(rejection: JsonRejection) -> Response {
    match &rejection {
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
            // the framework's text leads with its own words; the JSON parser's says what
            let mut why = rejection.to_string();
            let mut source = std::error::Error::source(&rejection);
            while let Some(e) = source {
                why = e.to_string();
                source = e.source();
            }
            refuse(
                StatusCode::BAD_REQUEST,
                &format!("the request body was refused: {why}"),
            )
        }
        _ => rejection.into_response(),
    }
}

async fn act(
    State(app): State<Arc<App>>,
    _: Params<Nothing>,
    req: std::result::Result<Json<ActionRequest>, JsonRejection>,
) -> Response {
    let req = match req {
        Ok(Json(req)) => req,
        Err(rejection) => return bad_body(rejection),
    };
    blocking(app.serve.clone(), move || {
        let action = match req.action.as_str() {
            "move-to" => {
                let target = req.target.as_deref().unwrap_or("").trim();
                if target.is_empty() || !Path::new(target).is_absolute() {
                    return Err(Error::InvalidInput(
                        "move-to needs an absolute folder path".into(),
                    ));
                }
                Action::MoveTo(cleanup::resolve_move_target(Path::new(target))?)
            }
            "trash" => {
                cleanup::check_trash()?;
                Action::Trash
            }
            "hardlink" => Action::Hardlink,
            "delete" => Action::Delete,
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown action {other:?}: move-to, trash, hardlink or delete"
                )));
            }
        };
        if req.target.is_some() && !matches!(action, Action::MoveTo(_)) {
            return Err(Error::InvalidInput(format!(
                "`target` is the folder of the move-to action, and the action is {}: it takes no target; leave `target` out",
                req.action
            )));
        }
        if req.confirm_delete && !matches!(action, Action::Delete) {
            return Err(Error::InvalidInput(format!(
                "confirm_delete confirms the delete action, and the action is {}: nothing to confirm; leave confirm_delete out",
                req.action
            )));
        }
        if matches!(action, Action::Delete) && req.apply && !req.confirm_delete {
            return Err(Error::InvalidInput(
                "delete removes files for good: confirm it, or use trash or move-to, which undo can reverse".into(),
            ));
        }
        let test = Similarity::parse(req.similarity.as_deref().unwrap_or("default"))?.test();
        let keep_given = req.keep.as_deref().unwrap_or("best");
        let keep = KeepRule::parse(keep_given)?;
        let _acting = app.acting.lock().expect("action lock");
        let mut findings = app.with_store(|s| find_in_store(s, &[], test, &keep))?;
        if req.apply {
            findings.check_current(&app.refresh)?;
        }
        if let Some(keepers) = &req.keepers {
            // a set: a body may list millions of ids
            let keepers: std::collections::HashSet<i64> = keepers.iter().copied().collect();
            findings
                .groups
                .retain(|g| keepers.contains(&g.keeper().record.id));
        }
        // as `duplicates --keep match:GLOB --apply` does, an apply whose pattern matches no
        // copy is refused; a dry run says so
        let mut warnings = Vec::new();
        match keep.check_matches_some("keep", keep_given, &findings.groups) {
            Err(e) if req.apply => return Err(e),
            Err(e) => warnings.push(in_web_terms(
                &format!("applying will be refused: {e}"),
                &app.serve,
            )),
            Ok(()) => {}
        }
        let tracked = app.with_store(|s| s.roots())?;
        if let Action::MoveTo(dest) = &action {
            let walk = app.with_store(|s| app.collection.walk_options(s))?;
            cleanup::check_move_target(
                dest,
                app.collection.dir(),
                &findings.groups,
                tracked.values().map(PathBuf::as_path),
                walk.is_some_and(|w| w.follow_symlinks),
            )?;
        }
        let steps = cleanup::plan(
            &findings.groups,
            &action,
            tracked.values().map(PathBuf::as_path),
        );
        let journals = cleanup::journal_dir(app.collection.dir());
        if !req.apply
            && let Some(why) = cleanup::journal_unwritable(&journals)
        {
            warnings.push(why);
        }
        let digest = cleanup::plan_digest(&action, &steps, &journals);
        if req.apply && req.plan.as_deref() != Some(digest.as_str()) {
            return Ok(refuse(
                StatusCode::CONFLICT,
                if req.plan.is_none() {
                    "apply acts on the plan of a dry run: run the dry run, review it and apply it"
                } else {
                    "the plan differs from the dry run's (other settings, files indexed, changed or gone since, or a run applied or undone since): nothing was done; run the dry run again and review it"
                },
            ));
        }
        let held = if req.apply {
            let reviewed = app.reviewed.lock().expect("reviewed plans");
            match reviewed.iter().find(|r| r.digest == digest) {
                Some(r) => r.held.clone(),
                None => {
                    return Ok(refuse(
                        StatusCode::CONFLICT,
                        "this server has no record of that dry run (it was applied already, or the server restarted since): run the dry run again and review it",
                    ));
                }
            }
        } else {
            Default::default()
        };
        let outcomes = cleanup::execute(
            &journals,
            &action,
            &steps,
            req.apply,
            &held,
            &std::sync::atomic::AtomicBool::new(false),
        )?;
        {
            let mut reviewed = app.reviewed.lock().expect("reviewed plans");
            reviewed.retain(|r| r.digest != digest);
            // an applied plan is spent, whatever its steps did
            if !req.apply {
                reviewed.push(cleanup::Reviewed::of(&digest, &steps, &outcomes));
                let excess = reviewed.len().saturating_sub(REVIEWED_KEPT);
                reviewed.drain(..excess);
            }
        }
        let mut doc = cleanup::action_json(&action, &steps, &outcomes, req.apply);
        reasons_in_web_terms(&mut doc, &app.serve);
        doc["plan"] = json!(digest);
        doc["warnings"] = json!(warnings);
        Ok(Json(doc).into_response())
    })
    .await
}

/// Dry runs whose apply the server can check (the latest ones).
const REVIEWED_KEPT: usize = 32;

/// Undo takes no fields: no body, or an empty JSON object.
async fn undo(State(app): State<Arc<App>>, _: Params<Nothing>, body: Bytes) -> Response {
    if !body.trim_ascii().is_empty()
        && let Err(e) = serde_json::from_slice::<Nothing>(&body)
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("the request body was refused: {e}; undo takes no fields: send no body"),
        );
    }
    blocking(app.serve.clone(), move || {
        let _acting = app.acting.lock().expect("action lock");
        let journals = cleanup::journal_dir(app.collection.dir());
        let report = cleanup::undo(&journals)?;
        let undone_already = report.is_none() && cleanup::last_undone(&journals).is_some();
        Ok(Json(json!({ "undone": report, "undone_already": undone_already })).into_response())
    })
    .await
}

async fn reports(State(app): State<Arc<App>>, _: Params<Nothing>) -> Response {
    blocking(app.serve.clone(), move || {
        let list: Vec<Value> = app
            .report_dirs()
            .iter()
            .enumerate()
            .map(|(n, dir)| {
                let mut m = crate::path_repr::object("path", dir);
                m.insert("id".into(), json!(n));
                let name = dir.file_name().unwrap_or(dir.as_os_str());
                crate::path_repr::insert(&mut m, "name", Path::new(name));
                Value::Object(m)
            })
            .collect();
        Ok(Json(json!({ "reports": list })).into_response())
    })
    .await
}

/// A file of an eval report: its page, its JSON, or one of its thumbnails; nothing else.
async fn report_file(
    State(app): State<Arc<App>>,
    UrlPath((n, file)): UrlPath<(String, String)>,
    _: Params<Nothing>,
) -> Response {
    let Ok(n) = n.parse::<usize>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!(
                "`{}` is not a report number: reports are numbered from 0 (/api/reports lists them)",
                quoted(&n)
            ),
        );
    };
    blocking(app.serve.clone(), move || {
        let dirs = app.report_dirs();
        let Some(dir) = dirs.get(n) else {
            return Ok(refuse(StatusCode::NOT_FOUND, "no such report"));
        };
        let content_type = match file.as_str() {
            "index.html" => "text/html; charset=utf-8",
            "report.json" => "application/json",
            f if f
                .strip_prefix("thumbs/")
                .is_some_and(|name| is_plain_name(name) && name.ends_with(".jpg")) =>
            {
                "image/jpeg"
            }
            _ => return Ok(refuse(StatusCode::NOT_FOUND, "not a file of this report")),
        };
        let path = dir.join(&file);
        let (Ok(real), Ok(base)) = (std::fs::canonicalize(&path), std::fs::canonicalize(dir))
        else {
            return Ok(refuse(StatusCode::NOT_FOUND, "not a file of this report"));
        };
        if !real.starts_with(&base) || !std::fs::metadata(&real).is_ok_and(|m| m.is_file()) {
            return Ok(refuse(StatusCode::FORBIDDEN, "not served"));
        }
        let bytes = crate::decode::read_file_bounded(&real, app.decode.max_file_size, "image")
            .map_err(|e| Error::io(&real, e))?;
        Ok(with_type(bytes, content_type, REPORT_POLICY))
    })
    .await
}

/// A file name of letters, digits, `.`, `_` and `-` that does not start with a dot.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hit's distance reads as `query --json` writes it, not with the digits of an `f64`.
    #[test]
    fn a_distance_is_written_as_query_writes_it() {
        let d = 0.45115_f32;
        assert_eq!(f32_json(d).to_string(), serde_json::to_string(&d).unwrap());
        assert_eq!(f32_json(d).to_string(), "0.45115");
    }

    /// A file the server may not read (or one in a folder it may not enter) is 403 and says
    /// so; only a file that is not there is 404, "gone".
    #[test]
    fn an_unreadable_file_is_forbidden_and_only_a_missing_one_is_gone() {
        use std::io::{Error as IoError, ErrorKind};
        let path = Path::new("/photos/801.jpg");
        let denied = unreadable_file(
            path,
            &IoError::from(ErrorKind::PermissionDenied),
            "lookalike index",
        );
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);
        let missing = unreadable_file(path, &IoError::from(ErrorKind::NotFound), "lookalike index");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let tmp = tempfile::tempdir().unwrap();
        let gone = std::fs::canonicalize(tmp.path().join("gone.jpg")).unwrap_err();
        assert_eq!(
            unreadable_file(path, &gone, "lookalike index").status(),
            StatusCode::NOT_FOUND
        );
    }

    /// A database found damaged while serving answers 500 with what to do about it, as the
    /// command line says it, not SQLite's words alone.
    #[test]
    fn a_damaged_database_is_answered_with_the_advice() {
        let e = Error::Db {
            path: PathBuf::from("/idx/lookalike.db"),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some("database disk image is malformed".into()),
            ),
        };
        let (status, why) = error_answer(&e, "lookalike serve");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(why.contains("/idx/lookalike.db"), "{why}");
        assert!(
            why.contains(&crate::error::damaged_database_advice(Path::new(
                "/idx/lookalike.db"
            ))),
            "{why}"
        );
    }
}

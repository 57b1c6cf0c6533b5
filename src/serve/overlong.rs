//! Requests the HTTP layer refuses before the app sees them (an address over 64 KiB, over 100
//! headers or a head over about 400 KiB, a head that is not HTTP): the layer answers them
//! with an empty body, which is replaced here by the app's refusal, JSON under `/api/` and
//! the refusal page elsewhere. The rest of a refused request is read and dropped before the
//! connection closes: closed with unread bytes, it would be reset, and the client would lose
//! the refusal (a head of about 1 MB did).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Bytes kept of a request's start: its method and the start of its address.
const START_KEPT: usize = 32;

/// The most of a refused request read and dropped after its refusal; a client still sending
/// past it has its connection reset.
const DRAINED_AT_MOST: usize = 64 << 20;

/// The server's listener, each connection wrapped in [`Refusing`].
pub(super) struct Refusing(pub(super) TcpListener);

impl axum::serve::Listener for Refusing {
    type Io = RefusingStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (RefusingStream, SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (RefusingStream::new(stream), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A connection whose HTTP layer's own empty refusals are written as the app's.
pub(super) struct RefusingStream {
    inner: TcpStream,
    /// The first bytes of the request being read.
    start: Vec<u8>,
    /// An answer was written since: the next bytes read start another request.
    answered: bool,
    /// The app's refusal written in place of the layer's, and how much of it is written.
    /// The layer closes the connection after it: all it writes then is dropped.
    replacing: Option<(Vec<u8>, usize)>,
    /// After the replacing refusal: its sending side is shut down, and the bytes of the
    /// refused request read and dropped since.
    draining: Option<usize>,
}

impl RefusingStream {
    fn new(inner: TcpStream) -> RefusingStream {
        RefusingStream {
            inner,
            start: Vec::new(),
            answered: false,
            replacing: None,
            draining: None,
        }
    }

    /// After a replacing refusal is written: shuts the sending side (the client sees the
    /// refusal end) and reads what the client still sends until it closes, so that the
    /// connection is not reset with the refusal unread.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.replacing.is_none() {
            return Poll::Ready(Ok(()));
        }
        if self.draining.is_none() {
            ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.draining = Some(0);
        }
        let mut dropped = [0u8; 16 * 1024];
        while let Some(drained) = self.draining.as_mut()
            && *drained < DRAINED_AT_MOST
        {
            let mut buf = ReadBuf::new(&mut dropped);
            if ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf)).is_err()
                || buf.filled().is_empty()
            {
                break;
            }
            *drained += buf.filled().len();
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what is left of the replacing refusal.
    fn poll_replacing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some((bytes, written)) = &mut self.replacing {
            while *written < bytes.len() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for RefusingStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            if this.answered {
                this.start.clear();
                this.answered = false;
            }
            let room = START_KEPT.saturating_sub(this.start.len());
            this.start.extend_from_slice(&read[..read.len().min(room)]);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for RefusingStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none()
            && let Some(status) = layer_refusal(buf)
        {
            this.replacing = Some((refusal(status, is_api(&this.start)), 0));
        }
        if this.replacing.is_some() {
            ready!(this.poll_replacing(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        this.answered = true;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacing(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacing(cx))?;
        if this.replacing.is_some() {
            return this.poll_drain(cx);
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The status of an answer the HTTP layer made itself: a refusal (400 or above) with an
/// empty body, which the app's refusals never are (they all say why).
fn layer_refusal(head: &[u8]) -> Option<u16> {
    let rest = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let empty = head[..end]
        .split(|&b| b == b'\n')
        .any(|line| line.eq_ignore_ascii_case(b"content-length: 0\r"));
    (status >= 400 && empty && end + 4 == head.len()).then_some(status)
}

/// True when a request starting with `start` (`METHOD /path...`) is for an `/api/` address.
fn is_api(start: &[u8]) -> bool {
    start
        .iter()
        .position(|&b| b == b' ')
        .is_some_and(|space| start[space + 1..].starts_with(b"/api/"))
}

/// Why the HTTP layer refused a request with `status`.
fn why(status: u16) -> &'static str {
    match status {
        414 => "the address is over 64 KiB, the longest this server reads: send a shorter query",
        431 => {
            "the request's headers are over what this server reads (100 headers, about 400 KiB in all): send fewer or smaller headers"
        }
        _ => {
            "the request could not be read as HTTP (a malformed method, address, header or version)"
        }
    }
}

/// The app's refusal with `status`, whole: JSON `{"error"}` for an `/api/` address, else the
/// refusal page; the connection closes after it.
fn refusal(status: u16, api: bool) -> Vec<u8> {
    let why = why(status);
    let (body, content_type, policy) = if api {
        (
            serde_json::json!({ "error": why }).to_string(),
            "application/json",
            None,
        )
    } else {
        (
            super::routes::refusal_html(&format!(
                "<p>The address was refused: {why}.</p>\n<p><a href=\"/\">/</a> is the app's start page.</p>"
            )),
            "text/html; charset=utf-8",
            Some(super::routes::REFUSAL_POLICY),
        )
    };
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Refused");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\nx-frame-options: DENY\r\nconnection: close\r\n",
        body.len()
    );
    if let Some(policy) = policy {
        head.push_str(&format!("content-security-policy: {policy}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_layers_empty_refusals_are_replaced() {
        let layer = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(layer_refusal(layer), Some(414));
        let app = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n{\"error\":1}";
        assert_eq!(layer_refusal(app), None);
        let not_modified = b"HTTP/1.1 304 Not Modified\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(layer_refusal(not_modified), None);
        assert!(is_api(b"GET /api/images?limit=9999"));
        assert!(!is_api(b"GET /?q=/api/"));
    }
}

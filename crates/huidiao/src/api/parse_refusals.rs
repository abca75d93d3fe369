//! The envelope on what hyper refuses itself. A request hyper cannot parse (a broken request
//! line or header, more than 100 headers, a target over 64 KiB) never reaches a handler or a
//! layer: hyper writes a bare `400`, `414` or `431` head with no body and closes. The connection's
//! IO is wrapped so that such a head is sent as the usual Coze envelope instead, with a log id
//! that the server's log names.
//!
//! hyper's own refusal is told apart by its shape: an error status whose head holds nothing but
//! `content-length: 0`, `date` and perhaps `connection: close`. Every answer of the API carries a content type and a log id,
//! so none of them looks like that.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::http::StatusCode;
use hyper::rt::{Read, ReadBufCursor, Write};

use super::envelope::{error_body, LOGID_HEADER};
use super::{MAX_HEADER_BYTES, MAX_URI_BYTES};
use crate::error::ErrorCode;
use crate::ids;

/// The longest head hyper writes for a refusal: a status line, `connection`, `content-length` and
/// `date`, about 120 bytes.
const MAX_REFUSAL_HEAD: usize = 256;

/// A connection's IO whose parse refusals go out enveloped.
pub struct Enveloped<T> {
    inner: T,
    peer: SocketAddr,
    /// A rewritten refusal and how much of it is written; sent before anything else.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> Enveloped<T> {
    pub fn new(inner: T, peer: SocketAddr) -> Self {
        Enveloped { inner, peer, pending: None }
    }
}

impl<T: Write + Unpin> Enveloped<T> {
    /// Writes what is left of a rewritten refusal.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            if *written == bytes.len() {
                self.pending = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `head` as written when it is hyper's own refusal, queueing the envelope for it.
    fn rewrite(&mut self, head: &[u8]) -> bool {
        let Some(status) = refusal_status(head) else { return false };
        let logid = ids::log_id();
        tracing::info!(%logid, peer = %self.peer, status = status.as_u16(), "request refused: it is not HTTP/1.1 this server can read");
        self.pending = Some((enveloped_refusal(status, &logid), 0));
        true
    }
}

impl<T: Read + Unpin> Read for Enveloped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Enveloped<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if self.rewrite(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        // hyper writes a head in a slice of its own, so a refusal is a whole first slice.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if self.rewrite(first) {
                return Poll::Ready(Ok(first.len()));
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The status of `head` when it is exactly a head hyper wrote to refuse a request it could not
/// parse: an error status, `content-length: 0`, a date, perhaps `connection: close`, nothing else.
fn refusal_status(head: &[u8]) -> Option<StatusCode> {
    // Every write of the connection comes here: what cannot be such a head (a body, a success,
    // a head longer than hyper's few lines) is passed over before any parsing.
    let error_status = matches!(head.get(9), Some(b'4' | b'5'));
    if head.len() > MAX_REFUSAL_HEAD || !head.starts_with(b"HTTP/1.") || !error_status {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; 4];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(length)) = response.parse(head) else { return None };
    let status = StatusCode::from_u16(response.code?).ok()?;
    let only_hypers = response.headers.iter().all(|h| {
        let is = |name: &str, value: &[u8]| h.name.eq_ignore_ascii_case(name) && h.value == value;
        h.name.eq_ignore_ascii_case("date") || is("content-length", b"0") || is("connection", b"close")
    });
    (length == head.len() && only_hypers && (status.is_client_error() || status.is_server_error()))
        .then_some(status)
}

/// The whole answer for a refusal with `status`: the envelope, its log id and `Connection: close`
/// (hyper closes the connection after a parse error).
fn enveloped_refusal(status: StatusCode, logid: &str) -> Vec<u8> {
    let msg = match status {
        StatusCode::URI_TOO_LONG => {
            format!("the request target is too long to read; at most {MAX_URI_BYTES} bytes of path and query are allowed")
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => format!(
            "the request header is too large to read; at most 100 headers and {MAX_HEADER_BYTES} bytes are allowed"
        ),
        _ => "the request could not be read as HTTP/1.1: its request line or a header is malformed".to_owned(),
    };
    let body = error_body(ErrorCode::BadRequest as i32, &msg, logid);
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{LOGID_HEADER}: {logid}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    [head.into_bytes(), body].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What hyper 1 writes for a request it cannot parse.
    const HYPERS_400: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 03:00:00 GMT\r\n\r\n";

    #[test]
    fn hypers_refusals_are_recognised() {
        assert_eq!(refusal_status(HYPERS_400), Some(StatusCode::BAD_REQUEST));
        let too_large =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(refusal_status(too_large), Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
    }

    #[test]
    fn answers_of_the_api_pass_untouched() {
        let enveloped =
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(refusal_status(enveloped), None, "a content type");
        assert_eq!(refusal_status(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), None, "not an error");
        let with_body = [HYPERS_400, b"{}"].concat();
        assert_eq!(refusal_status(&with_body), None, "more than a head");
        assert_eq!(refusal_status(b"HTTP/1.1 400 Bad Req"), None, "part of a head");
        assert_eq!(refusal_status(b"{\"code\":0}"), None, "a body");
        let long = [
            b"HTTP/1.1 400 Bad Request\r\ndate: ".as_slice(),
            &[b'x'; 300],
            b"\r\ncontent-length: 0\r\n\r\n",
        ]
        .concat();
        assert_eq!(refusal_status(&long), None, "longer than hyper's refusal");
    }

    #[test]
    fn the_refusal_is_an_envelope_with_its_log_id() {
        let answer = enveloped_refusal(StatusCode::BAD_REQUEST, "LOGID");
        let text = String::from_utf8(answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(
            head.contains("content-type: application/json") && head.contains("x-tt-logid: LOGID"),
            "{head}"
        );
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let envelope: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(envelope["code"], 4000);
        assert_eq!(envelope["detail"]["logid"], "LOGID");
        assert!(envelope["msg"].as_str().unwrap().contains("HTTP/1.1"));
    }
}

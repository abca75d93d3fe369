//! The HTTP/1 listener: bounded connections, header and body read deadlines, and a shutdown that
//! never waits on a client that is not sending.
//!
//! `axum::serve` bounds none of these: a client that sends half a request header and stops keeps
//! its connection (and a file descriptor) as long as it likes, and held up shutdown until it left.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::parse_refusals::Enveloped;

/// Bounds on what one client may hold; from [`crate::config::ServeConfig`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time for a whole request header to arrive, counted from the end of the previous answer
    /// on a kept-alive connection: it is also the idle keep-alive timeout.
    pub header_read_timeout: Duration,
    /// Time for a whole request body to arrive, counted from the end of its header.
    pub body_read_timeout: Duration,
    /// Connections open at once; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
}

/// Descriptors kept for everything but client connections: storage, pushes, the listener.
const SPARE_DESCRIPTORS: u64 = 512;

/// Raises the process's soft limit on open files towards its hard limit so that
/// `max_connections` clients fit beside storage and pushes (many systems start at 1024), and
/// warns when even the hard limit is too low.
pub fn fit_descriptor_limit(max_connections: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let needed = max_connections as u64 + SPARE_DESCRIPTORS;
    let Some(current) = limit.current.filter(|current| *current < needed) else { return };
    let raised = limit.maximum.map_or(needed, |maximum| needed.min(maximum));
    let now = match setrlimit(Resource::Nofile, Rlimit { current: Some(raised), maximum: limit.maximum }) {
        Ok(()) => raised,
        Err(_) => current,
    };
    if now < needed {
        tracing::warn!(
            open_files_limit = now,
            max_connections,
            "the open-files limit is too low for --max-connections; raise `ulimit -n` or lower --max-connections"
        );
    }
}

/// Serves `app` on `listener` until `shutdown`, then closes idle and half-sent connections at
/// once and lets requests being answered finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = listener.accept() => accepted.map(|conn| (conn, slot)),
                },
                Err(_) => break,
            },
        };
        let ((stream, peer), slot) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors or similar: let open connections finish and close.
                tracing::warn!(error = %e, "accepting a connection failed; retrying in 50 ms");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let answering = Answering::default();
        let service = {
            let answering = answering.clone();
            app.clone()
                .map_request(move |req: hyper::Request<Incoming>| {
                    let mut req = req.map(|body| Body::new(Deadline::new(body, limits.body_read_timeout)));
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                })
                .map_future(move |answer| {
                    let guard = answering.start();
                    async move {
                        let response: Response = answer.await?;
                        Ok::<_, Infallible>(response.map(|body| Body::new(Answered { body, _guard: guard })))
                    }
                })
        };
        let io = Enveloped::new(TokioIo::new(stream), peer);
        let connection = http.serve_connection(io, TowerToHyperService::new(service));
        connections.spawn(run_connection(connection, answering, shutdown.clone(), peer, slot));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Serves one connection; at `shutdown` it lets an answer in progress finish and closes the
/// connection as soon as none is (hyper alone would wait for a half-sent request header until
/// the header timeout).
async fn run_connection<S>(
    connection: http1::Connection<Enveloped<TokioIo<TcpStream>>, S>,
    answering: Answering,
    shutdown: CancellationToken,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
) where
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            loop {
                tokio::select! {
                    ended = connection.as_mut() => break ended,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {
                        if !answering.busy() {
                            break Ok(());
                        }
                    }
                }
            }
        }
    };
    // Errors here are the client's (a reset, a header timeout); there is nobody to answer.
    if let Err(e) = ended {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// Whether a connection is in the middle of a request: from the moment its header has arrived
/// until the last byte of its answer is written (a body still arriving is bounded by the body
/// deadline).
#[derive(Clone, Default)]
struct Answering(Arc<AtomicUsize>);

impl Answering {
    fn start(&self) -> AnsweringGuard {
        self.0.fetch_add(1, Ordering::AcqRel);
        AnsweringGuard(self.0.clone())
    }

    fn busy(&self) -> bool {
        self.0.load(Ordering::Acquire) > 0
    }
}

struct AnsweringGuard(Arc<AtomicUsize>);

impl Drop for AnsweringGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection counted as answering until hyper drops it.
struct Answered {
    body: Body,
    _guard: AnsweringGuard,
}

impl hyper::body::Body for Answered {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails once its deadline passes: a client trickling a body cannot hold
/// the connection longer than [`ConnectionLimits::body_read_timeout`].
struct Deadline {
    body: Incoming,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl Deadline {
    fn new(body: Incoming, timeout: Duration) -> Self {
        Deadline { body, timeout, sleep: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)) }
    }
}

/// Why a body stopped before its end.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the request body did not arrive within {0:?} (see --body-read-timeout)")]
    TimedOut(Duration),
    #[error(transparent)]
    Client(#[from] hyper::Error),
}

impl hyper::body::Body for Deadline {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BodyError::from)));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::TimedOut(self.timeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

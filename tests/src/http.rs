//! A small static file server on loopback, for pulling test repositories over HTTP.
//!
//! [`tiny_http`] speaks HTTP/1.1 (keep-alive, `Content-Length`, `HEAD`); this module maps
//! `GET` and `HEAD` targets to files under the served root. Paths that would leave the root
//! (`..` segments, also percent-encoded, or symlinks pointing out) get `403`, missing files and
//! directories `404`, other methods `405`. Request lines tiny_http cannot parse it answers with
//! `400` itself; those are neither counted nor logged.
//!
//! Test hooks: [`HttpServer::requests`] counts requests, [`HttpServer::request_log`] lists them,
//! [`HttpServer::set_delay`] slows every response down (to cancel a pull in the middle). Each
//! request is answered on a thread of its own, so a delayed one holds up no other connection.
//! Dropping the server stops accepting, answers requests still waiting out a delay with `503`
//! and joins every thread of this module. A connection its client keeps alive stays open until
//! the client hangs up (tiny_http owns the sockets); requests sent on it after the drop get no
//! answer.

use std::ffi::OsStr;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use fn_error_context::context;
use tiny_http::{Header, Method, Request, Response, ResponseBox, Server, StatusCode};

/// One request the server answered (see [`HttpServer::request_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target as sent (still percent-encoded).
    pub path: String,
    /// Status code of the response.
    pub status: u16,
}

#[derive(Debug, Default)]
struct State {
    /// Requests received (counted before any delay).
    received: usize,
    log: Vec<RequestRecord>,
    delay: Duration,
}

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    stop: AtomicBool,
    state: Mutex<State>,
    /// Notified on every received request and on stop.
    changed: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking request thread must not take the server down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// A threaded static file server on `127.0.0.1:<ephemeral port>`; see the module docs.
pub struct HttpServer {
    addr: SocketAddr,
    server: Arc<Server>,
    shared: Arc<Shared>,
    dispatcher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .field("root", &self.shared.root)
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// Starts serving the files under `root`.
    #[context("Serving {} over HTTP", root.display())]
    pub fn serve(root: &Path) -> Result<HttpServer> {
        crate::init();
        let root = fs::canonicalize(root).context("Resolving the root")?;
        let listener = TcpListener::bind("127.0.0.1:0").context("Binding 127.0.0.1:0")?;
        let addr = listener.local_addr().context("Getting the bound address")?;
        let server = Arc::new(Server::from_listener(listener, None).map_err(|e| anyhow!(e))?);
        let shared = Arc::new(Shared {
            root,
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let dispatcher = {
            let (server, shared) = (Arc::clone(&server), Arc::clone(&shared));
            std::thread::Builder::new()
                .name(format!("http-{}", addr.port()))
                .spawn(move || dispatch(&server, &shared))
                .context("Spawning the dispatch thread")?
        };
        tracing::debug!("serving {} on http://{addr}/", shared.root.display());
        Ok(HttpServer {
            addr,
            server,
            shared,
            dispatcher: Some(dispatcher),
        })
    }

    /// Base URL without trailing slash, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` (relative to the served root).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}/{}", self.url(), path.trim_start_matches('/'))
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Number of requests received so far (counted on arrival, before any delay).
    pub fn requests(&self) -> usize {
        self.shared.state().received
    }

    /// Requests answered so far, in order.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.state().log.clone()
    }

    /// Sleeps `delay` before each response from now on (`Duration::ZERO` turns it off).
    /// Requests already waiting keep their delay.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.state().delay = delay;
    }

    /// Waits until at least `n` requests were received in total; fails after `timeout`.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Result<()> {
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(self.shared.state(), timeout, |s| s.received < n)
            .unwrap_or_else(PoisonError::into_inner);
        if state.received < n {
            bail!(
                "Timed out after {timeout:?} waiting for {n} HTTP requests (got {})",
                state.received
            );
        }
        Ok(())
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            // Take the lock so no waiter misses the wake-up.
            let _state = self.shared.state();
            self.shared.changed.notify_all();
        }
        // Wakes the dispatcher up from `recv`.
        self.server.unblock();
        if let Some(dispatcher) = self.dispatcher.take() {
            if dispatcher.join().is_err() {
                tracing::debug!("HTTP dispatch thread panicked");
            }
        }
        // Dropping the last `Server` reference then stops tiny_http's accept thread.
    }
}

/// Hands every request to a thread of its own; the scope joins them all when stopping.
fn dispatch(server: &Server, shared: &Shared) {
    std::thread::scope(|scope| {
        while !shared.stopped() {
            let request = match server.recv() {
                Ok(request) => request,
                Err(e) => {
                    tracing::debug!("HTTP receive: {e}");
                    continue;
                }
            };
            let delay = {
                let mut state = shared.state();
                state.received += 1;
                shared.changed.notify_all();
                state.delay
            };
            let spawned = std::thread::Builder::new()
                .name("http-request".into())
                .spawn_scoped(scope, move || answer(request, delay, shared));
            if let Err(e) = spawned {
                // The request is dropped with it, which makes tiny_http answer 500.
                tracing::debug!("HTTP: spawning a request thread: {e}");
            }
        }
    });
}

/// Waits out `delay` (unless the server stops first), then answers `request`.
fn answer(request: Request, delay: Duration, shared: &Shared) {
    if !delay.is_zero() {
        drop(
            shared
                .changed
                .wait_timeout_while(shared.state(), delay, |_| !shared.stopped()),
        );
    }
    let response = if shared.stopped() {
        status_response(503)
    } else {
        let response = response_for(&shared.root, request.method(), request.url());
        // Logged before answering, so a client that has its answer finds it in the log.
        shared.state().log.push(RequestRecord {
            method: request.method().to_string(),
            path: request.url().to_string(),
            status: response.status_code().0,
        });
        response
    };
    if let Err(e) = request.respond(response) {
        tracing::debug!("HTTP: answering: {e}");
    }
}

fn response_for(root: &Path, method: &Method, target: &str) -> ResponseBox {
    if !matches!(method, Method::Get | Method::Head) {
        return status_response(405);
    }
    let rel = match target_to_relative(target) {
        Ok(rel) => rel,
        Err(code) => return status_response(code),
    };
    let full = root.join(rel);
    let file = match fs::canonicalize(&full) {
        // A symlink may not lead out of the root.
        Ok(real) if !real.starts_with(root) => return status_response(403),
        Ok(real) => fs::File::open(real).and_then(|f| {
            if f.metadata()?.is_file() {
                Ok(f)
            } else {
                Err(std::io::Error::other("not a regular file"))
            }
        }),
        Err(e) => Err(e),
    };
    match file {
        Ok(file) => Response::from_file(file)
            .with_header(
                Header::from_bytes("Content-Type", "application/octet-stream")
                    .expect("a valid header"),
            )
            // Always `Content-Length`, never chunked.
            .with_chunked_threshold(usize::MAX)
            .boxed(),
        Err(e) => {
            tracing::debug!("HTTP 404 {}: {e}", full.display());
            status_response(404)
        }
    }
}

fn status_response(code: u16) -> ResponseBox {
    let status = StatusCode(code);
    Response::from_string(format!("{code} {}\n", status.default_reason_phrase()))
        .with_status_code(status)
        .boxed()
}

/// Maps a request target to a path relative to the root: drops the query and fragment,
/// percent-decodes, and rejects `..` (`403`), NUL and targets not starting with `/` (`400`).
fn target_to_relative(target: &str) -> Result<PathBuf, u16> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(400);
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(path).collect();
    if decoded.contains(&0) {
        return Err(400);
    }
    let mut rel = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(&decoded)).components() {
        match component {
            Component::Normal(c) => rel.push(c),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err(403),
        }
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            target_to_relative("/a/b%20c?x=1"),
            Ok(PathBuf::from("a/b c"))
        );
        assert_eq!(target_to_relative("/a/./b"), Ok(PathBuf::from("a/b")));
        assert_eq!(target_to_relative("/"), Ok(PathBuf::new()));
        assert_eq!(target_to_relative("/a/../../etc/passwd"), Err(403));
        assert_eq!(target_to_relative("/%2e%2e/etc/passwd"), Err(403));
        assert_eq!(target_to_relative("/a%2F..%2F..%2Fx"), Err(403));
        assert_eq!(target_to_relative("/a%00"), Err(400));
        assert_eq!(target_to_relative("a"), Err(400));
        assert_eq!(target_to_relative("http://h/a"), Err(400));
    }
}

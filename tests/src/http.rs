//! A small static file server on loopback, for pulling test repositories over HTTP.
//!
//! Std only: one accept thread plus one thread per connection. HTTP/1.1 `GET` and `HEAD`, one
//! request per connection (`Connection: close`), `Content-Length` on every response. Paths that
//! would leave the served root (`..` segments, also percent-encoded, or symlinks pointing out)
//! get `403`, missing files and directories `404`, other methods `405`.
//!
//! Test hooks: [`HttpServer::requests`] counts requests, [`HttpServer::request_log`] lists them,
//! [`HttpServer::set_delay`] slows every response down (to cancel a pull in the middle).
//! Dropping the server stops accepting, interrupts delays, shuts open connections down and joins
//! every thread.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fn_error_context::context;

/// How long a connection may take to send its request or accept the response.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest accepted request head (request line + headers).
const MAX_HEAD: usize = 64 * 1024;

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
    /// Requests whose head was read (counted before any delay).
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
    connections: Mutex<Vec<(JoinHandle<()>, TcpStream)>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take the server down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A threaded static file server on `127.0.0.1:<ephemeral port>`; see the module docs.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts serving the files under `root`.
    #[context("Serving {} over HTTP", root.display())]
    pub fn serve(root: &Path) -> Result<HttpServer> {
        crate::init();
        let root = fs::canonicalize(root).context("Resolving the root")?;
        let listener = TcpListener::bind("127.0.0.1:0").context("Binding 127.0.0.1:0")?;
        let addr = listener.local_addr().context("Getting the bound address")?;
        let shared = Arc::new(Shared {
            root,
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            connections: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("http-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &shared))
                .context("Spawning the accept thread")?
        };
        tracing::debug!("serving {} on http://{addr}/", shared.root.display());
        Ok(HttpServer {
            addr,
            shared,
            acceptor: Some(acceptor),
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

    /// Number of requests received so far (counted as soon as a request head is read, before
    /// any delay; malformed requests included).
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
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        while state.received < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "Timed out after {timeout:?} waiting for {n} HTTP requests (got {})",
                    state.received
                );
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .map_err(|_| anyhow!("HTTP server state poisoned"))?
                .0;
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
        // Wake the blocking accept() up.
        if let Err(e) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) {
            tracing::debug!("Waking the HTTP accept loop: {e}");
        }
        if let Some(acceptor) = self.acceptor.take() {
            if acceptor.join().is_err() {
                tracing::debug!("HTTP accept thread panicked");
            }
        }
        let connections = std::mem::take(
            &mut *self
                .shared
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (handle, stream) in connections {
            // Unblocks reads and writes of a connection still in progress.
            let _ = stream.shutdown(Shutdown::Both);
            if handle.join().is_err() {
                tracing::debug!("HTTP connection thread panicked");
            }
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!("HTTP accept: {e}");
                continue;
            }
        };
        let clone = match stream.try_clone() {
            Ok(clone) => clone,
            Err(e) => {
                tracing::debug!("HTTP: cloning a connection: {e}");
                continue;
            }
        };
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("http-conn".into())
            .spawn(move || {
                if let Err(e) = handle_connection(stream, &conn_shared) {
                    tracing::debug!("HTTP connection: {e:#}");
                }
            });
        match spawned {
            Ok(handle) => {
                let mut connections = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
                // Forget finished connections so the list stays short.
                let (done, running): (Vec<_>, Vec<_>) =
                    connections.drain(..).partition(|(h, _)| h.is_finished());
                *connections = running;
                connections.push((handle, clone));
                drop(connections);
                for (handle, _) in done {
                    let _ = handle.join();
                }
            }
            Err(e) => tracing::debug!("HTTP: spawning a connection thread: {e}"),
        }
    }
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    target: String,
}

fn handle_connection(stream: TcpStream, shared: &Shared) -> Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let head = match read_head(&mut reader)? {
        Some(head) => head,
        None => return Ok(()), // closed without a request (e.g. the Drop wake-up)
    };
    let delay = {
        let mut state = shared.state();
        state.received += 1;
        shared.changed.notify_all();
        state.delay
    };
    if !delay.is_zero() {
        let deadline = Instant::now() + delay;
        let mut state = shared.state();
        while !shared.stop.load(Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = shared
                .changed
                .wait_timeout(state, left)
                .map_err(|_| anyhow!("poisoned"))?
                .0;
        }
    }
    if shared.stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut stream = stream;
    let (method, target, status) = match parse_request(&head) {
        Ok(req) => {
            let status = respond(&mut stream, shared, &req);
            (req.method, req.target, status?)
        }
        Err(e) => {
            tracing::debug!("HTTP: bad request: {e:#}");
            simple_response(&mut stream, 400, "Bad Request", true)?;
            (String::new(), String::new(), 400)
        }
    };
    shared.state().log.push(RequestRecord {
        method,
        path: target,
        status,
    });
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// Reads up to and including the blank line ending the head. `None` on EOF before any byte.
fn read_head(reader: &mut impl BufRead) -> Result<Option<String>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader
            .by_ref()
            .take(MAX_HEAD as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            bail!("Connection closed inside the request head");
        }
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD {
            bail!("Request head too large");
        }
        if line == b"\r\n" || line == b"\n" {
            if head.len() == line.len() {
                // Tolerate empty lines before the request line (RFC 9112 2.2).
                head.clear();
                continue;
            }
            return Ok(Some(String::from_utf8_lossy(&head).into_owned()));
        }
    }
}

fn parse_request(head: &str) -> Result<Request> {
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        bail!("Malformed request line {line:?}");
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        bail!("Unsupported request line {line:?}");
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
    })
}

/// Why a target cannot be mapped to a file.
#[derive(Debug, PartialEq, Eq)]
enum Reject {
    BadRequest,
    Forbidden,
}

/// Maps a request target to a path relative to the root: strips an absolute-form prefix, the
/// query and fragment, percent-decodes, and rejects `..`, NUL and malformed escapes.
fn target_to_relative(target: &str) -> Result<PathBuf, Reject> {
    let mut path = target;
    if let Some(rest) = path.strip_prefix("http://") {
        path = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(Reject::BadRequest);
    }
    let decoded = percent_decode(path).ok_or(Reject::BadRequest)?;
    if decoded.contains(&0) {
        return Err(Reject::BadRequest);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| Reject::BadRequest)?;
    let mut rel = PathBuf::new();
    for component in Path::new(&decoded).components() {
        match component {
            Component::Normal(c) => rel.push(c),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err(Reject::Forbidden),
        }
    }
    Ok(rel)
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Writes the response for `req`; returns the status code sent.
fn respond(stream: &mut TcpStream, shared: &Shared, req: &Request) -> Result<u16> {
    let head_only = req.method == "HEAD";
    if req.method != "GET" && !head_only {
        simple_response(stream, 405, "Method Not Allowed", false)?;
        return Ok(405);
    }
    let rel = match target_to_relative(&req.target) {
        Ok(rel) => rel,
        Err(Reject::BadRequest) => {
            simple_response(stream, 400, "Bad Request", head_only)?;
            return Ok(400);
        }
        Err(Reject::Forbidden) => {
            simple_response(stream, 403, "Forbidden", head_only)?;
            return Ok(403);
        }
    };
    let full = shared.root.join(&rel);
    let file = match fs::canonicalize(&full) {
        // A symlink may not lead out of the root.
        Ok(real) if !real.starts_with(&shared.root) => {
            simple_response(stream, 403, "Forbidden", head_only)?;
            return Ok(403);
        }
        Ok(real) => fs::File::open(real).and_then(|f| {
            let meta = f.metadata()?;
            if meta.is_file() {
                Ok((f, meta.len()))
            } else {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "not a regular file",
                ))
            }
        }),
        Err(e) => Err(e),
    };
    let (mut file, len) = match file {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!("HTTP 404 {}: {e}", full.display());
            simple_response(stream, 404, "Not Found", head_only)?;
            return Ok(404);
        }
    };
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )?;
    if !head_only {
        io::copy(&mut file, stream).context("Sending the file")?;
    }
    Ok(200)
}

fn simple_response(stream: &mut TcpStream, code: u16, reason: &str, head_only: bool) -> Result<()> {
    let body = format!("{code} {reason}\n");
    write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    Ok(())
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
        assert_eq!(
            target_to_relative("http://h:1/a/./b"),
            Ok(PathBuf::from("a/b"))
        );
        assert_eq!(target_to_relative("/"), Ok(PathBuf::new()));
        assert_eq!(
            target_to_relative("/a/../../etc/passwd"),
            Err(Reject::Forbidden)
        );
        assert_eq!(
            target_to_relative("/%2e%2e/etc/passwd"),
            Err(Reject::Forbidden)
        );
        assert_eq!(
            target_to_relative("/a%2F..%2F..%2Fx"),
            Err(Reject::Forbidden)
        );
        assert_eq!(target_to_relative("/a%00"), Err(Reject::BadRequest));
        assert_eq!(target_to_relative("/a%zz"), Err(Reject::BadRequest));
        assert_eq!(target_to_relative("a"), Err(Reject::BadRequest));
    }

    #[test]
    fn request_line() -> Result<()> {
        let req = parse_request("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")?;
        assert_eq!(
            req,
            Request {
                method: "GET".into(),
                target: "/x".into()
            }
        );
        assert!(parse_request("GET /x\r\n\r\n").is_err());
        assert!(parse_request("GET /x HTTP/2 y\r\n\r\n").is_err());
        let mut input: &[u8] = b"\r\nGET / HTTP/1.1\r\nA: b\r\n\r\nrest";
        assert_eq!(
            read_head(&mut input)?.as_deref(),
            Some("GET / HTTP/1.1\r\nA: b\r\n\r\n")
        );
        Ok(())
    }
}

//! Integration tests of `stratad`: the real binary on a private `dbus-daemon`, driven through
//! the `strata_api` proxies against real sysroots from the test kit.
//!
//! Build the daemon first (`cargo build -p strata-daemon`; `cargo nextest run --workspace`
//! builds it too).

mod clients;
mod crash;
mod lifecycle;
mod polkit;
mod properties;
mod repos;
mod rpm_diff;
mod transactions;
mod validation;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, Result};
use futures_util::StreamExt;
use strata_api::names;
use strata_api::proxy::{OSProxy, SysrootProxy, TransactionProxy};
use strata_tests::{Fixture, FixtureConfig, PrivateBus, Stratad, DEFAULT_OSNAME};
use zbus::proxy::CacheProperties;
use zbus::Connection;

/// A fixture, a private bus, `stratad` on it, and a client connection.
#[allow(missing_debug_implementations)]
pub struct Env {
    pub fx: Fixture,
    pub daemon: Stratad,
    pub conn: Connection,
    pub bus: PrivateBus,
}

impl Env {
    pub async fn new(config: FixtureConfig) -> Env {
        Self::with_args(config, &[]).await
    }

    pub async fn with_args(config: FixtureConfig, args: &[&str]) -> Env {
        let fx = Fixture::new(&config).expect("fixture");
        let bus = PrivateBus::start().expect("bus");
        let daemon = Stratad::start(&bus, fx.sysroot().unwrap().path(), args)
            .await
            .expect("stratad");
        let conn = bus.connect().await.expect("connect");
        Env {
            fx,
            daemon,
            conn,
            bus,
        }
    }

    /// A Sysroot proxy that asks the daemon on every property read.
    pub async fn sysroot(&self) -> SysrootProxy<'static> {
        sysroot_proxy(&self.conn).await
    }

    pub async fn os(&self) -> OSProxy<'static> {
        os_proxy(&self.conn).await
    }

    /// A new connection to the bus (another client).
    pub async fn client(&self) -> Connection {
        self.bus.connect().await.expect("connect")
    }
}

pub async fn sysroot_proxy(conn: &Connection) -> SysrootProxy<'static> {
    SysrootProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .expect("sysroot proxy")
}

pub async fn os_proxy(conn: &Connection) -> OSProxy<'static> {
    OSProxy::builder(conn)
        .path(names::os_object_path(DEFAULT_OSNAME))
        .expect("path")
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .expect("os proxy")
}

/// Options for a call.
pub fn no_opts<T: Default>() -> T {
    T::default()
}

/// A peer-to-peer connection to a transaction address, with its proxy.
pub async fn connect_txn(address: &str) -> (Connection, TransactionProxy<'static>) {
    let conn = zbus::connection::Builder::address(address)
        .expect("address")
        .p2p()
        .build()
        .await
        .expect("p2p connect");
    // A peer-to-peer connection has no bus to resolve names on, but zbus's proxy builder
    // insists on a destination: a well-known name disables sender filtering of signals.
    let proxy = TransactionProxy::builder(&conn)
        .destination(names::BUS_NAME)
        .expect("destination")
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .expect("txn proxy");
    (conn, proxy)
}

/// Every signal of a transaction, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    Message(String),
    TaskBegin(String),
    TaskEnd(String),
    Percent(String, u32),
    Download { fetched: u32, requested: u32 },
    ProgressEnd,
    Finished(bool, String),
}

/// Subscribes to every signal of `proxy`; the returned stream yields them in arrival order.
pub async fn signals(
    proxy: &TransactionProxy<'static>,
) -> futures_util::stream::BoxStream<'static, Signal> {
    let f = proxy
        .receive_finished()
        .await
        .unwrap()
        .map(|s| {
            let a = s.args().unwrap();
            Signal::Finished(a.success, a.error_message.clone())
        })
        .boxed();
    let m = proxy
        .receive_message()
        .await
        .unwrap()
        .map(|s| Signal::Message(s.args().unwrap().text.clone()))
        .boxed();
    let tb = proxy
        .receive_task_begin()
        .await
        .unwrap()
        .map(|s| Signal::TaskBegin(s.args().unwrap().text.clone()))
        .boxed();
    let te = proxy
        .receive_task_end()
        .await
        .unwrap()
        .map(|s| Signal::TaskEnd(s.args().unwrap().text.clone()))
        .boxed();
    let p = proxy
        .receive_percent_progress()
        .await
        .unwrap()
        .map(|s| {
            let a = s.args().unwrap();
            Signal::Percent(a.text.clone(), a.percentage)
        })
        .boxed();
    let d = proxy
        .receive_download_progress()
        .await
        .unwrap()
        .map(|s| {
            let a = s.args().unwrap();
            Signal::Download {
                fetched: a.content.0,
                requested: a.content.1,
            }
        })
        .boxed();
    let e = proxy
        .receive_progress_end()
        .await
        .unwrap()
        .map(|_| Signal::ProgressEnd)
        .boxed();
    futures_util::stream::select_all([f, m, tb, te, p, d, e]).boxed()
}

/// Collect signals until `Finished`; returns all of them (Finished last).
pub async fn until_finished(
    stream: &mut futures_util::stream::BoxStream<'static, Signal>,
    timeout: Duration,
) -> Result<Vec<Signal>> {
    let mut seen = Vec::new();
    let r = tokio::time::timeout(timeout, async {
        while let Some(s) = stream.next().await {
            let done = matches!(s, Signal::Finished(..));
            seen.push(s);
            if done {
                return Ok(());
            }
        }
        Err(anyhow!("signal stream ended"))
    })
    .await;
    match r {
        Ok(Ok(())) => Ok(seen),
        Ok(Err(e)) => Err(e.context(format!("signals so far: {seen:?}"))),
        Err(_) => Err(anyhow!("no Finished within {timeout:?}; signals: {seen:?}")),
    }
}

/// The `Finished` of a signal list.
pub fn finished(sigs: &[Signal]) -> (bool, String) {
    match sigs.last() {
        Some(Signal::Finished(ok, msg)) => (*ok, msg.clone()),
        other => panic!("no Finished: {other:?}"),
    }
}

/// Connect to `address`, subscribe, Start, and wait for Finished.
pub async fn run_txn(address: &str) -> Vec<Signal> {
    let (_conn, proxy) = connect_txn(address).await;
    let mut stream = signals(&proxy).await;
    assert!(proxy.start().await.expect("Start"), "Start should start it");
    until_finished(&mut stream, Duration::from_secs(120))
        .await
        .expect("Finished")
}

/// Poll `f` until it returns true, for up to `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if f().await {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A deployment dict's string value.
pub fn dict_str(d: &HashMap<String, zbus::zvariant::OwnedValue>, key: &str) -> String {
    d.get(key)
        .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
        .unwrap_or_else(|| panic!("no string {key} in {d:?}"))
}

/// The D-Bus error name and message of a failed call.
pub fn error_name(e: &zbus::Error) -> (String, String) {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            (name.to_string(), msg.clone().unwrap_or_default())
        }
        other => panic!("not a method error: {other:?}"),
    }
}

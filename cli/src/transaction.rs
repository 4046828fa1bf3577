//! Following a transaction: connect to its peer-to-peer address, subscribe, `Start()`, show
//! progress until `Finished`. Ctrl-C cancels; the daemon vanishing aborts.

use std::future::Future;
use std::io::IsTerminal;

use anyhow::{anyhow, bail, Result};
use futures_util::{Stream, StreamExt};
use strata_api::names::TRANSACTION_INTERFACE;
use zbus::message::Type as MessageType;
use zbus::{Connection, Message, MessageStream};

use crate::client::{self, Client};
use crate::errors;
use crate::progress::{Download, Event, Plain, Progress, Terminal};

/// The progress display for this process: bars on a terminal, lines otherwise, nothing when
/// quiet.
pub(crate) fn progress_for_stdout(quiet: bool) -> Box<dyn Progress> {
    if !quiet && std::io::stdout().is_terminal() {
        Box::new(Terminal::new())
    } else {
        Box::new(Plain::new(std::io::stdout(), quiet))
    }
}

/// Decode a transaction signal; `None` for anything else (method returns, other interfaces,
/// `SignatureProgress`).
pub(crate) fn parse_event(msg: &Message) -> Option<Event> {
    let header = msg.header();
    if header.message_type() != MessageType::Signal {
        return None;
    }
    if header.interface().map(|i| i.as_str()) != Some(TRANSACTION_INTERFACE) {
        return None;
    }
    let member = header.member()?.to_string();
    let body = msg.body();
    Some(match member.as_str() {
        "Message" => Event::Message(body.deserialize::<String>().ok()?),
        "TaskBegin" => Event::TaskBegin(body.deserialize::<String>().ok()?),
        "TaskEnd" => Event::TaskEnd(body.deserialize::<String>().ok()?),
        "PercentProgress" => {
            let (text, pct): (String, u32) = body.deserialize().ok()?;
            Event::Percent(text, pct)
        }
        "DownloadProgress" => {
            #[allow(clippy::type_complexity)]
            let (time, outstanding, metadata, delta, content, transfer): (
                (u64, u64),
                (u32, u32),
                (u32, u32, u32),
                (u32, u32, u32, u64),
                (u32, u32),
                (u64, u64),
            ) = body.deserialize().ok()?;
            Event::Download(Download {
                time,
                outstanding,
                metadata,
                delta,
                content,
                transfer,
            })
        }
        "ProgressEnd" => Event::ProgressEnd,
        "Finished" => {
            let (ok, text): (bool, String) = body.deserialize().ok()?;
            Event::Finished(ok, text)
        }
        _ => return None,
    })
}

/// Run the transaction at `address` to its end, watching the daemon's bus name on the
/// client's connection. `Err` carries the daemon's failure message.
pub(crate) async fn follow(
    client: &Client,
    address: &str,
    progress: &mut dyn Progress,
) -> Result<()> {
    // Register the SIGINT handler now, before the transaction can start: `ctrl_c()` would only
    // install it when first polled, and a Ctrl-C in between would kill the client outright
    // instead of cancelling the transaction.
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| anyhow!("Installing the SIGINT handler: {e}"))?;
    let interrupt = async move {
        sigint.recv().await;
        Ok(())
    };
    let conn = client::connect_transaction(address).await?;
    let owner_changes = owner_changes(&client.conn).await;
    follow_on(&conn, owner_changes, interrupt, progress).await
}

/// A stream that yields when the daemon's bus name changes owner (empty if we cannot watch).
async fn owner_changes(bus: &Connection) -> std::pin::Pin<Box<dyn Stream<Item = ()> + Send>> {
    let watch = async {
        let dbus = zbus::fdo::DBusProxy::new(bus).await?;
        dbus.receive_name_owner_changed_with_args(&[(0, client::BUS_NAME)])
            .await
    };
    match watch.await {
        Ok(s) => Box::pin(s.map(|_| ())),
        Err(_) => Box::pin(futures_util::stream::pending()),
    }
}

/// The event loop, apart from where its inputs come from (so tests can drive it over a
/// socket pair): `interrupt` resolves on Ctrl-C.
pub(crate) async fn follow_on<S, I>(
    conn: &Connection,
    owner_changes: S,
    interrupt: I,
    progress: &mut dyn Progress,
) -> Result<()>
where
    S: Stream<Item = ()> + Unpin,
    I: Future<Output = std::io::Result<()>>,
{
    // Subscribe before Start() so no signal is missed.
    let mut messages = MessageStream::from(conn);
    let proxy = client::txn_proxy(conn)
        .await
        .map_err(|e| anyhow!("Following the transaction: {}", errors::dbus_error_text(&e)))?;
    let start = proxy.start();
    tokio::pin!(start);
    tokio::pin!(interrupt);
    let mut owner_changes = owner_changes;
    let mut started = false;
    let mut cancelled = false;
    loop {
        tokio::select! {
            r = &mut start, if !started => {
                started = true;
                if let Err(e) = r {
                    bail!("Starting the transaction: {}", errors::dbus_error_text(&e));
                }
            }
            m = messages.next() => {
                let Some(Ok(msg)) = m else {
                    bail!(
                        "Lost the connection to the transaction before it finished. \
                         This likely means the daemon crashed"
                    );
                };
                let Some(ev) = parse_event(&msg) else { continue };
                progress.event(&ev);
                if let Event::Finished(ok, text) = ev {
                    if ok {
                        return Ok(());
                    }
                    let text = if text.is_empty() { "Transaction failed".to_string() } else { text };
                    return Err(anyhow!(text));
                }
            }
            _ = owner_changes.next() => {
                bail!(errors::BUS_OWNER_CHANGED);
            }
            _ = &mut interrupt, if !cancelled => {
                cancelled = true;
                progress.note(errors::CAUGHT_SIGINT);
                if let Err(e) = proxy.cancel().await {
                    bail!("Cancelling the transaction: {}", errors::dbus_error_text(&e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use strata_api::transaction::{TransactionBackend, TransactionServer};
    use tokio::net::UnixStream;
    use zbus::object_server::SignalEmitter;

    /// A scripted transaction object: on `Start()` it emits the given events.
    struct FakeTxn {
        script: Vec<Event>,
        cancelled: Arc<Mutex<bool>>,
    }

    type Signals = TransactionServer<FakeTxn>;

    impl TransactionBackend for FakeTxn {
        fn title(&self) -> zbus::fdo::Result<String> {
            Ok("upgrade".into())
        }
        fn initiating_client_description(&self) -> zbus::fdo::Result<String> {
            Ok(String::new())
        }
        async fn start(&self, em: SignalEmitter<'static>) -> zbus::fdo::Result<bool> {
            let script = self.script.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                for ev in script {
                    let _ = emit(&em, ev).await;
                }
            });
            Ok(true)
        }
        async fn cancel(&self, em: SignalEmitter<'static>) -> zbus::fdo::Result<()> {
            *self.cancelled.lock().unwrap() = true;
            let _ = Signals::finished(&em, false, "Transaction cancelled").await;
            Ok(())
        }
    }

    async fn emit(em: &SignalEmitter<'static>, ev: Event) -> zbus::Result<()> {
        match ev {
            Event::Message(m) => Signals::message(em, &m).await,
            Event::TaskBegin(m) => Signals::task_begin(em, &m).await,
            Event::TaskEnd(m) => Signals::task_end(em, &m).await,
            Event::Percent(m, p) => Signals::percent_progress(em, &m, p).await,
            Event::Download(d) => {
                Signals::download_progress(
                    em,
                    d.time,
                    d.outstanding,
                    d.metadata,
                    d.delta,
                    d.content,
                    d.transfer,
                )
                .await
            }
            Event::ProgressEnd => Signals::progress_end(em).await,
            Event::Finished(ok, m) => Signals::finished(em, ok, &m).await,
        }
    }

    /// Serve a fake transaction on one end of a socket pair; return the client end.
    async fn serve(script: Vec<Event>) -> (Connection, Connection, Arc<Mutex<bool>>) {
        let (a, b) = UnixStream::pair().unwrap();
        let cancelled = Arc::new(Mutex::new(false));
        let guid = zbus::Guid::generate();
        let txn = FakeTxn {
            script,
            cancelled: cancelled.clone(),
        };
        let server = zbus::connection::Builder::unix_stream(a)
            .server(guid)
            .unwrap()
            .p2p()
            .serve_at("/", TransactionServer(txn))
            .unwrap()
            .build();
        let client = zbus::connection::Builder::unix_stream(b).p2p().build();
        let (server, client) = tokio::join!(server, client);
        (server.unwrap(), client.unwrap(), cancelled)
    }

    /// A progress sink that records events.
    #[derive(Default)]
    struct Record(Vec<Event>, Vec<String>);
    impl Progress for Record {
        fn event(&mut self, ev: &Event) {
            self.0.push(ev.clone());
        }
        fn note(&mut self, line: &str) {
            self.1.push(line.to_string());
        }
    }

    fn never() -> impl Future<Output = std::io::Result<()>> {
        std::future::pending()
    }

    #[tokio::test]
    async fn success_with_all_signal_kinds() {
        let d = Download {
            time: (1, 2),
            outstanding: (1, 0),
            metadata: (3, 4, 0),
            delta: (0, 0, 0, 0),
            content: (5, 10),
            transfer: (1234, 99),
        };
        let script = vec![
            Event::Message("Updating from: os:stable".into()),
            Event::TaskBegin("Receiving".into()),
            Event::Download(d),
            Event::ProgressEnd,
            Event::Percent("Checkout".into(), 50),
            Event::TaskEnd("done".into()),
            Event::Finished(true, String::new()),
        ];
        let (_server, client, _) = serve(script.clone()).await;
        let mut rec = Record::default();
        follow_on(&client, futures_util::stream::pending(), never(), &mut rec)
            .await
            .unwrap();
        assert_eq!(rec.0, script);
    }

    #[tokio::test]
    async fn failure_carries_the_daemon_message() {
        let (_server, client, _) = serve(vec![Event::Finished(
            false,
            "No space left on device".into(),
        )])
        .await;
        let mut rec = Record::default();
        let e = follow_on(&client, futures_util::stream::pending(), never(), &mut rec)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "No space left on device");
    }

    #[tokio::test]
    async fn interrupt_cancels() {
        let (_server, client, cancelled) = serve(vec![Event::Message("working".into())]).await;
        let mut rec = Record::default();
        let interrupt = async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Ok(())
        };
        let e = follow_on(
            &client,
            futures_util::stream::pending(),
            interrupt,
            &mut rec,
        )
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "Transaction cancelled");
        assert!(*cancelled.lock().unwrap());
        assert_eq!(rec.1, vec![errors::CAUGHT_SIGINT.to_string()]);
    }

    #[tokio::test]
    async fn owner_change_aborts() {
        let (_server, client, _) = serve(vec![Event::Message("working".into())]).await;
        let mut rec = Record::default();
        let owner = Box::pin(futures_util::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }));
        let e = follow_on(&client, owner, never(), &mut rec)
            .await
            .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("Bus owner changed, aborting. This likely means the daemon crashed"));
    }

    #[tokio::test]
    async fn closed_connection_is_reported() {
        let (server, client, _) = serve(vec![]).await;
        let mut rec = Record::default();
        let closer = async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            server.close().await.unwrap();
        };
        let (r, _) = tokio::join!(
            follow_on(&client, futures_util::stream::pending(), never(), &mut rec),
            closer
        );
        let e = r.unwrap_err().to_string();
        assert!(e.contains("daemon crashed"), "{e}");
    }
}

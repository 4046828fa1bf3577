//! The server side of rpm-ostree's `Transaction` interface, declared once: its properties,
//! methods and signals, over a [`TransactionBackend`] that the daemon's transactions (and test
//! doubles) implement. The client side is [`crate::proxy::TransactionProxy`].

use std::future::Future;

use zbus::object_server::SignalEmitter;

/// What a `Transaction` object does.
pub trait TransactionBackend: Send + Sync + 'static {
    /// The `Title` property, e.g. `upgrade`.
    fn title(&self) -> zbus::fdo::Result<String>;
    /// The `InitiatingClientDescription` property.
    fn initiating_client_description(&self) -> zbus::fdo::Result<String>;
    /// `Start()`: whether this call started the operation. `emitter` sends this object's
    /// signals on the caller's connection (e.g. to replay `Finished` to a late caller).
    fn start(
        &self,
        emitter: SignalEmitter<'static>,
    ) -> impl Future<Output = zbus::fdo::Result<bool>> + Send;
    /// `Cancel()`.
    fn cancel(
        &self,
        emitter: SignalEmitter<'static>,
    ) -> impl Future<Output = zbus::fdo::Result<()>> + Send;
}

/// A `Transaction` object serving `B`; signals are sent with its associated functions
/// (`TransactionServer::<B>::finished(&emitter, …)`).
#[derive(Debug)]
pub struct TransactionServer<B>(pub B);

#[zbus::interface(name = "org.projectatomic.rpmostree1.Transaction")]
impl<B: TransactionBackend> TransactionServer<B> {
    #[zbus(property)]
    fn title(&self) -> zbus::fdo::Result<String> {
        self.0.title()
    }

    #[zbus(property)]
    fn initiating_client_description(&self) -> zbus::fdo::Result<String> {
        self.0.initiating_client_description()
    }

    async fn start(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<bool> {
        self.0.start(emitter.into_owned()).await
    }

    async fn cancel(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        self.0.cancel(emitter.into_owned()).await
    }

    /// The operation ended; `error_message` is empty on success.
    #[zbus(signal)]
    pub async fn finished(
        emitter: &SignalEmitter<'_>,
        success: bool,
        error_message: &str,
    ) -> zbus::Result<()>;

    /// A line for the user.
    #[zbus(signal)]
    pub async fn message(emitter: &SignalEmitter<'_>, text: &str) -> zbus::Result<()>;

    /// A step begins.
    #[zbus(signal)]
    pub async fn task_begin(emitter: &SignalEmitter<'_>, text: &str) -> zbus::Result<()>;

    /// A step ended.
    #[zbus(signal)]
    pub async fn task_end(emitter: &SignalEmitter<'_>, text: &str) -> zbus::Result<()>;

    /// Progress of a step, in percent.
    #[zbus(signal)]
    pub async fn percent_progress(
        emitter: &SignalEmitter<'_>,
        text: &str,
        percentage: u32,
    ) -> zbus::Result<()>;

    /// libostree's pull progress, in rpm-ostree's tuple layout.
    #[zbus(signal)]
    #[allow(clippy::too_many_arguments)]
    pub async fn download_progress(
        emitter: &SignalEmitter<'_>,
        time: (u64, u64),
        outstanding: (u32, u32),
        metadata: (u32, u32, u32),
        delta: (u32, u32, u32, u64),
        content: (u32, u32),
        transfer: (u64, u64),
    ) -> zbus::Result<()>;

    /// A GPG signature of `commit` was checked: rpm-ostree's `av` layout of one signature
    /// (libostree's `ostree_gpg_verify_result_get_all` fields).
    #[zbus(signal)]
    pub async fn signature_progress(
        emitter: &SignalEmitter<'_>,
        signature: Vec<zbus::zvariant::Value<'_>>,
        commit: &str,
    ) -> zbus::Result<()>;

    /// The progress display can be closed.
    #[zbus(signal)]
    pub async fn progress_end(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
}

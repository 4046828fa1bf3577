//! The socket of a transaction's peer-to-peer connection, as zbus sees it.
//!
//! zbus, serving a peer-to-peer connection, asks the socket for the peer's credentials before
//! authenticating it, and its Unix socket answers with the complete list of the peer's groups:
//! `getpwuid_r` and `getgrouplist`, that is a walk of every NSS module the host configures
//! (`systemd` through varlink, `sss` or LDAP on enterprise hosts) on every client connection of
//! every transaction, and those modules mapped into stratad for good. The transaction needs the
//! peer's uid only (checked against the initiator's before zbus sees the connection), and the
//! D-Bus specification allows the groups to be absent; GDBus, rpm-ostree's, does not look them
//! up either. This read half answers with the uid and pid of `SO_PEERCRED` and otherwise is
//! tokio's.

use std::os::fd::OwnedFd;

use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use zbus::connection::socket::{ReadHalf, Socket, Split};
use zbus::fdo::ConnectionCredentials;

/// A transaction peer's stream, for `zbus::connection::Builder::socket`.
#[derive(Debug)]
pub(crate) struct PeerStream(pub UnixStream);

impl Socket for PeerStream {
    type ReadHalf = PeerReadHalf;
    type WriteHalf = OwnedWriteHalf;

    fn split(self) -> Split<PeerReadHalf, OwnedWriteHalf> {
        let (read, write) = self.0.into_split();
        Split::new(PeerReadHalf(read), write)
    }
}

/// tokio's read half, with credentials from `SO_PEERCRED` alone.
#[derive(Debug)]
pub(crate) struct PeerReadHalf(OwnedReadHalf);

#[async_trait::async_trait]
impl ReadHalf for PeerReadHalf {
    async fn recvmsg(&mut self, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
        self.0.recvmsg(buf).await
    }

    fn can_pass_unix_fd(&self) -> bool {
        self.0.can_pass_unix_fd()
    }

    async fn peer_credentials(&mut self) -> std::io::Result<ConnectionCredentials> {
        let cred = self.0.as_ref().peer_cred()?;
        let mut creds = ConnectionCredentials::default().set_unix_user_id(cred.uid());
        if let Some(pid) = cred.pid().and_then(|p| u32::try_from(p).ok()) {
            creds = creds.set_process_id(pid);
        }
        Ok(creds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credentials_are_the_peers_uid_and_pid_without_groups() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut split = PeerStream(ours).split();
        let creds = split.read_mut().peer_credentials().await.unwrap();
        assert_eq!(
            creds.unix_user_id(),
            Some(rustix::process::getuid().as_raw())
        );
        assert_eq!(creds.process_id(), Some(std::process::id()));
        // zbus's own Unix socket lists the peer's groups (root has at least group 0): the NSS
        // lookups this type is for leaving out.
        assert_eq!(creds.unix_group_ids(), None);
    }
}

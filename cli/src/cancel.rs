//! `cancel`: cancel the active transaction.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::client::{self, Client};
use crate::errors;
use crate::flow::Ctx;

/// rpm-ostree tries this many times, a second apart, to reach the transaction.
const CONNECT_TRIES: u32 = 5;

pub(crate) const NO_ACTIVE: &str = "No active transaction.";

pub(crate) async fn run(client: &Client, ctx: &Ctx) -> Result<i32> {
    let mut last_err = None;
    for attempt in 0..CONNECT_TRIES {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let address = client
            .sysroot
            .active_transaction_path()
            .await
            .map_err(|e| client.plain_error(e))
            .context("Reading ActiveTransactionPath")?;
        if address.is_empty() {
            if !ctx.quiet {
                println!("{NO_ACTIVE}");
            }
            return Ok(0);
        }
        match client::connect_transaction(&address).await {
            Ok(conn) => {
                let proxy = client::txn_proxy(&conn)
                    .await
                    .context("Creating the transaction proxy")?;
                let title = proxy.title().await.unwrap_or_default();
                proxy
                    .cancel()
                    .await
                    .map_err(|e| anyhow::anyhow!(errors::dbus_error_text(&e)))
                    .context("Cancelling the transaction")?;
                if !ctx.quiet {
                    if title.is_empty() {
                        println!("Cancelled the active transaction.");
                    } else {
                        println!("Cancelled: {title}");
                    }
                }
                return Ok(0);
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("Could not reach the active transaction")))
}

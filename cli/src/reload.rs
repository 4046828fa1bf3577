//! `reload`: make the daemon re-read its configuration and the sysroot.

use anyhow::{Context, Result};

use crate::client::Client;

pub(crate) async fn run(client: &Client) -> Result<i32> {
    client
        .sysroot
        .reload_config()
        .await
        .map_err(|e| client.plain_error(e))
        .context("Reloading the daemon's configuration")?;
    Ok(0)
}

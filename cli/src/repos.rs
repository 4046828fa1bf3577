//! `refresh-md` and `search`: the rpm-md repositories the deployment layers packages from.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::Result;
use strata_api::options::RefreshMdOptions;
use zbus::zvariant::OwnedValue;

use crate::args::{RefreshMdArgs, SearchArgs};
use crate::client::Client;
use crate::flow::{self, Ctx};

pub(crate) async fn refresh_md(client: &Client, ctx: &Ctx, a: &RefreshMdArgs) -> Result<i32> {
    let os = client.os(ctx.stateroot.as_deref()).await?;
    let opts = RefreshMdOptions {
        force: Some(a.force),
    };
    flow::run_txn(client, ctx.quiet, os.refresh_md(&opts)).await?;
    Ok(0)
}

pub(crate) async fn search(client: &Client, ctx: &Ctx, a: &SearchArgs) -> Result<i32> {
    let os = client.os(ctx.stateroot.as_deref()).await?;
    let terms: Vec<&str> = a.terms.iter().map(String::as_str).collect();
    let found = match os.search(&terms).await {
        Ok(f) => f,
        Err(e) => return Err(client.call_error(e).await),
    };
    print!("{}", render_search(&found));
    Ok(0)
}

/// rpm-ostree's search output: a `===== … Matched =====` header before each group, then
/// `name : summary` lines; `No matches found.` when nothing matched.
fn render_search(found: &[HashMap<String, OwnedValue>]) -> String {
    let text = |d: &HashMap<String, OwnedValue>, k: &str| {
        d.get(k)
            .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
            .map(|s| strata_api::text::printable(&s, 512))
            .unwrap_or_default()
    };
    let mut out = String::new();
    let mut groups: Vec<String> = Vec::new();
    for d in found {
        let key = text(d, "key");
        if !groups.contains(&key) {
            let title = match key.as_str() {
                "match_group_a" => "Summary & Name",
                "match_group_b" => "Name",
                "match_group_c" => "Summary",
                _ => "",
            };
            let _ = write!(out, "\n===== {title} Matched =====\n");
            groups.push(key);
        }
        let _ = writeln!(out, "{} : {}", text(d, "name"), text(d, "summary"));
    }
    if groups.is_empty() {
        out.push_str("No matches found.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::Value;

    fn pkg(key: &str, name: &str, summary: &str) -> HashMap<String, OwnedValue> {
        [("key", key), ("name", name), ("summary", summary)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), OwnedValue::try_from(Value::from(v)).unwrap()))
            .collect()
    }

    #[test]
    fn search_output_like_rpm_ostree() {
        assert_eq!(render_search(&[]), "No matches found.\n");
        let found = [
            pkg("match_group_a", "hello", "Says hello"),
            pkg("match_group_b", "hello", "Says hello"),
            pkg("match_group_b", "libhello", "Hello\nlibrary"),
        ];
        assert_eq!(
            render_search(&found),
            "\n===== Summary & Name Matched =====\nhello : Says hello\n\n===== Name Matched =====\nhello : Says hello\nlibhello : Hello\\nlibrary\n"
        );
    }
}

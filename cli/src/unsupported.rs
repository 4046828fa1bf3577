//! rpm-ostree verbs Strata does not implement (yet): a clear message instead of a usage error.

use std::ffi::OsString;

use anyhow::{bail, Result};

use crate::errors::unsupported_verb;

/// Why a known rpm-ostree verb is not available; `None` for verbs rpm-ostree does not have.
pub(crate) fn reason(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "override" => "base package overrides come with a later release",
        "initramfs" | "initramfs-etc" => "initramfs regeneration comes with a later release",
        "rpm" => "rpm-ostree's rpm wrapper is not part of Strata",
        "apply-live" | "usroverlay" | "unlock" => {
            "live changes to the running system come with a later release"
        }
        "compose" => "composing OS trees and images is not part of Strata's client",
        "ex" => "experimental commands are not available",
        "start-daemon" => {
            "the daemon is a separate program: run `stratad` (or `systemctl start stratad`)"
        }
        "testutils"
        | "shlib-backend"
        | "scriptlet-intercept"
        | "countme"
        | "cliwrap"
        | "kernel-install" => "this is an internal rpm-ostree command",
        _ => return None,
    })
}

/// Fail with the right message for `argv` (the verb and its arguments).
pub(crate) fn run(program: &str, argv: &[OsString]) -> Result<i32> {
    let verb = argv
        .first()
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    match reason(&verb) {
        Some(why) => bail!(unsupported_verb(program, &verb, why)),
        None => {
            // Bounded and escaped: the verb is whatever the user typed.
            let shown: String = verb.chars().take(64).collect();
            match suggestion(&verb) {
                Some(s) => {
                    bail!("Unknown command {shown:?}; did you mean \"{s}\"? See `{program} --help`")
                }
                None => bail!("Unknown command {shown:?}; see `{program} --help`"),
            }
        }
    }
}

/// The visible verb closest to `typed`, if it is close enough to be a typo (clap's own
/// measure and threshold for its "did you mean").
fn suggestion(typed: &str) -> Option<String> {
    use clap::CommandFactory;
    crate::args::Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .flat_map(|c| {
            std::iter::once(c.get_name().to_string())
                .chain(c.get_visible_aliases().map(str::to_string))
        })
        .map(|name| (strsim::jaro(typed, &name), name))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    #[test]
    fn layering_verbs() {
        let cli = Cli::try_parse_from(["strata", "override", "remove", "htop"]).unwrap();
        let Command::Other(argv) = cli.command else {
            panic!()
        };
        assert_eq!(argv, ["override", "remove", "htop"]);
        let e = run("strata", &argv).unwrap_err().to_string();
        assert_eq!(
            e,
            "\"strata override\" is not supported yet: base package overrides come with a later release"
        );
    }

    #[test]
    fn typos_get_a_suggestion() {
        let e = run("strata", &[OsString::from("upgarde")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "Unknown command \"upgarde\"; did you mean \"upgrade\"? See `strata --help`"
        );
        let e = run("strata", &[OsString::from("stauts")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean \"status\""), "{e}");
        let e = run("strata", &[OsString::from("zzzzqqq\n")])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "Unknown command \"zzzzqqq\\n\"; see `strata --help`");
    }

    #[test]
    fn every_known_verb_has_a_reason() {
        for verb in [
            "override",
            "initramfs",
            "initramfs-etc",
            "rpm",
            "apply-live",
            "usroverlay",
            "unlock",
            "compose",
            "ex",
            "start-daemon",
            "testutils",
            "shlib-backend",
            "scriptlet-intercept",
            "countme",
            "cliwrap",
            "kernel-install",
        ] {
            assert!(reason(verb).is_some(), "{verb}");
            let cli = Cli::try_parse_from(["rpm-ostree", verb]).unwrap();
            assert!(matches!(cli.command, Command::Other(_)), "{verb}");
        }
    }

    #[test]
    fn unknown_verb() {
        let e = run("strata", &["frobnicate".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "Unknown command \"frobnicate\"; see `strata --help`");
    }
}

//! `generate-docs`: man pages (clap_mangen) and shell completions (clap_complete) from the
//! clap definitions, so they never drift from the code.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::{Cli, GenerateDocsArgs};

pub(crate) fn run(a: &GenerateDocsArgs) -> Result<i32> {
    if let Some(dir) = &a.man {
        write_man_pages(dir)?;
    }
    if let Some(dir) = &a.completions {
        write_completions(dir)?;
    }
    Ok(0)
}

/// `strata.1` and one `strata-VERB.1` per visible verb.
pub(crate) fn write_man_pages(dir: &Path) -> Result<()> {
    fs_err::create_dir_all(dir)?;
    // `help` is clap's, not a verb with a page of its own.
    let cmd = Cli::command().disable_help_subcommand(true);
    render_man(&cmd, "strata", dir)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = format!("strata-{}", sub.get_name());
        // The page is strata-VERB(1); its synopsis is the command line, `strata VERB`.
        let sub = sub
            .clone()
            .display_name(page.clone())
            .bin_name(format!("strata {}", sub.get_name()))
            .version(env!("CARGO_PKG_VERSION"));
        render_man(&sub, &page, dir)?;
    }
    Ok(())
}

/// EXIT STATUS and SEE ALSO, which clap_mangen has no sections for (roff written by hand: two
/// fixed sections).
fn closing_sections(page: &str) -> String {
    let mut see_also = vec!["strata(1)", "stratad(8)", "ostree(1)"];
    see_also.retain(|p| !p.starts_with(&format!("{page}(")));
    format!(
        ".SH \"EXIT STATUS\"\n\
         .TP\n0\nSuccess.\n\
         .TP\n1\nFailure; the message on standard error says why.\n\
         .TP\n77\nNothing changed (with \\fB\\-\\-unchanged\\-exit\\-77\\fR), or a deployment \
         is pending (\\fBstatus \\-\\-pending\\-exit\\-77\\fR), as with rpm\\-ostree.\n\
         .SH \"SEE ALSO\"\n{}\n",
        see_also
            .iter()
            .map(|p| {
                let (name, section) = p.trim_end_matches(')').split_once('(').unwrap_or((p, ""));
                format!("\\fB{}\\fR({section})", name.replace('-', "\\-"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn render_man(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .source(format!("strata {}", env!("CARGO_PKG_VERSION")))
        .render(&mut buf)
        .with_context(|| format!("Rendering the man page of {name}"))?;
    buf.extend_from_slice(closing_sections(name).as_bytes());
    Ok(fs_err::write(&path, buf)?)
}

/// `cmd` without hidden verbs and options, for completions (clap_complete offers hidden ones).
fn visible_only(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cmd.get_name().to_string())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .visible_aliases(
            cmd.get_visible_aliases()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        );
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out = out.subcommand(visible_only(sub));
    }
    out
}

/// bash, zsh and fish completions for `strata` and for the `rpm-ostree` symlink.
pub(crate) fn write_completions(dir: &Path) -> Result<()> {
    fs_err::create_dir_all(dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        for bin in ["strata", "rpm-ostree"] {
            let mut cmd = visible_only(&Cli::command());
            clap_complete::generate_to(shell, &mut cmd, bin, dir)
                .with_context(|| format!("Writing {shell} completions for {bin}"))?;
        }
    }
    Ok(())
}

/// The CLI reference (`docs/cli.md`): each visible verb's `--help`, from the same clap
/// definitions as the man pages.
#[cfg(test)]
fn markdown_reference() -> String {
    let mut cmd = Cli::command().disable_help_subcommand(true).term_width(100);
    cmd.build();
    let mut md = String::from(
        "# CLI reference\n\n\
         Generated from `strata`'s clap definitions (`cli/src/docs.rs`), like the man pages \
         `make install` writes (strata(1), strata-VERB(1)); do not edit. `strata` installed as \
         `rpm-ostree` behaves the same. Exit status: 0 on success, 1 on failure, 77 when nothing \
         changed with `--unchanged-exit-77` or a deployment is pending with \
         `status --pending-exit-77`.\n\n## strata\n\n```text\n",
    );
    md.push_str(cmd.render_long_help().to_string().trim_end());
    md.push_str("\n```\n");
    for sub in cmd.get_subcommands_mut().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name().to_string();
        let help = sub
            .clone()
            .bin_name(format!("strata {name}"))
            .render_long_help()
            .to_string();
        md.push_str(&format!(
            "\n## strata {name}\n\n```text\n{}\n```\n",
            help.trim_end()
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_reference_is_current() {
        let md = markdown_reference();
        assert!(md.contains("## strata kargs\n"), "{md}");
        assert!(md.contains("--append-if-missing"), "{md}");
        assert!(!md.contains("generate-docs"), "hidden verbs stay out");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md");
        if std::env::var_os("STRATA_UPDATE_DOCS").is_some() {
            fs_err::write(&path, &md).unwrap();
        }
        let committed = fs_err::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == md,
            "{} is stale: run `make docs` and commit it",
            path.display()
        );
    }

    #[test]
    fn man_pages_and_completions() {
        let tmp = tempfile::tempdir().unwrap();
        let man = tmp.path().join("man1");
        let comp = tmp.path().join("completions");
        run(&GenerateDocsArgs {
            man: Some(man.clone()),
            completions: Some(comp.clone()),
        })
        .unwrap();
        let page = std::fs::read_to_string(man.join("strata.1")).unwrap();
        assert!(
            page.contains(".TH strata 1"),
            "{}",
            &page[..200.min(page.len())]
        );
        for verb in [
            "status",
            "upgrade",
            "deploy",
            "rebase",
            "rollback",
            "kargs",
            "cleanup",
            "cancel",
            "reload",
            "finalize-deployment",
        ] {
            assert!(man.join(format!("strata-{verb}.1")).exists(), "{verb}");
        }
        assert!(!man.join("strata-generate-docs.1").exists());
        let kargs = std::fs::read_to_string(man.join("strata-kargs.1")).unwrap();
        assert!(kargs.contains("append\\-if\\-missing"));
        // The synopsis is the command line; the page is strata-kargs(1).
        assert!(kargs.contains("\\fBstrata kargs\\fR"), "{kargs}");
        assert!(kargs.contains(".TH strata-kargs 1"), "{kargs}");
        assert!(
            kargs.contains("\"strata 0."),
            "the footer names the program: {kargs}"
        );
        for section in [".SH \"EXIT STATUS\"", ".SH \"SEE ALSO\"", "\n77\n"] {
            assert!(kargs.contains(section), "{section}: {kargs}");
            assert!(page.contains(section), "{section}: {page}");
        }
        assert!(
            !page.contains("strata\\-help"),
            "no page for clap's help: {page}"
        );
        assert!(page.contains("strata\\-kargs(1)"), "{page}");
        for f in [
            "strata.bash",
            "_strata",
            "strata.fish",
            "rpm-ostree.bash",
            "_rpm-ostree",
        ] {
            assert!(comp.join(f).exists(), "{f}");
        }
        let bash = std::fs::read_to_string(comp.join("strata.bash")).unwrap();
        assert!(
            bash.contains("--lock-finalization"),
            "visible options are offered"
        );
        for hidden in ["generate-docs", "--ex-cliwrap", "--check-diff", "--peer"] {
            assert!(!bash.contains(hidden), "hidden {hidden} offered");
        }
    }
}

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
    let cmd = Cli::command();
    render_man(&cmd, "strata", dir)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("strata-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .version(env!("CARGO_PKG_VERSION"));
        render_man(&sub, &name, dir)?;
    }
    Ok(())
}

fn render_man(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .with_context(|| format!("Rendering the man page of {name}"))?;
    Ok(fs_err::write(&path, buf)?)
}

/// bash, zsh and fish completions for `strata` and for the `rpm-ostree` symlink.
pub(crate) fn write_completions(dir: &Path) -> Result<()> {
    fs_err::create_dir_all(dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        for bin in ["strata", "rpm-ostree"] {
            let mut cmd = Cli::command();
            clap_complete::generate_to(shell, &mut cmd, bin, dir)
                .with_context(|| format!("Writing {shell} completions for {bin}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for f in [
            "strata.bash",
            "_strata",
            "strata.fish",
            "rpm-ostree.bash",
            "_rpm-ostree",
        ] {
            assert!(comp.join(f).exists(), "{f}");
        }
    }
}

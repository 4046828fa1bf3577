//! Running external programs (`ostree`, `gpg`, later `rpmbuild`, `qemu`, ...) with errors
//! that say what went wrong.
//!
//! Every helper logs the command line at `debug` level before running it. When the program cannot
//! be started or exits unsuccessfully, the error names the command line, the exit status and the
//! last [`TAIL_LINES`] lines of its stderr (or of its stdout when stderr is empty), so a failing
//! test explains itself without a rerun.
//!
//! Stdin is closed (`/dev/null`) unless the caller configured it on the [`Command`].

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

/// How many trailing lines of a failed command's output end up in the error.
pub const TAIL_LINES: usize = 20;

/// Runs `cmd` to completion and returns its stdout (lossily decoded as UTF-8).
///
/// Fails when the program cannot be started or exits unsuccessfully; the error contains the
/// command line, the exit status and the tail of stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let output = run_output(cmd)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Like [`run`], but returns the whole [`Output`] (raw stdout and stderr bytes) of a successful
/// run.
pub fn run_output(cmd: &mut Command) -> Result<Output> {
    let line = command_line(cmd);
    let output = spawn_and_wait(cmd, &line)?;
    if !output.status.success() {
        bail!(failure_message(&line, &output));
    }
    Ok(output)
}

/// Runs `cmd` expecting it to **fail**; returns its stderr (lossily decoded) so the caller can
/// check why. It is an error if the program succeeds (the error then carries its stdout tail)
/// or cannot be started.
///
/// Meant for negative tests: "pulling a commit signed by the wrong key fails".
pub fn run_expect_failure(cmd: &mut Command) -> Result<String> {
    let line = command_line(cmd);
    let output = spawn_and_wait(cmd, &line)?;
    if output.status.success() {
        bail!(
            "Command `{line}` succeeded but was expected to fail; stdout tail:\n{}",
            tail(&output.stdout, TAIL_LINES)
        );
    }
    Ok(String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Runs `ostree ARGS...` with [`run`]. Paths and strings both work as arguments.
pub fn ostree<I, S>(args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("ostree");
    cmd.args(args);
    run(&mut cmd)
}

/// Renders `cmd` as a shell-like command line: environment overrides first (`K=V`), then the
/// program and its arguments, single-quoted where needed.
pub fn command_line(cmd: &Command) -> String {
    let mut line = String::new();
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        match value {
            Some(value) => {
                let _ = write!(line, "{}={} ", key, quote(value));
            }
            None => {
                let _ = write!(line, "-u {key} ");
            }
        }
    }
    line.push_str(&quote(cmd.get_program()));
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    line
}

/// Quotes one word for display the way a POSIX shell would need it.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '+' | '@' | '%')
        });
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn spawn_and_wait(cmd: &mut Command, line: &str) -> Result<Output> {
    tracing::debug!("running {line}");
    if let Some(dir) = cmd.get_current_dir() {
        tracing::debug!("  in {}", dir.display());
    }
    cmd.output().with_context(|| format!("Starting `{line}`"))
}

/// The error text for a command that ran but failed.
fn failure_message(line: &str, output: &Output) -> String {
    let (name, stream) = if output.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        ("stderr", &output.stderr)
    } else {
        ("stdout", &output.stdout)
    };
    format!(
        "Command `{line}` failed ({}); {name} tail:\n{}",
        output.status,
        tail(stream, TAIL_LINES)
    )
}

/// The last `n` lines of `bytes`, lossily decoded, without a trailing newline.
pub fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let mut cmd = Command::new("echo");
        cmd.arg("a b").arg("it's").arg("--x=/y").env("K", "v 1");
        assert_eq!(command_line(&cmd), r"K='v 1' echo 'a b' 'it'\''s' --x=/y");
    }

    #[test]
    fn tail_lines() {
        assert_eq!(tail(b"1\n2\n3\n4\n", 2), "3\n4");
        assert_eq!(tail(b"1\n", 5), "1");
        assert_eq!(tail(b"", 5), "");
    }

    #[test]
    fn failure_has_status_and_stderr_tail() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "for i in $(seq 1 30); do echo line$i >&2; done; exit 3",
        ]);
        let err = format!("{:#}", run(&mut cmd).expect_err("must fail"));
        assert!(err.contains("sh -c"), "{err}");
        assert!(err.contains("exit status: 3"), "{err}");
        assert!(err.contains("line30") && err.contains("line11"), "{err}");
        assert!(!err.contains("line10\n"), "{err}");
    }

    #[test]
    fn success_and_expected_failure() -> Result<()> {
        assert_eq!(run(Command::new("echo").arg("hi"))?, "hi\n");
        let stderr = run_expect_failure(Command::new("sh").args(["-c", "echo no >&2; false"]))?;
        assert_eq!(stderr, "no\n");
        assert!(run_expect_failure(&mut Command::new("true")).is_err());
        assert!(run(&mut Command::new("/nonexistent/program")).is_err());
        Ok(())
    }
}

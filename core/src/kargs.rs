//! Kernel command line editing with `rpm-ostree kargs` semantics, on libostree's
//! `OstreeKernelArgs` (what rpm-ostree applies).
//!
//! Strata adds input validation before anything reaches libostree: every argument a user
//! gives must be one line of printable text with a non-empty key and balanced quotes.
//!
//! # Semantics (rpm-ostree 2024.1 and later, which these tests pin)
//!
//! The edits apply in rpm-ostree's order: delete, replace, append, append-if-missing,
//! delete-if-present.
//! - `--append=ARG` always appends, also when `ARG` is already there (`quiet quiet`): it is
//!   how a key gets several values (`console=tty0 console=ttyS0`).
//! - `--append-if-missing=ARG` appends unless exactly `ARG` is present.
//! - `--delete=KEY` removes the key's only value; with several values it fails ("Multiple
//!   values for key ..."). `--delete=KEY=VALUE` removes the first occurrence of exactly that.
//! - `--delete-if-present=ARG` deletes only when exactly `ARG` was in the starting command
//!   line.
//! - `--replace=KEY=VALUE` sets the value of a key that has exactly one; `--replace=KEY=OLD=NEW`
//!   changes the first `KEY=OLD` to `KEY=NEW`, however many values the key has.

use std::fmt;

/// Which edit an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KargsOp {
    /// `--append`
    Append,
    /// `--append-if-missing`
    AppendIfMissing,
    /// `--delete`
    Delete,
    /// `--delete-if-present`
    DeleteIfPresent,
    /// `--replace`
    Replace,
}

impl KargsOp {
    /// The `rpm-ostree kargs` option for this edit, e.g. `--delete`.
    pub fn flag(self) -> &'static str {
        match self {
            KargsOp::Append => "--append",
            KargsOp::AppendIfMissing => "--append-if-missing",
            KargsOp::Delete => "--delete",
            KargsOp::DeleteIfPresent => "--delete-if-present",
            KargsOp::Replace => "--replace",
        }
    }
}

impl fmt::Display for KargsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.flag())
    }
}

/// Errors from validating or applying kernel argument edits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KargsError {
    /// The argument is the empty string.
    #[error("kernel argument is empty; expected KEY or KEY=VALUE")]
    Empty,
    /// The argument starts with `=`.
    #[error("kernel argument {arg:?} has an empty key; expected KEY or KEY=VALUE")]
    EmptyKey {
        /// The offending argument.
        arg: String,
    },
    /// The key (the text before the first `=`) contains a double quote.
    #[error(
        "kernel argument {arg:?} has a double quote in its key; only the value may be quoted, as in KEY=\"a b\""
    )]
    QuoteInKey {
        /// The offending argument.
        arg: String,
    },
    /// The argument contains `\n` or `\r`.
    #[error("kernel argument {arg:?} contains a newline; each argument must be a single line")]
    Newline {
        /// The offending argument.
        arg: String,
    },
    /// The argument contains a NUL character.
    #[error("kernel argument {arg:?} contains a NUL character; arguments must be printable text")]
    Nul {
        /// The offending argument.
        arg: String,
    },
    /// The argument contains a control character other than newline or NUL
    /// (including a tab).
    #[error(
        "kernel argument {arg:?} contains the control character {ch:?}; arguments must be printable text (use a quoted space, KEY=\"a b\", to embed whitespace)"
    )]
    ControlChar {
        /// The offending argument.
        arg: String,
        /// The first control character found.
        ch: char,
    },
    /// The argument contains a space outside double quotes.
    #[error(
        "kernel argument {arg:?} contains unquoted whitespace; give each argument separately, or double-quote a value containing spaces, as in KEY=\"a b\""
    )]
    UnquotedWhitespace {
        /// The offending argument.
        arg: String,
    },
    /// The argument has an odd number of double quotes.
    #[error(
        "kernel argument {arg:?} has an unbalanced double quote; quotes must come in pairs, as in KEY=\"a b\""
    )]
    UnbalancedQuote {
        /// The offending argument.
        arg: String,
    },
    /// libostree refused an edit (no such key or value, several values for a bare key).
    #[error("{op}={arg}: {message}")]
    Edit {
        /// The edit that failed.
        op: KargsOp,
        /// The argument as given.
        arg: String,
        /// libostree's message, e.g. "Multiple values for key 'console' found".
        message: String,
    },
    /// `--replace` needs `KEY=VALUE` or `KEY=OLD=NEW`.
    #[error(
        "kernel argument {arg:?} cannot be used with --replace; expected KEY=VALUE or KEY=OLD=NEW"
    )]
    ReplaceNeedsValue {
        /// The offending argument.
        arg: String,
    },
    /// The command line would not fit the kernel's buffer (bootloaders truncate it).
    #[error(
        "the kernel command line would be {len} bytes, but the kernel accepts at most {max} on \
         {arch} (COMMAND_LINE_SIZE, including the {reserve} bytes kept for the bootloader's \
         ostree= argument); remove or shorten arguments"
    )]
    TooLong {
        /// Bytes of the arguments, joined with spaces.
        len: usize,
        /// The limit for the arguments (the kernel's minus the reserve).
        max: usize,
        /// The architecture the limit is for.
        arch: &'static str,
        /// Bytes kept for what libostree and the bootloader add.
        reserve: usize,
    },
    /// A full replacement was combined with individual edits.
    #[error(
        "replacing the whole kernel command line cannot be combined with --append, --append-if-missing, --delete, --delete-if-present or --replace; use either the full replacement or individual edits"
    )]
    ReplaceAllExclusive,
}

/// Characters that separate arguments on a command line (C `isspace`, which
/// is what the kernel uses).
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Check that `arg` is a single well-formed kernel argument.
///
/// It must be non-empty, have a non-empty key without quotes, contain no
/// control characters (newline, carriage return, NUL, tab, ...), have
/// balanced double quotes and no whitespace outside them.
pub fn validate_arg(arg: &str) -> Result<(), KargsError> {
    let owned = || shorten(arg);
    if arg.is_empty() {
        return Err(KargsError::Empty);
    }
    if arg.chars().filter(|&c| c == '"').count() % 2 != 0 {
        return Err(KargsError::UnbalancedQuote { arg: owned() });
    }
    if arg.contains(['\n', '\r']) {
        return Err(KargsError::Newline { arg: owned() });
    }
    if arg.contains('\0') {
        return Err(KargsError::Nul { arg: owned() });
    }
    if let Some(ch) = arg.chars().find(|c| c.is_control()) {
        return Err(KargsError::ControlChar { arg: owned(), ch });
    }
    let mut in_quote = false;
    for c in arg.chars() {
        if c == '"' {
            in_quote = !in_quote;
        } else if !in_quote && is_separator(c) {
            return Err(KargsError::UnquotedWhitespace { arg: owned() });
        }
    }
    let key = arg.split_once('=').map_or(arg, |(k, _)| k);
    if key.is_empty() {
        return Err(KargsError::EmptyKey { arg: owned() });
    }
    if key.contains('"') {
        return Err(KargsError::QuoteInKey { arg: owned() });
    }
    Ok(())
}

/// The kernel's `COMMAND_LINE_SIZE` for the architecture Strata runs on (the command line
/// buffer; longer ones are truncated by bootloaders or the kernel).
pub fn command_line_size() -> (usize, &'static str) {
    let arch = std::env::consts::ARCH;
    let size = match arch {
        // arch/s390/include/uapi/asm/setup.h: 4096 since Linux 5.x.
        "s390x" => 4096,
        // arch/{x86,arm64,powerpc,riscv,...}: 2048.
        _ => 2048,
    };
    (size, arch)
}

/// Bytes kept free for what libostree (`ostree=/ostree/boot.N/OS/CHECKSUM/N`, about 90) and
/// the bootloader (`BOOT_IMAGE=…`) add to a deployment's arguments.
const RESERVED: usize = 256;

/// Refuse argument lists that would not fit the kernel's command line.
pub fn check_length(args: &[String]) -> Result<(), KargsError> {
    let (size, arch) = command_line_size();
    let max = size - RESERVED;
    let len = args
        .iter()
        .map(|a| a.len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
    if len > max {
        return Err(KargsError::TooLong {
            len,
            max,
            arch,
            reserve: RESERVED,
        });
    }
    Ok(())
}

/// A caller's argument as an error quotes it: at most 200 characters (the messages are logged
/// and printed; a megabyte-long argument must not be).
fn shorten(arg: &str) -> String {
    crate::origin::caller_text(arg)
}

/// Split a command line into arguments at whitespace outside double quotes.
///
/// Not `KernelArgs::from_string`: libostree 2022.7 (Debian 12) splits at every space, also
/// inside quotes, which breaks `foo="a b"`; libostree 2024.5 fixed that. Each argument is
/// checked with [`validate_arg`].
pub fn split(cmdline: &str) -> Result<Vec<String>, KargsError> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_quote = false;
    for c in cmdline.chars() {
        if c == '"' {
            in_quote = !in_quote;
        }
        if !in_quote && is_separator(c) {
            if !current.is_empty() {
                args.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        args.push(current);
    }
    for a in &args {
        validate_arg(a)?;
    }
    Ok(args)
}

/// A set of edits, as the CLI / D-Bus gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KargsEdit {
    /// `--append=KEY[=VALUE]`
    pub append: Vec<String>,
    /// `--append-if-missing=KEY[=VALUE]`
    pub append_if_missing: Vec<String>,
    /// `--delete=KEY[=VALUE]`
    pub delete: Vec<String>,
    /// `--delete-if-present=KEY[=VALUE]`
    pub delete_if_present: Vec<String>,
    /// `--replace=KEY=VALUE` or `--replace=KEY=OLD=NEW`
    pub replace: Vec<String>,
    /// A whole new command line (`--editor` result, D-Bus
    /// `final-kernel-args`); exclusive with every other field.
    pub replace_all: Option<String>,
}

impl KargsEdit {
    /// Whether there is nothing to do. (`replace_all: Some("")` is not
    /// empty: it clears the command line.)
    pub fn is_empty(&self) -> bool {
        self.replace_all.is_none() && !self.has_individual_edits()
    }

    fn has_individual_edits(&self) -> bool {
        !(self.append.is_empty()
            && self.append_if_missing.is_empty()
            && self.delete.is_empty()
            && self.delete_if_present.is_empty()
            && self.replace.is_empty())
    }

    /// Check every argument's syntax, and that `replace_all` is not combined
    /// with individual edits. Does not look at any current command line.
    pub fn validate(&self) -> Result<(), KargsError> {
        if let Some(all) = &self.replace_all {
            if self.has_individual_edits() {
                return Err(KargsError::ReplaceAllExclusive);
            }
            check_length(&split(all)?)?;
            return Ok(());
        }
        // Each list on its own must fit, before anything reaches libostree.
        for list in [
            &self.append,
            &self.append_if_missing,
            &self.delete,
            &self.delete_if_present,
            &self.replace,
        ] {
            check_length(list)?;
        }
        for arg in self
            .append
            .iter()
            .chain(&self.append_if_missing)
            .chain(&self.delete)
            .chain(&self.delete_if_present)
        {
            validate_arg(arg)?;
        }
        for arg in &self.replace {
            validate_arg(arg)?;
            if !arg.contains('=') {
                return Err(KargsError::ReplaceNeedsValue { arg: shorten(arg) });
            }
        }
        Ok(())
    }

    /// Apply the edits to the arguments `current` and return the result; an error leaves
    /// nothing half-done (the caller's arguments are never modified).
    pub fn apply(&self, current: &[String]) -> Result<Vec<String>, KargsError> {
        self.validate()?;
        if let Some(all) = &self.replace_all {
            let new = split(all)?;
            check_length(&new)?;
            return Ok(new);
        }
        let kargs = ostree::KernelArgs::new();
        kargs.append_argv(&current.iter().map(String::as_str).collect::<Vec<_>>());
        fn failed(op: KargsOp, arg: &str) -> impl FnOnce(ostree::glib::Error) -> KargsError + '_ {
            move |e| KargsError::Edit {
                op,
                arg: shorten(arg),
                message: e.message().to_string(),
            }
        }
        for arg in &self.delete {
            kargs.delete(arg).map_err(failed(KargsOp::Delete, arg))?;
        }
        for arg in &self.replace {
            kargs
                .new_replace(arg)
                .map_err(failed(KargsOp::Replace, arg))?;
        }
        for arg in &self.append {
            kargs.append(arg);
        }
        for arg in &self.append_if_missing {
            if !strv(&kargs).contains(arg) {
                kargs.append(arg);
            }
        }
        for arg in &self.delete_if_present {
            if current.contains(arg) {
                kargs
                    .delete(arg)
                    .map_err(failed(KargsOp::DeleteIfPresent, arg))?;
            }
        }
        let new = strv(&kargs);
        check_length(&new)?;
        Ok(new)
    }
}

fn strv(kargs: &ostree::KernelArgs) -> Vec<String> {
    kargs.to_strv().iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_text(r: Result<impl fmt::Debug, KargsError>) -> String {
        r.unwrap_err().to_string()
    }

    fn argv(s: &str) -> Vec<String> {
        split(s).unwrap()
    }

    fn apply(current: &str, f: impl FnOnce(&mut KargsEdit)) -> Result<Vec<String>, KargsError> {
        let mut e = KargsEdit::default();
        f(&mut e);
        e.apply(&argv(current))
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    // --- splitting ---

    #[test]
    fn split_collapses_whitespace_and_keeps_quoted_spaces() {
        assert_eq!(
            argv("  quiet \t rhgb\n  root=/dev/sda1  "),
            ["quiet", "rhgb", "root=/dev/sda1"]
        );
        assert_eq!(argv(r#"a foo="x y" b"#), ["a", r#"foo="x y""#, "b"]);
        assert!(argv("").is_empty());
        assert!(argv(" \n ").is_empty());
        assert!(matches!(
            split(r#"foo="x y"#),
            Err(KargsError::UnbalancedQuote { .. })
        ));
        assert!(matches!(
            split("foo=\"a\nb\""),
            Err(KargsError::Newline { .. })
        ));
    }

    // --- rpm-ostree's edit semantics (see the module docs) ---

    #[test]
    fn append_of_a_present_argument_duplicates_it() {
        // rpm-ostree: `kargs --append=quiet` with quiet present gives `quiet quiet`.
        assert_eq!(
            apply("rw quiet", |e| e.append = strings(&["quiet"])).unwrap(),
            ["rw", "quiet", "quiet"]
        );
        // Several values for one key is what --append is for.
        assert_eq!(
            apply("console=tty0", |e| e.append = strings(&["console=ttyS0"])).unwrap(),
            ["console=tty0", "console=ttyS0"]
        );
    }

    #[test]
    fn append_if_missing_compares_the_whole_argument() {
        assert_eq!(
            apply("rw quiet", |e| e.append_if_missing =
                strings(&["quiet", "new"]))
            .unwrap(),
            ["rw", "quiet", "new"]
        );
        // Same key, other value: not "missing"-equal, so it is appended.
        assert_eq!(
            apply("crashkernel=1G", |e| e.append_if_missing =
                strings(&["crashkernel=auto"]))
            .unwrap(),
            ["crashkernel=1G", "crashkernel=auto"]
        );
        // --append foo --append-if-missing foo gives one foo (append runs first).
        assert_eq!(
            apply("", |e| {
                e.append = strings(&["foo"]);
                e.append_if_missing = strings(&["foo"]);
            })
            .unwrap(),
            ["foo"]
        );
    }

    #[test]
    fn delete_bare_key_needs_a_single_value() {
        assert_eq!(
            apply("rw quiet console=tty0", |e| e.delete =
                strings(&["console"]))
            .unwrap(),
            ["rw", "quiet"]
        );
        let err = err_text(apply("console=tty0 console=ttyS0", |e| {
            e.delete = strings(&["console"])
        }));
        assert!(err.starts_with("--delete=console: "), "{err}");
        assert!(err.contains("Multiple values for key 'console'"), "{err}");
        // Exact KEY=VALUE picks one of several.
        assert_eq!(
            apply("console=tty0 console=ttyS0", |e| e.delete =
                strings(&["console=ttyS0"]))
            .unwrap(),
            ["console=tty0"]
        );
    }

    #[test]
    fn delete_of_a_duplicate_removes_the_first_occurrence() {
        assert_eq!(
            apply("quiet rw quiet", |e| e.delete = strings(&["quiet"])).unwrap(),
            ["rw", "quiet"]
        );
        assert_eq!(
            apply("k=v k=v", |e| e.delete = strings(&["k=v"])).unwrap(),
            ["k=v"]
        );
    }

    #[test]
    fn delete_of_something_absent_fails() {
        let err = err_text(apply("rw", |e| e.delete = strings(&["absent"])));
        assert!(err.contains("No key 'absent' found"), "{err}");
        let err = err_text(apply("k=1", |e| e.delete = strings(&["k=2"])));
        assert!(err.contains("k=2"), "{err}");
    }

    #[test]
    fn delete_if_present_looks_at_the_starting_arguments() {
        assert_eq!(
            apply("rw quiet", |e| e.delete_if_present =
                strings(&["quiet", "absent"]))
            .unwrap(),
            ["rw"]
        );
        // A different value of the key is not "present".
        assert_eq!(
            apply("p=NEW", |e| e.delete_if_present = strings(&["p=TEST"])).unwrap(),
            ["p=NEW"]
        );
        // --delete runs first; delete-if-present of the same argument then finds nothing
        // left to delete and fails, as in rpm-ostree.
        let err = err_text(apply("foo rw", |e| {
            e.delete = strings(&["foo"]);
            e.delete_if_present = strings(&["foo"]);
        }));
        assert!(err.starts_with("--delete-if-present=foo: "), "{err}");
    }

    #[test]
    fn replace_single_value_and_old_new() {
        assert_eq!(
            apply("a foo=bar b", |e| e.replace = strings(&["foo=baz"])).unwrap(),
            ["a", "foo=baz", "b"]
        );
        assert_eq!(
            apply("foo=bar", |e| e.replace = strings(&["foo=bar=baz"])).unwrap(),
            ["foo=baz"]
        );
        // KEY=OLD=NEW works however many values the key has; KEY=VALUE does not.
        assert_eq!(
            apply("console=tty0 console=ttyS0", |e| e.replace =
                strings(&["console=ttyS0=ttyS1"]))
            .unwrap(),
            ["console=tty0", "console=ttyS1"]
        );
        let err = err_text(apply("console=tty0 console=ttyS0", |e| {
            e.replace = strings(&["console=ttyS1"])
        }));
        assert!(err.contains("Multiple values for key 'console'"), "{err}");
        let err = err_text(apply("rw", |e| e.replace = strings(&["nokey=1"])));
        assert!(err.starts_with("--replace=nokey=1: "), "{err}");
        assert!(err.contains("nokey"), "{err}");
        assert_eq!(
            err_text(apply("rw", |e| e.replace = strings(&["rw"]))),
            "kernel argument \"rw\" cannot be used with --replace; expected KEY=VALUE or \
             KEY=OLD=NEW"
        );
    }

    #[test]
    fn order_is_delete_replace_append() {
        assert_eq!(
            apply("a=1 b", |e| {
                e.append = strings(&["a=3"]);
                e.replace = strings(&["a=2"]);
                e.delete = strings(&["b"]);
            })
            .unwrap(),
            ["a=2", "a=3"]
        );
    }

    #[test]
    fn replace_all_is_exclusive_and_validated() {
        assert_eq!(
            apply("x", |e| e.replace_all = Some("root=LABEL=other ro".into())).unwrap(),
            ["root=LABEL=other", "ro"]
        );
        assert!(apply("x", |e| e.replace_all = Some(String::new()))
            .unwrap()
            .is_empty());
        assert_eq!(
            apply("x", |e| {
                e.replace_all = Some("y".into());
                e.append = strings(&["z"]);
            }),
            Err(KargsError::ReplaceAllExclusive)
        );
        assert!(matches!(
            apply("x", |e| e.replace_all = Some("a \"b".into())),
            Err(KargsError::UnbalancedQuote { .. })
        ));
    }

    #[test]
    fn command_lines_over_the_kernel_limit_are_refused() {
        let (size, _) = command_line_size();
        let big = format!("x={}", "a".repeat(100_000));
        let err = apply("rw", |e| e.append = strings(&[&big])).unwrap_err();
        assert!(matches!(err, KargsError::TooLong { .. }), "{err:?}");
        assert!(err.to_string().contains("COMMAND_LINE_SIZE"), "{err}");
        // From an editor (final-kernel-args) too.
        assert!(matches!(
            apply("rw", |e| e.replace_all = Some(big.clone())),
            Err(KargsError::TooLong { .. })
        ));
        // Many small ones that add up.
        let many: Vec<String> = (0..size / 4).map(|i| format!("k{i}=v")).collect();
        assert!(matches!(
            apply("rw", |e| e.append = many.clone()),
            Err(KargsError::TooLong { .. })
        ));
        // Up to the limit is fine.
        let fits = format!("x={}", "a".repeat(size - RESERVED - "rw x=".len()));
        assert_eq!(
            apply("rw", |e| e.append = vec![fits.clone()]).unwrap(),
            ["rw", &fits]
        );
    }

    #[test]
    fn errors_quote_at_most_200_characters_of_an_argument() {
        let huge = format!("a b{}", "c".repeat(1_000_000));
        let msg = err_text(validate_arg(&huge));
        assert!(msg.len() < 400, "{} bytes", msg.len());
        assert!(msg.contains("(1000003 bytes)"), "{msg}");
    }

    #[test]
    fn invalid_input_never_reaches_libostree() {
        for bad in ["", "=v", "a\nb", "a b", "a\0b", "\"k\"=v"] {
            assert!(
                apply("rw", |e| e.append = strings(&[bad])).is_err(),
                "{bad:?}"
            );
            assert!(
                apply("rw", |e| e.delete = strings(&[bad])).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn validate_accepts_ordinary_args() {
        for ok in [
            "quiet",
            "root=UUID=abc",
            "foo=",
            r#"foo="a b""#,
            "rd.break=pre-mount",
            "a.b-c_d=1,2:3",
        ] {
            assert_eq!(validate_arg(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn validate_rejects_newline_with_escaped_message() {
        let msg = err_text(validate_arg("foo\nbar"));
        assert_eq!(
            msg,
            r#"kernel argument "foo\nbar" contains a newline; each argument must be a single line"#
        );
    }

    #[test]
    fn validate_rejects_carriage_return() {
        assert_eq!(
            validate_arg("foo\r"),
            Err(KargsError::Newline {
                arg: "foo\r".into()
            })
        );
        assert!(err_text(validate_arg("foo\r")).contains(r#""foo\r""#));
    }

    #[test]
    fn validate_rejects_tab_and_other_controls() {
        assert_eq!(
            validate_arg("foo\tbar"),
            Err(KargsError::ControlChar {
                arg: "foo\tbar".into(),
                ch: '\t'
            })
        );
        // Even inside quotes.
        assert!(matches!(
            validate_arg("foo=\"a\tb\""),
            Err(KargsError::ControlChar { ch: '\t', .. })
        ));
        assert!(matches!(
            validate_arg("a\u{7f}"),
            Err(KargsError::ControlChar { ch: '\u{7f}', .. })
        ));
        let msg = err_text(validate_arg("foo\tbar"));
        assert!(msg.contains(r#""foo\tbar""#), "{msg}");
        assert!(msg.contains("printable"), "{msg}");
    }

    #[test]
    fn validate_rejects_nul() {
        assert_eq!(
            validate_arg("a\0b"),
            Err(KargsError::Nul { arg: "a\0b".into() })
        );
        assert!(err_text(validate_arg("a\0b")).contains(r#""a\0b""#));
    }

    #[test]
    fn validate_rejects_empty_and_empty_key() {
        assert_eq!(validate_arg(""), Err(KargsError::Empty));
        assert!(err_text(validate_arg("")).contains("expected KEY or KEY=VALUE"));
        assert_eq!(
            err_text(validate_arg("=foo")),
            r#"kernel argument "=foo" has an empty key; expected KEY or KEY=VALUE"#
        );
        assert_eq!(
            validate_arg("="),
            Err(KargsError::EmptyKey { arg: "=".into() })
        );
    }

    #[test]
    fn validate_rejects_unquoted_space_and_unbalanced_quotes() {
        assert_eq!(
            validate_arg("foo=a b"),
            Err(KargsError::UnquotedWhitespace {
                arg: "foo=a b".into()
            })
        );
        assert_eq!(
            validate_arg(r#"foo="a"b""#),
            Err(KargsError::UnbalancedQuote {
                arg: r#"foo="a"b""#.into()
            })
        );
        let msg = err_text(validate_arg(r#"foo="bar"#));
        assert!(
            msg.starts_with(r#"kernel argument "foo=\"bar" has an unbalanced"#),
            "{msg}"
        );
    }

    #[test]
    fn validate_rejects_quoted_key() {
        assert_eq!(
            validate_arg(r#""a b"=c"#),
            Err(KargsError::QuoteInKey {
                arg: r#""a b"=c"#.into()
            })
        );
    }

    // --- append ---
}

//! Kernel command line parsing and editing, with `rpm-ostree kargs` semantics.
//!
//! This module is pure: it never touches the filesystem. It turns the BLS
//! `options` line into a list of [`Karg`]s, validates user-supplied
//! arguments, and applies the edits `rpm-ostree kargs` offers (`--append`,
//! `--append-if-missing`, `--delete`, `--delete-if-present`, `--replace`, and
//! a full replacement from `--editor` or the D-Bus `final-kernel-args`).
//!
//! # Syntax
//!
//! A command line is a whitespace-separated list of arguments. An argument is
//! `KEY` or `KEY=VALUE`; it is split on its first `=`, so a value may itself
//! contain `=` (`root=UUID=abc`). A value may be double-quoted to contain
//! spaces (`foo="a b"`); the quotes are kept verbatim in the stored text,
//! exactly as the kernel expects to see them. Order is preserved and a key may
//! appear several times (`console=tty0 console=ttyS0`).
//!
//! # Identical duplicates
//!
//! Occurrences of a key that are textually identical (`quiet quiet`) cannot be
//! told apart, so they count as one argument: deleting it removes all of them
//! and replacing it rewrites all of them. Only *different* values for one key
//! make a bare-key `--delete` or a `KEY=VALUE` `--replace` ambiguous.

use std::fmt;
use std::str::FromStr;

/// Which edit an error came from; used to phrase messages and hints.
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

    fn verb(self) -> &'static str {
        match self {
            KargsOp::Append | KargsOp::AppendIfMissing => "append",
            KargsOp::Delete | KargsOp::DeleteIfPresent => "delete",
            KargsOp::Replace => "replace",
        }
    }

    /// How to name one of several values for `key` with this edit.
    fn disambiguation_hint(self, key: &str) -> String {
        match self {
            KargsOp::Replace => format!("{}={key}=OLD=NEW", self.flag()),
            _ => format!("{}={key}=VALUE", self.flag()),
        }
    }
}

impl fmt::Display for KargsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.flag())
    }
}

/// Errors from parsing, validating or editing kernel arguments.
///
/// Every message names the offending argument (debug-escaped, so control
/// characters are visible) and says what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// `--append` of an argument that is already present with that exact
    /// value.
    #[error(
        "kernel argument {arg:?} is already present; use --append-if-missing to add it only when absent"
    )]
    AlreadyPresent {
        /// The argument that is already present.
        arg: String,
    },
    /// No argument has this key.
    #[error("no kernel argument with key {key:?} to {}", .op.verb())]
    KeyNotFound {
        /// The edit that failed.
        op: KargsOp,
        /// The key that was looked for.
        key: String,
    },
    /// The exact `KEY=VALUE` argument is not present.
    #[error("no kernel argument {arg:?} to {}", .op.verb())]
    ArgNotFound {
        /// The edit that failed.
        op: KargsOp,
        /// The exact argument that was looked for.
        arg: String,
    },
    /// `--replace=KEY=OLD=NEW` where `KEY=OLD` is not present.
    #[error(
        "no kernel argument {old:?} to replace: {arg:?} is read as KEY=OLD=NEW; to set a value that contains '=', give the current value too: KEY=CURRENT=NEW"
    )]
    ReplaceOldNotFound {
        /// The `--replace` argument as given.
        arg: String,
        /// The `KEY=OLD` argument that was looked for.
        old: String,
    },
    /// A bare key names several different values.
    #[error(
        "key {key:?} has several values ({}); say which one: {}",
        .values.join(", "),
        .op.disambiguation_hint(.key)
    )]
    AmbiguousKey {
        /// The edit that failed.
        op: KargsOp,
        /// The ambiguous key.
        key: String,
        /// The distinct values, in command-line order (`(no value)` for a
        /// bare occurrence of the key).
        values: Vec<String>,
    },
    /// `--replace` needs `KEY=VALUE` or `KEY=OLD=NEW`.
    #[error(
        "kernel argument {arg:?} cannot be used with --replace; expected KEY=VALUE or KEY=OLD=NEW"
    )]
    ReplaceNeedsValue {
        /// The offending argument.
        arg: String,
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
    let owned = || arg.to_owned();
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

/// Split `arg` on its first `=` without validating it.
fn split_arg(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (arg, None),
    }
}

/// Split `rest` (the text after `KEY=`) on its first `=` outside double
/// quotes, for the `KEY=OLD=NEW` form of `--replace`.
fn split_unquoted_eq(rest: &str) -> Option<(&str, &str)> {
    let mut in_quote = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '=' if !in_quote => {
                return Some((rest.get(..i)?, rest.get(i..)?.strip_prefix('=')?));
            }
            _ => {}
        }
    }
    None
}

/// One kernel argument: `key` or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Karg {
    key: String,
    value: Option<String>,
}

impl Karg {
    /// Validate and parse a single argument (see [`validate_arg`]).
    pub fn parse(arg: &str) -> Result<Karg, KargsError> {
        validate_arg(arg)?;
        let (key, value) = split_arg(arg);
        Ok(Karg {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        })
    }

    /// The key: the text before the first `=`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value: the text after the first `=` (quotes included), or `None`
    /// for a bare key. `foo=` has the value `Some("")`.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    fn matches(&self, key: &str, value: Option<&str>) -> bool {
        self.key == key && self.value.as_deref() == value
    }
}

impl fmt::Display for Karg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={}", self.key, v),
            None => f.write_str(&self.key),
        }
    }
}

impl FromStr for Karg {
    type Err = KargsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Karg::parse(s)
    }
}

/// An ordered kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kargs {
    args: Vec<Karg>,
}

impl Kargs {
    /// Parse a whole command line (e.g. a BLS `options` line).
    ///
    /// Arguments are separated by runs of whitespace (space, tab, newline,
    /// ...) outside double quotes; leading and trailing whitespace is
    /// ignored, so an empty or blank line gives no arguments. Each argument is
    /// then validated with [`validate_arg`].
    pub fn parse(cmdline: &str) -> Result<Kargs, KargsError> {
        let mut tokens: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut in_quote = false;
        for c in cmdline.chars() {
            if !in_quote && is_separator(c) {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
                continue;
            }
            if c == '"' {
                in_quote = !in_quote;
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            tokens.push(cur);
        }
        Kargs::from_argv(&tokens)
    }

    /// Build from already-split arguments; each element must be one valid
    /// argument (it is not split further).
    pub fn from_argv(argv: &[impl AsRef<str>]) -> Result<Kargs, KargsError> {
        let args = argv
            .iter()
            .map(|a| Karg::parse(a.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Kargs { args })
    }

    /// The arguments as strings, in order.
    pub fn to_argv(&self) -> Vec<String> {
        self.args.iter().map(Karg::to_string).collect()
    }

    /// Iterate over the arguments in order.
    pub fn iter(&self) -> impl Iterator<Item = &Karg> {
        self.args.iter()
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// All values for `key`, in order; `None` for a bare occurrence.
    pub fn get(&self, key: &str) -> Vec<Option<&str>> {
        self.args
            .iter()
            .filter(|a| a.key == key)
            .map(Karg::value)
            .collect()
    }

    /// Whether the exact argument is present: `KEY` matches only a bare
    /// `KEY`, `KEY=VALUE` only that value.
    pub fn contains(&self, arg: &str) -> bool {
        let (key, value) = split_arg(arg);
        self.args.iter().any(|a| a.matches(key, value))
    }

    /// `--append`: add `arg` at the end. Another value for the same key is
    /// fine (`console=tty0` then `console=ttyS0`), but the exact argument
    /// already being present is an error.
    pub fn append(&mut self, arg: &str) -> Result<(), KargsError> {
        let karg = Karg::parse(arg)?;
        if self.contains(arg) {
            return Err(KargsError::AlreadyPresent {
                arg: arg.to_owned(),
            });
        }
        self.args.push(karg);
        Ok(())
    }

    /// `--append-if-missing`: add `arg` at the end unless the exact argument
    /// is already present.
    pub fn append_if_missing(&mut self, arg: &str) -> Result<(), KargsError> {
        let karg = Karg::parse(arg)?;
        if !self.contains(arg) {
            self.args.push(karg);
        }
        Ok(())
    }

    /// `--delete`: remove `KEY=VALUE` exactly, or the single argument with
    /// key `KEY`. Errors if nothing matches or a bare key has several values.
    pub fn delete(&mut self, arg: &str) -> Result<(), KargsError> {
        self.delete_impl(arg, KargsOp::Delete)
    }

    /// `--delete-if-present`: like [`Kargs::delete`], but nothing matching is
    /// not an error. A bare key with several values still is.
    pub fn delete_if_present(&mut self, arg: &str) -> Result<(), KargsError> {
        self.delete_impl(arg, KargsOp::DeleteIfPresent)
    }

    fn delete_impl(&mut self, arg: &str, op: KargsOp) -> Result<(), KargsError> {
        let karg = Karg::parse(arg)?;
        let missing_ok = op == KargsOp::DeleteIfPresent;
        match karg.value() {
            Some(value) => {
                if !self.contains(arg) {
                    if missing_ok {
                        return Ok(());
                    }
                    return Err(KargsError::ArgNotFound {
                        op,
                        arg: arg.to_owned(),
                    });
                }
                self.args.retain(|a| !a.matches(karg.key(), Some(value)));
            }
            None => {
                let key = karg.key();
                if !self.has_single_value(key, op)? {
                    if missing_ok {
                        return Ok(());
                    }
                    return Err(KargsError::KeyNotFound {
                        op,
                        key: key.to_owned(),
                    });
                }
                self.args.retain(|a| a.key != key);
            }
        }
        Ok(())
    }

    /// Whether `key` is present, treating identical occurrences as one; an
    /// [`KargsError::AmbiguousKey`] if it has several different values.
    fn has_single_value(&self, key: &str, op: KargsOp) -> Result<bool, KargsError> {
        let mut distinct: Vec<Option<&str>> = Vec::new();
        for v in self.get(key) {
            if !distinct.contains(&v) {
                distinct.push(v);
            }
        }
        if distinct.len() > 1 {
            return Err(KargsError::AmbiguousKey {
                op,
                key: key.to_owned(),
                values: distinct
                    .iter()
                    .map(|v| v.unwrap_or("(no value)").to_owned())
                    .collect(),
            });
        }
        Ok(!distinct.is_empty())
    }

    /// `--replace`: either `KEY=VALUE`, where `KEY` must be present with a
    /// single value, which becomes `VALUE`; or `KEY=OLD=NEW`, where the exact
    /// argument `KEY=OLD` becomes `KEY=NEW`.
    ///
    /// The argument is split on its first two `=` outside double quotes, so
    /// `root=UUID=abc` means "replace `root=UUID` with `root=abc`"; to set a
    /// value containing `=`, give the current value too
    /// (`root=/dev/sda1=UUID=abc`).
    pub fn replace(&mut self, arg: &str) -> Result<(), KargsError> {
        validate_arg(arg)?;
        let Some((key, rest)) = arg.split_once('=') else {
            return Err(KargsError::ReplaceNeedsValue {
                arg: arg.to_owned(),
            });
        };
        match split_unquoted_eq(rest) {
            None => {
                if !self.has_single_value(key, KargsOp::Replace)? {
                    return Err(KargsError::KeyNotFound {
                        op: KargsOp::Replace,
                        key: key.to_owned(),
                    });
                }
                for a in self.args.iter_mut().filter(|a| a.key == key) {
                    a.value = Some(rest.to_owned());
                }
            }
            Some((old, new)) => {
                let old_arg = format!("{key}={old}");
                if !self.contains(&old_arg) {
                    return Err(KargsError::ReplaceOldNotFound {
                        arg: arg.to_owned(),
                        old: old_arg,
                    });
                }
                // The whole argument was valid, but make sure the new one is
                // too (quotes could be split unevenly between OLD and NEW).
                let replacement = Karg::parse(&format!("{key}={new}"))?;
                for a in self.args.iter_mut().filter(|a| a.matches(key, Some(old))) {
                    *a = replacement.clone();
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Kargs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl FromStr for Kargs {
    type Err = KargsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kargs::parse(s)
    }
}

impl<'a> IntoIterator for &'a Kargs {
    type Item = &'a Karg;
    type IntoIter = std::slice::Iter<'a, Karg>;

    fn into_iter(self) -> Self::IntoIter {
        self.args.iter()
    }
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
            Kargs::parse(all)?;
            return Ok(());
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
                return Err(KargsError::ReplaceNeedsValue { arg: arg.clone() });
            }
        }
        Ok(())
    }

    /// Apply the edits to `current` and return the result; `current` is never
    /// modified, so an error leaves nothing half-done.
    ///
    /// A `replace_all` is parsed and returned as is. Otherwise the edits run
    /// in this order, each list in its own order: delete, replace, append,
    /// append-if-missing, delete-if-present.
    pub fn apply(&self, current: &Kargs) -> Result<Kargs, KargsError> {
        self.validate()?;
        if let Some(all) = &self.replace_all {
            return Kargs::parse(all);
        }
        let mut next = current.clone();
        for arg in &self.delete {
            next.delete(arg)?;
        }
        for arg in &self.replace {
            next.replace(arg)?;
        }
        for arg in &self.append {
            next.append(arg)?;
        }
        for arg in &self.append_if_missing {
            next.append_if_missing(arg)?;
        }
        for arg in &self.delete_if_present {
            next.delete_if_present(arg)?;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Kargs {
        Kargs::parse(s).unwrap()
    }

    fn err_text(r: Result<impl fmt::Debug, KargsError>) -> String {
        r.unwrap_err().to_string()
    }

    // --- parsing ---

    #[test]
    fn parse_collapses_whitespace_and_trims() {
        let a = k("  quiet \t rhgb\n  root=/dev/sda1  ");
        assert_eq!(a.to_argv(), ["quiet", "rhgb", "root=/dev/sda1"]);
        assert_eq!(a.to_string(), "quiet rhgb root=/dev/sda1");
    }

    #[test]
    fn parse_empty_and_blank_lines() {
        assert!(k("").is_empty());
        assert!(k("   \t ").is_empty());
        assert_eq!(k("").to_string(), "");
    }

    #[test]
    fn parse_quoted_value_keeps_quotes_and_spaces() {
        let a = k(r#"foo="a b  c" bar"#);
        assert_eq!(a.len(), 2);
        let first = a.iter().next().unwrap();
        assert_eq!(first.key(), "foo");
        assert_eq!(first.value(), Some(r#""a b  c""#));
        assert_eq!(a.to_string(), r#"foo="a b  c" bar"#);
    }

    #[test]
    fn parse_value_with_equals_splits_on_first() {
        let a = k("root=UUID=abc-123 x==y");
        assert_eq!(a.get("root"), [Some("UUID=abc-123")]);
        assert_eq!(a.get("x"), [Some("=y")]);
        assert!(a.contains("root=UUID=abc-123"));
        assert!(!a.contains("root=UUID"));
    }

    #[test]
    fn parse_keeps_duplicates_and_order() {
        let a = k("console=tty0 quiet console=ttyS0,115200 quiet");
        assert_eq!(a.get("console"), [Some("tty0"), Some("ttyS0,115200")]);
        assert_eq!(a.get("quiet"), [None, None]);
        assert_eq!(a.get("absent"), Vec::<Option<&str>>::new());
        assert_eq!(
            a.to_argv(),
            ["console=tty0", "quiet", "console=ttyS0,115200", "quiet"]
        );
    }

    #[test]
    fn empty_value_is_distinct_from_bare_key() {
        let a = k("foo= bar");
        assert_eq!(a.get("foo"), [Some("")]);
        assert_eq!(a.get("bar"), [None]);
        assert!(a.contains("foo="));
        assert!(!a.contains("foo"));
        assert_eq!(a.to_string(), "foo= bar");
    }

    #[test]
    fn parse_round_trips_through_display() {
        let line = r#"BOOT_IMAGE=(hd0,gpt2)/vmlinuz root=UUID=1-2 rw dyndbg="file foo.c +p" console=tty0 console=ttyS0 ostree=/ostree/boot.1/x/0 x="" y="a=b""#;
        let a = k(line);
        assert_eq!(a.to_string(), line);
        assert_eq!(k(&a.to_string()), a);
        assert_eq!(line.parse::<Kargs>().unwrap(), a);
    }

    #[test]
    fn parse_rejects_unterminated_quote() {
        let e = Kargs::parse(r#"quiet foo="a b"#).unwrap_err();
        assert_eq!(
            e,
            KargsError::UnbalancedQuote {
                arg: r#"foo="a b"#.into()
            }
        );
    }

    #[test]
    fn parse_rejects_newline_inside_quotes() {
        let e = Kargs::parse("foo=\"a\nb\" quiet").unwrap_err();
        assert!(matches!(e, KargsError::Newline { ref arg } if arg == "foo=\"a\nb\""));
    }

    #[test]
    fn from_argv_does_not_split_and_validates() {
        let a = Kargs::from_argv(&["quiet", r#"foo="a b""#]).unwrap();
        assert_eq!(a.to_argv(), ["quiet", r#"foo="a b""#]);
        let e = Kargs::from_argv(&["quiet", "a b"]).unwrap_err();
        assert_eq!(e, KargsError::UnquotedWhitespace { arg: "a b".into() });
        assert_eq!(
            Kargs::from_argv(&[String::new()]).unwrap_err(),
            KargsError::Empty
        );
    }

    // --- validation ---

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

    #[test]
    fn append_adds_at_end_and_allows_other_values() {
        let mut a = k("console=tty0 quiet");
        a.append("console=ttyS0").unwrap();
        a.append("foo=a=b").unwrap();
        assert_eq!(a.to_string(), "console=tty0 quiet console=ttyS0 foo=a=b");
    }

    #[test]
    fn append_exact_duplicate_is_error() {
        let mut a = k("console=tty0 quiet");
        assert_eq!(
            err_text(a.append("console=tty0")),
            r#"kernel argument "console=tty0" is already present; use --append-if-missing to add it only when absent"#
        );
        assert_eq!(
            a.append("quiet"),
            Err(KargsError::AlreadyPresent {
                arg: "quiet".into()
            })
        );
        assert_eq!(a.to_string(), "console=tty0 quiet");
    }

    #[test]
    fn append_validates() {
        let mut a = k("quiet");
        assert!(matches!(a.append("x\ny"), Err(KargsError::Newline { .. })));
        assert_eq!(a.to_string(), "quiet");
    }

    #[test]
    fn append_if_missing_only_when_absent() {
        let mut a = k("quiet console=tty0");
        a.append_if_missing("quiet").unwrap();
        a.append_if_missing("console=tty0").unwrap();
        assert_eq!(a.to_string(), "quiet console=tty0");
        a.append_if_missing("console=ttyS0").unwrap();
        a.append_if_missing("rhgb").unwrap();
        assert_eq!(a.to_string(), "quiet console=tty0 console=ttyS0 rhgb");
        assert_eq!(
            a.append_if_missing("=x"),
            Err(KargsError::EmptyKey { arg: "=x".into() })
        );
    }

    // --- delete ---

    #[test]
    fn delete_bare_key_with_single_value() {
        let mut a = k("quiet root=UUID=abc rw");
        a.delete("root").unwrap();
        a.delete("quiet").unwrap();
        assert_eq!(a.to_string(), "rw");
    }

    #[test]
    fn delete_exact_key_value() {
        let mut a = k("console=tty0 quiet console=ttyS0");
        a.delete("console=ttyS0").unwrap();
        assert_eq!(a.to_string(), "console=tty0 quiet");
    }

    #[test]
    fn delete_missing_key_is_error() {
        let mut a = k("quiet");
        assert_eq!(
            err_text(a.delete("rhgb")),
            r#"no kernel argument with key "rhgb" to delete"#
        );
        assert_eq!(
            err_text(a.delete("quiet=1")),
            r#"no kernel argument "quiet=1" to delete"#
        );
        assert_eq!(a.to_string(), "quiet");
    }

    #[test]
    fn delete_bare_key_with_several_values_is_error() {
        let mut a = k("console=tty0 console=ttyS0 quiet");
        assert_eq!(
            err_text(a.delete("console")),
            r#"key "console" has several values (tty0, ttyS0); say which one: --delete=console=VALUE"#
        );
        assert_eq!(a.to_string(), "console=tty0 console=ttyS0 quiet");
    }

    #[test]
    fn delete_identical_duplicates_removes_all() {
        let mut a = k("quiet rw quiet console=tty0 console=tty0");
        a.delete("quiet").unwrap();
        a.delete("console=tty0").unwrap();
        assert_eq!(a.to_string(), "rw");
    }

    #[test]
    fn delete_mixed_bare_and_valued_key_is_ambiguous() {
        let mut a = k("foo foo=1");
        assert_eq!(
            a.delete("foo"),
            Err(KargsError::AmbiguousKey {
                op: KargsOp::Delete,
                key: "foo".into(),
                values: vec!["(no value)".into(), "1".into()],
            })
        );
        a.delete("foo=1").unwrap();
        assert_eq!(a.to_string(), "foo");
    }

    #[test]
    fn delete_if_present_tolerates_absence_not_ambiguity() {
        let mut a = k("quiet console=tty0 console=ttyS0");
        a.delete_if_present("rhgb").unwrap();
        a.delete_if_present("console=hvc0").unwrap();
        a.delete_if_present("quiet").unwrap();
        assert_eq!(a.to_string(), "console=tty0 console=ttyS0");
        assert_eq!(
            err_text(a.delete_if_present("console")),
            r#"key "console" has several values (tty0, ttyS0); say which one: --delete-if-present=console=VALUE"#
        );
        a.delete_if_present("console=tty0").unwrap();
        assert_eq!(a.to_string(), "console=ttyS0");
    }

    // --- replace ---

    #[test]
    fn replace_key_value_form() {
        let mut a = k("quiet root=/dev/sda1 rw");
        a.replace("root=UUID").unwrap();
        assert_eq!(a.to_string(), "quiet root=UUID rw");
        // A bare key gains a value.
        a.replace("quiet=1").unwrap();
        assert_eq!(a.to_string(), "quiet=1 root=UUID rw");
    }

    #[test]
    fn replace_key_value_errors() {
        let mut a = k("console=tty0 console=ttyS0 quiet");
        assert_eq!(
            err_text(a.replace("rhgb=1")),
            r#"no kernel argument with key "rhgb" to replace"#
        );
        assert_eq!(
            err_text(a.replace("console=hvc0")),
            r#"key "console" has several values (tty0, ttyS0); say which one: --replace=console=OLD=NEW"#
        );
        assert_eq!(
            a.replace("quiet"),
            Err(KargsError::ReplaceNeedsValue {
                arg: "quiet".into()
            })
        );
        assert_eq!(a.to_string(), "console=tty0 console=ttyS0 quiet");
    }

    #[test]
    fn replace_old_new_form() {
        let mut a = k("console=tty0 console=ttyS0 quiet");
        a.replace("console=ttyS0=ttyS1,115200").unwrap();
        assert_eq!(a.to_string(), "console=tty0 console=ttyS1,115200 quiet");
        // NEW may contain '='.
        let mut b = k("root=/dev/sda1");
        b.replace("root=/dev/sda1=UUID=abc").unwrap();
        assert_eq!(b.get("root"), [Some("UUID=abc")]);
    }

    #[test]
    fn replace_old_new_where_old_absent() {
        // `root=UUID=abc` is KEY=OLD=NEW, and there is no `root=UUID`.
        let mut a = k("root=/dev/sda1");
        let e = a.replace("root=UUID=abc").unwrap_err();
        assert_eq!(
            e,
            KargsError::ReplaceOldNotFound {
                arg: "root=UUID=abc".into(),
                old: "root=UUID".into()
            }
        );
        assert!(e
            .to_string()
            .starts_with(r#"no kernel argument "root=UUID" to replace"#));
        assert!(e.to_string().contains("KEY=CURRENT=NEW"));
        assert_eq!(a.to_string(), "root=/dev/sda1");
    }

    #[test]
    fn replace_splits_on_first_two_equals() {
        // OLD is "UUID", not "UUID=abc", so this does not match `root=UUID=abc`.
        assert_eq!(
            k("root=UUID=abc rw").replace("root=UUID=abc=LABEL=root"),
            Err(KargsError::ReplaceOldNotFound {
                arg: "root=UUID=abc=LABEL=root".into(),
                old: "root=UUID".into()
            })
        );
        // ...but a matching `root=UUID` makes it work; NEW keeps its '='.
        let mut b = k("root=UUID rw");
        b.replace("root=UUID=abc=LABEL=root").unwrap();
        assert_eq!(b.to_string(), "root=abc=LABEL=root rw");
    }

    #[test]
    fn replace_quoted_equals_is_key_value_form() {
        let mut a = k(r#"foo=1"#);
        a.replace(r#"foo="a=b c""#).unwrap();
        assert_eq!(a.to_string(), r#"foo="a=b c""#);
    }

    // --- KargsEdit ---

    #[test]
    fn edit_is_empty() {
        assert!(KargsEdit::default().is_empty());
        let e = KargsEdit {
            replace_all: Some(String::new()),
            ..Default::default()
        };
        assert!(!e.is_empty());
        let e = KargsEdit {
            delete_if_present: vec!["quiet".into()],
            ..Default::default()
        };
        assert!(!e.is_empty());
    }

    #[test]
    fn edit_applies_in_documented_order() {
        let current = k("quiet console=tty0 console=ttyS0 root=/dev/sda1");
        let edit = KargsEdit {
            // replace after delete: `console` is single-valued by then.
            delete: vec!["console=ttyS0".into()],
            replace: vec!["console=hvc0".into(), "root=/dev/sda1=UUID=x".into()],
            // append-if-missing after append: no AlreadyPresent error.
            append: vec!["rhgb".into(), "debug".into()],
            append_if_missing: vec!["rhgb".into()],
            // delete-if-present last: removes the freshly appended arg.
            delete_if_present: vec!["debug".into()],
            replace_all: None,
        };
        let out = edit.apply(&current).unwrap();
        assert_eq!(out.to_string(), "quiet console=hvc0 root=UUID=x rhgb");
    }

    #[test]
    fn edit_delete_runs_before_replace() {
        // delete removes the only `console`, so replace finds no key.
        let edit = KargsEdit {
            delete: vec!["console".into()],
            replace: vec!["console=hvc0".into()],
            ..Default::default()
        };
        assert_eq!(
            edit.apply(&k("console=tty0")),
            Err(KargsError::KeyNotFound {
                op: KargsOp::Replace,
                key: "console".into()
            })
        );
    }

    #[test]
    fn edit_error_leaves_input_untouched() {
        let current = k("quiet console=tty0");
        let edit = KargsEdit {
            delete: vec!["quiet".into()],
            append: vec!["console=tty0".into()],
            ..Default::default()
        };
        assert_eq!(
            edit.apply(&current),
            Err(KargsError::AlreadyPresent {
                arg: "console=tty0".into()
            })
        );
        assert_eq!(current.to_string(), "quiet console=tty0");
    }

    #[test]
    fn edit_validate_checks_every_arg() {
        let edit = KargsEdit {
            append: vec!["ok".into()],
            delete_if_present: vec!["bad\nkarg".into()],
            ..Default::default()
        };
        assert!(
            matches!(edit.validate(), Err(KargsError::Newline { ref arg }) if arg == "bad\nkarg")
        );
        // validate() is run by apply() even if the bad arg would be reached
        // only after another edit.
        assert!(matches!(
            edit.apply(&k("")),
            Err(KargsError::Newline { .. })
        ));
        let edit = KargsEdit {
            replace: vec!["quiet".into()],
            ..Default::default()
        };
        assert_eq!(
            edit.validate(),
            Err(KargsError::ReplaceNeedsValue {
                arg: "quiet".into()
            })
        );
        assert_eq!(KargsEdit::default().validate(), Ok(()));
    }

    #[test]
    fn edit_replace_all_replaces_everything() {
        let edit = KargsEdit {
            replace_all: Some("  root=UUID=y   rw console=\"a b\" \n".into()),
            ..Default::default()
        };
        let out = edit.apply(&k("quiet console=tty0")).unwrap();
        assert_eq!(out.to_string(), r#"root=UUID=y rw console="a b""#);
        let clear = KargsEdit {
            replace_all: Some(String::new()),
            ..Default::default()
        };
        assert!(clear.apply(&k("quiet")).unwrap().is_empty());
        let bad = KargsEdit {
            replace_all: Some("quiet =x".into()),
            ..Default::default()
        };
        assert_eq!(
            bad.apply(&k("quiet")),
            Err(KargsError::EmptyKey { arg: "=x".into() })
        );
        assert_eq!(
            bad.validate(),
            Err(KargsError::EmptyKey { arg: "=x".into() })
        );
    }

    #[test]
    fn edit_replace_all_is_exclusive() {
        let edit = KargsEdit {
            replace_all: Some("quiet".into()),
            append: vec!["rhgb".into()],
            ..Default::default()
        };
        assert_eq!(edit.validate(), Err(KargsError::ReplaceAllExclusive));
        let msg = err_text(edit.apply(&k("")));
        assert!(msg.contains("cannot be combined"), "{msg}");
        assert!(msg.contains("--append"), "{msg}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        let odd = [
            "",
            "\"",
            "=",
            "==",
            "\"=\"",
            "a=\"",
            "é=ü",
            "\u{0}",
            "a=\"\u{85}\"",
            "🦀=🦀=🦀",
            "k=\"=\"=x",
            " \u{a0} ",
        ];
        for s in odd {
            let _ = validate_arg(s);
            let _ = Kargs::parse(s);
            let mut a = k("k=v é=ü 🦀 k=\"=\"");
            let _ = a.append(s);
            let _ = a.append_if_missing(s);
            let _ = a.delete(s);
            let _ = a.delete_if_present(s);
            let _ = a.replace(s);
            let _ = a.contains(s);
            let _ = a.get(s);
        }
        let mut a = k("🦀=é");
        a.replace("🦀=é=ü=ö").unwrap();
        assert_eq!(a.to_string(), "🦀=ü=ö");
    }
}

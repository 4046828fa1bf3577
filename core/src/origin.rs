//! Parsing and writing of rpm-ostree deployment "origin" files.
//!
//! An origin file is a GKeyFile ("desktop entry"-like) document stored next to
//! each deployment (`/ostree/deploy/$os/deploy/$checksum.$serial.origin`). It
//! records where the deployment came from (an ostree refspec or a container
//! image reference) and the client-side customizations rpm-ostree layers on
//! top of it (requested packages, overrides, initramfs settings, ...).
//!
//! This module is pure: no I/O and no glib. It has two layers:
//!
//! * [`KeyFile`] is a line-preserving GKeyFile document. Parsing and then
//!   printing it reproduces the input byte for byte, and mutations only touch
//!   the lines they need to.
//! * [`Origin`] wraps a [`KeyFile`] and validates every key rpm-ostree knows
//!   about, exposing them through typed accessors. Unknown groups and keys are
//!   preserved untouched.
//!
//! ```text
//! [origin]
//! baserefspec=fedora:fedora/40/x86_64/silverblue
//!
//! [packages]
//! requested=htop;vim-enhanced;
//! ```

use std::fmt;
use std::str::FromStr;

/// What a valid refspec looks like, appended to refspec errors.
const REFSPEC_EXPECTED: &str = "expected REMOTE:REF like \"fedora:fedora/40/x86_64/silverblue\"";

/// Errors from parsing or validating key files, origins and refspecs.
///
/// Every message says what is wrong, where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// A line of the key file is not valid GKeyFile syntax.
    #[error("line {line}: expected {expected}, found {found:?}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What would have been valid at this point.
        expected: String,
        /// The offending line (without its line terminator).
        found: String,
    },
    /// A group or key name passed to a setter cannot be written to a key file.
    #[error("invalid {kind} name {name:?}: expected {expected}")]
    InvalidName {
        /// `"group"` or `"key"`.
        kind: &'static str,
        /// The rejected name.
        name: String,
        /// What a valid name looks like.
        expected: String,
    },
    /// A value in the key file cannot be interpreted.
    #[error("invalid value {value:?} for key \"{key}\" in group [{group}]: {problem}")]
    InvalidValue {
        /// The group holding the key.
        group: String,
        /// The key whose value is invalid.
        key: String,
        /// The bad value (for lists: the bad element).
        value: String,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// A refspec is malformed.
    #[error("invalid refspec {input:?}: {problem}; {REFSPEC_EXPECTED}")]
    InvalidRefspec {
        /// The rejected input.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A standalone value (checksum, local package, remote override, ...) is malformed.
    #[error("invalid {what} {value:?}: {problem}")]
    Invalid {
        /// What kind of value this is, e.g. `"commit checksum"`.
        what: &'static str,
        /// The rejected input.
        value: String,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// The origin names no base to deploy from.
    #[error("origin has no [origin] refspec, baserefspec or container-image-reference")]
    NoBase,
    /// The origin names more than one base.
    #[error(
        "origin has both [origin] {first} and {second}; expected exactly one of refspec, \
         baserefspec or container-image-reference"
    )]
    ConflictingBase {
        /// The first of the conflicting keys.
        first: &'static str,
        /// The second of the conflicting keys.
        second: &'static str,
    },
}

// ---------------------------------------------------------------------------
// KeyFile
// ---------------------------------------------------------------------------

/// A GKeyFile document that remembers its exact text.
///
/// Lookups follow GKeyFile semantics: repeated `[group]` headers are merged
/// into one group, and when a key appears more than once the last one wins.
/// Locale variants (`key[de]=...`) are distinct keys named with their suffix,
/// as in `g_key_file_get_keys()`.
///
/// `KeyFile::parse(text)?.to_string() == text` holds for every text that
/// parses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyFile {
    lines: Vec<Line>,
    /// Whether the last line is followed by `\n`.
    final_newline: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    /// The line as written, without its `\n` (a `\r` of CRLF files is kept).
    raw: String,
    kind: LineKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LineKind {
    /// A blank line or a comment.
    Other,
    /// A `[name]` group header.
    Group(String),
    /// A `key=value` entry; `raw[value_start..value_end]` is the value as written.
    Entry {
        key: String,
        value_start: usize,
        value_end: usize,
    },
}

impl Line {
    fn value(&self) -> Option<&str> {
        match self.kind {
            LineKind::Entry {
                value_start,
                value_end,
                ..
            } => self.raw.get(value_start..value_end),
            _ => None,
        }
    }

    fn is_blank(&self) -> bool {
        matches!(self.kind, LineKind::Other)
            && line_content(&self.raw).trim_matches(is_gspace).is_empty()
    }

    fn entry(key: &str, escaped_value: &str, cr: bool) -> Line {
        let value_start = key.len() + 1;
        Line {
            raw: format!("{key}={escaped_value}{}", if cr { "\r" } else { "" }),
            kind: LineKind::Entry {
                key: key.to_string(),
                value_start,
                value_end: value_start + escaped_value.len(),
            },
        }
    }

    fn group(name: &str, cr: bool) -> Line {
        Line {
            raw: format!("[{name}]{}", if cr { "\r" } else { "" }),
            kind: LineKind::Group(name.to_string()),
        }
    }

    fn blank(cr: bool) -> Line {
        Line {
            raw: if cr { "\r".to_string() } else { String::new() },
            kind: LineKind::Other,
        }
    }
}

/// Whitespace as `g_ascii_isspace()` sees it.
fn is_gspace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// A line without the `\r` of a CRLF terminator.
fn line_content(raw: &str) -> &str {
    raw.strip_suffix('\r').unwrap_or(raw)
}

/// Checks a group name by GKeyFile's rules; returns what was expected on failure.
fn check_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a group name between \"[\" and \"]\"".to_string());
    }
    if name.chars().any(|c| c == '[' || c == ']' || c.is_control()) {
        return Err("a group name without '[', ']' or control characters".to_string());
    }
    Ok(())
}

/// Checks a key name by GKeyFile's rules (`g_key_file_is_key_name`).
fn check_key_name(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a non-empty key name".to_string());
    }
    let (base, locale) = match key.find(['[', ']']) {
        Some(i) => key.split_at(i),
        None => (key, ""),
    };
    let bad_locale = "a key name without '[' or ']', except a trailing locale like \"Name[de]\"";
    if base.is_empty() {
        return Err(bad_locale.to_string());
    }
    if base.starts_with(' ') || base.ends_with(' ') {
        return Err("a key name without leading or trailing spaces".to_string());
    }
    if locale.is_empty() {
        return Ok(());
    }
    let inner = locale
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .ok_or_else(|| bad_locale.to_string())?;
    if inner
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        Ok(())
    } else {
        Err(bad_locale.to_string())
    }
}

/// Parses one line (without `\n`). `in_group` says whether a group header was seen.
fn parse_line(raw: &str, in_group: bool) -> Result<LineKind, String> {
    let content = line_content(raw);
    let trimmed = content.trim_start_matches(is_gspace);
    let lead = content.len() - trimmed.len();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(LineKind::Other);
    }
    if let Some(rest) = trimmed.strip_prefix('[') {
        let Some((name, after)) = rest.split_once(']') else {
            return Err("\"]\" to close the group header".to_string());
        };
        if !after.chars().all(|c| c == ' ' || c == '\t') {
            return Err("only whitespace after \"]\" in a group header".to_string());
        }
        check_group_name(name)?;
        return Ok(LineKind::Group(name.to_string()));
    }
    let Some((key_part, after_eq)) = trimmed.split_once('=') else {
        return Err("\"key=value\" or \"[group]\"".to_string());
    };
    if !in_group {
        return Err("a \"[group]\" header before the first key".to_string());
    }
    let key = key_part.trim_end_matches(is_gspace);
    check_key_name(key)?;
    let value = after_eq.trim_start_matches(is_gspace);
    Ok(LineKind::Entry {
        key: key.to_string(),
        value_start: lead + key_part.len() + 1 + (after_eq.len() - value.len()),
        value_end: content.len(),
    })
}

/// Escapes a value the way `g_key_file_set_string()` / `_set_string_list()` do.
fn escape(value: &str, list: bool) -> String {
    let mut out = String::with_capacity(value.len());
    let mut leading = true;
    for c in value.chars() {
        if leading && c == ' ' {
            out.push_str("\\s");
            continue;
        }
        leading = false;
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            ';' if list => out.push_str("\\;"),
            c => out.push(c),
        }
    }
    out
}

/// Unescapes a value. For lists, splits on unescaped `;`; a trailing `;` does
/// not produce an empty last element (as in `g_key_file_get_string_list()`).
fn unescape(value: &str, list: bool) -> Result<Vec<String>, String> {
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                match chars.next() {
                    Some('s') => cur.push(' '),
                    Some('n') => cur.push('\n'),
                    Some('t') => cur.push('\t'),
                    Some('r') => cur.push('\r'),
                    Some('\\') => cur.push('\\'),
                    Some(';') if list => cur.push(';'),
                    Some(other) => {
                        return Err(format!(
                    "invalid escape sequence \"\\{other}\"; expected one of \\s \\n \\t \\r \\\\{}",
                    if list { " \\;" } else { "" }
                ))
                    }
                    None => return Err(
                        "it ends with a lone backslash; expected an escape sequence such as \\\\"
                            .to_string(),
                    ),
                }
            }
            ';' if list => pieces.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !list || !cur.is_empty() {
        pieces.push(cur);
    }
    Ok(pieces)
}

/// Checks a name for use in a setter: GKeyFile's rules plus what it takes for
/// the written line to parse back to the same name.
fn check_settable_key(key: &str) -> Result<(), OriginError> {
    let err = |expected: String| OriginError::InvalidName {
        kind: "key",
        name: key.to_string(),
        expected,
    };
    if key.contains('=') || key.chars().any(char::is_control) {
        return Err(err(
            "a key name without '=' or control characters".to_string()
        ));
    }
    if key.starts_with(is_gspace) || key.ends_with(is_gspace) || key.starts_with('#') {
        return Err(err(
            "a key name without leading or trailing whitespace and not starting with '#'"
                .to_string(),
        ));
    }
    check_key_name(key).map_err(err)
}

fn check_settable_group(group: &str) -> Result<(), OriginError> {
    check_group_name(group).map_err(|expected| OriginError::InvalidName {
        kind: "group",
        name: group.to_string(),
        expected,
    })
}

impl KeyFile {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses GKeyFile text, keeping every byte so [`Display`](fmt::Display)
    /// reproduces it exactly.
    pub fn parse(text: &str) -> Result<KeyFile, OriginError> {
        if text.is_empty() {
            return Ok(Self::new());
        }
        let (body, final_newline) = match text.strip_suffix('\n') {
            Some(body) => (body, true),
            None => (text, false),
        };
        let mut lines = Vec::new();
        let mut in_group = false;
        for (idx, raw) in body.split('\n').enumerate() {
            let kind = parse_line(raw, in_group).map_err(|expected| OriginError::Syntax {
                line: idx + 1,
                expected,
                found: line_content(raw).to_string(),
            })?;
            in_group |= matches!(kind, LineKind::Group(_));
            lines.push(Line {
                raw: raw.to_string(),
                kind,
            });
        }
        Ok(KeyFile {
            lines,
            final_newline,
        })
    }

    /// Group names in order of first appearance, each once.
    pub fn groups(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for line in &self.lines {
            if let LineKind::Group(name) = &line.kind {
                if !out.contains(&name.as_str()) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Whether a `[group]` header exists.
    pub fn has_group(&self, group: &str) -> bool {
        self.lines
            .iter()
            .any(|l| matches!(&l.kind, LineKind::Group(g) if g == group))
    }

    /// Keys of a group (all its sections merged) in order of first appearance,
    /// each once. Locale variants are listed with their suffix (`Name[de]`).
    pub fn keys(&self, group: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let mut current: Option<&str> = None;
        for line in &self.lines {
            match &line.kind {
                LineKind::Group(g) => current = Some(g),
                LineKind::Entry { key, .. }
                    if current == Some(group) && !out.contains(&key.as_str()) =>
                {
                    out.push(key);
                }
                _ => {}
            }
        }
        out
    }

    /// Whether `group` has `key`.
    pub fn has_key(&self, group: &str, key: &str) -> bool {
        self.raw(group, key).is_some()
    }

    /// Indices of the lines holding `group`/`key`, in file order.
    fn entry_indices(&self, group: &str, key: &str) -> Vec<usize> {
        let mut out = Vec::new();
        let mut current: Option<&str> = None;
        for (i, line) in self.lines.iter().enumerate() {
            match &line.kind {
                LineKind::Group(g) => current = Some(g),
                LineKind::Entry { key: k, .. } if current == Some(group) && k == key => out.push(i),
                _ => {}
            }
        }
        out
    }

    /// The value as written (escapes not processed, leading whitespace
    /// skipped, trailing whitespace kept). The last occurrence wins.
    pub fn raw(&self, group: &str, key: &str) -> Option<&str> {
        let idx = *self.entry_indices(group, key).last()?;
        self.lines.get(idx).and_then(Line::value)
    }

    fn invalid_value(group: &str, key: &str, value: &str, problem: String) -> OriginError {
        OriginError::InvalidValue {
            group: group.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            problem,
        }
    }

    /// The unescaped string value.
    pub fn string(&self, group: &str, key: &str) -> Result<Option<String>, OriginError> {
        let Some(raw) = self.raw(group, key) else {
            return Ok(None);
        };
        let pieces = unescape(raw, false).map_err(|p| Self::invalid_value(group, key, raw, p))?;
        Ok(Some(pieces.into_iter().next().unwrap_or_default()))
    }

    /// A boolean value: `true`/`1` or `false`/`0` (trailing whitespace allowed,
    /// as in GKeyFile).
    pub fn boolean(&self, group: &str, key: &str) -> Result<Option<bool>, OriginError> {
        let Some(raw) = self.raw(group, key) else {
            return Ok(None);
        };
        match raw.trim_end_matches(is_gspace) {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(Self::invalid_value(
                group,
                key,
                raw,
                "expected a boolean, \"true\" or \"false\"".to_string(),
            )),
        }
    }

    /// A `;`-separated list, unescaped (`\;` is a literal `;`).
    pub fn list(&self, group: &str, key: &str) -> Result<Option<Vec<String>>, OriginError> {
        let Some(raw) = self.raw(group, key) else {
            return Ok(None);
        };
        unescape(raw, true)
            .map(Some)
            .map_err(|p| Self::invalid_value(group, key, raw, p))
    }

    /// Sets a string value, escaping it.
    pub fn set_string(&mut self, group: &str, key: &str, value: &str) -> Result<(), OriginError> {
        check_settable_group(group)?;
        check_settable_key(key)?;
        self.set_escaped(group, key, &escape(value, false));
        Ok(())
    }

    /// Sets a boolean value (`true`/`false`).
    pub fn set_boolean(&mut self, group: &str, key: &str, value: bool) -> Result<(), OriginError> {
        check_settable_group(group)?;
        check_settable_key(key)?;
        self.set_escaped(group, key, if value { "true" } else { "false" });
        Ok(())
    }

    /// Sets a list value as `a;b;`, escaping `;` inside elements.
    pub fn set_list(
        &mut self,
        group: &str,
        key: &str,
        values: &[impl AsRef<str>],
    ) -> Result<(), OriginError> {
        check_settable_group(group)?;
        check_settable_key(key)?;
        self.set_escaped(group, key, &escape_list(values));
        Ok(())
    }

    /// Whether the file uses CRLF line endings (judged by its first line).
    fn uses_crlf(&self) -> bool {
        self.lines.first().is_some_and(|l| l.raw.ends_with('\r'))
    }

    /// Sets an already escaped value; the names must be valid.
    ///
    /// An existing entry (the last one, which is the one lookups see) is
    /// rewritten in place keeping its `key =` spelling; otherwise the entry is
    /// added after the last entry of the group's last section, or in a new
    /// group at the end of the file.
    fn set_escaped(&mut self, group: &str, key: &str, escaped: &str) {
        if let Some(&idx) = self.entry_indices(group, key).last() {
            if let Some(line) = self.lines.get_mut(idx) {
                if let LineKind::Entry {
                    value_start,
                    value_end,
                    ..
                } = &mut line.kind
                {
                    let prefix = line.raw.get(..*value_start).unwrap_or_default();
                    let suffix = line.raw.get(*value_end..).unwrap_or_default();
                    line.raw = format!("{prefix}{escaped}{suffix}");
                    *value_end = *value_start + escaped.len();
                }
            }
            return;
        }
        let cr = self.uses_crlf();
        match self.last_section(group) {
            Some((header, end)) => {
                let pos = (header + 1..end)
                    .rev()
                    .find(|&i| {
                        self.lines
                            .get(i)
                            .is_some_and(|l| matches!(l.kind, LineKind::Entry { .. }))
                    })
                    .map_or(header + 1, |i| i + 1);
                if pos >= self.lines.len() {
                    self.final_newline = true;
                }
                self.lines.insert(pos, Line::entry(key, escaped, cr));
            }
            None => {
                if self.lines.last().is_some_and(|l| !l.is_blank()) {
                    self.lines.push(Line::blank(cr));
                }
                self.lines.push(Line::group(group, cr));
                self.lines.push(Line::entry(key, escaped, cr));
                self.final_newline = true;
            }
        }
    }

    /// `(header index, end index exclusive)` of the last section named `group`.
    fn last_section(&self, group: &str) -> Option<(usize, usize)> {
        let header = self
            .lines
            .iter()
            .rposition(|l| matches!(&l.kind, LineKind::Group(g) if g == group))?;
        let end = self
            .lines
            .iter()
            .enumerate()
            .skip(header + 1)
            .find(|(_, l)| matches!(l.kind, LineKind::Group(_)))
            .map_or(self.lines.len(), |(i, _)| i);
        Some((header, end))
    }

    /// Removes every occurrence of `key` in `group`. Only the entry lines are
    /// removed (comments above them stay). Returns whether anything was removed.
    pub fn remove_key(&mut self, group: &str, key: &str) -> bool {
        let indices = self.entry_indices(group, key);
        for &i in indices.iter().rev() {
            if i < self.lines.len() {
                self.lines.remove(i);
            }
        }
        !indices.is_empty()
    }

    /// Removes every section named `group`: its header and all lines up to the
    /// next group header. When the removed section ends the file, the blank
    /// lines that separated it from the previous section are removed too.
    /// Returns whether anything was removed.
    pub fn remove_group(&mut self, group: &str) -> bool {
        let mut removed = false;
        while let Some((mut start, end)) = self.last_section(group) {
            if end == self.lines.len() {
                while start > 0 && self.lines.get(start - 1).is_some_and(Line::is_blank) {
                    start -= 1;
                }
            }
            self.lines.drain(start..end);
            removed = true;
        }
        removed
    }
}

fn escape_list(values: &[impl AsRef<str>]) -> String {
    values
        .iter()
        .map(|v| escape(v.as_ref(), true) + ";")
        .collect()
}

impl fmt::Display for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.lines.len();
        for (i, line) in self.lines.iter().enumerate() {
            f.write_str(&line.raw)?;
            if i + 1 < n || self.final_newline {
                f.write_str("\n")?;
            }
        }
        Ok(())
    }
}

impl FromStr for KeyFile {
    type Err = OriginError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------
// Refspec
// ---------------------------------------------------------------------------

/// Whether `s` is an ostree commit checksum: 64 lowercase hex characters.
pub fn is_checksum(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a [`Refspec`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefspecKind {
    /// An ostree ref, optionally on a remote.
    Ostree,
    /// A bare commit checksum.
    Checksum,
}

/// An ostree refspec: `remote:ref`, a local `ref` (also accepted as `:ref`),
/// or a bare 64-hex commit checksum.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Refspec {
    remote: Option<String>,
    ref_name: String,
    kind: RefspecKind,
}

/// Checks a remote name or ref component against `[A-Za-z0-9_][-._A-Za-z0-9]*`.
fn check_name_component(what: &str, s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    match chars.next() {
        None => Err(format!("{what} is empty")),
        Some(c) if !(c.is_ascii_alphanumeric() || c == '_') => Err(format!(
            "{what} {s:?} must start with a letter, digit or '_'"
        )),
        Some(_) => {
            if chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
                Ok(())
            } else {
                Err(format!(
                    "{what} {s:?} may only contain letters, digits, '_', '-', '.'"
                ))
            }
        }
    }
}

fn check_ref_name(name: &str) -> Result<(), String> {
    if name.starts_with('/') {
        return Err(format!("ref {name:?} must not start with '/'"));
    }
    if name.ends_with('/') {
        return Err(format!("ref {name:?} must not end with '/'"));
    }
    for component in name.split('/') {
        if component.is_empty() {
            return Err(format!(
                "ref {name:?} must not contain an empty component (\"//\")"
            ));
        }
        if component == "." || component == ".." {
            return Err(format!(
                "ref {name:?} must not contain a {component:?} component"
            ));
        }
        check_name_component("ref component", component)?;
    }
    Ok(())
}

fn parse_refspec(s: &str) -> Result<Refspec, String> {
    if s.is_empty() {
        return Err("it is empty".to_string());
    }
    if is_checksum(s) {
        return Ok(Refspec {
            remote: None,
            ref_name: s.to_string(),
            kind: RefspecKind::Checksum,
        });
    }
    let (remote, name) = match s.split_once(':') {
        Some(("", name)) => (None, name),
        Some((remote, name)) => {
            check_name_component("remote name", remote)?;
            (Some(remote.to_string()), name)
        }
        None => (None, s),
    };
    if name.is_empty() {
        return Err("it has an empty ref after ':'".to_string());
    }
    check_ref_name(name)?;
    Ok(Refspec {
        remote,
        ref_name: name.to_string(),
        kind: RefspecKind::Ostree,
    })
}

impl Refspec {
    /// Parses and validates a refspec by ostree's rules.
    pub fn parse(s: &str) -> Result<Refspec, OriginError> {
        parse_refspec(s).map_err(|problem| OriginError::InvalidRefspec {
            input: s.to_string(),
            problem,
        })
    }

    /// The remote, if any (`None` for local refs and checksums).
    pub fn remote(&self) -> Option<&str> {
        self.remote.as_deref()
    }

    /// The ref name, or the checksum for [`RefspecKind::Checksum`].
    pub fn ref_name(&self) -> &str {
        &self.ref_name
    }

    /// Whether this is a ref or a bare checksum.
    pub fn kind(&self) -> RefspecKind {
        self.kind
    }
}

impl fmt::Display for Refspec {
    /// `remote:ref`, `ref` for local refs, the checksum as-is. A local ref that
    /// looks like a checksum is written `:ref` so it parses back as a ref.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.remote, self.kind) {
            (Some(remote), _) => write!(f, "{remote}:{}", self.ref_name),
            (None, RefspecKind::Ostree) if is_checksum(&self.ref_name) => {
                write!(f, ":{}", self.ref_name)
            }
            (None, _) => f.write_str(&self.ref_name),
        }
    }
}

impl FromStr for Refspec {
    type Err = OriginError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------
// Origin value types
// ---------------------------------------------------------------------------

/// What a deployment is based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// `[origin] refspec=`: a plain ostree deployment (`ostree admin upgrade` works).
    Refspec(Refspec),
    /// `[origin] baserefspec=`: an ostree base with client-side layering.
    BaseRefspec(Refspec),
    /// `[origin] container-image-reference=`: an ostree-native container image.
    ContainerImage(String),
}

/// A locally provided RPM: `<sha256>:<nevra>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalPackage {
    /// SHA-256 of the package header, 64 lowercase hex characters.
    pub sha256: String,
    /// `name-[epoch:]version-release.arch`.
    pub nevra: String,
}

const LOCAL_PACKAGE_EXPECTED: &str =
    "expected SHA256:NEVRA like \"<64 lowercase hex>:foo-1.0-1.fc40.x86_64\"";

fn parse_local_package(s: &str) -> Result<LocalPackage, String> {
    let Some((sha256, nevra)) = s.split_once(':') else {
        return Err(format!(
            "no ':' after the checksum; {LOCAL_PACKAGE_EXPECTED}"
        ));
    };
    if !is_checksum(sha256) {
        return Err(format!(
            "{sha256:?} is not 64 lowercase hex characters; {LOCAL_PACKAGE_EXPECTED}"
        ));
    }
    if nevra.is_empty() {
        return Err(format!("the NEVRA is empty; {LOCAL_PACKAGE_EXPECTED}"));
    }
    if has_space_or_control(nevra) {
        return Err(format!(
            "NEVRA {nevra:?} contains whitespace or control characters; {LOCAL_PACKAGE_EXPECTED}"
        ));
    }
    Ok(LocalPackage {
        sha256: sha256.to_string(),
        nevra: nevra.to_string(),
    })
}

impl LocalPackage {
    /// Parses `<64 hex>:<nevra>`.
    pub fn parse(s: &str) -> Result<LocalPackage, OriginError> {
        parse_local_package(s).map_err(|problem| OriginError::Invalid {
            what: "local package",
            value: s.to_string(),
            problem,
        })
    }
}

impl fmt::Display for LocalPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.sha256, self.nevra)
    }
}

/// Packages replaced from a specific rpm-md repository: `repo=NAME,pkg1,pkg2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteOverride {
    /// The repository id.
    pub repo: String,
    /// The packages taken from it (at least one).
    pub packages: Vec<String>,
}

const REMOTE_OVERRIDE_EXPECTED: &str = "expected \"repo=NAME,PKG[,PKG...]\"";

fn parse_remote_override(s: &str) -> Result<RemoteOverride, String> {
    let Some(rest) = s.strip_prefix("repo=") else {
        return Err(format!(
            "it does not start with \"repo=\"; {REMOTE_OVERRIDE_EXPECTED}"
        ));
    };
    let mut parts = rest.split(',');
    let repo = parts.next().unwrap_or_default();
    if repo.is_empty() || has_space_or_control(repo) {
        return Err(format!(
            "repo name {repo:?} is empty or contains whitespace; {REMOTE_OVERRIDE_EXPECTED}"
        ));
    }
    let packages = parts
        .map(|p| check_package_name(p).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{e}; {REMOTE_OVERRIDE_EXPECTED}"))?;
    if packages.is_empty() {
        return Err(format!("no packages listed; {REMOTE_OVERRIDE_EXPECTED}"));
    }
    Ok(RemoteOverride {
        repo: repo.to_string(),
        packages,
    })
}

impl RemoteOverride {
    /// Parses `repo=NAME,pkg1,pkg2`.
    pub fn parse(s: &str) -> Result<RemoteOverride, OriginError> {
        parse_remote_override(s).map_err(|problem| OriginError::Invalid {
            what: "remote override",
            value: s.to_string(),
            problem,
        })
    }
}

impl fmt::Display for RemoteOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "repo={}", self.repo)?;
        for p in &self.packages {
            write!(f, ",{p}")?;
        }
        Ok(())
    }
}

fn has_space_or_control(s: &str) -> bool {
    s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_package_name(s: &str) -> Result<&str, String> {
    if s.is_empty() {
        Err("package name is empty; expected a package name like \"htop\"".to_string())
    } else if has_space_or_control(s) {
        Err(format!(
            "package name {s:?} contains whitespace or control characters; expected a \
             package name like \"htop\""
        ))
    } else {
        Ok(s)
    }
}

fn check_container_ref(s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err("it is empty; expected an image reference like \
             \"ostree-unverified-registry:quay.io/fedora/fedora-silverblue:40\""
            .to_string())
    } else if has_space_or_control(s) {
        Err(
            "it contains whitespace or control characters; expected an image reference like \
             \"ostree-unverified-registry:quay.io/fedora/fedora-silverblue:40\""
                .to_string(),
        )
    } else {
        Ok(())
    }
}

fn check_initramfs_etc(s: &str) -> Result<(), String> {
    if s.starts_with('/') && !s.chars().any(char::is_control) {
        Ok(())
    } else {
        Err("expected an absolute path like \"/etc/crypttab\"".to_string())
    }
}

// ---------------------------------------------------------------------------
// Origin
// ---------------------------------------------------------------------------

const G_ORIGIN: &str = "origin";
const G_PACKAGES: &str = "packages";
const G_OVERRIDES: &str = "overrides";
const G_RPMOSTREE: &str = "rpmostree";
const G_TRANSIENT: &str = "libostree-transient";

const K_REFSPEC: &str = "refspec";
const K_BASEREFSPEC: &str = "baserefspec";
const K_CONTAINER: &str = "container-image-reference";
const K_CONTAINER_DIGEST: &str = "container-image-reference-digest";
const K_OVERRIDE_COMMIT: &str = "override-commit";
const K_CUSTOM_URL: &str = "custom-url";
const K_CUSTOM_DESCRIPTION: &str = "custom-description";
const K_UNCONFIGURED: &str = "unconfigured-state";
const K_REQUESTED: &str = "requested";
const K_REQUESTED_LOCAL: &str = "requested-local";
const K_REQUESTED_LOCAL_FILEOVERRIDE: &str = "requested-local-fileoverride";
const K_REMOVE: &str = "remove";
const K_REPLACE_LOCAL: &str = "replace-local";
const K_REPLACE: &str = "replace";
const K_REGENERATE_INITRAMFS: &str = "regenerate-initramfs";
const K_INITRAMFS_ARGS: &str = "initramfs-args";
const K_INITRAMFS_ETC: &str = "initramfs-etc";
const K_CLIWRAP: &str = "ex-cliwrap";
const K_PINNED: &str = "pinned";

/// A validated rpm-ostree origin file.
///
/// All known keys are validated on parse and cached; the underlying
/// [`KeyFile`] (and so the exact text, including unknown groups and keys) is
/// kept, and [`Display`](fmt::Display) writes it back.
///
/// For edits this type has no dedicated setter for, clone [`Origin::keyfile`],
/// edit it and re-validate with [`Origin::from_keyfile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    keyfile: KeyFile,
    base: BaseSource,
    override_commit: Option<String>,
    custom_origin: Option<(String, String)>,
    unconfigured_state: Option<String>,
    requested_packages: Vec<String>,
    requested_local_packages: Vec<LocalPackage>,
    requested_local_fileoverride_packages: Vec<LocalPackage>,
    override_remove: Vec<String>,
    override_replace_local: Vec<LocalPackage>,
    override_replace: Vec<RemoteOverride>,
    regenerate_initramfs: bool,
    initramfs_args: Vec<String>,
    initramfs_etc: Vec<String>,
    has_initramfs_block: bool,
    cliwrap: bool,
    pinned: bool,
}

/// Reads a list and converts each element, naming group, key and element on failure.
fn typed_list<T>(
    kf: &KeyFile,
    group: &str,
    key: &str,
    convert: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, OriginError> {
    kf.list(group, key)?
        .unwrap_or_default()
        .iter()
        .map(|item| convert(item).map_err(|p| KeyFile::invalid_value(group, key, item, p)))
        .collect()
}

fn package_list(kf: &KeyFile, group: &str, key: &str) -> Result<Vec<String>, OriginError> {
    typed_list(kf, group, key, |s| {
        check_package_name(s).map(str::to_string)
    })
}

fn validated_string(
    kf: &KeyFile,
    group: &str,
    key: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Option<String>, OriginError> {
    match kf.string(group, key)? {
        Some(v) => match check(&v) {
            Ok(()) => Ok(Some(v)),
            Err(p) => Err(KeyFile::invalid_value(group, key, &v, p)),
        },
        None => Ok(None),
    }
}

fn check_commit(s: &str) -> Result<(), String> {
    if is_checksum(s) {
        Ok(())
    } else {
        Err("expected a commit checksum of 64 lowercase hex characters".to_string())
    }
}

fn origin_refspec(kf: &KeyFile, key: &str) -> Result<Option<Refspec>, OriginError> {
    match kf.string(G_ORIGIN, key)? {
        Some(v) => parse_refspec(&v).map(Some).map_err(|p| {
            KeyFile::invalid_value(G_ORIGIN, key, &v, format!("{p}; {REFSPEC_EXPECTED}"))
        }),
        None => Ok(None),
    }
}

impl Origin {
    /// Parses and validates an origin file.
    pub fn parse(text: &str) -> Result<Origin, OriginError> {
        Self::from_keyfile(KeyFile::parse(text)?)
    }

    /// Validates every known key of a key file.
    pub fn from_keyfile(keyfile: KeyFile) -> Result<Origin, OriginError> {
        let kf = &keyfile;
        let has = |k| kf.has_key(G_ORIGIN, k);
        let present: Vec<&'static str> = [K_REFSPEC, K_BASEREFSPEC, K_CONTAINER]
            .into_iter()
            .filter(|k| has(k))
            .collect();
        let base = match *present.as_slice() {
            [] => return Err(OriginError::NoBase),
            [first, second, ..] => return Err(OriginError::ConflictingBase { first, second }),
            [_] => {
                if let Some(r) = origin_refspec(kf, K_REFSPEC)? {
                    BaseSource::Refspec(r)
                } else if let Some(r) = origin_refspec(kf, K_BASEREFSPEC)? {
                    BaseSource::BaseRefspec(r)
                } else {
                    let image = validated_string(kf, G_ORIGIN, K_CONTAINER, check_container_ref)?;
                    BaseSource::ContainerImage(image.unwrap_or_default())
                }
            }
        };
        let override_commit = validated_string(kf, G_ORIGIN, K_OVERRIDE_COMMIT, check_commit)?;
        let custom_url = kf.string(G_ORIGIN, K_CUSTOM_URL)?;
        let custom_description = kf.string(G_ORIGIN, K_CUSTOM_DESCRIPTION)?;
        let unconfigured_state = kf.string(G_ORIGIN, K_UNCONFIGURED)?;

        let requested_packages = package_list(kf, G_PACKAGES, K_REQUESTED)?;
        let requested_local_packages =
            typed_list(kf, G_PACKAGES, K_REQUESTED_LOCAL, parse_local_package)?;
        let requested_local_fileoverride_packages = typed_list(
            kf,
            G_PACKAGES,
            K_REQUESTED_LOCAL_FILEOVERRIDE,
            parse_local_package,
        )?;
        let override_remove = package_list(kf, G_OVERRIDES, K_REMOVE)?;
        let override_replace_local =
            typed_list(kf, G_OVERRIDES, K_REPLACE_LOCAL, parse_local_package)?;
        let override_replace = typed_list(kf, G_OVERRIDES, K_REPLACE, parse_remote_override)?;

        let regenerate_initramfs = kf
            .boolean(G_RPMOSTREE, K_REGENERATE_INITRAMFS)?
            .unwrap_or(false);
        let initramfs_args = kf.list(G_RPMOSTREE, K_INITRAMFS_ARGS)?.unwrap_or_default();
        let initramfs_etc = typed_list(kf, G_RPMOSTREE, K_INITRAMFS_ETC, |s| {
            check_initramfs_etc(s).map(|()| s.to_string())
        })?;
        let has_initramfs_block = [K_REGENERATE_INITRAMFS, K_INITRAMFS_ARGS, K_INITRAMFS_ETC]
            .iter()
            .any(|k| kf.has_key(G_RPMOSTREE, k));
        let cliwrap = kf.boolean(G_RPMOSTREE, K_CLIWRAP)?.unwrap_or(false);
        let pinned = kf.boolean(G_TRANSIENT, K_PINNED)?.unwrap_or(false);

        Ok(Origin {
            base,
            override_commit,
            custom_origin: custom_url.map(|url| (url, custom_description.unwrap_or_default())),
            unconfigured_state,
            requested_packages,
            requested_local_packages,
            requested_local_fileoverride_packages,
            override_remove,
            override_replace_local,
            override_replace,
            regenerate_initramfs,
            initramfs_args,
            initramfs_etc,
            has_initramfs_block,
            cliwrap,
            pinned,
            keyfile,
        })
    }

    /// A minimal origin: `[origin]\nrefspec=REFSPEC\n`.
    pub fn from_refspec(r: &Refspec) -> Origin {
        let mut keyfile = KeyFile::new();
        keyfile.set_escaped(G_ORIGIN, K_REFSPEC, &escape(&r.to_string(), false));
        Origin {
            keyfile,
            base: BaseSource::Refspec(r.clone()),
            override_commit: None,
            custom_origin: None,
            unconfigured_state: None,
            requested_packages: Vec::new(),
            requested_local_packages: Vec::new(),
            requested_local_fileoverride_packages: Vec::new(),
            override_remove: Vec::new(),
            override_replace_local: Vec::new(),
            override_replace: Vec::new(),
            regenerate_initramfs: false,
            initramfs_args: Vec::new(),
            initramfs_etc: Vec::new(),
            has_initramfs_block: false,
            cliwrap: false,
            pinned: false,
        }
    }

    /// What the deployment is based on.
    pub fn base(&self) -> &BaseSource {
        &self.base
    }

    /// The ostree refspec, from either `refspec` or `baserefspec`; `None` for
    /// container-image based origins.
    pub fn refspec(&self) -> Option<&Refspec> {
        match &self.base {
            BaseSource::Refspec(r) | BaseSource::BaseRefspec(r) => Some(r),
            BaseSource::ContainerImage(_) => None,
        }
    }

    /// The container image reference, for container-image based origins.
    pub fn container_image_reference(&self) -> Option<&str> {
        match &self.base {
            BaseSource::ContainerImage(image) => Some(image),
            _ => None,
        }
    }

    /// Rebases onto `r`.
    ///
    /// Keeps the key kind (`refspec` vs `baserefspec`). When the base was a
    /// container image, its `container-image-reference` (and `-digest`) keys
    /// are replaced by `baserefspec` if the origin has local customizations
    /// (see [`Origin::needs_local_assembly`]) and `refspec` otherwise.
    /// Packages, overrides and `[rpmostree]` settings are kept; like
    /// rpm-ostree, `override-commit`, `custom-url` and `custom-description`
    /// are dropped.
    pub fn set_refspec(&mut self, r: &Refspec) {
        let use_base_key = match &self.base {
            BaseSource::Refspec(_) => false,
            BaseSource::BaseRefspec(_) => true,
            BaseSource::ContainerImage(_) => self.needs_local_assembly(),
        };
        self.keyfile.remove_key(G_ORIGIN, K_CONTAINER);
        self.keyfile.remove_key(G_ORIGIN, K_CONTAINER_DIGEST);
        let key = if use_base_key {
            K_BASEREFSPEC
        } else {
            K_REFSPEC
        };
        self.keyfile
            .set_escaped(G_ORIGIN, key, &escape(&r.to_string(), false));
        self.base = if use_base_key {
            BaseSource::BaseRefspec(r.clone())
        } else {
            BaseSource::Refspec(r.clone())
        };
        self.keyfile.remove_key(G_ORIGIN, K_OVERRIDE_COMMIT);
        self.override_commit = None;
        self.keyfile.remove_key(G_ORIGIN, K_CUSTOM_URL);
        self.keyfile.remove_key(G_ORIGIN, K_CUSTOM_DESCRIPTION);
        self.custom_origin = None;
    }

    /// The commit the deployment is pinned to instead of the refspec's tip.
    pub fn override_commit(&self) -> Option<&str> {
        self.override_commit.as_deref()
    }

    /// Sets (`Some`) or removes (`None`) `override-commit`.
    ///
    /// The checksum must be 64 lowercase hex characters; otherwise nothing
    /// changes and `false` is returned. Returns `true` when applied.
    pub fn set_override_commit(&mut self, commit: Option<&str>) -> bool {
        match commit {
            Some(c) if !is_checksum(c) => return false,
            Some(c) => {
                self.keyfile.set_escaped(G_ORIGIN, K_OVERRIDE_COMMIT, c);
                self.override_commit = Some(c.to_string());
            }
            None => {
                self.keyfile.remove_key(G_ORIGIN, K_OVERRIDE_COMMIT);
                self.override_commit = None;
            }
        }
        true
    }

    /// `(custom-url, custom-description)` when `custom-url` is set; the
    /// description is empty if missing.
    pub fn custom_origin(&self) -> Option<(String, String)> {
        self.custom_origin.clone()
    }

    /// Sets (`Some((url, description))`, both non-empty) or removes the custom
    /// origin description.
    pub fn set_custom_origin(&mut self, custom: Option<(&str, &str)>) -> Result<(), OriginError> {
        match custom {
            Some((url, description)) => {
                for (what, value) in [
                    ("custom origin URL", url),
                    ("custom origin description", description),
                ] {
                    if value.is_empty() {
                        return Err(OriginError::Invalid {
                            what,
                            value: value.to_string(),
                            problem: "it is empty; expected a non-empty string".to_string(),
                        });
                    }
                }
                self.keyfile
                    .set_escaped(G_ORIGIN, K_CUSTOM_URL, &escape(url, false));
                self.keyfile.set_escaped(
                    G_ORIGIN,
                    K_CUSTOM_DESCRIPTION,
                    &escape(description, false),
                );
                self.custom_origin = Some((url.to_string(), description.to_string()));
            }
            None => {
                self.keyfile.remove_key(G_ORIGIN, K_CUSTOM_URL);
                self.keyfile.remove_key(G_ORIGIN, K_CUSTOM_DESCRIPTION);
                self.custom_origin = None;
            }
        }
        Ok(())
    }

    /// `[origin] unconfigured-state`: why the deployment cannot be upgraded.
    pub fn unconfigured_state(&self) -> Option<String> {
        self.unconfigured_state.clone()
    }

    /// `[packages] requested`: layered packages from repositories.
    pub fn requested_packages(&self) -> Vec<String> {
        self.requested_packages.clone()
    }

    /// `[packages] requested-local`: layered local RPMs.
    pub fn requested_local_packages(&self) -> Vec<LocalPackage> {
        self.requested_local_packages.clone()
    }

    /// `[packages] requested-local-fileoverride`: local RPMs allowed to replace files.
    pub fn requested_local_fileoverride_packages(&self) -> Vec<LocalPackage> {
        self.requested_local_fileoverride_packages.clone()
    }

    /// `[overrides] remove`: base packages removed.
    pub fn override_remove(&self) -> Vec<String> {
        self.override_remove.clone()
    }

    /// `[overrides] replace-local`: base packages replaced by local RPMs.
    pub fn override_replace_local(&self) -> Vec<LocalPackage> {
        self.override_replace_local.clone()
    }

    /// `[overrides] replace`: base packages replaced from repositories.
    pub fn override_replace(&self) -> Vec<RemoteOverride> {
        self.override_replace.clone()
    }

    /// `[rpmostree] regenerate-initramfs`.
    pub fn regenerate_initramfs(&self) -> bool {
        self.regenerate_initramfs
    }

    /// `[rpmostree] initramfs-args`: extra dracut arguments.
    pub fn initramfs_args(&self) -> Vec<String> {
        self.initramfs_args.clone()
    }

    /// `[rpmostree] initramfs-etc`: files from /etc tracked into the initramfs.
    pub fn initramfs_etc(&self) -> Vec<String> {
        self.initramfs_etc.clone()
    }

    /// `[rpmostree] ex-cliwrap`.
    pub fn cliwrap(&self) -> bool {
        self.cliwrap
    }

    /// Whether any of `regenerate-initramfs`, `initramfs-args` or
    /// `initramfs-etc` is present (whatever its value).
    pub fn has_initramfs_block(&self) -> bool {
        self.has_initramfs_block
    }

    /// `[libostree-transient] pinned`: the deployment is kept by cleanup.
    pub fn pinned(&self) -> bool {
        self.pinned
    }

    /// Whether the deployment may need client-side assembly on top of the
    /// base: any layered or overridden package, initramfs regeneration or
    /// tracked /etc files, or cliwrap. (`initramfs-args` alone does not count,
    /// matching rpm-ostree.)
    pub fn needs_local_assembly(&self) -> bool {
        !self.requested_packages.is_empty()
            || !self.requested_local_packages.is_empty()
            || !self.requested_local_fileoverride_packages.is_empty()
            || !self.override_remove.is_empty()
            || !self.override_replace_local.is_empty()
            || !self.override_replace.is_empty()
            || self.regenerate_initramfs
            || !self.initramfs_etc.is_empty()
            || self.cliwrap
    }

    /// The underlying document.
    pub fn keyfile(&self) -> &KeyFile {
        &self.keyfile
    }

    /// Gives up the validated view, returning the document.
    pub fn into_keyfile(self) -> KeyFile {
        self.keyfile
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.keyfile.fmt(f)
    }
}

impl FromStr for Origin {
    type Err = OriginError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "9505cacb7c710ed17125fcc6cb3669e8ddca6c8cd8af6a31f6b3cd64604c3098";
    const SHA_A: &str = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
    const SHA_B: &str = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
    const SHA_C: &str = "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";

    const SIMPLE: &str = "[origin]\nrefspec=fedora:fedora/40/x86_64/silverblue\n";

    const LAYERED: &str = "[origin]
baserefspec=fedora:fedora/40/x86_64/silverblue
override-commit=9505cacb7c710ed17125fcc6cb3669e8ddca6c8cd8af6a31f6b3cd64604c3098

[packages]
requested=htop;vim-enhanced;
requested-local=ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb:foo-1.0-1.fc40.x86_64;
requested-local-fileoverride=2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6:bar-2:3.1-4.fc40.noarch;

[overrides]
remove=firefox;firefox-langpacks;
replace-local=3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d:kernel-6.8.9-300.fc40.x86_64;
replace=repo=updates-testing,podman,podman-plugins;repo=copr:copr.fedorainfracloud.org:group:proj,mesa-dri-drivers;

[rpmostree]
regenerate-initramfs=true
initramfs-args=-I;/etc/crypttab;
initramfs-etc=/etc/crypttab;/etc/vconsole.conf;
ex-cliwrap=true
";

    const CONTAINER: &str = "[origin]
container-image-reference=ostree-unverified-registry:quay.io/fedora/fedora-silverblue:40
container-image-reference-digest=sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6

[packages]
requested=tmux;
";

    /// Comments, blank lines, odd spacing, an unknown group, no final newline.
    const COMMENTED: &str = "# Written by hand
\t
[origin]
# the base image
  refspec =  fedora:fedora/40/x86_64/silverblue
unconfigured-state=Upgrade to the next release with rpm-ostree rebase

# layering
[packages]
requested=htop;
[x-site]
owner = ops team ";

    const PINNED: &str = "[origin]
refspec=fedora:fedora/40/x86_64/silverblue

[libostree-transient]
pinned=true
";

    const LOCALE: &str = "[origin]
refspec=9505cacb7c710ed17125fcc6cb3669e8ddca6c8cd8af6a31f6b3cd64604c3098
custom-url=https://example.com/builds/42
custom-description=Nightly\\sbuild; tested
custom-description[de]=N\u{e4}chtlicher Build
custom-description[sr@latin]=No\u{107}na
";

    fn kf(text: &str) -> KeyFile {
        KeyFile::parse(text).unwrap()
    }

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap()
    }

    fn refspec(s: &str) -> Refspec {
        Refspec::parse(s).unwrap()
    }

    fn lp(sha256: &str, nevra: &str) -> LocalPackage {
        LocalPackage {
            sha256: sha256.to_string(),
            nevra: nevra.to_string(),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn syntax_err(text: &str) -> String {
        let err = KeyFile::parse(text).unwrap_err();
        assert!(matches!(err, OriginError::Syntax { .. }), "{err:?}");
        // Origin::parse reports the same syntax error.
        assert_eq!(Origin::parse(text).unwrap_err(), err);
        err.to_string()
    }

    fn origin_err(text: &str) -> OriginError {
        // Each error case must be syntactically valid, so the failure is semantic.
        KeyFile::parse(text).unwrap();
        Origin::parse(text).unwrap_err()
    }

    fn refspec_err(s: &str) -> String {
        let err = Refspec::parse(s).unwrap_err();
        match &err {
            OriginError::InvalidRefspec { input, .. } => assert_eq!(input, s),
            other => panic!("unexpected error {other:?}"),
        }
        err.to_string()
    }

    /// The in-memory model after mutations equals a fresh parse of its text.
    fn assert_consistent(k: &KeyFile) {
        assert_eq!(&KeyFile::parse(&k.to_string()).unwrap(), k);
    }

    fn assert_roundtrip(text: &str) {
        assert_eq!(kf(text).to_string(), text);
    }

    // ----- round trips -----

    #[test]
    fn roundtrip_simple_refspec() {
        assert_roundtrip(SIMPLE);
        assert_eq!(origin(SIMPLE).to_string(), SIMPLE);
    }

    #[test]
    fn roundtrip_layered() {
        assert_roundtrip(LAYERED);
        assert_eq!(origin(LAYERED).to_string(), LAYERED);
    }

    #[test]
    fn roundtrip_container() {
        assert_roundtrip(CONTAINER);
        assert_eq!(origin(CONTAINER).to_string(), CONTAINER);
    }

    #[test]
    fn roundtrip_comments_blank_lines_no_final_newline() {
        assert!(!COMMENTED.ends_with('\n'));
        assert_roundtrip(COMMENTED);
        assert_eq!(origin(COMMENTED).to_string(), COMMENTED);
    }

    #[test]
    fn roundtrip_pinned_transient_group() {
        assert_roundtrip(PINNED);
        assert_eq!(origin(PINNED).to_string(), PINNED);
    }

    #[test]
    fn roundtrip_locale_keys() {
        assert_roundtrip(LOCALE);
        assert_eq!(origin(LOCALE).to_string(), LOCALE);
    }

    #[test]
    fn roundtrip_crlf_and_degenerate_texts() {
        for text in [
            "[origin]\r\nrefspec=a:b\r\n",
            "",
            "\n",
            "\n\n",
            "# only a comment",
            "[g]",
            "[g]  \t\n",
            "[g]\nk=\n",
            "[g]\nk=v\n\n\n",
        ] {
            assert_roundtrip(text);
        }
        let k = kf("[origin]\r\nrefspec=a:b\r\n");
        assert_eq!(k.raw("origin", "refspec"), Some("a:b"));
    }

    // ----- KeyFile reading -----

    #[test]
    fn keyfile_tolerates_whitespace_around_equals() {
        let k = kf(COMMENTED);
        assert_eq!(
            k.raw("origin", "refspec"),
            Some("fedora:fedora/40/x86_64/silverblue")
        );
        // Leading whitespace of a value is skipped, trailing whitespace kept.
        assert_eq!(k.raw("x-site", "owner"), Some("ops team "));
        assert_eq!(k.groups(), vec!["origin", "packages", "x-site"]);
        assert_eq!(k.keys("origin"), vec!["refspec", "unconfigured-state"]);
        assert!(k.has_group("x-site"));
        assert!(!k.has_group("rpmostree"));
    }

    #[test]
    fn keyfile_duplicate_groups_merge_and_last_key_wins() {
        let text = "[a]\nx=1\ny=2\n[b]\nz=3\n[a]\nx=4\nw=5\n";
        let k = kf(text);
        assert_eq!(k.groups(), vec!["a", "b"]);
        assert_eq!(k.keys("a"), vec!["x", "y", "w"]);
        assert_eq!(k.raw("a", "x"), Some("4"));
        assert_eq!(k.raw("a", "y"), Some("2"));
        assert_eq!(k.raw("b", "x"), None);
        assert_eq!(k.keys("missing"), Vec::<&str>::new());
        assert_eq!(k.to_string(), text);
    }

    #[test]
    fn keyfile_locale_keys_are_distinct() {
        let k = kf(LOCALE);
        assert_eq!(
            k.keys("origin"),
            vec![
                "refspec",
                "custom-url",
                "custom-description",
                "custom-description[de]",
                "custom-description[sr@latin]"
            ]
        );
        assert_eq!(
            k.string("origin", "custom-description").unwrap().as_deref(),
            Some("Nightly build; tested")
        );
        assert_eq!(
            k.raw("origin", "custom-description[de]"),
            Some("N\u{e4}chtlicher Build")
        );
    }

    #[test]
    fn keyfile_string_unescapes() {
        let k = kf("[g]\nk=\\s a\\tb\\nc\\\\d\\re \n");
        assert_eq!(
            k.string("g", "k").unwrap().as_deref(),
            Some("  a\tb\nc\\d\re ")
        );
        assert_eq!(k.string("g", "missing").unwrap(), None);
        assert_eq!(k.string("missing", "k").unwrap(), None);
    }

    #[test]
    fn keyfile_string_rejects_bad_escapes() {
        let k = kf("[g]\nbad=a\\qb\nlone=abc\\\nsemi=a\\;b\n");
        let err = k.string("g", "bad").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid value \"a\\\\qb\" for key \"bad\" in group [g]: invalid escape sequence \
             \"\\q\"; expected one of \\s \\n \\t \\r \\\\"
        );
        let err = k.string("g", "lone").unwrap_err().to_string();
        assert!(err.contains("lone backslash"), "{err}");
        assert!(err.contains("\"lone\""), "{err}");
        // `\;` only means something in lists.
        assert!(k.string("g", "semi").is_err());
        assert_eq!(k.list("g", "semi").unwrap(), Some(strings(&["a;b"])));
        assert!(k.list("g", "bad").is_err());
    }

    #[test]
    fn keyfile_list_forms() {
        let k = kf(
            "[g]\ntrail=a;b;\nnotrail=a;b\nempty=\nesc=a\\;b;c;\nlone=;\ngap=a;;b;\nspace=\\sx; y;\n",
        );
        let list = |key| k.list("g", key).unwrap().unwrap();
        assert_eq!(list("trail"), strings(&["a", "b"]));
        assert_eq!(list("notrail"), strings(&["a", "b"]));
        assert_eq!(list("empty"), Vec::<String>::new());
        assert_eq!(list("esc"), strings(&["a;b", "c"]));
        assert_eq!(list("lone"), strings(&[""]));
        assert_eq!(list("gap"), strings(&["a", "", "b"]));
        assert_eq!(list("space"), strings(&[" x", " y"]));
        assert_eq!(k.list("g", "missing").unwrap(), None);
    }

    #[test]
    fn keyfile_boolean_forms() {
        let k = kf("[g]\na=true\nb=false\nc=1\nd=0\ne=true \nf=yes\ng=True\nh=\n");
        assert_eq!(k.boolean("g", "a").unwrap(), Some(true));
        assert_eq!(k.boolean("g", "b").unwrap(), Some(false));
        assert_eq!(k.boolean("g", "c").unwrap(), Some(true));
        assert_eq!(k.boolean("g", "d").unwrap(), Some(false));
        assert_eq!(k.boolean("g", "e").unwrap(), Some(true));
        assert_eq!(k.boolean("g", "missing").unwrap(), None);
        for key in ["f", "g", "h"] {
            let err = k.boolean("g", key).unwrap_err().to_string();
            assert!(err.contains("expected a boolean"), "{err}");
            assert!(
                err.contains(&format!("key \"{key}\" in group [g]")),
                "{err}"
            );
        }
    }

    // ----- KeyFile mutations -----

    #[test]
    fn set_string_escapes_and_roundtrips() {
        let mut k = kf("[g]\n");
        k.set_string("g", "k", "  a b\nc\\").unwrap();
        assert_eq!(k.to_string(), "[g]\nk=\\s\\sa b\\nc\\\\\n");
        for value in [
            "",
            " leading",
            "trailing ",
            "\ttab",
            "semi;colon",
            "cr\rlf\n",
            "back\\slash\\s",
            "unicod\u{e9} \u{1F980}",
            "#not a comment",
            "[not a group]",
            "=",
        ] {
            k.set_string("g", "k", value).unwrap();
            assert_eq!(k.string("g", "k").unwrap().as_deref(), Some(value));
            assert_consistent(&k);
            let reparsed = kf(&k.to_string());
            assert_eq!(reparsed.string("g", "k").unwrap().as_deref(), Some(value));
        }
    }

    #[test]
    fn set_list_escapes_semicolons() {
        let mut k = KeyFile::new();
        k.set_list("g", "l", &["a;b", "c", " d", ""]).unwrap();
        assert_eq!(k.raw("g", "l"), Some("a\\;b;c;\\sd;;"));
        assert_eq!(
            k.list("g", "l").unwrap(),
            Some(strings(&["a;b", "c", " d", ""]))
        );
        k.set_list("g", "l", &Vec::<String>::new()).unwrap();
        assert_eq!(k.raw("g", "l"), Some(""));
        assert_eq!(k.list("g", "l").unwrap(), Some(vec![]));
        k.set_list("g", "l", &strings(&["htop", "vim"])).unwrap();
        assert_eq!(k.to_string(), "[g]\nl=htop;vim;\n");
        assert_consistent(&k);
    }

    #[test]
    fn set_boolean_writes_true_false() {
        let mut k = kf("[rpmostree]\nex-cliwrap=1\n");
        k.set_boolean("rpmostree", "ex-cliwrap", false).unwrap();
        k.set_boolean("rpmostree", "regenerate-initramfs", true)
            .unwrap();
        assert_eq!(
            k.to_string(),
            "[rpmostree]\nex-cliwrap=false\nregenerate-initramfs=true\n"
        );
        assert_eq!(k.boolean("rpmostree", "ex-cliwrap").unwrap(), Some(false));
    }

    #[test]
    fn set_existing_key_changes_only_its_line() {
        let mut k = kf(COMMENTED);
        k.set_string("origin", "refspec", "fedora:fedora/41/x86_64/silverblue")
            .unwrap();
        let expected = COMMENTED.replace(
            "  refspec =  fedora:fedora/40/x86_64/silverblue",
            "  refspec =  fedora:fedora/41/x86_64/silverblue",
        );
        assert_eq!(k.to_string(), expected);
        assert!(!k.to_string().ends_with('\n'));
        assert_consistent(&k);
    }

    #[test]
    fn set_duplicate_key_rewrites_the_winning_line() {
        let mut k = kf("[a]\nx=1\n[a]\nx=2\n");
        k.set_string("a", "x", "3").unwrap();
        assert_eq!(k.to_string(), "[a]\nx=1\n[a]\nx=3\n");
        assert_eq!(k.raw("a", "x"), Some("3"));
    }

    #[test]
    fn set_new_key_goes_after_last_entry_of_group() {
        let mut k = kf(COMMENTED);
        k.set_string("origin", "custom-url", "https://example.com")
            .unwrap();
        let expected = COMMENTED.replace(
            "rpm-ostree rebase\n",
            "rpm-ostree rebase\ncustom-url=https://example.com\n",
        );
        assert_eq!(k.to_string(), expected);
        // A group with only a header gets the key right after it.
        let mut k = kf("[a]\n# trailing comment\n\n[b]\n");
        k.set_string("a", "k", "v").unwrap();
        assert_eq!(k.to_string(), "[a]\nk=v\n# trailing comment\n\n[b]\n");
        assert_consistent(&k);
    }

    #[test]
    fn set_new_group_appends_with_blank_separator() {
        let mut k = kf(SIMPLE);
        k.set_list("packages", "requested", &["htop"]).unwrap();
        assert_eq!(
            k.to_string(),
            format!("{SIMPLE}\n[packages]\nrequested=htop;\n")
        );
        // No second blank line if the file already ends with one.
        let mut k = kf("[a]\nx=1\n\n");
        k.set_string("b", "y", "2").unwrap();
        assert_eq!(k.to_string(), "[a]\nx=1\n\n[b]\ny=2\n");
        // An empty document starts with the group header.
        let mut k = KeyFile::new();
        k.set_string("origin", "refspec", "a:b").unwrap();
        assert_eq!(k.to_string(), "[origin]\nrefspec=a:b\n");
        assert_consistent(&k);
    }

    #[test]
    fn set_on_file_without_final_newline() {
        let mut k = kf("[origin]\nrefspec=a:b");
        k.set_string("origin", "refspec", "a:c").unwrap();
        assert_eq!(k.to_string(), "[origin]\nrefspec=a:c");
        k.set_string("origin", "x", "1").unwrap();
        assert_eq!(k.to_string(), "[origin]\nrefspec=a:c\nx=1\n");
        let mut k = kf("[origin]\nrefspec=a:b");
        k.set_string("new", "y", "2").unwrap();
        assert_eq!(k.to_string(), "[origin]\nrefspec=a:b\n\n[new]\ny=2\n");
        assert_consistent(&k);
    }

    #[test]
    fn set_keeps_crlf_line_endings() {
        let mut k = kf("[origin]\r\nrefspec=a:b\r\n");
        k.set_string("origin", "refspec", "a:c").unwrap();
        k.set_string("origin", "x", "1").unwrap();
        k.set_string("more", "y", "2").unwrap();
        assert_eq!(
            k.to_string(),
            "[origin]\r\nrefspec=a:c\r\nx=1\r\n\r\n[more]\r\ny=2\r\n"
        );
        assert_eq!(k.raw("origin", "x"), Some("1"));
        assert_consistent(&k);
    }

    #[test]
    fn set_rejects_invalid_names_without_changing_the_file() {
        let mut k = kf(SIMPLE);
        for key in ["", "a=b", "a\nb", "x]", "[x]", " k", "k ", "#k", "k[d e]"] {
            let err = k.set_string("origin", key, "v").unwrap_err();
            assert!(
                matches!(&err, OriginError::InvalidName { kind: "key", name, .. } if name == key),
                "{key:?}: {err:?}"
            );
        }
        for group in ["", "a]b", "a[b", "a\nb"] {
            let err = k.set_boolean(group, "k", true).unwrap_err();
            assert!(
                matches!(&err, OriginError::InvalidName { kind: "group", .. }),
                "{group:?}: {err:?}"
            );
        }
        let err = k.set_list("origin", "a=b", &["x"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid key name \"a=b\": expected a key name without '=' or control characters"
        );
        assert_eq!(k.to_string(), SIMPLE);
        // Locale keys are settable.
        k.set_string("origin", "custom-description[de]", "x")
            .unwrap();
        assert_eq!(k.raw("origin", "custom-description[de]"), Some("x"));
    }

    #[test]
    fn remove_key_removes_every_occurrence() {
        let mut k = kf("[a]\n# about x\nx=1\ny=2\n[a]\nx=3\n");
        assert!(k.remove_key("a", "x"));
        assert_eq!(k.to_string(), "[a]\n# about x\ny=2\n[a]\n");
        assert_eq!(k.raw("a", "x"), None);
        assert!(!k.remove_key("a", "x"));
        assert!(!k.remove_key("nope", "y"));
        assert_eq!(k.raw("a", "y"), Some("2"));
    }

    #[test]
    fn remove_group_middle_and_last() {
        let mut k = kf(LAYERED);
        assert!(k.remove_group("overrides"));
        let after_overrides = LAYERED.replace(
            &format!(
                "[overrides]\nremove=firefox;firefox-langpacks;\nreplace-local={SHA_B}:\
                 kernel-6.8.9-300.fc40.x86_64;\nreplace=repo=updates-testing,podman,\
                 podman-plugins;repo=copr:copr.fedorainfracloud.org:group:proj,\
                 mesa-dri-drivers;\n\n"
            ),
            "",
        );
        assert_ne!(after_overrides, LAYERED);
        assert_eq!(k.to_string(), after_overrides);
        assert!(k.remove_group("rpmostree"));
        let (head, _) = after_overrides.split_once("\n[rpmostree]").unwrap();
        assert_eq!(k.to_string(), format!("{head}"));
        assert!(k.to_string().ends_with("fc40.noarch;\n"));
        assert!(!k.remove_group("rpmostree"));
        // Duplicate sections all go.
        let mut k = kf("[a]\nx=1\n[b]\ny=2\n[a]\nz=3\n");
        assert!(k.remove_group("a"));
        assert_eq!(k.to_string(), "[b]\ny=2\n");
        assert_consistent(&k);
    }

    // ----- syntax errors -----

    #[test]
    fn syntax_error_garbage_line_has_line_number() {
        assert_eq!(
            syntax_err("[origin]\nrefspec=a:b\ngarbage\n"),
            "line 3: expected \"key=value\" or \"[group]\", found \"garbage\""
        );
        assert_eq!(
            syntax_err("[origin]\r\n\r\n  garbage here\r\n"),
            "line 3: expected \"key=value\" or \"[group]\", found \"  garbage here\""
        );
    }

    #[test]
    fn syntax_error_key_before_group() {
        assert_eq!(
            syntax_err("# comment\nrefspec=a:b\n[origin]\n"),
            "line 2: expected a \"[group]\" header before the first key, found \"refspec=a:b\""
        );
    }

    #[test]
    fn syntax_error_unterminated_group() {
        assert_eq!(
            syntax_err("[origin\nrefspec=a:b\n"),
            "line 1: expected \"]\" to close the group header, found \"[origin\""
        );
        let err = KeyFile::parse("[origin]\nrefspec=a:b\n\n[packages").unwrap_err();
        assert_eq!(
            err,
            OriginError::Syntax {
                line: 4,
                expected: "\"]\" to close the group header".to_string(),
                found: "[packages".to_string(),
            }
        );
    }

    #[test]
    fn syntax_error_empty_key() {
        assert_eq!(
            syntax_err("[origin]\n=value\n"),
            "line 2: expected a non-empty key name, found \"=value\""
        );
        assert!(syntax_err("[origin]\n \t = value\n").starts_with("line 2: "));
    }

    #[test]
    fn syntax_error_bad_group_headers() {
        assert_eq!(
            syntax_err("[]\n"),
            "line 1: expected a group name between \"[\" and \"]\", found \"[]\""
        );
        assert_eq!(
            syntax_err("[origin]\nk=v\n[a] trailing\n"),
            "line 3: expected only whitespace after \"]\" in a group header, found \"[a] trailing\""
        );
        assert!(syntax_err("[a[b]\n").contains("without '[', ']' or control characters"));
    }

    #[test]
    fn syntax_error_bad_key_names() {
        for line in ["a]=1", "a[de=1", "a[d e]=1", "a[de]x=1", "[de]x=1 "] {
            let err = syntax_err(&format!("[g]\n{line}\n"));
            assert!(err.starts_with("line 2: expected "), "{err}");
        }
        let k = kf("[g]\nName[de_DE.UTF-8@euro]=x\nName[]=y\n");
        assert_eq!(k.raw("g", "Name[de_DE.UTF-8@euro]"), Some("x"));
    }

    // ----- refspecs -----

    #[test]
    fn refspec_remote_and_ref() {
        let r = refspec("fedora:fedora/40/x86_64/silverblue");
        assert_eq!(r.remote(), Some("fedora"));
        assert_eq!(r.ref_name(), "fedora/40/x86_64/silverblue");
        assert_eq!(r.kind(), RefspecKind::Ostree);
        assert_eq!(r.to_string(), "fedora:fedora/40/x86_64/silverblue");
        let r: Refspec = "my_remote-1.x:a.b/c-d_e".parse().unwrap();
        assert_eq!(r.remote(), Some("my_remote-1.x"));
        assert_eq!(r.ref_name(), "a.b/c-d_e");
    }

    #[test]
    fn refspec_local_forms() {
        for s in [":localref/x", "localref/x"] {
            let r = refspec(s);
            assert_eq!(r.remote(), None);
            assert_eq!(r.ref_name(), "localref/x");
            assert_eq!(r.kind(), RefspecKind::Ostree);
            assert_eq!(r.to_string(), "localref/x");
        }
    }

    #[test]
    fn refspec_checksum_detection() {
        let r = refspec(COMMIT);
        assert_eq!(r.kind(), RefspecKind::Checksum);
        assert_eq!(r.remote(), None);
        assert_eq!(r.ref_name(), COMMIT);
        assert_eq!(r.to_string(), COMMIT);
        // Not checksums: uppercase, wrong length, with a remote.
        for s in [
            COMMIT.to_uppercase(),
            COMMIT[..63].to_string(),
            format!("{COMMIT}0"),
        ] {
            assert_eq!(refspec(&s).kind(), RefspecKind::Ostree, "{s}");
        }
        let r = refspec(&format!("origin:{COMMIT}"));
        assert_eq!(r.kind(), RefspecKind::Ostree);
        assert_eq!(r.remote(), Some("origin"));
        // A local ref spelled like a checksum keeps its ':' so it re-parses as a ref.
        let r = refspec(&format!(":{COMMIT}"));
        assert_eq!(r.kind(), RefspecKind::Ostree);
        assert_eq!(r.to_string(), format!(":{COMMIT}"));
        assert_eq!(refspec(&r.to_string()), r);
        assert!(is_checksum(COMMIT));
        assert!(!is_checksum("xyz"));
    }

    #[test]
    fn refspec_error_empty() {
        assert_eq!(
            refspec_err(""),
            "invalid refspec \"\": it is empty; expected REMOTE:REF like \
             \"fedora:fedora/40/x86_64/silverblue\""
        );
        assert!(refspec_err(":").contains("empty ref"));
    }

    #[test]
    fn refspec_error_spaces() {
        assert_eq!(
            refspec_err("fedora:foo bar"),
            "invalid refspec \"fedora:foo bar\": ref component \"foo bar\" may only contain \
             letters, digits, '_', '-', '.'; expected REMOTE:REF like \
             \"fedora:fedora/40/x86_64/silverblue\""
        );
        assert!(refspec_err(" fedora:foo").contains("remote name \" fedora\" must start with"));
        assert!(refspec_err("fedora:foo ").contains("may only contain"));
    }

    #[test]
    fn refspec_error_newline() {
        let err = refspec_err("fedora:foo\nbar");
        assert!(
            err.starts_with("invalid refspec \"fedora:foo\\nbar\": "),
            "{err}"
        );
        assert!(err.contains("may only contain"), "{err}");
        assert!(refspec_err("fedora:foo\n").contains("may only contain"));
    }

    #[test]
    fn refspec_error_remote_with_empty_ref() {
        assert_eq!(
            refspec_err("fedora:"),
            "invalid refspec \"fedora:\": it has an empty ref after ':'; expected REMOTE:REF \
             like \"fedora:fedora/40/x86_64/silverblue\""
        );
    }

    #[test]
    fn refspec_error_dot_components() {
        assert!(refspec_err("fedora:../etc").contains("must not contain a \"..\" component"));
        assert!(refspec_err("fedora:a/../b").contains("must not contain a \"..\" component"));
        assert!(refspec_err("a/./b").contains("must not contain a \".\" component"));
        assert!(refspec_err("fedora:.hidden").contains("must start with a letter, digit or '_'"));
        assert!(refspec_err("fedora:-x").contains("ref component \"-x\" must start with"));
    }

    #[test]
    fn refspec_error_slashes() {
        assert!(refspec_err("/fedora/40").contains("must not start with '/'"));
        assert!(refspec_err("fedora:/fedora/40").contains("must not start with '/'"));
        assert!(refspec_err("fedora:fedora/").contains("must not end with '/'"));
        assert!(refspec_err("fedora:a//b").contains("empty component"));
    }

    #[test]
    fn refspec_error_bad_remote() {
        assert!(refspec_err("fed ora:foo").contains("remote name \"fed ora\" may only contain"));
        assert!(refspec_err(".x:foo").contains("remote name \".x\" must start with"));
        assert!(refspec_err("a/b:foo").contains("remote name \"a/b\" may only contain"));
        assert!(refspec_err("a:b:c").contains("ref component \"b:c\" may only contain"));
    }

    // ----- origin accessors -----

    #[test]
    fn origin_simple_accessors() {
        let o = origin(SIMPLE);
        let r = refspec("fedora:fedora/40/x86_64/silverblue");
        assert_eq!(o.base(), &BaseSource::Refspec(r.clone()));
        assert_eq!(o.refspec(), Some(&r));
        assert_eq!(o.container_image_reference(), None);
        assert_eq!(o.override_commit(), None);
        assert_eq!(o.custom_origin(), None);
        assert_eq!(o.unconfigured_state(), None);
        assert!(o.requested_packages().is_empty());
        assert!(!o.regenerate_initramfs());
        assert!(!o.cliwrap());
        assert!(!o.pinned());
        assert!(!o.has_initramfs_block());
        assert!(!o.needs_local_assembly());
        assert_eq!(o.keyfile().groups(), vec!["origin"]);
    }

    #[test]
    fn origin_layered_accessors() {
        let o = origin(LAYERED);
        let r = refspec("fedora:fedora/40/x86_64/silverblue");
        assert_eq!(o.base(), &BaseSource::BaseRefspec(r.clone()));
        assert_eq!(o.refspec(), Some(&r));
        assert_eq!(o.override_commit(), Some(COMMIT));
        assert_eq!(o.requested_packages(), strings(&["htop", "vim-enhanced"]));
        assert_eq!(
            o.requested_local_packages(),
            [lp(SHA_A, "foo-1.0-1.fc40.x86_64")]
        );
        assert_eq!(
            o.requested_local_fileoverride_packages(),
            [lp(SHA_C, "bar-2:3.1-4.fc40.noarch")]
        );
        assert_eq!(
            o.override_remove(),
            strings(&["firefox", "firefox-langpacks"])
        );
        assert_eq!(
            o.override_replace_local(),
            [lp(SHA_B, "kernel-6.8.9-300.fc40.x86_64")]
        );
        assert_eq!(
            o.override_replace(),
            [
                RemoteOverride {
                    repo: "updates-testing".to_string(),
                    packages: strings(&["podman", "podman-plugins"]),
                },
                RemoteOverride {
                    repo: "copr:copr.fedorainfracloud.org:group:proj".to_string(),
                    packages: strings(&["mesa-dri-drivers"]),
                },
            ]
        );
        assert!(o.regenerate_initramfs());
        assert_eq!(o.initramfs_args(), strings(&["-I", "/etc/crypttab"]));
        assert_eq!(
            o.initramfs_etc(),
            strings(&["/etc/crypttab", "/etc/vconsole.conf"])
        );
        assert!(o.cliwrap());
        assert!(o.has_initramfs_block());
        assert!(o.needs_local_assembly());
        assert!(!o.pinned());
    }

    #[test]
    fn origin_container_accessors() {
        let o = origin(CONTAINER);
        let image = "ostree-unverified-registry:quay.io/fedora/fedora-silverblue:40";
        assert_eq!(o.base(), &BaseSource::ContainerImage(image.to_string()));
        assert_eq!(o.container_image_reference(), Some(image));
        assert_eq!(o.refspec(), None);
        assert_eq!(o.requested_packages(), strings(&["tmux"]));
        assert!(o.needs_local_assembly());
    }

    #[test]
    fn origin_pinned_unconfigured_and_unknown_keys() {
        assert!(origin(PINNED).pinned());
        let o = origin(COMMENTED);
        assert_eq!(
            o.unconfigured_state().as_deref(),
            Some("Upgrade to the next release with rpm-ostree rebase")
        );
        assert_eq!(o.keyfile().raw("x-site", "owner"), Some("ops team "));
        assert_eq!(o.requested_packages(), strings(&["htop"]));
        let o = origin("[origin]\nrefspec=a:b\nfuture-key=???\n[libostree-transient]\npinned=0\n");
        assert!(!o.pinned());
        assert_eq!(o.keyfile().raw("origin", "future-key"), Some("???"));
    }

    #[test]
    fn origin_custom_origin() {
        let o = origin(LOCALE);
        assert_eq!(o.refspec().map(Refspec::kind), Some(RefspecKind::Checksum));
        assert_eq!(
            o.custom_origin(),
            Some((
                "https://example.com/builds/42".to_string(),
                "Nightly build; tested".to_string()
            ))
        );
        let o = origin("[origin]\nrefspec=a:b\ncustom-url=u\n");
        assert_eq!(o.custom_origin(), Some(("u".to_string(), String::new())));
    }

    #[test]
    fn origin_from_refspec() {
        let o = Origin::from_refspec(&refspec("fedora:fedora/40/x86_64/silverblue"));
        assert_eq!(o.to_string(), SIMPLE);
        assert_eq!(o, origin(SIMPLE));
        let o = Origin::from_refspec(&refspec(":local"));
        assert_eq!(o.to_string(), "[origin]\nrefspec=local\n");
        let o = Origin::from_refspec(&refspec(COMMIT));
        assert_eq!(o.to_string(), format!("[origin]\nrefspec={COMMIT}\n"));
        assert_eq!(o.refspec().map(Refspec::kind), Some(RefspecKind::Checksum));
    }

    #[test]
    fn local_package_and_remote_override_values() {
        let p = LocalPackage::parse(&format!("{SHA_A}:foo-1:2.0-3.fc40.x86_64")).unwrap();
        assert_eq!(p, lp(SHA_A, "foo-1:2.0-3.fc40.x86_64"));
        assert_eq!(p.to_string(), format!("{SHA_A}:foo-1:2.0-3.fc40.x86_64"));
        let err = LocalPackage::parse("abc:foo").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid local package \"abc:foo\": \"abc\" is not 64"),
            "{err}"
        );
        let r = RemoteOverride::parse("repo=fedora,a,b").unwrap();
        assert_eq!(r.repo, "fedora");
        assert_eq!(r.packages, strings(&["a", "b"]));
        assert_eq!(r.to_string(), "repo=fedora,a,b");
        assert!(RemoteOverride::parse("fedora,a").is_err());
    }

    // ----- origin mutations -----

    #[test]
    fn set_refspec_on_layered_keeps_packages_and_drops_override_commit() {
        let mut o = origin(LAYERED);
        let new = refspec("fedora:fedora/41/x86_64/silverblue");
        o.set_refspec(&new);
        let expected = LAYERED
            .replace("fedora/40/x86_64", "fedora/41/x86_64")
            .replace(&format!("override-commit={COMMIT}\n"), "");
        assert_eq!(o.to_string(), expected);
        assert_eq!(o.base(), &BaseSource::BaseRefspec(new.clone()));
        assert_eq!(o.override_commit(), None);
        assert_eq!(o.requested_packages(), strings(&["htop", "vim-enhanced"]));
        assert_eq!(
            o.override_remove(),
            strings(&["firefox", "firefox-langpacks"])
        );
        assert!(o.regenerate_initramfs());
        // The cached view matches a fresh parse of the new text.
        assert_eq!(origin(&o.to_string()), o);
    }

    #[test]
    fn set_refspec_on_plain_origin_keeps_refspec_key_and_drops_custom_origin() {
        let mut o = origin(LOCALE);
        o.set_refspec(&refspec("fedora:fedora/41/x86_64/silverblue"));
        assert_eq!(
            o.to_string(),
            "[origin]\nrefspec=fedora:fedora/41/x86_64/silverblue\n\
             custom-description[de]=N\u{e4}chtlicher Build\n\
             custom-description[sr@latin]=No\u{107}na\n"
        );
        assert_eq!(o.custom_origin(), None);
        assert_eq!(origin(&o.to_string()), o);
    }

    #[test]
    fn set_refspec_from_container() {
        let mut o = origin(CONTAINER);
        o.set_refspec(&refspec("fedora:fedora/40/x86_64/silverblue"));
        assert_eq!(
            o.to_string(),
            "[origin]\nbaserefspec=fedora:fedora/40/x86_64/silverblue\n\n\
             [packages]\nrequested=tmux;\n"
        );
        assert_eq!(origin(&o.to_string()), o);
        // Without layering, the plain refspec key is used.
        let mut o = origin("[origin]\ncontainer-image-reference=docker://x/y\n");
        o.set_refspec(&refspec("fedora:f"));
        assert_eq!(o.to_string(), "[origin]\nrefspec=fedora:f\n");
        assert_eq!(o.base(), &BaseSource::Refspec(refspec("fedora:f")));
    }

    #[test]
    fn set_override_commit_adds_then_removes() {
        let mut o = origin(PINNED);
        assert!(o.set_override_commit(Some(COMMIT)));
        assert_eq!(o.override_commit(), Some(COMMIT));
        assert_eq!(
            o.to_string(),
            PINNED.replace(
                "silverblue\n",
                &format!("silverblue\noverride-commit={COMMIT}\n")
            )
        );
        assert_eq!(origin(&o.to_string()), o);
        assert!(o.set_override_commit(Some(SHA_A)));
        assert_eq!(o.keyfile().raw("origin", "override-commit"), Some(SHA_A));
        assert!(o.set_override_commit(None));
        assert_eq!(o.override_commit(), None);
        assert_eq!(o.to_string(), PINNED);
        // Invalid checksums are refused and change nothing.
        for bad in [
            "abc123",
            &COMMIT.to_uppercase(),
            "",
            &format!("{COMMIT}\nx=y"),
        ] {
            assert!(!o.set_override_commit(Some(bad)), "{bad:?}");
            assert_eq!(o.override_commit(), None);
            assert_eq!(o.to_string(), PINNED);
        }
    }

    #[test]
    fn set_custom_origin_and_clear() {
        let mut o = origin(&format!("[origin]\nrefspec={COMMIT}\n"));
        o.set_custom_origin(Some(("https://e.com/x", " build 1")))
            .unwrap();
        assert_eq!(
            o.to_string(),
            format!(
                "[origin]\nrefspec={COMMIT}\ncustom-url=https://e.com/x\n\
                 custom-description=\\sbuild 1\n"
            )
        );
        assert_eq!(
            o.custom_origin(),
            Some(("https://e.com/x".to_string(), " build 1".to_string()))
        );
        assert_eq!(origin(&o.to_string()), o);
        assert!(o.set_custom_origin(Some(("", "d"))).is_err());
        assert!(o.set_custom_origin(Some(("u", ""))).is_err());
        o.set_custom_origin(None).unwrap();
        assert_eq!(o.to_string(), format!("[origin]\nrefspec={COMMIT}\n"));
    }

    #[test]
    fn needs_local_assembly_and_initramfs_block() {
        let base = "[origin]\nrefspec=a:b\n";
        let check = |extra: &str, assembly: bool, block: bool| {
            let o = origin(&format!("{base}{extra}"));
            assert_eq!(o.needs_local_assembly(), assembly, "{extra}");
            assert_eq!(o.has_initramfs_block(), block, "{extra}");
        };
        check("", false, false);
        check("[packages]\nrequested=\n", false, false);
        check("[packages]\nrequested=x;\n", true, false);
        check(
            &format!("[overrides]\nreplace-local={SHA_A}:k-1-1.x86_64;\n"),
            true,
            false,
        );
        check("[overrides]\nreplace=repo=r,p;\n", true, false);
        check("[rpmostree]\nregenerate-initramfs=false\n", false, true);
        check("[rpmostree]\nregenerate-initramfs=true\n", true, true);
        check("[rpmostree]\ninitramfs-args=-I;\n", false, true);
        check("[rpmostree]\ninitramfs-etc=/etc/x;\n", true, true);
        check("[rpmostree]\nex-cliwrap=true\n", true, false);
    }

    #[test]
    fn from_keyfile_revalidates_edits() {
        let o = origin(SIMPLE);
        let mut k = o.keyfile().clone();
        k.set_list("packages", "requested", &["htop", "git"])
            .unwrap();
        let o = Origin::from_keyfile(k).unwrap();
        assert_eq!(o.requested_packages(), strings(&["htop", "git"]));
        let mut k = o.into_keyfile();
        k.set_list("packages", "requested", &["bad name"]).unwrap();
        assert!(Origin::from_keyfile(k).is_err());
    }

    // ----- origin errors -----

    #[test]
    fn origin_error_no_base() {
        for text in [
            "",
            "[packages]\nrequested=htop;\n",
            "[origin]\nrefspec[de]=a:b\n",
        ] {
            let err = origin_err(text);
            assert_eq!(err, OriginError::NoBase);
            assert_eq!(
                err.to_string(),
                "origin has no [origin] refspec, baserefspec or container-image-reference"
            );
        }
    }

    #[test]
    fn origin_error_conflicting_bases() {
        let err = origin_err("[origin]\nrefspec=a:b\ncontainer-image-reference=docker://x\n");
        assert_eq!(
            err.to_string(),
            "origin has both [origin] refspec and container-image-reference; expected exactly \
             one of refspec, baserefspec or container-image-reference"
        );
        let err = origin_err("[origin]\nbaserefspec=a:b\n[origin]\nrefspec=a:b\n");
        assert_eq!(
            err,
            OriginError::ConflictingBase {
                first: "refspec",
                second: "baserefspec"
            }
        );
        let err = origin_err("[origin]\nbaserefspec=a:b\ncontainer-image-reference=x\n");
        assert!(err
            .to_string()
            .contains("baserefspec and container-image-reference"));
    }

    #[test]
    fn origin_error_bad_refspec_value() {
        let err = origin_err("[origin]\nrefspec=fedora:foo bar\n");
        assert_eq!(
            err.to_string(),
            "invalid value \"fedora:foo bar\" for key \"refspec\" in group [origin]: ref \
             component \"foo bar\" may only contain letters, digits, '_', '-', '.'; expected \
             REMOTE:REF like \"fedora:fedora/40/x86_64/silverblue\""
        );
        let err = origin_err("[origin]\nbaserefspec=\n").to_string();
        assert!(err.contains("key \"baserefspec\""), "{err}");
        assert!(err.contains("it is empty"), "{err}");
    }

    #[test]
    fn origin_error_bad_override_commit() {
        for bad in ["abc", "", &COMMIT.to_uppercase(), &format!("{COMMIT} ")] {
            let err = origin_err(&format!("[origin]\nrefspec=a:b\noverride-commit={bad}\n"));
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid value {bad:?} for key \"override-commit\" in group [origin]: \
                     expected a commit checksum of 64 lowercase hex characters"
                )
            );
        }
    }

    #[test]
    fn origin_error_bad_booleans() {
        let err = origin_err("[origin]\nrefspec=a:b\n[rpmostree]\nregenerate-initramfs=yes\n");
        assert_eq!(
            err.to_string(),
            "invalid value \"yes\" for key \"regenerate-initramfs\" in group [rpmostree]: \
             expected a boolean, \"true\" or \"false\""
        );
        let err = origin_err("[origin]\nrefspec=a:b\n[rpmostree]\nex-cliwrap=on\n");
        assert!(err.to_string().contains("\"ex-cliwrap\""));
        let err = origin_err("[origin]\nrefspec=a:b\n[libostree-transient]\npinned=maybe\n");
        assert!(err.to_string().contains("group [libostree-transient]"));
    }

    #[test]
    fn origin_error_bad_local_packages() {
        let cases = [
            ("requested-local", "foo-1.0-1.x86_64".to_string(), "no ':'"),
            (
                "requested-local",
                "abc:foo-1.0-1.x86_64".to_string(),
                "\"abc\" is not 64",
            ),
            ("requested-local", format!("{SHA_A}:"), "the NEVRA is empty"),
            (
                "requested-local-fileoverride",
                format!("{SHA_A}:foo 1.0"),
                "contains whitespace",
            ),
        ];
        for (key, value, problem) in cases {
            let text = format!("[origin]\nrefspec=a:b\n[packages]\n{key}={value};\n");
            let err = origin_err(&text).to_string();
            assert!(
                err.starts_with(&format!(
                    "invalid value {value:?} for key \"{key}\" in group [packages]: "
                )),
                "{err}"
            );
            assert!(err.contains(problem), "{err}");
            assert!(err.contains("expected SHA256:NEVRA"), "{err}");
        }
        let err = origin_err("[origin]\nrefspec=a:b\n[overrides]\nreplace-local=x:y;\n");
        assert!(err.to_string().contains("group [overrides]"));
    }

    #[test]
    fn origin_error_bad_remote_overrides() {
        for (value, problem) in [
            ("fedora,podman", "does not start with \"repo=\""),
            ("repo=,podman", "repo name \"\" is empty"),
            ("repo=fedora", "no packages listed"),
            ("repo=fedora,,x", "package name is empty"),
        ] {
            let text = format!("[origin]\nrefspec=a:b\n[overrides]\nreplace={value};\n");
            let err = origin_err(&text).to_string();
            assert!(
                err.starts_with(&format!(
                    "invalid value {value:?} for key \"replace\" in group [overrides]: "
                )),
                "{err}"
            );
            assert!(err.contains(problem), "{err}");
        }
    }

    #[test]
    fn origin_error_bad_package_names() {
        let err = origin_err("[origin]\nrefspec=a:b\n[packages]\nrequested=htop;foo bar;\n");
        assert_eq!(
            err.to_string(),
            "invalid value \"foo bar\" for key \"requested\" in group [packages]: package name \
             \"foo bar\" contains whitespace or control characters; expected a package name \
             like \"htop\""
        );
        let err = origin_err("[origin]\nrefspec=a:b\n[packages]\nrequested=htop;;\n");
        assert!(err.to_string().contains("package name is empty"));
        let err = origin_err("[origin]\nrefspec=a:b\n[overrides]\nremove=a\\nb;\n");
        assert!(err.to_string().contains("key \"remove\""));
    }

    #[test]
    fn origin_error_bad_container_reference() {
        let err = origin_err("[origin]\ncontainer-image-reference=\n");
        assert!(err
            .to_string()
            .starts_with("invalid value \"\" for key \"container-image-reference\" in group [origin]: it is empty"));
        let err = origin_err("[origin]\ncontainer-image-reference=docker://a b\n");
        assert!(err.to_string().contains("whitespace"));
    }

    #[test]
    fn origin_error_bad_strings_and_initramfs_etc() {
        let err = origin_err("[origin]\nrefspec=a:b\ncustom-url=x\\y\n");
        assert!(err.to_string().contains("key \"custom-url\""));
        let err = origin_err("[origin]\nrefspec=a:b\n[rpmostree]\ninitramfs-etc=etc/x;\n");
        assert_eq!(
            err.to_string(),
            "invalid value \"etc/x\" for key \"initramfs-etc\" in group [rpmostree]: expected an \
             absolute path like \"/etc/crypttab\""
        );
    }

    // ----- robustness -----

    #[test]
    fn never_panics_on_mangled_input() {
        let odd = [
            "",
            "\n",
            "\r",
            "[",
            "]",
            "=",
            "\\",
            ";",
            "[origin",
            "\u{0}",
            "\u{e9}",
            "\u{1F980}",
            "\x0b",
            "#",
            "[origin]\n",
            "refspec=",
        ];
        for sample in [SIMPLE, LAYERED, CONTAINER, COMMENTED, PINNED, LOCALE] {
            let boundaries: Vec<usize> = (0..=sample.len())
                .filter(|&i| sample.is_char_boundary(i))
                .collect();
            for &i in &boundaries {
                let (head, tail) = sample.split_at(i);
                for insert in odd {
                    let text = format!("{head}{insert}{tail}");
                    if let Ok(k) = KeyFile::parse(&text) {
                        assert_eq!(k.to_string(), text);
                        for g in k.groups() {
                            for key in k.keys(g) {
                                let _ = (k.string(g, key), k.list(g, key), k.boolean(g, key));
                            }
                        }
                    }
                    if let Ok(mut o) = Origin::parse(&text) {
                        assert_eq!(o.to_string(), text);
                        o.set_refspec(&refspec("r:x"));
                        let _ = o.set_override_commit(Some(COMMIT));
                        assert_eq!(origin(&o.to_string()), o, "{text:?}");
                    }
                }
            }
        }
    }
}

//! Caller-supplied strings on their way into a log line or onto a terminal: control characters
//! escaped (so a newline cannot forge a log line, an escape sequence cannot drive a terminal)
//! and the length bounded.

/// `s` with control characters escaped as Rust escapes them (`\n`, `\u{1b}`) and at most
/// `max_chars` characters, then `… (N bytes)`.
pub fn printable(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == max_chars {
            out.push_str(&format!("… ({} bytes)", s.len()));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` cut after `max_chars` characters, then `… (N bytes)`; unchanged when shorter. For
/// messages that quote it with `{:?}` (which escapes control characters itself).
pub fn truncated(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()),
        None => s.to_string(),
    }
}

/// Whether `s` is acceptable as a name a caller gives itself (a client id, an update driver):
/// 1 to `max_bytes` bytes of text without control characters.
pub fn is_plain_name(s: &str, max_bytes: usize) -> bool {
    !s.is_empty() && s.len() <= max_bytes && !s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_bounds() {
        assert_eq!(printable("zincati", 64), "zincati");
        assert_eq!(printable("a\nb\u{1b}[31m", 64), "a\\nb\\u{1b}[31m");
        let big = "x".repeat(5_000_000);
        let p = printable(&big, 64);
        assert_eq!(p, format!("{}… (5000000 bytes)", "x".repeat(64)));
        assert!(is_plain_name("cockpit-ostree", 256));
        assert!(!is_plain_name("", 256));
        assert!(!is_plain_name("a\nb", 256));
        assert!(!is_plain_name(&"x".repeat(257), 256));
    }
}

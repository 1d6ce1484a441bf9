//! Values in log lines, by one rule (logfmt): a value is written as it is when it is not empty
//! and holds no whitespace, `"`, `=`, `\` or control character; otherwise in double quotes,
//! with `"` and `\` escaped and control characters as `\n`, `\t`, `\r` or `\u{…}`. Client
//! supplied text (file names, host names) can then neither split a line nor forge a field.
//!
//! The host's log formatter and the core's own `Display` impls (boot records, diagnoses) use
//! it, so every `key=value` the project writes reads the same way.

use core::fmt::{self, Write as _};

/// Displays a string as a logfmt value.
#[derive(Debug, Clone, Copy)]
pub struct Logfmt<'a>(pub &'a str);

impl fmt::Display for Logfmt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !needs_quotes(self.0) {
            return f.write_str(self.0);
        }
        f.write_char('"')?;
        Escaped(&mut *f).write_str(self.0)?;
        f.write_char('"')
    }
}

/// Whether `value` must be quoted.
pub fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'))
}

/// A writer that escapes what goes through it as the inside of a quoted logfmt value: for a
/// value written in pieces (`list="a 1 bytes, b 2 bytes"`), between quotes the caller writes.
#[derive(Debug)]
pub struct Escaped<W>(pub W);

impl<W: fmt::Write> fmt::Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '"' => self.0.write_str("\\\"")?,
                '\\' => self.0.write_str("\\\\")?,
                '\n' => self.0.write_str("\\n")?,
                '\t' => self.0.write_str("\\t")?,
                '\r' => self.0.write_str("\\r")?,
                c if c.is_control() => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(value: &str) -> heapless::String<64> {
        let mut out = heapless::String::new();
        write!(out, "{}", Logfmt(value)).unwrap();
        out
    }

    #[test]
    fn plain_values_stay_bare_and_others_are_quoted_and_escaped() {
        assert_eq!(show("pxelinux.0"), "pxelinux.0");
        assert_eq!(show("52:54:00:12:34:56"), "52:54:00:12:34:56");
        assert_eq!(show(""), "\"\"");
        assert_eq!(show("my file"), "\"my file\"");
        assert_eq!(show("a=b"), "\"a=b\"");
        assert_eq!(show("x\" forged=1"), "\"x\\\" forged=1\"");
        assert_eq!(show("a\\b"), "\"a\\\\b\"");
        assert_eq!(show("line\nnext"), "\"line\\nnext\"");
        assert_eq!(show("bell\u{7}"), "\"bell\\u{7}\"");
    }

    #[test]
    fn a_value_written_in_pieces_is_escaped_as_a_whole() {
        let mut out: heapless::String<64> = heapless::String::new();
        let mut list = Escaped(&mut out);
        write!(list, "a\" forged=1\nb {} bytes", 2).unwrap();
        assert_eq!(out, "a\\\" forged=1\\nb 2 bytes");
    }
}

//! A VM's serial console: wait for text, with a timeout that reports what was there.
//!
//! QEMU writes the console to a file (`-serial file:…`). Full-screen programs (OVMF's setup
//! screens, the installer's newt dialogs) write VT100 escapes between words, so matching is
//! done on the text with escapes removed as well as on the raw bytes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::Proc;

/// The serial console log of one VM.
#[derive(Debug, Clone)]
pub struct Console {
    path: PathBuf,
}

/// A failed wait: what was expected, how long we waited, and the console's tail.
#[derive(Debug)]
pub struct WaitFailure {
    /// Human-readable report, ready to panic with.
    pub report: String,
}

impl core::fmt::Display for WaitFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.report)
    }
}

impl Console {
    /// The console written to `path`.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }

    /// Where QEMU writes it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The console so far, escapes removed.
    pub fn text(&self) -> String {
        std::fs::read(&self.path)
            .map(|b| strip_escapes(&String::from_utf8_lossy(&b)))
            .unwrap_or_default()
    }

    /// Waits until one of `markers` appears, the VM exits, or `timeout` passes; returns the
    /// index of the marker seen and the time it took.
    ///
    /// # Errors
    /// A report with the console's last lines (and the VM's own log, e.g. a QEMU error).
    pub fn wait_for_any(
        &self,
        vm: &mut Proc,
        markers: &[&str],
        timeout: Duration,
    ) -> Result<(usize, Duration), WaitFailure> {
        let start = Instant::now();
        let deadline = start + timeout;
        loop {
            let text = self.text();
            if let Some(i) = markers.iter().position(|m| text.contains(m)) {
                return Ok((i, start.elapsed()));
            }
            let exited = vm.exited();
            if exited.is_some() || Instant::now() >= deadline {
                // One last look: the marker may have been written just before QEMU exited.
                let text = self.text();
                if let Some(i) = markers.iter().position(|m| text.contains(m)) {
                    return Ok((i, start.elapsed()));
                }
                let why = match exited {
                    Some(status) => format!("the VM exited ({status}) after {:?}", start.elapsed()),
                    None => format!("not seen within {timeout:?}"),
                };
                return Err(WaitFailure {
                    report: format!(
                        "waiting for {markers:?} on {}: {why}\n--- last lines of the serial \
                         console ---\n{}\n--- {} log ---\n{}",
                        self.path.display(),
                        tail(&text, 40),
                        vm.name(),
                        vm.log_tail(10)
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// [`Console::wait_for_any`] with one marker; returns the time it took.
    ///
    /// # Errors
    /// See [`Console::wait_for_any`].
    pub fn wait_for(
        &self,
        vm: &mut Proc,
        marker: &str,
        timeout: Duration,
    ) -> Result<Duration, WaitFailure> {
        self.wait_for_any(vm, &[marker], timeout).map(|(_, d)| d)
    }
}

/// The last `lines` non-blank lines of `text`, escapes removed.
pub fn tail(text: &str, lines: usize) -> String {
    let clean = strip_escapes(text);
    let all: Vec<&str> = clean
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Removes VT100/ANSI escape sequences (CSI `ESC [ … final`, charset `ESC ( x`, other
/// `ESC x`), backspaces and carriage returns; a carriage return becomes a newline so that
/// screen redraws do not glue lines together.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\u{1b}' => match it.next() {
                Some('[') => {
                    // Parameters and intermediates, up to a final byte in @..~.
                    for n in it.by_ref() {
                        if ('@'..='~').contains(&n) {
                            break;
                        }
                    }
                }
                Some('(' | ')') => {
                    it.next();
                }
                _ => {}
            },
            '\r' => {
                if it.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\u{8}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_newt_dialog_escapes() {
        let raw = "\u{1b}[7;3H\u{1b}[0m\u{1b}(0\u{1b}[30m\u{1b}[47mx\u{1b}[0m\u{1b}(B \
                   Choose the language\r\nok\u{8} ";
        assert_eq!(strip_escapes(raw), "x Choose the language\nok ");
    }

    #[test]
    fn tail_skips_blank_lines() {
        assert_eq!(tail("a\n\n  \nb\r\nc\n", 2), "b\nc");
    }
}

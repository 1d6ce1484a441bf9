//! The log: `tracing` lines on stderr, as text (logfmt-quoted fields) or JSON.
//!
//! Under journald (stderr is the stream named by `JOURNAL_STREAM`, see systemd.exec(5)) text
//! lines carry no timestamp of their own and start with a syslog priority prefix (`<3>` error,
//! `<4>` warning, `<6>` info, `<7>` debug and trace; sd-daemon(3)), so that journald files each
//! line at its level. docs/logging.md describes the formats.

use crate::cli::{LogArgs, LogFormat};
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Installs the process-wide logger for `args` (also for the `log` records of the core),
/// writing to stderr. `RUST_LOG` overrides the level flags.
pub fn init(args: &LogArgs) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(args.default_filter()));
    let journald = under_journald();
    let style = Style {
        format: args.log_format,
        journald,
        ansi: !journald
            && std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none(),
    };
    use tracing_subscriber::util::SubscriberInitExt as _;
    // Fails only if a logger is already set, which `main` never does.
    let _ = subscriber(style, filter, || StderrWriter).try_init();
}

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Text or JSON.
    pub format: LogFormat,
    /// Lines go to journald: priority prefix, no timestamp (text formats).
    pub journald: bool,
    /// Colours (text formats on a terminal).
    pub ansi: bool,
}

/// A subscriber writing `style` lines that pass `filter` to `writer`.
pub fn subscriber<W>(
    style: Style,
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Its report of a failed write would go to the same stderr, through `eprintln!`.
        .log_internal_errors(false);
    match (style.format, style.journald) {
        (LogFormat::Json, _) => Box::new(builder.json().finish()),
        (LogFormat::Text, false) => Box::new(
            builder
                .with_ansi(style.ansi)
                .fmt_fields(LogfmtFields)
                .finish(),
        ),
        (LogFormat::Text, true) => Box::new(
            builder
                .with_ansi(false)
                .fmt_fields(LogfmtFields)
                .event_format(Priority(tracing_subscriber::fmt::format().without_time()))
                .finish(),
        ),
    }
}

/// Whether stderr is journald's stream: `JOURNAL_STREAM` (`DEVICE:INODE`, set by systemd for
/// a service whose stderr goes to the journal) names stderr's device and inode. A child whose
/// stderr was redirected elsewhere inherits the variable but not the stream, so both must
/// match.
pub fn under_journald() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(std::io::stderr()) else {
        return false;
    };
    journal_stream_matches(&value.to_string_lossy(), stat.st_dev, stat.st_ino)
}

/// Whether `JOURNAL_STREAM`'s `DEVICE:INODE` (decimal) is `dev`, `ino`.
pub fn journal_stream_matches(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.trim().split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// The syslog priority of `level` (RFC 5424 §6.2.1): error 3, warning 4, info 6, debug 7.
pub fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Quotes `value` by the project's one rule ([`pocketpxe_core::logfmt`]).
pub fn quote(value: &str, out: &mut impl fmt::Write) -> fmt::Result {
    write!(out, "{}", pocketpxe_core::logfmt::Logfmt(value))
}

/// Text fields: the message as it is, then `name=value` with every value quoted by one rule
/// ([`quote`]), whether it was recorded as a string, a number or through `Display`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogfmtFields;

impl<'w> FormatFields<'w> for LogfmtFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = FieldVisitor {
            writer,
            first: true,
            result: Ok(()),
            text: String::new(),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct FieldVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
    /// Reused for values recorded through `Debug`/`Display`.
    text: String,
}

impl FieldVisitor<'_> {
    fn field(&mut self, field: &Field, value: &str) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{sep}{value}")
        } else {
            write!(self.writer, "{sep}{}=", field.name())
                .and_then(|()| quote(value, &mut self.writer))
        };
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        let _ = write!(text, "{value:?}");
        self.field(field, &text);
        self.text = text;
    }
}

/// Prefixes each line of the inner format with its syslog priority (`<6>`).
struct Priority<F>(F);

impl<S, N, F> FormatEvent<S, N> for Priority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// The log's stderr, where a failed write is dropped: once stderr is a pipe whose reader is
/// gone (`pocketpxe serve ... 2>&1 | head -1`), writes fail with `EPIPE` (SIGPIPE is ignored),
/// and the daemon must go on serving, and clean up when it stops, without its log.
struct StderrWriter;

impl std::io::Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// The lines `style` writes for a few events at every level.
    fn log_with(style: Style) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = subscriber(
            style,
            tracing_subscriber::EnvFilter::new("trace"),
            move || writer.clone(),
        );
        tracing::subscriber::with_default(subscriber, || {
            let mac = pocketpxe_core::net::Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
            tracing::error!(file = "a b.0", "broken");
            tracing::warn!(mac = %mac, "careful");
            tracing::info!(mac = %mac, file = "pxelinux.0", bytes = 42u64, hostname = "", "DHCP");
            tracing::debug!(reason = %"not a request", "request ignored");
            tracing::trace!("datagram ignored");
        });
        buffer.text()
    }

    #[test]
    fn journald_lines_start_with_the_priority_and_carry_no_timestamp() {
        let style = Style {
            format: LogFormat::Text,
            journald: true,
            ansi: false,
        };
        let text = log_with(style);
        let lines: Vec<&str> = text.lines().collect();
        let prefixes: Vec<&str> = lines.iter().map(|l| &l[..3]).collect();
        assert_eq!(prefixes, ["<3>", "<4>", "<6>", "<7>", "<7>"], "{text}");
        assert!(lines[2].starts_with("<6> INFO "), "{text}");
        // Text lines off journald start with an RFC 3339 timestamp instead.
        let plain = log_with(Style {
            journald: false,
            ..style
        });
        assert!(plain.lines().all(|l| l.starts_with("20")), "{plain}");
        assert!(!plain.contains("<6>"), "{plain}");
    }

    #[test]
    fn text_values_follow_one_quoting_rule() {
        let text = log_with(Style {
            format: LogFormat::Text,
            journald: false,
            ansi: false,
        });
        assert!(text.contains(" broken file=\"a b.0\""), "{text}");
        assert!(
            text.contains(" DHCP mac=52:54:00:12:34:56 file=pxelinux.0 bytes=42 hostname=\"\""),
            "{text}"
        );
        assert!(
            text.contains(" request ignored reason=\"not a request\""),
            "{text}"
        );
    }

    #[test]
    fn json_lines_are_objects_with_timestamp_level_target_and_fields() {
        let text = log_with(Style {
            format: LogFormat::Json,
            journald: true,
            ansi: false,
        });
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 5, "{text}");
        let info = &lines[2];
        assert_eq!(info["level"], "INFO");
        assert_eq!(info["target"], "pocketpxe::logging::tests");
        assert!(info["timestamp"].as_str().unwrap().starts_with("20"));
        assert_eq!(info["fields"]["message"], "DHCP");
        assert_eq!(info["fields"]["mac"], "52:54:00:12:34:56");
        assert_eq!(info["fields"]["file"], "pxelinux.0");
        assert_eq!(info["fields"]["bytes"], 42);
        assert_eq!(lines[0]["level"], "ERROR");
    }

    #[test]
    fn quoting() {
        let q = |s: &str| {
            let mut out = String::new();
            quote(s, &mut out).unwrap();
            out
        };
        assert_eq!(q("pxelinux.0"), "pxelinux.0");
        assert_eq!(q("52:54:00:12:34:56"), "52:54:00:12:34:56");
        assert_eq!(q("PXEClient:Arch:00007"), "PXEClient:Arch:00007");
        assert_eq!(q("my file"), "\"my file\"");
        assert_eq!(q(""), "\"\"");
        assert_eq!(q("a=b"), "\"a=b\"");
        assert_eq!(q("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(q("\u{1b}[31m"), "\"\\u{1b}[31m\"");
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(journal_stream_matches("8:12345", 8, 12345));
        assert!(!journal_stream_matches("8:12345", 8, 12346));
        assert!(!journal_stream_matches("9:12345", 8, 12345));
        assert!(!journal_stream_matches("garbage", 8, 12345));
        assert!(!journal_stream_matches("", 0, 0));
        assert_eq!(syslog_priority(Level::TRACE), 7);
    }
}

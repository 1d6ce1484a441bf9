//! Talking to the mirror: the mirror URL check, bounded small downloads (`InRelease`,
//! `SHA256SUMS`) and the tarball download, hashed on the way, with a progress bar on a terminal.

use std::fs::File;
use std::io::{self, IsTerminal as _, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::verify::hex;
use super::{DEFAULT_MIRROR, FetchError, io_err};

pub(super) fn check_mirror(mirror: &str) -> Result<&str, FetchError> {
    let trimmed = mirror.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !trimmed.contains(char::is_whitespace) => Ok(trimmed),
        _ => Err(FetchError::BadRequest(format!(
            "'{mirror}' is not an http:// or https:// mirror URL, e.g. {DEFAULT_MIRROR}"
        ))),
    }
}

pub(super) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .user_agent(concat!("pocketpxe/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The body of `url`, at most `limit` bytes, exactly as the mirror sent it.
pub(super) fn get_bytes(agent: &ureq::Agent, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
    let http = |detail: String| FetchError::Http {
        url: url.to_owned(),
        detail,
    };
    let mut response = agent.get(url).call().map_err(|e| http(describe(&e)))?;
    response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| http(describe(&e)))
}

/// Downloads `url` into `dest`, returning its size and SHA-256.
pub(super) fn download(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
) -> Result<(u64, String), FetchError> {
    let http = |detail: String| FetchError::Http {
        url: url.to_owned(),
        detail,
    };
    let mut response = agent.get(url).call().map_err(|e| http(describe(&e)))?;
    let total = response.body().content_length();
    let mut reader = response
        .body_mut()
        .with_config()
        .limit(MAX_TARBALL_BYTES)
        .reader();
    let mut file = File::create(dest).map_err(|e| io_err(dest, e))?;
    let mut hasher = Sha256::new();
    let mut progress = Progress::start(url, total);
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                progress.abort();
                return Err(http(format!(
                    "download interrupted after {done} bytes: {e}"
                )));
            }
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| io_err(dest, e))?;
        done += n as u64;
        progress.update(done);
    }
    progress.finish(done);
    if let Some(total) = total
        && total != done
    {
        return Err(http(format!("got {done} of {total} bytes")));
    }
    Ok((done, hex(&hasher.finalize())))
}

fn describe(err: &ureq::Error) -> String {
    match err {
        ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
        other => other.to_string(),
    }
}

/// A hand-drawn progress bar on a terminal; two plain log lines otherwise.
struct Progress {
    tty: bool,
    total: Option<u64>,
    started: Instant,
    drawn: Instant,
}

impl Progress {
    fn start(url: &str, total: Option<u64>) -> Self {
        let tty = io::stderr().is_terminal();
        let size = total.map(|t| format!(" ({})", mib(t))).unwrap_or_default();
        tracing::info!("downloading {url}{size}");
        Self {
            tty,
            total,
            started: Instant::now(),
            drawn: Instant::now(),
        }
    }

    fn update(&mut self, done: u64) {
        if !self.tty || self.drawn.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.drawn = Instant::now();
        let line = match self.total {
            Some(total) if total > 0 => {
                let pct = (done.saturating_mul(100) / total).min(100);
                let width = 30usize;
                let fill = (pct as usize * width) / 100;
                format!(
                    "\r[{}{}] {:>3}% {} / {}",
                    "#".repeat(fill),
                    " ".repeat(width - fill),
                    pct,
                    mib(done),
                    mib(total)
                )
            }
            _ => format!("\r{}", mib(done)),
        };
        let mut err = io::stderr().lock();
        let _ = write!(err, "{line}\x1b[K");
        let _ = err.flush();
    }

    fn abort(&mut self) {
        if self.tty {
            let _ = writeln!(io::stderr());
        }
    }

    fn finish(&mut self, done: u64) {
        if self.tty {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
        tracing::info!(
            "downloaded {} in {:.1} s",
            mib(done),
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

const MAX_TARBALL_BYTES: u64 = 2 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors() {
        assert_eq!(
            check_mirror("http://127.0.0.1:8080/debian/").unwrap(),
            "http://127.0.0.1:8080/debian"
        );
        assert!(check_mirror("https://deb.debian.org/debian").is_ok());
        assert!(check_mirror("ftp://x/debian").is_err());
        assert!(check_mirror("http://").is_err());
    }
}

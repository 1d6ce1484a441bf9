//! A throwaway PostgreSQL cluster for tests: Debian's `postgresql` binaries, `initdb` in the
//! test's own directory, the server listening on a unix socket in that directory only (no TCP:
//! `listen_addresses = ''`), run as the unprivileged `postgres` user (PostgreSQL refuses root),
//! stopped by its PID when dropped.
//!
//! A unix socket is reachable from every network namespace, so servers in the test's
//! namespaces share the one database.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use crate::common::{TempDir, run_bounded, wait_child};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's PostgreSQL server binaries (bookworm: 15).
pub fn pg_bin_dir() -> Option<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// Whether PostgreSQL is installed; skips (or fails under `CI=true`) like `have_tool`.
pub fn have_postgres(test: &str) -> bool {
    let found = pg_bin_dir().is_some() && user_ids("postgres").is_some();
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: PostgreSQL is not installed (CI=true: not skipping)");
        }
        eprintln!("SKIP: {test}: PostgreSQL is not installed (apt-get install postgresql)");
    }
    found
}

/// A running cluster.
pub struct Postgres {
    bin: PathBuf,
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
    uid: u32,
    gid: u32,
}

impl Postgres {
    /// `initdb` in `tmp/pg` and a server on a socket in that directory, port `port`.
    pub fn start(tmp: &TempDir, port: u16) -> Self {
        let bin = pg_bin_dir().unwrap();
        let (uid, gid) = user_ids("postgres").unwrap();
        // The postgres user must reach its directory.
        std::fs::set_permissions(&tmp.path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = tmp.join("pg");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        let out = run_bounded(
            Command::new(bin.join("initdb"))
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "pocketpxe",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "-D",
                ])
                .arg(dir.join("data"))
                .uid(uid)
                .gid(gid)
                .env("LC_ALL", "C"),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "initdb: {out:?}");
        let mut pg = Self {
            bin,
            log: dir.join("postgres.log"),
            dir,
            port,
            child: None,
            uid,
            gid,
        };
        pg.run();
        pg
    }

    /// The URL pocketpxe is given.
    pub fn url(&self) -> String {
        format!(
            "postgresql:///postgres?host={}&port={}&user=pocketpxe",
            self.dir.display(),
            self.port
        )
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn run(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        std::os::unix::fs::chown(&self.log, Some(self.uid), Some(self.gid)).unwrap();
        let child = Command::new(self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-c", "listen_addresses=", "-c"])
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args(["-p", &self.port.to_string(), "-c", "max_connections=50"])
            .uid(self.uid)
            .gid(self.gid)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        self.child = Some(child);
        let start = Instant::now();
        while self.psql("SELECT 1").is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "postgres not ready within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fast shutdown (SIGINT, by PID: open connections are cut), waiting for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            if wait_child(&mut child, Duration::from_secs(30)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// `psql -At -c SQL` as the cluster's superuser: the output, or `None` if it failed.
    pub fn psql(&self, sql: &str) -> Option<String> {
        let out = run_bounded(
            Command::new(self.bin.join("psql"))
                .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(&self.dir)
                .args(["-p", &self.port.to_string(), "-U", "pocketpxe", "-d"])
                .args(["postgres", "-c", sql]),
            Duration::from_secs(20),
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- postgres log ---\n{}", self.log());
        }
        self.stop();
    }
}

/// The uid and gid of `user`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

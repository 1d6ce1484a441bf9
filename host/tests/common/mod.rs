//! Shared helpers for the host integration tests: temp dirs, random files, the server process
//! (always killed by its own PID), real TFTP clients with timeouts, and a raw UDP client.
//! Everything talks to 127.0.0.1 only.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A temporary directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "pocketpxe-test-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `len` pseudo-random bytes (xorshift64*, seeded), so that every offset is distinct content.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a random file of `len` bytes into `dir` and returns its name and content.
pub fn make_file(dir: &Path, len: usize) -> (String, Vec<u8>) {
    let name = format!("file-{len}.bin");
    let data = random_bytes(len, len as u64 + 1);
    std::fs::write(dir.join(&name), &data).unwrap();
    (name, data)
}

pub const SIZES_SMALL: [usize; 6] = [0, 1, 511, 512, 1024, 1 << 20];
/// Over 65535 blocks of 512 bytes: block numbers roll over.
pub const SIZE_ROLLOVER: usize = 40 << 20;

/// A running `pocketpxe tftp`, killed (by its PID) and reaped on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `pocketpxe tftp --root ROOT --listen 127.0.0.1:0 EXTRA...` and waits until it
    /// reports its port.
    pub fn start(root: &Path, extra: &[&str]) -> Self {
        Self::start_under(&[], root, extra)
    }

    /// As [`Server::start`], run by `wrapper` (a program and its arguments that execs the
    /// server, such as `prlimit --nofile=…`, so that the PID stays the server's).
    pub fn start_under(wrapper: &[&str], root: &Path, extra: &[&str]) -> Self {
        Self::start_command("tftp", "TFTP server ready", wrapper, root, extra)
    }

    /// `pocketpxe SUBCOMMAND --root ROOT --listen 127.0.0.1:0 EXTRA...` (run by `wrapper`, as
    /// in [`Server::start_under`]), once it logs `ready` with its `listen=` address.
    pub fn start_command(
        subcommand: &str,
        ready: &'static str,
        wrapper: &[&str],
        root: &Path,
        extra: &[&str],
    ) -> Self {
        let server = env!("CARGO_BIN_EXE_pocketpxe");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(server);
                command
            }
            None => Command::new(server),
        };
        let mut child = command
            .arg(subcommand)
            .arg("--root")
            .arg(root)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pocketpxe");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains(ready) {
                    let _ = ready_tx.send(parse_port(&line));
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Self {
            child,
            port: 0,
            log,
        };
        match ready_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(port)) => server.port = port,
            _ => panic!("server did not become ready; log:\n{}", server.log()),
        }
        server
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM to this server (by PID).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the server to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, limit)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log());
        }
    }
}

/// The port in a text (`listen=ADDR`) or JSON (`"listen":"ADDR"`) ready line.
fn parse_port(line: &str) -> Option<u16> {
    let (at, key) = match line.find("listen=") {
        Some(at) => (at, "listen="),
        None => (line.find("\"listen\":\"")?, "\"listen\":\""),
    };
    let rest = &line[at + key.len()..];
    let addr: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    addr.parse::<SocketAddr>().ok().map(|a| a.port())
}

/// Waits for `child` at most `limit`; kills it (by its PID) when the time is up.
pub fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to completion within `limit`, capturing its output. Panics on timeout.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    // Drain pipes in threads so a chatty child cannot block.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut buf);
        buf
    });
    let Some(status) = wait_child(&mut child, limit) else {
        panic!("{cmd:?} did not finish within {limit:?}");
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Whether client binary `name` is installed. Missing: fails under CI=true, else skips loudly.
pub fn have_client(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("TFTP client `{name}` is not installed (CI=true: not skipping)");
        }
        eprintln!(
            "SKIP: TFTP client `{name}` is not installed (apt-get install curl tftp-hpa atftp)"
        );
    }
    found
}

/// A real client fetching `file` from the server into `out`.
#[derive(Debug, Clone, Copy)]
pub enum Client {
    Curl,
    CurlBlksize1468,
    /// `--tftp-no-options`: plain RFC 1350.
    CurlNoOptions,
    TftpHpa,
    Atftp,
    AtftpBlksize1468,
    AtftpWindowsize16,
}

impl Client {
    pub fn binary(self) -> &'static str {
        match self {
            Self::Curl | Self::CurlBlksize1468 | Self::CurlNoOptions => "curl",
            Self::TftpHpa => "tftp",
            Self::Atftp | Self::AtftpBlksize1468 | Self::AtftpWindowsize16 => "atftp",
        }
    }

    pub fn command(self, port: u16, file: &str, out: &Path) -> Command {
        let port_s = port.to_string();
        let mut cmd = Command::new(self.binary());
        match self {
            Self::Curl | Self::CurlBlksize1468 | Self::CurlNoOptions => {
                cmd.args(["-s", "-S", "--max-time", "120"]);
                if matches!(self, Self::CurlBlksize1468) {
                    cmd.args(["--tftp-blksize", "1468"]);
                }
                if matches!(self, Self::CurlNoOptions) {
                    cmd.arg("--tftp-no-options");
                }
                cmd.arg(format!("tftp://127.0.0.1:{port}/{file}"))
                    .arg("-o")
                    .arg(out);
            }
            Self::TftpHpa => {
                cmd.args(["-m", "binary", "127.0.0.1", &port_s, "-c", "get", file])
                    .arg(out);
            }
            Self::Atftp | Self::AtftpBlksize1468 | Self::AtftpWindowsize16 => {
                cmd.args(["--get", "-r", file, "-l"]).arg(out);
                match self {
                    Self::AtftpBlksize1468 => {
                        cmd.args(["--option", "blksize 1468"]);
                    }
                    Self::AtftpWindowsize16 => {
                        cmd.args(["--option", "windowsize 16"]);
                    }
                    _ => {}
                }
                cmd.args(["127.0.0.1", &port_s]);
            }
        }
        cmd
    }

    /// Fetches `file` and asserts the bytes equal `expected`.
    pub fn fetch_and_check(self, server: &Server, dir: &Path, file: &str, expected: &[u8]) {
        let out = dir.join(format!("out-{self:?}-{file}"));
        let _ = std::fs::remove_file(&out);
        let started = Instant::now();
        let output = run_bounded(
            &mut self.command(server.port, file, &out),
            Duration::from_secs(180),
        );
        let got = std::fs::read(&out).unwrap_or_else(|e| {
            panic!(
                "{self:?} {file}: no output file ({e}); status {}; stderr: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
        assert!(
            got == expected,
            "{self:?} {file}: content differs (got {} bytes, want {}); status {}; stderr: {}",
            got.len(),
            expected.len(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        // tftp-hpa exits 0 even on errors; the others must succeed.
        assert!(
            output.status.success(),
            "{self:?} {file}: exit {}; stderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!(
            "{self:?}: {file} ({} bytes) ok in {:?}",
            expected.len(),
            started.elapsed()
        );
        let _ = std::fs::remove_file(&out);
    }
}

/// A raw UDP client for hand-made packets.
pub struct RawClient {
    pub socket: UdpSocket,
}

impl RawClient {
    pub fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        Self { socket }
    }

    pub fn send_to(&self, packet: &[u8], to: SocketAddr) {
        self.socket.send_to(packet, to).unwrap();
    }

    /// The next datagram, or None after the read timeout.
    pub fn recv(&self) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0u8; 65536];
        match self.socket.recv_from(&mut buf) {
            Ok((len, src)) => {
                buf.truncate(len);
                Some((buf, src))
            }
            Err(_) => None,
        }
    }
}

/// An RRQ (opcode 1) for raw `name` in octet mode with `options` pairs.
pub fn rrq(name: &[u8], options: &[(&str, &str)]) -> Vec<u8> {
    request(1, name, b"octet", options)
}

pub fn request(opcode: u16, name: &[u8], mode: &[u8], options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = opcode.to_be_bytes().to_vec();
    p.extend_from_slice(name);
    p.push(0);
    p.extend_from_slice(mode);
    p.push(0);
    for (k, v) in options {
        p.extend_from_slice(k.as_bytes());
        p.push(0);
        p.extend_from_slice(v.as_bytes());
        p.push(0);
    }
    p
}

pub fn ack(block: u16) -> Vec<u8> {
    let mut p = 4u16.to_be_bytes().to_vec();
    p.extend_from_slice(&block.to_be_bytes());
    p
}

pub fn opcode(packet: &[u8]) -> u16 {
    u16::from_be_bytes([packet[0], packet[1]])
}

/// `(code, message)` of an ERROR packet, or None if it is not one.
pub fn as_error(packet: &[u8]) -> Option<(u16, String)> {
    if packet.len() < 4 || opcode(packet) != 5 {
        return None;
    }
    let code = u16::from_be_bytes([packet[2], packet[3]]);
    let msg = &packet[4..];
    let msg = msg.split(|&b| b == 0).next().unwrap_or(msg);
    Some((code, String::from_utf8_lossy(msg).into_owned()))
}

/// The number under `name` in a one-line JSON object (the load tool's `--json`).
pub fn json_field(json: &str, name: &str) -> f64 {
    let key = format!("\"{name}\":");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("{name} missing in {json}"))
        + key.len();
    let end = json[start..].find([',', '}']).unwrap() + start;
    json[start..end].parse().unwrap()
}

/// splitmix64: small and seeded, for reproducible random choices in tests (drops, kills).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}

//! The HTTP server: `pocketpxe http` on 127.0.0.1 checked with curl (a real client) and, for
//! the hostile-path corpus, with raw requests that no client library would send; and `serve`'s
//! HTTP server on the interface address, reached from a client namespace.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::{Server, TempDir, random_bytes, run_bounded, wait_child};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"TOP-SECRET-outside-the-root";
const INSIDE: &[u8] = b"inside file\n";
const IPXE: &[u8] = b"#!ipxe\nkernel linux\ninitrd initrd.gz\nboot\n";

/// A running `pocketpxe http`, killed by its PID and reaped on drop ([`Server`]).
struct HttpServer {
    server: Server,
    addr: SocketAddr,
}

impl HttpServer {
    /// `pocketpxe http --root ROOT --listen 127.0.0.1:0 EXTRA`, once it reports its port.
    fn start(root: &Path, extra: &[&str]) -> Self {
        let server = Server::start_command("http", "HTTP server ready", &[], root, extra);
        let addr = server.addr();
        Self { server, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> String {
        self.server.log()
    }

    /// Waits until the log holds `needle` `count` times; panics with the log after `limit`.
    fn wait_log_count(&self, needle: &str, count: usize, limit: Duration) {
        let start = Instant::now();
        while self.log().matches(needle).count() < count {
            assert!(
                start.elapsed() < limit,
                "{count}× {needle:?} not in the log within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `curl -sS --max-time 20 ARGS`, bounded.
fn curl(args: &[&str]) -> Output {
    run_bounded(
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args),
        Duration::from_secs(30),
    )
}

/// The header block of `curl -D -` output: `(status, lowercase "name: value" lines)`.
fn head_of(dump: &[u8]) -> (u16, Vec<String>) {
    let text = String::from_utf8_lossy(dump);
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| match l.split_once(':') {
            Some((name, value)) => format!("{}: {}", name.to_ascii_lowercase(), value.trim()),
            None => l.to_owned(),
        })
        .collect();
    (status, headers)
}

fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    headers.iter().find_map(|h| h.strip_prefix(&prefix))
}

/// The lab root: a text file, an iPXE script, a 3 MiB "initrd", a subdirectory, and a secret
/// next to the root.
fn lab(tag: &str) -> (TempDir, std::path::PathBuf, Vec<u8>) {
    let tmp = TempDir::new(tag);
    let root = tmp.join("root");
    std::fs::create_dir_all(root.join("debian-installer/amd64")).unwrap();
    std::fs::write(root.join("inside.txt"), INSIDE).unwrap();
    std::fs::write(root.join("boot.ipxe"), IPXE).unwrap();
    let initrd = random_bytes(3 << 20, 7);
    std::fs::write(root.join("debian-installer/amd64/initrd.gz"), &initrd).unwrap();
    std::fs::write(tmp.join("secret.txt"), SECRET).unwrap();
    (tmp, root, initrd)
}

#[test]
fn get_head_ranges_conditionals_and_keep_alive() {
    let (tmp, root, initrd) = lab("http-basics");
    let server = HttpServer::start(&root, &[]);
    let initrd_url = server.url("/debian-installer/amd64/initrd.gz");

    // GET: the bytes of the file, with length, type, ranges and a date.
    let got = tmp.join("got");
    let out = curl(&["-D", "-", "-o", got.to_str().unwrap(), &initrd_url]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&got).unwrap(), initrd);
    let (status, headers) = head_of(&out.stdout);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-length"), Some("3145728"));
    assert_eq!(header(&headers, "content-type"), Some("application/gzip"));
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
    let last_modified = header(&headers, "last-modified").unwrap().to_owned();

    // HEAD: the same headers, no body.
    let out = curl(&["-I", &server.url("/boot.ipxe")]);
    let (status, headers) = head_of(&out.stdout);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-length"),
        Some(IPXE.len().to_string().as_str())
    );
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("#!ipxe"),
        "{out:?}"
    );

    // One range, a suffix, an open end, beyond the end.
    for (range, start, end) in [
        ("100-199", 100, 199),
        ("-1000", initrd.len() - 1000, initrd.len() - 1),
        ("3145000-", 3_145_000, initrd.len() - 1),
        ("0-99999999", 0, initrd.len() - 1),
    ] {
        let out = curl(&[
            "-D",
            "-",
            "-o",
            got.to_str().unwrap(),
            "-r",
            range,
            &initrd_url,
        ]);
        let (status, headers) = head_of(&out.stdout);
        assert_eq!(status, 206, "{range}");
        assert_eq!(
            header(&headers, "content-range"),
            Some(format!("bytes {start}-{end}/{}", initrd.len()).as_str()),
            "{range}"
        );
        assert_eq!(
            std::fs::read(&got).unwrap(),
            &initrd[start..=end],
            "{range}"
        );
    }
    let out = curl(&["-D", "-", "-o", "/dev/null", "-r", "4000000-", &initrd_url]);
    let (status, headers) = head_of(&out.stdout);
    assert_eq!(status, 416);
    assert_eq!(header(&headers, "content-range"), Some("bytes */3145728"));
    // A stale If-Range gets the whole file.
    let out = curl(&[
        "-D",
        "-",
        "-o",
        got.to_str().unwrap(),
        "-r",
        "0-9",
        "-H",
        "If-Range: Thu, 01 Jan 1970 00:00:00 GMT",
        &initrd_url,
    ]);
    assert_eq!(head_of(&out.stdout).0, 200);
    assert_eq!(std::fs::read(&got).unwrap(), initrd);

    // If-Modified-Since: 304 when unchanged, the file when older.
    let out = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        &format!("If-Modified-Since: {last_modified}"),
        &initrd_url,
    ]);
    assert_eq!(head_of(&out.stdout).0, 304, "{out:?}");
    let out = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
        &initrd_url,
    ]);
    assert_eq!(head_of(&out.stdout).0, 200);

    // Keep-alive: two requests, one connection.
    let a = tmp.join("a");
    let b = tmp.join("b");
    let out = curl(&[
        "-w",
        "%{num_connects}\\n",
        "-o",
        a.to_str().unwrap(),
        &server.url("/inside.txt"),
        "-o",
        b.to_str().unwrap(),
        &initrd_url,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n0\n");
    assert_eq!(std::fs::read(&a).unwrap(), INSIDE);
    assert_eq!(std::fs::read(&b).unwrap(), initrd);

    // An HTTP/1.0 client gets the same bytes.
    let out = curl(&["--http1.0", "-o", got.to_str().unwrap(), &initrd_url]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&got).unwrap(), initrd);

    // Only GET and HEAD.
    let out = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        &server.url("/inside.txt"),
    ]);
    let (status, headers) = head_of(&out.stdout);
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));

    // One log line per download, like TFTP's, with the client, file, status and bytes.
    server.wait_log_count("HTTP transfer ended", 9, Duration::from_secs(5));
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("HTTP transfer ended")
            && l.contains("client=127.0.0.1:")
            && l.contains("file=debian-installer/amd64/initrd.gz")
            && l.contains("status=200")
            && l.contains("bytes=3145728")
            && l.contains("duration_ms=")
            && l.contains("outcome=done")),
        "{log}"
    );
}

#[test]
fn missing_files_and_directories_are_4xx_without_a_listing() {
    let (_tmp, root, _) = lab("http-missing");
    let server = HttpServer::start(&root, &[]);
    for (path, want) in [
        ("/nope", 404),
        ("/debian-installer/amd64/nope", 404),
        ("/inside.txt/more", 404),
        ("/", 404),
        ("/debian-installer", 403),
        ("/debian-installer/", 403),
        ("/debian-installer/amd64/", 403),
    ] {
        let out = curl(&["-D", "-", &server.url(path)]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(head_of(&out.stdout).0, want, "{path}: {text}");
        for name in ["inside.txt", "boot.ipxe", "amd64", "initrd", "root", "/tmp"] {
            assert!(!text.contains(name), "{path} leaks {name:?}: {text}");
        }
    }
}

/// Sends `target` as the request target of a raw HTTP/1.1 request; returns the whole answer.
fn raw_request(addr: SocketAddr, method: &str, target: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("{method} ").into_bytes();
    request.extend_from_slice(target);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(&request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// Request targets that must never reach a byte outside the root.
fn hostile_corpus() -> Vec<Vec<u8>> {
    let long_name = format!("/{}", "a".repeat(300));
    let long_path = format!("/{}", "abc/".repeat(1500));
    let mut corpus: Vec<Vec<u8>> = [
        // Traversal, plain and after a directory.
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/debian-installer/../../secret.txt",
        "/./../secret.txt",
        "/..",
        // Encoded dots and slashes, in every case and doubly.
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/%2f..%2f..%2fetc%2fpasswd",
        "/%2Fetc%2Fpasswd",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/%e0%80%ae%e0%80%ae/secret.txt",
        // Backslashes, sent and encoded.
        "/..\\secret.txt",
        "/\\..\\secret.txt",
        "/debian-installer\\..\\..\\secret.txt",
        "/..%5csecret.txt",
        "/..%5Csecret.txt",
        // NUL.
        "/%00",
        "/inside.txt%00.png",
        "/..%00/secret.txt",
        // Absolute paths, doubled slashes, absolute-form targets.
        "/etc/passwd",
        "//etc/passwd",
        "///etc//passwd",
        "/proc/self/environ",
        "/proc/self/root/etc/passwd",
        "http://test/../secret.txt",
        "http://test/etc/passwd",
        "http://test//etc/passwd",
        "*",
        // Symlinks out of the root (see the test).
        "/passwd",
        "/up",
        "/abs",
        "/outside/secret.txt",
        "/loop",
        "/magic",
        // Not UTF-8; overlong.
        "/%ff%fe",
        long_name.as_str(),
        long_path.as_str(),
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // Raw bytes no client library would send.
    corpus.push(b"/../\xff/secret.txt".to_vec());
    corpus.push(b"/inside.txt\x00".to_vec());
    corpus.push(b"/a b".to_vec());
    corpus
}

#[test]
fn hostile_paths_get_4xx_and_nothing_from_outside_the_root() {
    let (tmp, root, _) = lab("http-hostile");
    symlink("/etc/passwd", root.join("passwd")).unwrap();
    symlink("../secret.txt", root.join("up")).unwrap();
    symlink(tmp.join("secret.txt"), root.join("abs")).unwrap();
    symlink("..", root.join("outside")).unwrap();
    symlink("loop", root.join("loop")).unwrap();
    symlink("/proc/self/root/etc/passwd", root.join("magic")).unwrap();
    let passwd = std::fs::read("/etc/passwd").unwrap();
    let passwd_line = &passwd[..passwd.len().min(12)];
    let server = HttpServer::start(&root, &[]);

    let corpus = hostile_corpus();
    for target in &corpus {
        for method in ["GET", "HEAD"] {
            let answer = raw_request(server.addr, method, target);
            let shown = String::from_utf8_lossy(target);
            let text = String::from_utf8_lossy(&answer);
            let status: u16 = text
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{method} {shown:?}: no status line: {text:?}"));
            assert!(
                (400..500).contains(&status),
                "{method} {shown:?}: {status}\n{text}"
            );
            assert!(
                !contains(&answer, SECRET) && !contains(&answer, passwd_line),
                "{method} {shown:?} leaked: {text}"
            );
            assert!(
                !text.contains(tmp.path.to_str().unwrap()) && !text.contains("secret"),
                "{method} {shown:?}: the answer names a path: {text}"
            );
        }
    }
    // The same server serves what is inside (so the corpus is not refused wholesale).
    let answer = raw_request(server.addr, "GET", b"/inside.txt");
    assert!(answer.starts_with(b"HTTP/1.1 200 "), "{answer:?}");
    assert!(answer.ends_with(INSIDE));
    let answer = raw_request(server.addr, "GET", b"//debian-installer/./amd64/../amd64");
    assert!(answer.starts_with(b"HTTP/1.1 400 "), "{answer:?}");
    // Refusals are logged with the client; symlinks out of the root are named as such.
    let log = server.log();
    assert!(
        log.contains("refused: resolves outside the TFTP root file=up"),
        "{log}"
    );
    assert!(
        log.lines()
            .filter(|l| l.contains("HTTP request refused") && l.contains("client=127.0.0.1:"))
            .count()
            >= corpus.len(),
        "{log}"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// SIGTERM during a download: the listener closes, the download finishes within the grace
/// period, then the server exits.
#[test]
fn shutdown_lets_a_running_download_finish() {
    let (tmp, root, _) = lab("http-grace");
    // Larger than what loopback's socket buffers hold, read at 16 MiB/s: about four seconds.
    let big = random_bytes(64 << 20, 11);
    std::fs::write(root.join("big"), &big).unwrap();
    let mut server = HttpServer::start(&root, &["--grace", "15"]);
    let got = tmp.join("slow");
    let mut client = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--limit-rate", "16M", "-o"])
        .arg(&got)
        .arg(server.url("/big"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let status = Command::new("kill")
        .args(["-TERM", &server.server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let done = wait_child(&mut client, Duration::from_secs(25)).expect("curl hung");
    assert!(done.success(), "curl failed:\n{}", server.log());
    assert!(std::fs::read(&got).unwrap() == big, "the download differs");
    let exit = server
        .server
        .wait_exit(Duration::from_secs(20))
        .expect("server hung");
    assert!(exit.success(), "{}", server.log());
    // New connections are refused once shutdown began.
    let out = curl(&["-o", "/dev/null", &server.url("/inside.txt")]);
    assert!(!out.status.success());
    let log = server.log();
    let order: Vec<usize> = [
        "stopping signal",
        "letting responses under way finish",
        "HTTP transfer ended",
        "HTTP server stopped",
    ]
    .iter()
    .map(|needle| log.find(needle).unwrap_or(usize::MAX))
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]) && order[3] < usize::MAX,
        "{log}"
    );
}

/// A file cut short while it is being sent: the connection closes early and the client has a
/// prefix of the file, never bytes that were not in it.
#[test]
fn a_file_truncated_during_a_download_ends_the_connection() {
    let (tmp, root, _) = lab("http-truncate");
    let big = random_bytes(64 << 20, 13);
    std::fs::write(root.join("big"), &big).unwrap();
    let server = HttpServer::start(&root, &[]);
    let got = tmp.join("cut");
    let mut client = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--limit-rate", "16M", "-o"])
        .arg(&got)
        .arg(server.url("/big"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("big"))
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let done = wait_child(&mut client, Duration::from_secs(25)).expect("curl hung");
    assert!(!done.success(), "a complete download of a truncated file");
    let received = std::fs::read(&got).unwrap();
    assert!(received.len() < big.len());
    assert!(
        received[..] == big[..received.len()],
        "the client got bytes that are not the file's"
    );
    server.wait_log_count(
        "connection closed before the end",
        1,
        Duration::from_secs(5),
    );
}

/// `serve` answers HTTP on the interface address (port 80 by default, `--http-port` moves it,
/// `--no-http` turns it off), from a client in another namespace; a taken port is one line
/// naming its holder.
#[test]
fn serve_answers_http_on_the_interface() {
    use serve_support::*;
    const T: &str = "serve_answers_http_on_the_interface";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("serve-http");
    let initrd = random_bytes(1 << 20, 3);
    std::fs::write(lab.root.join("initrd.gz"), &initrd).unwrap();
    lab.cli
        .ip(&["addr", "add", "192.168.242.50/24", "dev", "eth0"]);
    let mut server = lab.serve(&["--address", "192.168.242.1/24"]);
    server.wait_log("HTTP server ready", Duration::from_secs(5));
    let fetch = |url: &str| {
        run_bounded(
            lab.cli
                .command("curl")
                .args(["-sS", "--max-time", "10", "--path-as-is", "-o", "-"])
                .args(["-w", "\n%{http_code}"])
                .arg(url),
            Duration::from_secs(20),
        )
    };
    let out = fetch("http://192.168.242.1/initrd.gz");
    assert!(out.status.success(), "{out:?}");
    let (body, code) = out.stdout.split_at(out.stdout.len() - 4);
    assert_eq!((body, code), (&initrd[..], &b"\n200"[..]));
    let out = fetch("http://192.168.242.1/../pxelinux.0");
    assert!(out.stdout.ends_with(b"\n404") || out.stdout.ends_with(b"\n400"));
    server.wait_log("HTTP transfer ended", Duration::from_secs(5));
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("HTTP transfer ended")
            && l.contains("client=192.168.242.50:")
            && l.contains("file=initrd.gz")
            && l.contains("bytes=1048576")),
        "{log}"
    );
    // A second server on the same interface and port: one line naming port and holder.
    let (code, err) = lab.serve_fails(
        &lab.srv,
        &lab.lab_args(&["--dhcp-port", "1067", "--tftp-port", "1069"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("HTTP")
            && lines[0].contains("port 80")
            && lines[0].contains("eth1")
            && lines[0].contains(&format!("pocketpxe (pid {})", server.pid())),
        "{err}"
    );
    assert!(server.stop().success(), "{}", server.log());

    let mut server = lab.serve(&["--address", "192.168.242.1/24", "--http-port", "8080"]);
    server.wait_log("HTTP server ready", Duration::from_secs(5));
    let out = fetch("http://192.168.242.1:8080/pxelinux.0");
    assert_eq!(out.stdout, [PXELINUX, b"\n200"].concat(), "{out:?}");
    assert!(server.stop().success(), "{}", server.log());

    let mut server = lab.serve(&["--address", "192.168.242.1/24", "--no-http"]);
    let out = fetch("http://192.168.242.1/pxelinux.0");
    assert!(!out.status.success(), "{out:?}");
    assert!(!server.log().contains("HTTP server ready"));
    assert!(server.stop().success(), "{}", server.log());
}

/// A client that leased its address over DHCP and then fetches its kernel over HTTP: the HTTP
/// log line names its MAC, and the boot record lists the HTTP download with the TFTP one.
#[test]
fn http_downloads_join_the_boot_record() {
    use serve_support::*;
    const T: &str = "http_downloads_join_the_boot_record";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("serve-http-boot");
    let kernel = random_bytes(300_000, 5);
    std::fs::write(lab.root.join("linux"), &kernel).unwrap();
    let server = lab.serve(&["--address", "192.168.242.1/24", "--boot-quiet", "2s"]);
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let env = env.unwrap_or_else(|| panic!("udhcpc got no lease: {out:?}"));
    let ip = env["ip"].clone();
    let mac = mac_of(&lab.cli, "eth0");
    lab.cli
        .ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    let got = lab.tmp.join("got-pxelinux.0");
    let out = busybox_tftp_get(&lab.cli, "pxelinux.0", &got, "192.168.242.1");
    assert!(out.status.success(), "{out:?}");
    let out = run_bounded(
        lab.cli
            .command("curl")
            .args(["-sS", "--max-time", "10", "-o", "-"])
            .arg("http://192.168.242.1/linux"),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout == kernel, "the kernel differs");

    server.wait_log("HTTP transfer ended", Duration::from_secs(5));
    let start = Instant::now();
    let record = loop {
        let log = server.log();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("pocketpxe::boot") && l.contains("boot booted"))
        {
            break line.to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no boot record:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let size = PXELINUX.len();
    for needle in [
        format!("mac={mac} "),
        format!("ip={ip} "),
        format!("files=2 bytes={} ", size + kernel.len()),
        "linux 300000 bytes".to_owned(),
    ] {
        assert!(record.contains(&needle), "{needle:?} not in {record}");
    }
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("HTTP transfer ended")
            && l.contains(&format!("mac={mac} "))
            && l.contains("file=linux")),
        "{log}"
    );
}

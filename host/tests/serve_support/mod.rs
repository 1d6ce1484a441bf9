//! Network-namespace labs for `pocketpxe serve` tests.
//!
//! Network safety: every interface a test touches lives in a namespace the test created
//! (`ip netns add`); veth pairs are created *inside* those namespaces (`ip -n NS link add`), so
//! the machine's own interfaces are never involved. Namespaces are deleted and every spawned
//! process is killed by its own PID on drop, also when the test fails. Every wait is bounded.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use crate::common::{TempDir, run_bounded, wait_child};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether namespace tests can run here (root, `ip netns`). If not: under `CI=true` the test
/// fails, elsewhere it is skipped with a `SKIP:` line.
pub fn netns_available(test: &str) -> bool {
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let has_ip = Command::new("ip")
        .args(["netns", "list"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if is_root && has_ip {
        return true;
    }
    let why = if is_root {
        "`ip netns` does not work (install iproute2)"
    } else {
        "not running as root (network namespaces need it)"
    };
    if ci() {
        panic!("{test}: {why} (CI=true: not skipping)");
    }
    eprintln!("SKIP: {test}: {why}");
    false
}

/// Whether `tool` is installed; same skip/fail policy as [`netns_available`].
pub fn have_tool(test: &str, tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    if !found {
        if ci() {
            panic!("{test}: `{tool}` is not installed (CI=true: not skipping)");
        }
        eprintln!("SKIP: {test}: `{tool}` is not installed (apt-get install {package})");
    }
    found
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The `pocketpxe` under test: `POCKETPXE_BIN` if set (e.g. `/usr/bin/pocketpxe` from the
/// package), else the one cargo built for this test.
pub fn pocketpxe_bin() -> PathBuf {
    std::env::var_os("POCKETPXE_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_pocketpxe")),
        PathBuf::from,
    )
}

/// A network namespace, deleted on drop (which also destroys the interfaces in it).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(role: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ppxe-serve-{}-{}-{role}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command run inside the namespace (`ip netns exec`, which also mounts its /sys).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// The IPv4 addresses on `dev`.
    pub fn addrs(&self, dev: &str) -> String {
        self.ip(&["-4", "-o", "addr", "show", "dev", dev])
    }

    /// Runs `f` on a thread that entered this namespace (sockets it opens live there).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f).join().unwrap()
    }

    /// Starts `f` on a thread that entered this namespace, without waiting for it.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = PathBuf::from("/run/netns").join(&self.name);
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&fd),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// `ip ARGS`, which must succeed.
pub fn ip(args: &[&str]) -> String {
    let out = run_bounded(Command::new("ip").args(args), Duration::from_secs(10));
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A veth pair: `a` in `ns_a`, `b` in `ns_b`, both up.
pub fn veth(ns_a: &Netns, a: &str, ns_b: &Netns, b: &str) {
    ns_a.ip(&[
        "link", "add", a, "type", "veth", "peer", "name", b, "netns", &ns_b.name,
    ]);
    ns_a.ip(&["link", "set", a, "up"]);
    ns_b.ip(&["link", "set", b, "up"]);
}

/// The usual lab: `srv` with `eth1`, `cli` with `eth0`, a veth between them.
pub struct Lab {
    pub srv: Netns,
    pub cli: Netns,
    pub tmp: TempDir,
    pub root: PathBuf,
}

impl Lab {
    pub fn new(tag: &str) -> Self {
        let srv = Netns::new("srv");
        let cli = Netns::new("cli");
        veth(&srv, "eth1", &cli, "eth0");
        let tmp = TempDir::new(tag);
        let root = tmp.join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("pxelinux.0"), PXELINUX).unwrap();
        std::fs::write(root.join("bootx64.efi"), b"efi loader").unwrap();
        Self {
            srv,
            cli,
            tmp,
            root,
        }
    }

    pub fn leases(&self) -> PathBuf {
        self.tmp.join("leases")
    }

    /// `pocketpxe serve --interface eth1 --root ROOT --leases LEASES ARGS` in `srv` (as root
    /// unless `ARGS` name a `--user`, see [`ServeProc::start`]).
    pub fn serve(&self, args: &[&str]) -> ServeProc {
        let all = self.lab_args(args);
        ServeProc::start(
            &self.srv,
            &all.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    /// [`Lab::serve`] with the user database `users` and no `--user` added.
    pub fn serve_with_users(&self, users: &Users, args: &[&str]) -> ServeProc {
        let all = self.lab_args(args);
        ServeProc::spawn(
            users.command(&self.srv),
            &all.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    /// Like [`Lab::serve`], expected to fail: with the user database `users` and no `--user`
    /// added. Its exit code and stderr.
    pub fn serve_fails_with_users(&self, users: &Users, args: &[&str]) -> (Option<i32>, String) {
        let all = self.lab_args(args);
        run_to_failure(
            users.command(&self.srv),
            &all.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    /// `--interface eth1 --root ROOT [--leases LEASES] ARGS`.
    pub fn lab_args(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = ["--interface", "eth1", "--root"].map(String::from).into();
        all.push(self.root.display().to_string());
        if !args.contains(&"proxy") {
            all.push("--leases".into());
            all.push(self.leases().display().to_string());
        }
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    }

    /// Runs `pocketpxe serve ...` in `ns` to completion (expecting it to fail); as root unless
    /// `args` name a `--user`.
    pub fn serve_fails(&self, ns: &Netns, args: &[&str]) -> (Option<i32>, String) {
        run_to_failure(ns.command(pocketpxe_bin()), &with_root_default(args))
    }
}

/// `cmd serve ARGS`, bounded, expected to fail: its exit code and stderr.
pub fn run_to_failure(mut cmd: Command, args: &[&str]) -> (Option<i32>, String) {
    let out = run_bounded(
        cmd.arg("serve").args(args).env("NO_COLOR", "1"),
        Duration::from_secs(20),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `args`, plus `--user root` unless they name a user: `serve` drops to the user `pocketpxe`
/// by default and refuses to start without it, and most tests mean root, which writes to
/// their temporary directories.
pub fn with_root_default<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    if !args.iter().any(|a| a.starts_with("--user")) {
        all.extend_from_slice(&["--user", "root"]);
    }
    all
}

/// A user database of the test's own for `serve`: copies of this machine's `/etc/passwd` and
/// `/etc/group`, with the user and group `pocketpxe` (uid and gid [`FAKE_POCKETPXE`]) added,
/// or removed if the machine has them. The server sees them through bind mounts in a mount
/// namespace of its own (NSS's `files` module reads them there); the machine's files are not
/// touched.
pub struct Users {
    passwd: PathBuf,
    group: PathBuf,
}

/// The uid and gid of the test's `pocketpxe` user.
pub const FAKE_POCKETPXE: u32 = 64_991;

impl Users {
    /// With `pocketpxe` if `with_pocketpxe`, else without; the files go into `dir`.
    pub fn new(dir: &Path, with_pocketpxe: bool) -> Self {
        let edit = |file: &str, line: String| {
            let text = std::fs::read_to_string(file).unwrap();
            let mut out: String = text
                .lines()
                .filter(|l| !l.starts_with("pocketpxe:"))
                .map(|l| format!("{l}\n"))
                .collect();
            if with_pocketpxe {
                out.push_str(&line);
            }
            out
        };
        let passwd = dir.join("passwd");
        let group = dir.join("group");
        let id = FAKE_POCKETPXE;
        std::fs::write(
            &passwd,
            edit(
                "/etc/passwd",
                format!("pocketpxe:x:{id}:{id}::/nonexistent:/usr/sbin/nologin\n"),
            ),
        )
        .unwrap();
        std::fs::write(&group, edit("/etc/group", format!("pocketpxe:x:{id}:\n"))).unwrap();
        Self { passwd, group }
    }

    /// `pocketpxe` in `ns`, seeing this database (`unshare`, `sh` and `ip netns exec` all
    /// exec in place: the PID is pocketpxe's).
    pub fn command(&self, ns: &Netns) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount --bind \"$0\" /etc/passwd && mount --bind \"$1\" /etc/group && shift && exec \"$@\"",
        ])
        .arg(&self.passwd)
        .arg(&self.group)
        .args(["ip", "netns", "exec", &ns.name])
        .arg(pocketpxe_bin());
        cmd
    }
}

/// The bytes the lab serves as `pxelinux.0`.
pub const PXELINUX: &[u8] = b"not really pxelinux, but 60 bytes of it................ end\n";

/// A running `pocketpxe serve`, killed by its PID and reaped on drop.
pub struct ServeProc {
    pub child: Child,
    pub log: Arc<Mutex<String>>,
}

impl ServeProc {
    /// `pocketpxe serve ARGS` in `ns`, as root unless `args` name a `--user`
    /// ([`with_root_default`]); waits until it is ready.
    pub fn start(ns: &Netns, args: &[&str]) -> Self {
        // `ip netns exec` execs the program: the child's PID is pocketpxe's.
        Self::spawn(ns.command(pocketpxe_bin()), &with_root_default(args))
    }

    /// `cmd serve ARGS` (`cmd` runs pocketpxe with its own PID); waits until it is ready.
    pub fn spawn(mut cmd: Command, args: &[&str]) -> Self {
        let mut child = cmd
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pocketpxe serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Self { child, log };
        let start = Instant::now();
        while !server.log().contains("pocketpxe serve ready") {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("serve exited ({status}) before ready:\n{}", server.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "serve not ready within 20 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the log contains `needle`; panics with the log after `limit`.
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "no {needle:?} in the server log within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM (by PID), then waits for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        wait_child(&mut self.child, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("server ignored SIGTERM; log:\n{}", self.log()))
    }
}

impl Drop for ServeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- pocketpxe serve log ---\n{}", self.log());
        }
    }
}

/// dnsmasq as the address-giving DHCP server on `ns`'s eth0 (10.77.0.100–150, 1 h, no DNS),
/// its lease and pid files in `dir`, started and ready (its range announced).
pub fn dnsmasq_address_server(ns: &Netns, dir: &Path) -> Proc {
    let mut cmd = ns.command("dnsmasq");
    cmd.args([
        "--no-daemon",
        "--conf-file=/dev/null",
        "--port=0",
        "--interface=eth0",
        "--bind-interfaces",
        "--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h",
        // Offer at once: dnsmasq's ping check delays the first offer beyond udhcpc's tries.
        "--no-ping",
        "--user=root",
        "--log-facility=-",
        "--log-dhcp",
    ])
    .arg(format!(
        "--dhcp-leasefile={}",
        dir.join("dnsmasq.leases").display()
    ))
    .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()));
    let mut dnsmasq = Proc::spawn("dnsmasq", cmd);
    dnsmasq.wait_log("DHCP, IP range", Duration::from_secs(10));
    dnsmasq
}

/// Any other long-running process, killed by its PID on drop.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
    pub log: Arc<Mutex<String>>,
}

impl Proc {
    pub fn spawn(name: &'static str, mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Self { child, name, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn wait_log(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before {needle:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                start.elapsed() < limit,
                "no {needle:?} from {} within {limit:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log());
        }
    }
}

/// A udhcpc hook script that writes its environment to `out` when a lease is bound.
pub fn env_script(dir: &Path, name: &str, when: &str, out: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join(name);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = {when} ] || [ \"$reason\" = {when} ]; then env > {out}.tmp && mv {out}.tmp {out}; fi\nexit 0\n",
            out = out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// `KEY=VALUE` lines as a map.
pub fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// busybox udhcpc on `dev` in `ns`: one lease, then quit. `None` if it got none (within
/// about 3 tries of 1 s).
pub fn udhcpc(ns: &Netns, dev: &str, dir: &Path) -> (Option<HashMap<String, String>>, Output) {
    udhcpc_with(ns, dev, dir, &[])
}

/// [`udhcpc`] with extra flags (e.g. `-B`: ask for broadcast replies).
pub fn udhcpc_with(
    ns: &Netns,
    dev: &str,
    dir: &Path,
    extra: &[&str],
) -> (Option<HashMap<String, String>>, Output) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let out_file = dir.join(format!("udhcpc-{n}.env"));
    let script = env_script(dir, &format!("udhcpc-{n}.sh"), "bound", &out_file);
    let output = run_bounded(
        ns.command("busybox")
            .args([
                "udhcpc", "-i", dev, "-n", "-q", "-f", "-t", "3", "-T", "1", "-A", "1",
            ])
            .args(extra)
            .arg("-s")
            .arg(&script),
        Duration::from_secs(30),
    );
    let env = std::fs::read_to_string(&out_file)
        .ok()
        .map(|t| parse_env(&t));
    (env, output)
}

/// The MAC address of `dev` in `ns`.
pub fn mac_of(ns: &Netns, dev: &str) -> String {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]);
    let at = out.find("link/ether ").unwrap() + "link/ether ".len();
    out[at..at + 17].to_owned()
}

/// Sets the MAC of `dev` in `ns` (down, set, up).
pub fn set_mac(ns: &Netns, dev: &str, mac: &str) {
    ns.ip(&["link", "set", dev, "down"]);
    ns.ip(&["link", "set", dev, "address", mac]);
    ns.ip(&["link", "set", dev, "up"]);
}

/// A UDP socket for a hand-made DHCP client (call inside [`Netns::run`]).
pub fn client_socket(dev: &str, bind: SocketAddrV4) -> UdpSocket {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.bind_device(Some(dev.as_bytes())).unwrap();
    s.set_broadcast(true).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&std::net::SocketAddr::V4(bind).into()).unwrap();
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Every datagram arriving on `socket` within `window`.
pub fn collect(socket: &UdpSocket, window: Duration) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while start.elapsed() < window {
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            got.push(buf[..len].to_vec());
        }
    }
    got
}

pub const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 242, 1);

/// The uid and gid of `nobody` (from /etc/passwd), for tests that run `serve --user nobody`.
pub fn nobody() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("no user nobody");
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

/// busybox tftp in `ns` fetches `file` from `server` into `to` (bounded to 20 s).
pub fn busybox_tftp_get(ns: &Netns, file: &str, to: &Path, server: &str) -> Output {
    run_bounded(
        ns.command("busybox")
            .args(["tftp", "-g", "-r", file, "-l"])
            .arg(to)
            .arg(server),
        Duration::from_secs(20),
    )
}

/// The socket systemd would listen on, in a test directory.
pub struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    /// Where it listens (`NOTIFY_SOCKET`).
    pub path: PathBuf,
}

impl NotifySocket {
    /// Binds `notify.sock` in `dir`.
    pub fn new(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        Self { socket, path }
    }

    /// The next notice, if one arrives within `limit`.
    pub fn recv(&self, limit: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(len) => Some(String::from_utf8_lossy(&buf[..len]).into_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }
}

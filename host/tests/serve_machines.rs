//! Machine records of `pocketpxe serve` (docs/machines.md), in network namespaces the tests
//! create: policies `once` and `never` through DHCP and the boot HTTP server (hand-made PXE
//! and iPXE DISCOVERs, busybox `wget` for the script and the install-done callback), the
//! control API (CRUD, 400 naming the field, 404, persistence across a restart, the event
//! stream, the token), and a pixiecore-style backend the test runs.
//! Needs root, `ip netns` and busybox; skipped with a `SKIP:` line otherwise, except under
//! `CI=true`.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use pocketpxe_core::wire::dhcp::{Flags, HwAddr, MessageType, Op, Packet, Repr};
use pocketpxe_core::wire::dhcp_option::OptionBytes;
use serve_support::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ONCE: [u8; 6] = [0x52, 0x54, 0x00, 0x6d, 0x00, 0x01];
const NEVER: [u8; 6] = [0x52, 0x54, 0x00, 0x6d, 0x00, 0x02];
const OTHER: [u8; 6] = [0x52, 0x54, 0x00, 0x6d, 0x00, 0x03];
const CONTROL: &str = "127.0.0.1:8067";

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn available(test: &str) -> bool {
    netns_available(test) && have_tool(test, "busybox", "busybox")
}

/// What a reply to a DISCOVER said.
#[derive(Debug)]
struct Offer {
    yiaddr: Ipv4Addr,
    file: String,
    hostname: Option<String>,
    pxe: bool,
}

/// A DISCOVER from `mac` (BIOS PXE, or iPXE with option 77 `iPXE`) sent `tries` times, a
/// second apart, until one is answered; the answer, if any.
fn discover(lab: &Lab, mac: [u8; 6], ipxe: bool, tries: u32) -> Option<Offer> {
    static XID: AtomicU32 = AtomicU32::new(0x6d00_0000);
    lab.cli.run(move || {
        let socket = client_socket("eth0", SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68));
        for _ in 0..tries {
            let xid = XID.fetch_add(1, Ordering::Relaxed);
            let mut r = Repr::new(Op::Request, xid, HwAddr::ethernet(mac));
            r.message_type = Some(MessageType::Discover);
            r.flags.set(Flags::BROADCAST, true);
            r.vendor_class_id = Some(OptionBytes::new(b"PXEClient:Arch:00000:UNDI:002001"));
            r.client_arch = Some(OptionBytes::new(&[0, 0]));
            r.parameter_request_list = Some(OptionBytes::new(&[1, 3, 6, 12, 43, 60, 66, 67]));
            if ipxe {
                r.user_class = Some(OptionBytes::new(b"iPXE"));
            }
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
            socket
                .send_to(&buf, SocketAddrV4::new(Ipv4Addr::BROADCAST, 67))
                .unwrap();
            for bytes in collect(&socket, Duration::from_secs(1)) {
                let Ok(packet) = Packet::new_checked(&bytes[..]) else {
                    continue;
                };
                let Ok(repr) = Repr::parse(&packet) else {
                    continue;
                };
                if repr.op == Op::Reply && repr.transaction_id == xid {
                    return Some(Offer {
                        yiaddr: repr.your_ip,
                        file: String::from_utf8_lossy(repr.boot_file).into_owned(),
                        hostname: repr
                            .host_name
                            .map(|h| String::from_utf8(h.bytes().collect()).unwrap()),
                        pxe: repr
                            .vendor_class_id
                            .is_some_and(|v| v.bytes().collect::<Vec<u8>>() == b"PXEClient"),
                    });
                }
            }
        }
        None
    })
}

/// `busybox wget -q -O - [--post-data ''] URL` from the client namespace, as a Debian
/// installer's `late_command` runs it: (success, body). (Not `-T`: busybox 1.35's wget
/// crashes with it; the run is bounded instead.)
fn wget(lab: &Lab, url: &str, post: bool) -> (bool, String) {
    let mut cmd = lab.cli.command("busybox");
    cmd.args(["wget", "-q", "-O", "-"]);
    if post {
        cmd.args(["--post-data", ""]);
    }
    let out = common::run_bounded(cmd.arg(url), Duration::from_secs(20));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// One HTTP/1.1 request to the control API from the server namespace: (status, body).
fn api(
    lab: &Lab,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{}{}Content-Length: {}\r\n\r\n{}",
        token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n")),
        if body.is_some() {
            "Content-Type: application/json\r\n"
        } else {
            ""
        },
        body.map_or(0, str::len),
        body.unwrap_or("")
    );
    lab.srv.run(move || {
        let mut stream = TcpStream::connect(CONTROL).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    })
}

fn config(lab: &Lab, extra: &str) -> String {
    let path = lab.tmp.join("pocketpxe.toml");
    let text = format!(
        r#"
control = "{CONTROL}"
machine-state = "{state}"
{extra}

[[machine]]
mac = "{once}"
address = "192.168.242.20"
hostname = "node-1"
kernel = "vmlinuz"
initrd = ["initrd.gz"]
cmdline = "console=ttyS0"
policy = "once"

[[machine]]
mac = "{never}"
policy = "never"

[[interface]]
name = "eth1"
address = "192.168.242.1/24"
range = "192.168.242.100-192.168.242.150"
"#,
        state = lab.tmp.join("machines.json").display(),
        once = mac_text(ONCE),
        never = mac_text(NEVER),
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn once_boots_the_installer_until_the_callback_and_never_gets_no_answer() {
    const T: &str = "once_boots_the_installer_until_the_callback_and_never_gets_no_answer";
    if !available(T) {
        return;
    }
    let lab = Lab::new("serve-machines-once");
    let cfg = config(&lab, "");
    let mut server = lab.serve(&["--config", &cfg]);
    // The client side gets the machine's address for HTTP.
    lab.cli
        .ip(&["addr", "add", "192.168.242.20/24", "dev", "eth0"]);

    // Plain PXE: its fixed address, host name, chained to iPXE.
    let offer = discover(&lab, ONCE, false, 3).expect("an offer for the once machine");
    assert_eq!(offer.yiaddr, Ipv4Addr::new(192, 168, 242, 20));
    assert_eq!(offer.hostname.as_deref(), Some("node-1"));
    assert_eq!(offer.file, "ipxe/undionly.kpxe");
    // iPXE: the generated script.
    let script_url = format!(
        "http://192.168.242.1/pocketpxe/machines/{}/boot.ipxe",
        mac_text(ONCE).replace(':', "-")
    );
    let offer = discover(&lab, ONCE, true, 3).expect("an offer for iPXE");
    assert_eq!(offer.file, script_url);
    let (ok, script) = wget(&lab, &script_url, false);
    assert!(ok, "script: {script}\n{}", server.log());
    assert_eq!(
        script,
        "#!ipxe\ninitrd --name initrd0 /initrd.gz\nkernel /vmlinuz initrd=initrd0 console=ttyS0\nboot\n"
    );

    // Never: no answer at all; a machine without a record: the boot table.
    assert!(
        discover(&lab, NEVER, false, 2).is_none(),
        "never machine answered"
    );
    let offer = discover(&lab, OTHER, false, 3).expect("an offer for an unknown machine");
    assert_eq!(offer.file, "pxelinux.0");

    // The callback (GET, as the Debian installer's wget sends it): then the local disk.
    let callback = format!(
        "http://192.168.242.1/pocketpxe/machines/{}/installed",
        mac_text(ONCE)
    );
    let (ok, body) = wget(&lab, &callback, false);
    assert!(ok && body == "ok\n", "{body}\n{}", server.log());
    let offer = discover(&lab, ONCE, false, 3).expect("a lease still");
    assert_eq!(offer.yiaddr, Ipv4Addr::new(192, 168, 242, 20));
    assert_eq!(
        (offer.file.as_str(), offer.pxe),
        ("", false),
        "no boot file once installed"
    );
    let offer = discover(&lab, ONCE, true, 3).unwrap();
    assert_eq!(offer.file, script_url);
    let (_, script) = wget(&lab, &script_url, false);
    assert!(
        script.starts_with("#!ipxe\n") && script.ends_with("exit\n"),
        "{script}"
    );
    // POST works too; an unknown machine is a 404.
    assert!(wget(&lab, &callback, true).0);
    let unknown = format!(
        "http://192.168.242.1/pocketpxe/machines/{}/installed",
        mac_text(OTHER)
    );
    assert!(!wget(&lab, &unknown, false).0);
    let (status, body) = api(
        &lab,
        "GET",
        &format!("/v1/machines/{}", mac_text(ONCE)),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"installed\":") && !body.contains("\"installed\":null"),
        "{body}"
    );
    assert!(server.stop().success());

    // The mark is in the state file: after a restart, still the local disk.
    let mut server = lab.serve(&["--config", &cfg]);
    let offer = discover(&lab, ONCE, false, 3).unwrap();
    assert_eq!(
        offer.file,
        "",
        "install mark lost on restart:\n{}",
        server.log()
    );
    // A reload re-reads the [[machine]] tables: the never machine becomes an always one.
    let path = lab.tmp.join("pocketpxe.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("policy = \"never\"", "policy = \"always\""),
    )
    .unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    server.wait_log(
        "machine records of the config file",
        Duration::from_secs(10),
    );
    assert_eq!(discover(&lab, NEVER, false, 3).unwrap().file, "pxelinux.0");
    // Cleared through the API: the installer again.
    let (status, body) = api(
        &lab,
        "DELETE",
        &format!("/v1/machines/{}/installed", mac_text(ONCE)),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        discover(&lab, ONCE, false, 3).unwrap().file,
        "ipxe/undionly.kpxe"
    );
    assert!(server.stop().success());
}

#[test]
fn control_api_changes_records_persists_them_and_streams_events() {
    const T: &str = "control_api_changes_records_persists_them_and_streams_events";
    if !available(T) {
        return;
    }
    let lab = Lab::new("serve-machines-api");
    let cfg = config(&lab, "boot-quiet = \"1s\"");
    let mut server = lab.serve(&["--config", &cfg]);
    let other = mac_text(OTHER);
    let path = format!("/v1/machines/{other}");

    // The event stream, read on its own thread.
    let events = Arc::new(Mutex::new(String::new()));
    let sink = events.clone();
    let _reader = lab.srv.spawn(move || {
        let mut stream = TcpStream::connect(CONTROL).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(b"GET /v1/events HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });

    // Unknown: 404. Bad fields: 400 naming them, nothing stored.
    assert_eq!(api(&lab, "GET", &path, None, None).0, 404);
    for (body, field) in [
        (r#"{"policy": "sometimes"}"#, "policy"),
        (r#"{"boot": {"bios": 7}}"#, "boot.bios"),
        (r#"{"address": "192.168.242.120"}"#, "address"),
        (r#"{"colour": "red"}"#, "colour"),
        ("{not json", "body"),
    ] {
        let (status, answer) = api(&lab, "PUT", &path, Some(body), None);
        assert_eq!(status, 400, "{body}: {answer}");
        let json: serde_json::Value =
            serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
        assert_eq!(json["field"], field, "{answer}");
    }
    assert_eq!(
        api(&lab, "GET", &path, None, None).0,
        404,
        "a bad PUT stored something"
    );
    assert_eq!(api(&lab, "GET", "/v1/machines/zz", None, None).0, 400);

    // Create (201), replace (200), list, patch.
    let (status, body) = api(
        &lab,
        "PUT",
        &path,
        Some(r#"{"boot": {"bios": "special.0"}, "hostname": "other"}"#),
        None,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(discover(&lab, OTHER, false, 3).unwrap().file, "special.0");
    let (status, body) = api(&lab, "PUT", &path, Some(r#"{"policy": "never"}"#), None);
    assert_eq!(status, 200, "{body}");
    assert!(
        discover(&lab, OTHER, false, 2).is_none(),
        "never is in force at once"
    );
    let (status, list) = api(&lab, "GET", "/v1/machines", None, None);
    assert_eq!(status, 200);
    let list: serde_json::Value =
        serde_json::from_str(&list).unwrap_or_else(|e| panic!("{e}: {list:?}"));
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    let (status, body) = api(
        &lab,
        "PATCH",
        &path,
        Some(r#"{"policy": "always", "hostname": "o2"}"#),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let offer = discover(&lab, OTHER, false, 3).unwrap();
    assert_eq!(
        (offer.file.as_str(), offer.hostname.as_deref()),
        ("pxelinux.0", Some("o2"))
    );
    let (status, leases) = api(&lab, "GET", "/v1/leases", None, None);
    assert_eq!(status, 200, "{leases}");
    // The config file's records cannot be deleted through the API.
    let (status, _) = api(
        &lab,
        "DELETE",
        &format!("/v1/machines/{}", mac_text(NEVER)),
        None,
        None,
    );
    assert_eq!(status, 409);

    // Persisted: a restart keeps the API record.
    assert!(server.stop().success());
    let state = std::fs::read_to_string(lab.tmp.join("machines.json")).unwrap();
    assert!(state.contains("\"o2\""), "{state}");
    let mut server = lab.serve(&["--config", &cfg]);
    let (status, body) = api(&lab, "GET", &path, None, None);
    assert_eq!(status, 200);
    assert!(
        body.contains("\"hostname\":\"o2\"") && body.contains("\"source\":\"api\""),
        "{body}"
    );
    let (status, _) = api(&lab, "DELETE", &path, None, None);
    assert_eq!(status, 204);
    assert_eq!(api(&lab, "DELETE", &path, None, None).0, 404);

    // The stream saw the changes of the first run and a finished boot with its files.
    let start = Instant::now();
    loop {
        let seen = events.lock().unwrap().clone();
        // A boot: the PXE DISCOVERs of OTHER, over after a second of quiet.
        let boot = seen.lines().any(|l| {
            l.starts_with("data: {\"boot\":") && l.contains(&other) && l.contains("\"files\":")
        });
        if boot && seen.contains("event: machine") && seen.contains("\"event\":\"patched\"") {
            assert!(seen.starts_with("HTTP/1.1 200 OK"), "{seen}");
            assert!(seen.contains("content-type: text/event-stream"), "{seen}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "events:\n{seen}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.stop().success());

    // A corrupt state file stops serve with its name.
    std::fs::write(lab.tmp.join("machines.json"), "{").unwrap();
    let all = lab.lab_args(&["--config", &cfg]);
    let (code, err) = lab.serve_fails(
        &lab.srv,
        &all.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("machines.json") && err.contains("corrupt"),
        "{err}"
    );
}

#[test]
fn control_api_needs_a_token_off_loopback() {
    const T: &str = "control_api_needs_a_token_off_loopback";
    if !available(T) {
        return;
    }
    let lab = Lab::new("serve-machines-token");
    let (code, err) = lab.serve_fails(
        &lab.srv,
        &lab.lab_args(&["--address", "192.168.242.1/24", "--control", "0.0.0.0:8067"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("control-token"), "{err}");
    let token = "0123456789abcdef-token";
    let file = lab.tmp.join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let file = file.display().to_string();
    let mut server = lab.serve(&[
        "--address",
        "192.168.242.1/24",
        "--control",
        CONTROL,
        "--control-token",
        &file,
    ]);
    assert_eq!(api(&lab, "GET", "/v1/machines", None, None).0, 401);
    assert_eq!(
        api(
            &lab,
            "GET",
            "/v1/machines",
            None,
            Some("wrong-token-0000000")
        )
        .0,
        401
    );
    assert_eq!(api(&lab, "GET", "/v1/machines", None, Some(token)).0, 200);
    assert!(server.stop().success());
}

#[test]
fn pixiecore_api_boots_machines_without_a_record() {
    const T: &str = "pixiecore_api_boots_machines_without_a_record";
    if !available(T) {
        return;
    }
    let lab = Lab::new("serve-machines-pixiecore");
    // The backend: 200 with a kernel for OTHER, 404 for everyone else; counts its requests.
    let asked = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = asked.clone();
    let listener = lab.srv.run(|| TcpListener::bind("127.0.0.1:8081").unwrap());
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let backend = std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut head = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut head).unwrap();
            let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
            log.lock().unwrap().push(path.clone());
            let body = r#"{"kernel": "/tc/vmlinuz", "initrd": ["/tc/core.gz"], "cmdline": "cfg={{ URL \"/cc\" }} quiet", "message": "tiny"}"#;
            let answer = if path == format!("/api/v1/boot/{}", mac_text(OTHER)) {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let mut server = lab.serve(&[
        "--address",
        "192.168.242.1/24",
        "--api",
        "http://127.0.0.1:8081/api",
    ]);
    lab.cli
        .ip(&["addr", "add", "192.168.242.30/24", "dev", "eth0"]);
    // The first DISCOVER starts the lookup; a retransmission gets the answer.
    let offer = discover(&lab, OTHER, false, 4)
        .unwrap_or_else(|| panic!("no offer from the API's answer:\n{}", server.log()));
    assert_eq!(offer.file, "ipxe/undionly.kpxe");
    let offer = discover(&lab, OTHER, true, 2).unwrap();
    let (ok, script) = wget(&lab, &offer.file, false);
    assert!(ok, "{}", server.log());
    assert_eq!(
        script,
        "#!ipxe\necho tiny\ninitrd --name initrd0 http://127.0.0.1:8081/tc/core.gz\nkernel http://127.0.0.1:8081/tc/vmlinuz initrd=initrd0 cfg=http://127.0.0.1:8081/cc quiet\nboot\n"
    );
    // A 404 means "ignore": no boot information for a machine the API does not know (in
    // dhcp mode it still gets an address, like any client).
    let offer = discover(&lab, NEVER, false, 4).expect("a lease without boot information");
    assert_eq!((offer.file.as_str(), offer.pxe), ("", false));
    // Cached: each machine was asked about once.
    let asked = asked.lock().unwrap().clone();
    let count = |mac| asked.iter().filter(|p| p.ends_with(&mac_text(mac))).count();
    assert_eq!((count(OTHER), count(NEVER)), (1, 1), "{asked:?}");
    assert!(server.stop().success());
    stop.store(true, Ordering::Relaxed);
    backend.join().unwrap();
}

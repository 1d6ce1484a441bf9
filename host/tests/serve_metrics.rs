//! `pocketpxe serve --metrics`: after a real DHCP lease (busybox udhcpc) and a real TFTP
//! download (busybox tftp), in network namespaces the test creates, the scrape is read by a
//! real parser (the OpenMetrics parser of Debian's `python3-prometheus-client`) and its
//! counters must tell what happened.
//!
//! Needs root, `ip netns`, busybox and the Python module: without them the test is skipped
//! with a `SKIP:` line, except under `CI=true`, where it fails.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::run_bounded;
use serve_support::*;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// One DORA and one download, counted exactly: 1 DISCOVER answered by 1 OFFER, 1 REQUEST by 1
/// ACK, 1 address of 98 in use, 1 transfer started and completed with the file's size in
/// bytes and none running, and the lease's append timed.
#[test]
fn scrape_tells_what_happened() {
    const T: &str = "scrape_tells_what_happened";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") || !have_parser(T) {
        return;
    }
    let lab = Lab::new("serve-metrics");
    // Several blocks of 512 bytes, the last one short.
    let file: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(lab.root.join("big.bin"), &file).unwrap();
    let listen = "127.0.0.1:9469";
    let mut server = lab.serve(&[
        "--address",
        "192.168.242.1/24",
        "--metrics",
        listen,
        "--boot-quiet",
        "2s",
    ]);

    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let env = env.unwrap_or_else(|| panic!("udhcpc got no lease: {out:?}"));
    let ip: Ipv4Addr = env["ip"].parse().unwrap();
    lab.cli
        .ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    let got = lab.tmp.join("got-big.bin");
    let out = busybox_tftp_get(&lab.cli, "big.bin", &got, "192.168.242.1");
    assert!(out.status.success(), "busybox tftp: {out:?}");
    assert_eq!(std::fs::read(&got).unwrap(), file);
    server.wait_log("transfer ended", Duration::from_secs(5));
    // The boot's summary comes once the client has been quiet for --boot-quiet.
    server.wait_log("boot booted", Duration::from_secs(15));

    let samples = scrape(&lab.srv, listen);
    let at = |series: &str| {
        samples
            .get(series)
            .copied()
            .unwrap_or_else(|| panic!("no {series} in the scrape:\n{}", dump(&samples)))
    };
    let eth1 = r#"interface="eth1""#;
    for (kind, reply) in [("discover", "offer"), ("request", "ack")] {
        assert_eq!(
            at(&format!(
                r#"pocketpxe_dhcp_received_total{{{eth1},outcome="answered",type="{kind}"}}"#
            )),
            1.0,
            "{kind}"
        );
        assert_eq!(
            at(&format!(
                r#"pocketpxe_dhcp_replies_total{{{eth1},outcome="sent",type="{reply}"}}"#
            )),
            1.0,
            "{reply}"
        );
    }
    assert_eq!(at(&format!("pocketpxe_dhcp_pool_size{{{eth1}}}")), 98.0);
    assert_eq!(at(&format!("pocketpxe_dhcp_pool_used{{{eth1}}}")), 1.0);
    assert_eq!(at(&format!("pocketpxe_dhcp_pool_free{{{eth1}}}")), 97.0);
    assert_eq!(
        at(&format!("pocketpxe_tftp_transfers_started_total{{{eth1}}}")),
        1.0
    );
    assert_eq!(
        at(&format!(
            "pocketpxe_tftp_transfers_completed_total{{{eth1}}}"
        )),
        1.0
    );
    assert_eq!(
        at(&format!("pocketpxe_tftp_sent_bytes_total{{{eth1}}}")),
        file.len() as f64
    );
    assert_eq!(
        at(&format!("pocketpxe_tftp_active_transfers{{{eth1}}}")),
        0.0
    );
    assert!(
        !samples
            .keys()
            .any(|k| k.starts_with("pocketpxe_tftp_transfers_failed_total")),
        "{}",
        dump(&samples)
    );
    // One completed boot, counted by its class.
    let boots: f64 = samples
        .iter()
        .filter(|(k, _)| k.starts_with("pocketpxe_boot_duration_seconds_count{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(boots, 1.0, "{}", dump(&samples));
    // The ACK's lease was appended to the lease file (one write, one fdatasync) before it
    // went out.
    let append = format!(r#"{eth1},op="append"}}"#);
    assert!(
        at(&format!(
            "pocketpxe_lease_file_fsync_seconds_count{{{append}"
        )) >= 1.0
    );
    assert!(
        at(&format!(
            "pocketpxe_lease_file_write_seconds_count{{{append}"
        )) >= 1.0
    );

    let status = server.stop();
    assert!(status.success(), "{status}; log:\n{}", server.log());
}

/// `--metrics` on an address another program holds: serve refuses to start, with one line
/// naming the address.
#[test]
fn taken_metrics_address_is_one_clear_error() {
    const T: &str = "taken_metrics_address_is_one_clear_error";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("serve-metrics-taken");
    let (hold, held) = std::sync::mpsc::channel::<()>();
    let (bound, is_bound) = std::sync::mpsc::channel();
    let holder = lab.srv.spawn(move || {
        let listener = std::net::TcpListener::bind("127.0.0.1:9470").unwrap();
        bound.send(()).unwrap();
        let _ = held.recv_timeout(Duration::from_secs(30));
        drop(listener);
    });
    is_bound.recv_timeout(Duration::from_secs(10)).unwrap();
    let args = lab.lab_args(&[
        "--address",
        "192.168.242.1/24",
        "--metrics",
        "127.0.0.1:9470",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stderr) = lab.serve_fails(&lab.srv, &args);
    drop(hold);
    holder.join().unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() == 1
            && lines[0].contains("cannot listen for metrics on 127.0.0.1:9470")
            && lines[0].contains("another program listens there"),
        "expected one line naming the address:\n{stderr}"
    );
    // Refused before the interface changed.
    assert!(!lab.srv.addrs("eth1").contains("192.168.242.1"));
}

/// Scrapes `http://LISTEN/metrics` from inside `ns` and parses it with the OpenMetrics parser;
/// every sample as `name{label="value",…}` (labels sorted) → value.
fn scrape(ns: &Netns, listen: &str) -> HashMap<String, f64> {
    const SCRIPT: &str = r#"
import sys, urllib.request
from prometheus_client.openmetrics.parser import text_string_to_metric_families
with urllib.request.urlopen("http://" + sys.argv[1] + "/metrics", timeout=10) as r:
    kind = r.headers["Content-Type"]
    assert kind.startswith("application/openmetrics-text"), kind
    text = r.read().decode()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %r" % (s.name, labels, s.value))
"#;
    let out = run_bounded(
        ns.command(python())
            .args(["-c", SCRIPT, listen])
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scrape failed: {out:?}");
    stdout
        .lines()
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            // Series without labels print as `name{}`.
            let series = series.strip_suffix("{}").unwrap_or(series);
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn dump(samples: &HashMap<String, f64>) -> String {
    let mut lines: Vec<String> = samples.iter().map(|(k, v)| format!("{k} {v}")).collect();
    lines.sort();
    lines.join("\n")
}

/// Debian's Python, where `python3-prometheus-client` installs (another `python3` may come
/// first in `PATH`).
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Whether the parser is installed; the same skip/fail policy as `have_tool`.
fn have_parser(test: &str) -> bool {
    let found = std::process::Command::new(python())
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: Python's prometheus_client is not installed (CI=true: not skipping)");
        }
        eprintln!(
            "SKIP: {test}: Python's prometheus_client is not installed \
             (apt-get install python3-prometheus-client)"
        );
    }
    found
}

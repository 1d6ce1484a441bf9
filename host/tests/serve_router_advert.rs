//! `pocketpxe serve` answers IPv6 router solicitations with "no router here", in network
//! namespaces the tests create: `rdisc6` (package `ndisc6`) in the client namespace gets an
//! advertisement with router lifetime 0, no prefix and M and O clear, and the client's kernel,
//! which accepts advertisements, gets neither an IPv6 default route nor an address from it.
//! Needs root and `ip netns`; skipped with a `SKIP:` line otherwise, except under `CI=true`.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::run_bounded;
use serve_support::*;
use std::time::{Duration, Instant};

/// Dhcp mode: on by default; the answer's fields; nothing configured on the client.
#[test]
fn solicitations_get_a_no_router_advertisement() {
    const T: &str = "solicitations_get_a_no_router_advertisement";
    if !netns_available(T) || !have_tool(T, "rdisc6", "ndisc6") {
        return;
    }
    let lab = Lab::new("serve-ra");
    // The client takes router advertisements as a host does (the default, made explicit).
    sysctl(&lab.cli, "net.ipv6.conf.eth0.accept_ra=1");
    let mut server = lab.serve(&["--address", "192.168.242.1/24"]);
    server.wait_log("router advertisements on", Duration::from_secs(5));
    wait_link_local(&lab.cli, "eth0");

    let out = run_bounded(
        lab.cli
            .command("rdisc6")
            .args(["-1", "-r", "3", "-w", "1500", "eth0"]),
        Duration::from_secs(15),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "rdisc6: {out:?}");
    let field = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .map(|l| l.split_once(':').unwrap().1.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name:?} in rdisc6's output:\n{text}"))
    };
    assert!(
        field("Router lifetime").starts_with("0 (0x00000000)"),
        "{text}"
    );
    assert_eq!(field("Stateful address conf."), "No", "{text}");
    assert_eq!(field("Stateful other conf."), "No", "{text}");
    assert!(!text.contains("Prefix"), "{text}");
    let server_mac = mac_of(&lab.srv, "eth1");
    assert!(
        field("Source link-layer address").eq_ignore_ascii_case(&server_mac),
        "{server_mac}: {text}"
    );
    let from = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("from "))
        .unwrap_or_else(|| panic!("no sender in rdisc6's output:\n{text}"));
    assert!(from.starts_with("fe80::"), "not link-local: {text}");

    // The client's kernel saw the unsolicited and the solicited advertisements (accept_ra=1)
    // and took nothing from them.
    let routes = lab.cli.ip(&["-6", "route", "show", "default"]);
    assert_eq!(routes.trim(), "", "IPv6 default route on the client");
    let global = lab
        .cli
        .ip(&["-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]);
    assert_eq!(global.trim(), "", "IPv6 address on the client");

    let status = server.stop();
    assert!(status.success(), "{status}; log:\n{}", server.log());
}

/// Proxy mode: off by default (the network's router speaks); `--router-advert on` turns it on.
#[test]
fn proxy_mode_advertises_only_when_asked() {
    const T: &str = "proxy_mode_advertises_only_when_asked";
    if !netns_available(T) || !have_tool(T, "rdisc6", "ndisc6") {
        return;
    }
    let lab = Lab::new("serve-ra-proxy");
    lab.srv
        .ip(&["addr", "add", "192.168.242.1/24", "dev", "eth1"]);
    wait_link_local(&lab.cli, "eth0");
    let solicit = || {
        run_bounded(
            lab.cli
                .command("rdisc6")
                .args(["-1", "-r", "2", "-w", "700", "eth0"]),
            Duration::from_secs(10),
        )
    };
    let mut server = lab.serve(&["--mode", "proxy"]);
    let out = solicit();
    assert!(!out.status.success(), "answered in proxy mode: {out:?}");
    assert!(!server.log().contains("router advertisements on"));
    server.stop();

    let mut server = lab.serve(&["--mode", "proxy", "--router-advert", "on"]);
    server.wait_log("router advertisements on", Duration::from_secs(5));
    let out = solicit();
    assert!(out.status.success(), "not answered: {out:?}");
    let status = server.stop();
    assert!(status.success(), "{status}; log:\n{}", server.log());
}

fn sysctl(ns: &Netns, setting: &str) {
    let out = run_bounded(
        ns.command("sysctl").args(["-q", "-w", setting]),
        Duration::from_secs(5),
    );
    assert!(out.status.success(), "sysctl {setting}: {out:?}");
}

/// Waits (at most 5 s) until `dev` has a link-local address past duplicate address detection.
fn wait_link_local(ns: &Netns, dev: &str) {
    let start = Instant::now();
    loop {
        let out = ns.ip(&["-6", "-o", "addr", "show", "dev", dev, "scope", "link"]);
        if out.contains("fe80::") && !out.contains("tentative") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no link-local address on {dev}: {out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

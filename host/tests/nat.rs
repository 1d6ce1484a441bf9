//! NAT guard tests, each in a network namespace the test creates (with a veth uplink) and
//! deletes again, also when it fails. Needs root, `ip` and `nft`: without them the tests skip
//! loudly, and fail under CI=true. Nothing outside the namespaces is touched: the state file
//! lives in the test's own temp dir.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TempDir, run_bounded};
use pocketpxe::sys::nat::{Nat, NatError, NatOptions};
use pocketpxe::sys::netif::Ipv4Cidr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A network namespace with a veth `up0` (peer `up0p`) holding the default route; deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn create() -> Option<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "pxnat-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let ok = sh(&["ip", "netns", "add", &name]).is_ok();
        let ns = Self { name };
        if !ok || !rustix::process::geteuid().is_root() || which("nft").is_none() {
            let why = "needs root, iproute2 and nftables (apt-get install iproute2 nftables)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("NAT test {why} (CI=true: not skipping)");
            }
            eprintln!("SKIP: NAT test {why}");
            return None;
        }
        for cmd in [
            "ip link set lo up",
            "ip link add up0 type veth peer name up0p",
            "ip link set up0p up",
            "ip link set up0 up",
            "ip addr add 10.77.0.2/24 dev up0",
            "ip route add default via 10.77.0.1 dev up0",
        ] {
            ns.exec(&cmd.split(' ').collect::<Vec<_>>()).unwrap();
        }
        Some(ns)
    }

    fn exec(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    fn ruleset(&self) -> String {
        self.exec(&["nft", "list", "ruleset"]).unwrap()
    }

    fn forwarding(&self) -> String {
        self.exec(&["sysctl", "-n", "net.ipv4.ip_forward"])
            .unwrap()
            .trim()
            .to_owned()
    }

    fn set_forwarding(&self, value: &str) {
        self.exec(&[
            "sysctl",
            "-q",
            "-w",
            &format!("net.ipv4.ip_forward={value}"),
        ])
        .unwrap();
    }

    fn opts(&self, state_dir: &TempDir) -> NatOptions {
        NatOptions {
            state_dir: state_dir.path.clone(),
            netns: Some(self.name.clone()),
        }
    }

    /// Someone else's rules, which must survive everything.
    fn add_foreign_rules(&self) {
        let script = "table inet keepme {\n\
                      \tchain input { type filter hook input priority 0; policy accept; tcp dport 22 counter accept; }\n\
                      }\n\
                      table ip nat {\n\
                      \tchain POSTROUTING { type nat hook postrouting priority srcnat; policy accept; ip saddr 10.9.0.0/16 oifname \"up0\" masquerade; }\n\
                      }\n";
        let path = std::env::temp_dir().join(format!("{}.nft", self.name));
        std::fs::write(&path, script).unwrap();
        self.exec(&["nft", "-f", path.to_str().unwrap()]).unwrap();
        let _ = std::fs::remove_file(path);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.name]);
    }
}

fn sh(args: &[&str]) -> Result<String, String> {
    let out = run_bounded(
        Command::new(args[0]).args(&args[1..]),
        Duration::from_secs(20),
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn subnet() -> Ipv4Cidr {
    "192.168.242.1/24".parse().unwrap()
}

#[test]
fn enable_adds_exactly_our_table_and_drop_restores() {
    let Some(ns) = Netns::create() else { return };
    let state = TempDir::new("nat-state");
    ns.add_foreign_rules();
    let before = ns.ruleset();
    assert_eq!(ns.forwarding(), "0");

    let guard = Nat::enable_with(&ns.opts(&state), subnet(), "up0").unwrap();
    assert_eq!(ns.forwarding(), "1");
    let during = ns.ruleset();
    let ours = ns
        .exec(&["nft", "list", "table", "ip", "pocketpxe"])
        .unwrap();
    assert!(
        ours.contains("ip saddr 192.168.242.0/24 oifname \"up0\" masquerade"),
        "{ours}"
    );
    // The ruleset is the old one plus exactly our table.
    assert_eq!(during.replace(&ours, ""), before, "other rules changed");
    let state_file = std::fs::read_to_string(state.join("nat.state")).unwrap();
    assert!(state_file.contains("ip_forward 0"), "{state_file}");

    // A second enable in the same process is refused and changes nothing.
    let err = Nat::enable_with(&ns.opts(&state), subnet(), "up0").unwrap_err();
    assert!(matches!(err, NatError::AlreadyActive { .. }), "{err}");
    assert_eq!(ns.ruleset(), during);

    drop(guard);
    assert_eq!(ns.forwarding(), "0");
    assert_eq!(ns.ruleset(), before);
    assert!(!state.join("nat.state").exists());
}

#[test]
fn forwarding_that_was_on_stays_on() {
    let Some(ns) = Netns::create() else { return };
    let state = TempDir::new("nat-state");
    ns.set_forwarding("1");
    let guard = Nat::enable_with(&ns.opts(&state), subnet(), "up0").unwrap();
    assert_eq!(guard.original_forwarding(), "1");
    guard.disable().unwrap();
    assert_eq!(ns.forwarding(), "1");
    assert_eq!(ns.exec(&["nft", "list", "tables"]).unwrap().trim(), "");
}

#[test]
fn leftovers_of_a_killed_run_are_cleaned_up() {
    let Some(ns) = Netns::create() else { return };
    let state = TempDir::new("nat-state");
    ns.add_foreign_rules();
    let before = ns.ruleset();
    // Simulate kill -9: enable, then forget the guard without running its drop, and make the
    // state file's PID a dead process.
    let guard = Nat::enable_with(&ns.opts(&state), subnet(), "up0").unwrap();
    std::mem::forget(guard);
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let path = state.join("nat.state");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("pid ") {
                format!("pid {dead}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, text).unwrap();
    assert_eq!(ns.forwarding(), "1");

    let leftovers = Nat::cleanup_leftovers_with(&ns.opts(&state)).unwrap();
    assert!(
        leftovers.table_removed && leftovers.state_found,
        "{leftovers:?}"
    );
    assert_eq!(leftovers.forwarding_restored.as_deref(), Some("0"));
    assert_eq!(
        ns.forwarding(),
        "0",
        "forwarding must be the value before the killed run"
    );
    assert_eq!(ns.ruleset(), before);
    assert!(!path.exists());
    // Nothing left: a second cleanup does nothing.
    assert!(!Nat::cleanup_leftovers_with(&ns.opts(&state)).unwrap().any());

    // A restart after a kill (enable with leftovers present) does not stack a second table and
    // still records the original value.
    let guard = Nat::enable_with(&ns.opts(&state), subnet(), "up0").unwrap();
    std::mem::forget(guard);
    std::fs::write(
        &path,
        std::fs::read_to_string(&path).unwrap().replace(
            &format!("pid {}", std::process::id()),
            &format!("pid {dead}"),
        ),
    )
    .unwrap();
    let guard = Nat::enable_with(&ns.opts(&state), subnet(), "up0").unwrap();
    assert_eq!(guard.original_forwarding(), "0");
    let tables = ns.exec(&["nft", "list", "tables"]).unwrap();
    assert_eq!(tables.matches("table ip pocketpxe").count(), 1, "{tables}");
    drop(guard);
    assert_eq!(ns.forwarding(), "0");
    assert_eq!(ns.ruleset(), before);

    // A table without a state file is removed; forwarding is left alone.
    ns.set_forwarding("1");
    ns.exec(&["nft", "add", "table", "ip", "pocketpxe"])
        .unwrap();
    let leftovers = Nat::cleanup_leftovers_with(&ns.opts(&state)).unwrap();
    assert!(leftovers.table_removed && !leftovers.state_found);
    assert_eq!(ns.forwarding(), "1");
    assert_eq!(ns.ruleset(), before);
}

#[test]
fn bad_uplinks_are_named_and_change_nothing() {
    let Some(ns) = Netns::create() else { return };
    let state = TempDir::new("nat-state");
    let before = ns.ruleset();
    let err = Nat::enable_with(&ns.opts(&state), subnet(), "nosuch0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("nosuch0"), "{err}");
    let err = Nat::enable_with(&ns.opts(&state), subnet(), "x\"; flush ruleset")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a valid interface name"), "{err}");
    assert_eq!(ns.ruleset(), before);
    assert_eq!(ns.forwarding(), "0");
    assert!(!state.join("nat.state").exists());
    // The default route inside the namespace is found from /proc/net/route.
    let route = ns.exec(&["cat", "/proc/net/route"]).unwrap();
    assert_eq!(
        pocketpxe::sys::nat::parse_default_route(&route).as_deref(),
        Some("up0")
    );
}

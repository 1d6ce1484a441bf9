//! Scenario 5: faults. `pocketpxe serve --nat --address …` changes its namespace: an address
//! on the served interface, `net.ipv4.ip_forward`, and an nftables table. After SIGTERM all of
//! it must be gone; after a `kill -9` it stays behind, and a restart must take it over without
//! stacking a second rule or a second address.
//!
//! No VM: the server runs in the lab's server namespace and the test inspects that namespace.

// The helpers below are test code too: a panic with the harness's report is the failure.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pocketpxe_tests::netns::{Lab, PREFIX, SERVER_IF, SERVER_IP, UPLINK_IF};
use pocketpxe_tests::process::Proc;
use pocketpxe_tests::server::Serve;
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::{gate, netns};

const GRACE: Duration = Duration::from_secs(20);

#[test]
fn sigterm_removes_rules_forwarding_and_address() {
    if !ready("sigterm_removes_rules_forwarding_and_address") {
        return;
    }
    let t = Setup::new();
    let before = t.snapshot();
    assert_eq!(before.addresses, Vec::<String>::new(), "fresh interface");

    let mut server = t.start(&["--nat", "--uplink", UPLINK_IF], "run1.log");
    let running = t.snapshot();
    running.assert_serving();

    let (status, killed) = server.terminate(GRACE);
    assert!(
        !killed,
        "pocketpxe did not stop within {GRACE:?} of SIGTERM"
    );
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}\n{}",
        server.log_tail(20)
    );
    let after = t.snapshot();
    assert_eq!(
        after, before,
        "state after SIGTERM differs from before the start"
    );
}

#[test]
fn kill9_then_restart_takes_over_without_duplicates() {
    if !ready("kill9_then_restart_takes_over_without_duplicates") {
        return;
    }
    let t = Setup::new();
    let before = t.snapshot();

    let mut first = t.start(&["--nat", "--uplink", UPLINK_IF], "run1.log");
    t.snapshot().assert_serving();
    first.kill();
    let left = t.snapshot();
    // kill -9 leaves everything behind: that is what the restart has to cope with.
    left.assert_serving();

    let mut second = t.start(&["--nat", "--uplink", UPLINK_IF], "run2.log");
    let restarted = t.snapshot();
    restarted.assert_serving();
    assert_eq!(
        restarted, left,
        "the restart changed more than it should (duplicates?)"
    );

    let (status, killed) = second.terminate(GRACE);
    assert!(
        !killed && status.success(),
        "SIGTERM: {status}, killed={killed}"
    );
    let after = t.snapshot();
    assert_eq!(
        after.nft_tables, before.nft_tables,
        "nftables after the restart's SIGTERM"
    );
    assert_eq!(after.iptables_rules, before.iptables_rules);
    assert_eq!(
        after.ip_forward, before.ip_forward,
        "ip_forward must be restored to the value before the killed run"
    );
    // The address: the killed run recorded it (/run/pocketpxe/netns-INODE/addresses.state),
    // so the restart took it over and its SIGTERM removed it.
    assert_eq!(
        after.addresses, before.addresses,
        "the address after kill -9, restart and SIGTERM"
    );
}

#[test]
fn kill9_then_restart_without_nat_undoes_nat() {
    if !ready("kill9_then_restart_without_nat_undoes_nat") {
        return;
    }
    let t = Setup::new();
    let before = t.snapshot();
    let mut first = t.start(&["--nat", "--uplink", UPLINK_IF], "run1.log");
    first.kill();
    let mut second = t.start(&[], "run2.log");
    let restarted = t.snapshot();
    assert_eq!(
        restarted.nft_tables, before.nft_tables,
        "a start without --nat should undo the killed run's NAT"
    );
    assert_eq!(restarted.ip_forward, before.ip_forward);
    let (status, killed) = second.terminate(GRACE);
    assert!(
        !killed && status.success(),
        "SIGTERM: {status}, killed={killed}"
    );
}

/// What pocketpxe may change in its namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    /// IPv4 addresses on the served interface.
    addresses: Vec<String>,
    /// `net.ipv4.ip_forward`.
    ip_forward: String,
    /// `nft list tables`.
    nft_tables: Vec<String>,
    /// Masquerade rules in the whole ruleset.
    masquerade_rules: usize,
    /// `iptables-save` rules (`-A …`), when iptables is installed.
    iptables_rules: Vec<String>,
}

impl Snapshot {
    fn assert_serving(&self) {
        let ours = format!("{SERVER_IP}/{PREFIX}");
        assert_eq!(
            self.addresses.iter().filter(|a| **a == ours).count(),
            1,
            "exactly one {ours} on {SERVER_IF}: {self:?}"
        );
        assert_eq!(self.ip_forward, "1", "forwarding on: {self:?}");
        assert_eq!(
            self.masquerade_rules, 1,
            "exactly one masquerade rule: {self:?}"
        );
        assert_eq!(
            self.nft_tables
                .iter()
                .filter(|t| t.contains("pocketpxe"))
                .count(),
            1,
            "exactly one pocketpxe table: {self:?}"
        );
    }
}

struct Setup {
    // Servers are declared after the Setup in each test, so they stop before the lab goes.
    dir: TempDir,
    root: TempDir,
    lab: Lab,
}

impl Setup {
    fn new() -> Self {
        netns::remove_stale();
        let dir = TempDir::new("faults").unwrap();
        let root = TempDir::new("faults-root").unwrap();
        std::fs::write(root.join("pxelinux.0"), b"not a real NBP").unwrap();
        // No address on the interface: `--address` adds it.
        let mut lab = Lab::new(false).unwrap();
        lab.add_upstream().unwrap();
        Self { dir, root, lab }
    }

    fn start(&self, flags: &[&str], log: &str) -> Proc {
        let cidr = format!("{SERVER_IP}/{PREFIX}");
        let mut all = vec!["--address", cidr.as_str()];
        all.extend_from_slice(flags);
        Serve::new(self.root.path(), self.dir.path())
            .flags(&all)
            .start(&self.lab.server, &self.dir.join(log))
            .unwrap()
    }

    fn snapshot(&self) -> Snapshot {
        let ns = &self.lab.server;
        let t = Duration::from_secs(10);
        let ruleset = ns.run("nft", &["list", "ruleset"], t).unwrap();
        let iptables_rules = if gate::on_path("iptables-save") {
            ns.run("iptables-save", &[], t)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("-A"))
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        Snapshot {
            addresses: ns.addresses(SERVER_IF).unwrap(),
            ip_forward: ns
                .run("sysctl", &["-n", "net.ipv4.ip_forward"], t)
                .unwrap()
                .trim()
                .to_owned(),
            nft_tables: ns
                .run("nft", &["list", "tables"], t)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect(),
            masquerade_rules: ruleset.matches("masquerade").count(),
            iptables_rules,
        }
    }
}

fn ready(test: &str) -> bool {
    gate::ready(
        test,
        &[
            gate::Need::Root,
            gate::Need::Program("ip"),
            gate::Need::Program("nft"),
            gate::Need::Program("sysctl"),
            gate::Need::Program("unshare"),
        ],
    )
}

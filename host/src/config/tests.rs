use super::*;
use crate::cli::{Command, parse_from};

const FILE: &str = "/etc/pocketpxe/pocketpxe.toml";

fn cli(extra: &[&str]) -> ServeArgs {
    let mut argv = vec!["pocketpxe", "serve", "--config", FILE];
    argv.extend_from_slice(extra);
    match parse_from(argv).unwrap().command {
        Command::Serve(args) => args,
        other => panic!("{other:?}"),
    }
}

fn resolve_with(text: &str, extra: &[&str]) -> Result<Vec<ServeArgs>, String> {
    resolve_text(&cli(extra), Path::new(FILE), text).map_err(|e| e.to_string())
}

fn ok(text: &str) -> Vec<ServeArgs> {
    resolve_with(text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    match resolve_with(text, &[]) {
        Ok(all) => panic!("accepted: {all:?}"),
        Err(e) => e,
    }
}

const TWO: &str = r#"
root = "/srv/tftp"
lease-time = "30m"

[[interface]]
name = "br0"
address = "192.168.242.1/24"
range = "192.168.242.2-192.168.242.99"
lease-time = 3600
boot = { bios = "pxelinux.0", efi-x64 = "bootnetx64.efi" }

[[interface.host]]
mac = "52:54:00:12:34:56"
ip = "192.168.242.50"
boot = "test.0"

[[interface.host]]
mac = "52:54:00:12:34:57"
boot = "other.efi"
class = "efi-x64"

[[interface]]
name = "br1"
mode = "proxy"
root = "/srv/other"
"#;

#[test]
fn two_interfaces_inherit_and_override() {
    let all = ok(TWO);
    assert_eq!(all.len(), 2);
    let (br0, br1) = (&all[0], &all[1]);
    assert_eq!(br0.iface(), "br0");
    assert_eq!(br0.tftp_root(), Path::new("/srv/tftp"));
    assert_eq!(br0.lease_time, Some(Duration::from_secs(3600)));
    assert_eq!(
        br0.range.unwrap().to_string(),
        "192.168.242.2-192.168.242.99"
    );
    assert_eq!(
        br0.boot,
        [
            BootArg {
                class: ClientClass::Bios,
                file: "pxelinux.0".into()
            },
            BootArg {
                class: ClientClass::EfiX64,
                file: "bootnetx64.efi".into()
            }
        ]
    );
    assert_eq!(
        br0.reserve,
        [ReserveArg {
            mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            ip: Ipv4Addr::new(192, 168, 242, 50)
        }]
    );
    assert_eq!(br0.boot_mac.len(), 2);
    assert_eq!(br0.boot_mac[0].class, None);
    assert_eq!(br0.boot_mac[1].class, Some(ClientClass::EfiX64));
    assert_eq!(br1.iface(), "br1");
    assert_eq!(br1.mode, ServeMode::Proxy);
    assert_eq!(br1.tftp_root(), Path::new("/srv/other"));
    // A proxy interface does not inherit the top level's dhcp-only defaults.
    assert_eq!(br1.lease_time, None);
    assert!(br1.reserve.is_empty() && br1.boot.is_empty());
}

#[test]
fn flags_override_every_interface_and_interface_selects() {
    let all = resolve_with(
        TWO,
        &[
            "--root",
            "/cli",
            "--max-blksize",
            "512",
            "--boot",
            "bios=cli.0",
            "--reserve",
            "52:54:00:00:00:01=192.168.242.60",
        ],
    )
    .unwrap();
    for a in &all {
        assert_eq!(a.tftp_root(), Path::new("/cli"));
        assert_eq!(a.tftp.max_blksize, 512);
        assert_eq!(a.boot.len(), 1);
        assert_eq!(a.boot[0].file, "cli.0");
    }
    // --reserve adds to the file's hosts.
    assert_eq!(all[0].reserve.len(), 2);
    // A flag that was not given keeps the file's value, not the flag's default.
    let all = resolve_with(
        "max-blksize = 1024\n[[interface]]\nname = \"a\"\nroot = \"/r\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(all[0].tftp.max_blksize, 1024);
    assert_eq!(all[0].tftp.max_windowsize, 64, "the flag's default");
    // --interface picks one interface of the file...
    let picked = resolve_with(TWO, &["--interface", "br1"]).unwrap();
    assert_eq!(picked.len(), 1);
    assert_eq!(picked[0].mode, ServeMode::Proxy);
    // ...or defines one from the top-level defaults.
    let new = resolve_with(TWO, &["--interface", "eth9"]).unwrap();
    assert_eq!(new.len(), 1);
    assert_eq!(
        (new[0].iface(), new[0].tftp_root()),
        ("eth9", Path::new("/srv/tftp"))
    );
    assert_eq!(new[0].lease_time, Some(Duration::from_secs(1800)));
    // An interface defined by --interface without a root names the flag.
    let e = resolve_with(
        "[[interface]]\nname = \"a\"\nroot = \"/r\"\n",
        &["--interface", "b"],
    )
    .unwrap_err();
    assert!(e.starts_with("--interface b: no TFTP root for b"), "{e}");
    // --mode proxy on the command line makes the dhcp-only keys of an interface an error.
    let e = resolve_with(TWO, &["--mode", "proxy"]).unwrap_err();
    assert!(e.contains(":8:9: interface \"br0\": range:"), "{e}");
}

#[test]
fn without_a_file_the_flags_are_all() {
    let mut args = cli(&["--interface", "eth1", "--root", "/srv"]);
    args.config = None;
    let missing = Path::new("/nonexistent/pocketpxe.toml");
    let r = resolve(&args, missing).unwrap();
    assert!(r.file.is_none());
    assert_eq!(r.interfaces.len(), 1);
    assert_eq!(r.interfaces[0].iface(), "eth1");
    args.root = None;
    let e = resolve(&args, missing).unwrap_err().to_string();
    assert!(e.contains("--interface and --root"), "{e}");
}

#[test]
fn errors_name_file_line_column_and_key() {
    let mut wrong = Vec::new();
    for (text, want) in [
        (
            "[[interface]]\nname = \"br0\"\nroot = \"/r\"\nboot = { bios = \"a\", efi-x65 = \"b\" }\n",
            "pocketpxe.toml:4:32: interface \"br0\": boot.efi-x65: 'efi-x65': unknown client class",
        ),
        (
            "[[interface]]\nname = \"br0\"\nroot = \"/r\"\nlease-time = \"1q\"\n",
            "pocketpxe.toml:4:14: interface \"br0\": lease-time: '1q'",
        ),
        (
            "[[interface]]\nname = \"br0\"\nroot = \"/r\"\nrange = \"10.0.0.9-10.0.0.1\"\n",
            "pocketpxe.toml:4:9: interface \"br0\": range: range 10.0.0.9-10.0.0.1 ends before it starts",
        ),
        (
            "[[interface]]\nname = \"br0\"\nroot = \"/r\"\nfrobnicate = 1\n",
            "pocketpxe.toml:4:1: interface \"br0\": frobnicate: unknown key `frobnicate`",
        ),
        (
            "user = \"pocketpxe\"\nbogus = true\n",
            "pocketpxe.toml:2:1: bogus: unknown key `bogus`",
        ),
        (
            "[[interface]]\nname = \"br0\"\nroot = \"/r\"\n[[interface.host]]\nmac = \"zz\"\nip = \"10.0.0.5\"\n",
            "pocketpxe.toml:5:7: interface \"br0\": host[0].mac: 'zz' is not a MAC address",
        ),
        (
            "[[interface]]\nname = \"br0\"\nroot = \"/r\"\ntimeout = 0\n",
            "pocketpxe.toml:4:11: interface \"br0\": timeout: 0 is out of range: give 1 to 255",
        ),
        (
            "[[interface]]\nname = \"br0\"\nroot = \"/r\"\nuser = \"x\"\n",
            "pocketpxe.toml:4:8: interface \"br0\": user: `user` is a process-wide setting",
        ),
        (
            "[[interface]]\nname = \"br0\"\nroot = \"/r\"\nmode = \"proxy\"\ndns = \"1.1.1.1\"\n",
            "pocketpxe.toml:5:7: interface \"br0\": dns: `dns` only applies to mode = \"dhcp\"",
        ),
        (
            "[[interface]]\nname = \"br0\"\nroot = \"/r\"\nmode = \"proxy\"\n[[interface.host]]\nmac = \"52:54:00:00:00:01\"\nip = \"10.0.0.5\"\n",
            "pocketpxe.toml:7:6: interface \"br0\": host[0].ip: a fixed address only applies",
        ),
        (
            "[[interface]]\nname = \"br0\"\n",
            "pocketpxe.toml:2:8: interface \"br0\": name: no TFTP root for br0",
        ),
        (
            "root = \"/r\"\n[[interface]]\nmode = \"dhcp\"\n",
            "pocketpxe.toml:2:1: interface #1: an [[interface]] needs name",
        ),
        (
            "root = \"/r\"\n[[interface]]\nname = \"a\"\n[[interface]]\nname = \"a\"\n",
            "pocketpxe.toml:5:8: interface \"a\": name: interface a is named twice",
        ),
        (
            "root = \"/r\"\nleases = \"/tmp/x.leases\"\n[[interface]]\nname = \"a\"\n[[interface]]\nname = \"b\"\n",
            "pocketpxe.toml:2:10: leases: interfaces a and b would share the lease file /tmp/x.leases",
        ),
        (
            "root = \"/r\"\n[[interface]]\nname = \"a\"\naddress = \"10.0.0.1/24\"\nrange = \"10.0.1.2-10.0.1.9\"\n",
            "pocketpxe.toml:5:9: interface \"a\": range: range 10.0.1.2-10.0.1.9 is outside a's subnet 10.0.0.0/24",
        ),
        (
            "root = \"/r\"\n[[interface]]\nname = \"a\"\naddress = \"10.0.0.1/24\"\n[[interface.host]]\nmac = \"52:54:00:00:00:01\"\nip = \"10.0.9.5\"\n",
            "pocketpxe.toml:7:6: interface \"a\": host[0].ip: reservation 52:54:00:00:00:01=10.0.9.5 is not a client address in a's subnet",
        ),
        (
            "root = \"/r\"\n[[interface]]\nname = \"a\"\n[[interface.host]]\nmac = \"52:54:00:00:00:01\"\nip = \"10.0.0.5\"\n[[interface.host]]\nmac = \"52:54:00:00:00:02\"\nip = \"10.0.0.5\"\n",
            "pocketpxe.toml:9:6: interface \"a\": host[1].ip: reservations 52:54:00:00:00:01=10.0.0.5 and 52:54:00:00:00:02=10.0.0.5 share the address",
        ),
        (
            "root = \"/r\"\n[[interface]]\nname = \"a\"\n[[interface.host]]\nmac = \"52:54:00:00:00:01\"\nclass = \"bios\"\n",
            "interface \"a\": host[0].class: class only narrows",
        ),
        (
            "root = \"/r\"\n[[interface]]\nname = \"a\"\nboot = { bios = \"\" }\n",
            "pocketpxe.toml:4:17: interface \"a\": boot.bios: empty boot file",
        ),
        ("root = \"/r\"\nlease-time = \n", "pocketpxe.toml:2:"),
        (
            "root = \"/r\"\n[[interface]]\nname = \"a\"\nmirror = \"http://x\"\n",
            "interface \"a\": mirror: `mirror` goes with debian",
        ),
        (
            "root = \"/r\"\nnat = true\n[[interface]]\nname = \"a\"\n[[interface]]\nname = \"b\"\n",
            "nat: nat is on for a already",
        ),
        (
            "root = \"/r\"\nuplink = \"b\"\nnat = true\n[[interface]]\nname = \"b\"\n",
            "uplink: the uplink b is an interface being served",
        ),
        ("root = \"/r\"\n", "no [[interface]] to serve"),
        (
            "[interface]\nname = \"a\"\n",
            "pocketpxe.toml:1:1: interface: invalid type: map, expected a sequence: interfaces are an array of tables, written [[interface]]",
        ),
    ] {
        let e = err(text);
        if !e.contains(want) || e.contains('\n') {
            wrong.push(format!("want {want:?}\n got {e:?}\nfor\n{text}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn values_take_the_flags_forms() {
    let all = ok(r#"
root = "/r"
[[interface]]
name = "a"
lease-time = "2d"
router = "none"
dns = ["1.1.1.1", "9.9.9.9"]
wait-interface = true
console = "ttyS0"
debian = "bookworm"
[[interface]]
name = "b"
dns = "none"
wait-interface = "5m"
leases = "/tmp/b.leases"
"#);
    assert_eq!(all[0].lease_time, Some(Duration::from_secs(172_800)));
    assert_eq!(all[0].router, Some(Optional::None));
    assert_eq!(all[0].dns.len(), 2);
    assert_eq!(all[0].wait_interface, Some(Duration::from_secs(60)));
    assert_eq!(all[0].console.as_ref().map(|c| c.baud), Some(115_200));
    assert_eq!(all[1].dns, [Optional::None]);
    assert_eq!(all[1].wait_interface, Some(Duration::from_secs(300)));
    assert_eq!(all[1].debian, None);
}

#[test]
fn arch_key_chooses_the_debian_architectures() {
    use crate::fetch::menus::{Arch, ArchList};
    let all = ok(r#"
root = "/r"
debian = "bookworm"
arch = "amd64,arm64"
[[interface]]
name = "a"
[[interface]]
name = "b"
debian = "trixie"
arch = "arm64"
"#);
    assert_eq!(all[0].arch.as_slice(), [Arch::Amd64, Arch::Arm64]);
    assert_eq!(all[1].arch, ArchList::one(Arch::Arm64));
    // Without the key: amd64, as without the flag.
    let all = ok("root = \"/r\"\ndebian = \"bookworm\"\n[[interface]]\nname = \"a\"\n");
    assert_eq!(all[0].arch, ArchList::default());
    let e = err(
        "root = \"/r\"\ndebian = \"bookworm\"\narch = \"arm64,sparc\"\n[[interface]]\nname = \"a\"\n",
    );
    assert!(e.contains("sparc"), "{e}");
    let e = err("root = \"/r\"\n[[interface]]\nname = \"a\"\narch = \"arm64\"\n");
    assert!(e.contains("goes with debian"), "{e}");
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../../dist/pocketpxe.example.toml");
    let all = ok(text);
    assert_eq!(all.len(), 1);
    let eth = &all[0];
    assert_eq!(
        eth.address.map(|a| a.to_string()).as_deref(),
        Some("192.168.242.1/24")
    );
    assert_eq!(
        eth.range.map(|r| r.to_string()).as_deref(),
        Some("192.168.242.2-192.168.242.99")
    );
    assert_eq!(eth.lease_time, Some(Duration::from_secs(3600)));
    let boot: Vec<(ClientClass, &str)> = eth
        .boot
        .iter()
        .map(|b| (b.class, b.file.as_str()))
        .collect();
    assert_eq!(
        boot,
        [
            (ClientClass::Bios, "pxelinux.0"),
            (ClientClass::EfiX64, "bootnetx64.efi")
        ]
    );
    // Uncommenting the examples gives a valid file too.
    let uncommented: String = text
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .filter(|r| looks_like_toml(r))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let all = ok(&uncommented);
    assert_eq!(all.len(), 2, "{uncommented}");
    assert_eq!(all[0].reserve.len(), 1);
    assert_eq!(all[0].boot_mac.len(), 1);
}

/// A commented-out line of TOML in the example (`# key = value` or `# [[table]]`), as opposed
/// to prose.
fn looks_like_toml(line: &str) -> bool {
    line.starts_with("[[")
        || line
            .split_once(" = ")
            .is_some_and(|(k, _)| !k.contains(' '))
}

#[test]
fn a_flag_equal_to_its_default_still_overrides() {
    let text = "root = \"/r\"\n[[interface]]\nname = \"a\"\nmode = \"proxy\"\ntftp-port = 6969\n";
    assert_eq!(ok(text)[0].mode, ServeMode::Proxy);
    assert_eq!(ok(text)[0].tftp_port, 6969);
    let all = resolve_with(text, &["--mode", "dhcp", "--tftp-port", "69"]).unwrap();
    assert_eq!(all[0].mode, ServeMode::Dhcp);
    assert_eq!(all[0].tftp_port, 69);
    // Only what was on the command line counts as given.
    let args = cli(&["--mode", "dhcp", "--max-blksize=512", "--nat"]);
    for id in ["mode", "max_blksize", "nat", "config"] {
        assert!(args.given(id), "{id}: {:?}", args.explicit);
    }
    for id in ["tftp_port", "max_windowsize", "lease_time", "interface"] {
        assert!(!args.given(id), "{id}: {:?}", args.explicit);
    }
}

#[test]
fn check_config_describes_each_interface() {
    let all = ok(TWO);
    assert_eq!(
        describe(&all[0]),
        "interface br0: mode=dhcp address=192.168.242.1/24 range=192.168.242.2-192.168.242.99 \
         lease-time=3600s leases=/var/lib/pocketpxe/br0.leases root=/srv/tftp \
         boot=bios=pxelinux.0,efi-x64=bootnetx64.efi reservations=1 per-mac-rules=2"
    );
    assert_eq!(
        describe(&all[1]),
        "interface br1: mode=proxy root=/srv/other boot=bios=pxelinux.0 reservations=0 \
         per-mac-rules=0"
    );
}

#[test]
fn every_serve_flag_has_a_key() {
    use clap::CommandFactory;
    // Command-line only: the file itself, the interface (a section of its own), and the
    // per-client flags, which are `[[interface.host]]` tables.
    let cli_only = ["config", "interface", "reserve", "boot-mac", "help"];
    let cmd = crate::cli::Cli::command();
    let serve = cmd.find_subcommand("serve").expect("serve");
    let mut checked = 0;
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if cli_only.contains(&long) || arg.is_global_set() {
            continue;
        }
        let text = format!("{long} = \"x\"\n[[interface]]\nname = \"br0\"\n");
        if let Err(e) = resolve_with(&text, &[]) {
            assert!(
                !e.contains("unknown key"),
                "--{long} has no config key: {e}"
            );
        }
        checked += 1;
    }
    assert!(checked > 25, "only {checked} flags checked");
}

#[test]
fn times_read_as_their_flags_do() {
    let all = ok(
        "root = \"/r\"\n[[interface]]\nname = \"br0\"\nlease-time = \"infinite\"\ngrace = 0\nboot-quiet = \"1m30s\"\n",
    );
    assert_eq!(all[0].lease_time, Some(crate::cli::INFINITE_LEASE));
    assert_eq!(all[0].tftp.grace, Duration::ZERO);
    assert_eq!(all[0].boot_quiet, Duration::from_secs(90));
    let e = err("root = \"/r\"\n[[interface]]\nname = \"br0\"\nboot-quiet = \"infinite\"\n");
    assert!(
        e.contains("boot-quiet") && e.contains("only accepted as a lease time"),
        "{e}"
    );
}

const RELAYED: &str = r#"
root = "/r"

[[interface]]
name = "br0"
address = "192.168.242.1/24"
relay-subnet = ["10.3.0.0/24=10.3.0.10-10.3.0.20"]

[[interface.subnet]]
network = "10.1.0.0/24"
range = "10.1.0.10-10.1.0.99"
dns = ["10.1.0.53"]
lease-time = "10m"
boot = { efi-x64 = "lab.efi" }

[[interface.subnet.host]]
mac = "52:54:00:00:01:01"
ip = "10.1.0.200"

[[interface.subnet]]
network = "10.2.0.0/16"
range = "10.2.1.1-10.2.1.50"
router = "10.2.0.254"
"#;

#[test]
fn relayed_subnets_read_from_tables_and_the_key() {
    let all = ok(RELAYED);
    let r = &all[0].relay_subnet;
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].to_string(), "10.1.0.0/24=10.1.0.10-10.1.0.99");
    assert_eq!(r[0].router, None);
    assert_eq!(r[0].dns, [Ipv4Addr::new(10, 1, 0, 53)]);
    assert_eq!(r[0].lease_time, Some(Duration::from_secs(600)));
    assert_eq!(r[0].hosts.len(), 1);
    assert_eq!(r[0].hosts[0].ip, Ipv4Addr::new(10, 1, 0, 200));
    assert_eq!(r[0].boot.len(), 1);
    assert_eq!(r[0].boot[0].file, "lab.efi");
    assert!(r[1].boot.is_empty());
    assert_eq!(r[1].router, Some(Ipv4Addr::new(10, 2, 0, 254)));
    assert_eq!(r[1].lease_time, None);
    assert_eq!(r[2].to_string(), "10.3.0.0/24=10.3.0.10-10.3.0.20");
    let line = describe(&all[0]);
    assert!(
        line.contains(
            "relay-subnet=10.1.0.0/24=10.1.0.10-10.1.0.99(router=relay,hosts=1,boot=efi-x64=lab.efi)"
        ) && line.contains(
            "relay-subnet=10.2.0.0/16=10.2.1.1-10.2.1.50(router=10.2.0.254,hosts=0,boot=interface's)"
        ),
        "{line}"
    );
    // The flag replaces the key; the tables stay.
    let flagged = resolve_with(
        RELAYED,
        &["--relay-subnet", "10.9.0.0/24=10.9.0.5-10.9.0.6"],
    )
    .unwrap();
    let nets: Vec<String> = flagged[0]
        .relay_subnet
        .iter()
        .map(|r| r.network.to_string())
        .collect();
    assert_eq!(nets, ["10.1.0.0/24", "10.2.0.0/16", "10.9.0.0/24"]);
}

#[test]
fn relayed_subnet_errors_point_at_their_place() {
    let base = "root = \"/r\"\n[[interface]]\nname = \"br0\"\naddress = \"192.168.242.1/24\"\n";
    for (extra, want) in [
        (
            "[[interface.subnet]]\nnetwork = \"10.1.0.0/24\"\nrange = \"10.1.1.10-10.1.1.20\"\n",
            "pocketpxe.toml:7:9: interface \"br0\": subnet[0].range: range 10.1.1.10-10.1.1.20 is not inside 10.1.0.0/24",
        ),
        (
            "[[interface.subnet]]\nnetwork = \"10.1.0.5/24\"\nrange = \"10.1.0.10-10.1.0.20\"\n",
            "pocketpxe.toml:6:11: interface \"br0\": subnet[0].network: 10.1.0.5/24 is not a network address: write 10.1.0.0/24",
        ),
        (
            "[[interface.subnet]]\nnetwork = \"10.1.0.0/24\"\nrange = \"10.1.0.10-10.1.0.20\"\nboot = { efi-x65 = \"a\" }\n",
            "pocketpxe.toml:8:20: interface \"br0\": subnet[0].boot.efi-x65: 'efi-x65': unknown client class",
        ),
        (
            "[[interface.subnet]]\nnetwork = \"10.1.0.0/24\"\n",
            "pocketpxe.toml:5:1: interface \"br0\": subnet[0]: subnet 10.1.0.0/24 needs range",
        ),
        (
            "[[interface.subnet]]\nnetwork = \"10.1.0.0/24\"\nrange = \"10.1.0.10-10.1.0.20\"\n[[interface.subnet.host]]\nmac = \"52:54:00:00:01:01\"\nip = \"10.2.0.1\"\n",
            "pocketpxe.toml:10:6: interface \"br0\": subnet[0].host[0].ip: host 52:54:00:00:01:01=10.2.0.1 is not a client address in its subnet 10.1.0.0/24",
        ),
        (
            "relay-subnet = [\"10.1.0.0/24=10.1.0.1-10.1.0.9\", \"10.1.0.0/25=10.1.0.20-10.1.0.29\"]\n",
            "pocketpxe.toml:5:50: interface \"br0\": relay-subnet[1]: subnet 10.1.0.0/25 overlaps subnet 10.1.0.0/24 (of br0)",
        ),
        (
            "relay-subnet = [\"192.168.0.0/16=192.168.1.1-192.168.1.9\"]\n",
            "pocketpxe.toml:5:17: interface \"br0\": relay-subnet[0]: subnet 192.168.0.0/16 overlaps br0's own subnet",
        ),
        (
            "relay-subnet = [\"10.1.0.0/24\"]\n",
            "pocketpxe.toml:5:16: interface \"br0\": relay-subnet: '10.1.0.0/24' is not CIDR=START-END",
        ),
        (
            "mode = \"proxy\"\nrelay-subnet = [\"10.1.0.0/24=10.1.0.1-10.1.0.9\"]\n",
            "pocketpxe.toml:6:16: interface \"br0\": relay-subnet: `relay-subnet` only applies to mode = \"dhcp\"",
        ),
    ] {
        let e = err(&format!("{base}{extra}"));
        let e = e.trim_start_matches("/etc/pocketpxe/");
        assert!(e.starts_with(want), "got  {e}\nwant {want}");
    }
    // The same MAC in a subnet's host and an interface host.
    let e = err(&format!(
        "{base}[[interface.host]]\nmac = \"52:54:00:00:01:01\"\nip = \"192.168.242.50\"\n\
         [[interface.subnet]]\nnetwork = \"10.1.0.0/24\"\nrange = \"10.1.0.10-10.1.0.20\"\n\
         [[interface.subnet.host]]\nmac = \"52:54:00:00:01:01\"\nip = \"10.1.0.5\"\n"
    ));
    assert!(
        e.contains("subnet[0]: hosts") && e.contains("share the MAC"),
        "{e}"
    );
    // A flag's own error names the flag.
    let e = resolve_with(base, &["--relay-subnet", "10.1.0.0/24=10.1.1.1-10.1.1.2"]).unwrap_err();
    assert!(
        e.starts_with("--relay-subnet: range 10.1.1.1-10.1.1.2 is not inside"),
        "{e}"
    );
}

#[test]
fn top_level_subnets_are_defaults_of_dhcp_interfaces() {
    let text = "root = \"/r\"\n\
        [[subnet]]\nnetwork = \"10.1.0.0/24\"\nrange = \"10.1.0.10-10.1.0.20\"\n\
        [[interface]]\nname = \"br0\"\n\
        [[interface]]\nname = \"br1\"\nmode = \"proxy\"\n";
    let all = ok(text);
    assert_eq!(all[0].relay_subnet.len(), 1);
    assert!(
        all[1].relay_subnet.is_empty(),
        "a proxy interface skips them"
    );
    // Two dhcp interfaces would both declare it.
    let e = err(&text.replace("mode = \"proxy\"\n", ""));
    assert!(
        e.contains("subnet[0]: subnet 10.1.0.0/24 overlaps subnet 10.1.0.0/24 (of br0)"),
        "{e}"
    );
    // An interface's own tables replace the top level's.
    let own = ok(&text.replace(
        "name = \"br0\"\n",
        "name = \"br0\"\n[[interface.subnet]]\nnetwork = \"10.5.0.0/16\"\nrange = \"10.5.1.1-10.5.1.9\"\n",
    ));
    let nets: Vec<String> = own[0]
        .relay_subnet
        .iter()
        .map(|r| r.network.to_string())
        .collect();
    assert_eq!(nets, ["10.5.0.0/16"]);
}

#[test]
fn the_raspberry_pi_directory_is_the_boot_tables_rpi_key() {
    let all = ok(r#"
[[interface]]
name = "eth1"
root = "/srv/tftp"
boot = { bios = "pxelinux.0", rpi = "rpi" }
"#);
    assert_eq!(
        all[0].boot,
        [
            BootArg {
                class: ClientClass::Bios,
                file: "pxelinux.0".into()
            },
            BootArg {
                class: ClientClass::RaspberryPi,
                file: "rpi".into()
            }
        ]
    );
    let e = err(r#"
[[interface]]
name = "eth1"
root = "/srv/tftp"
boot = { raspberry = "rpi" }
"#);
    assert!(e.contains("ipxe or rpi"), "{e}");
}

#[test]
fn rpi_takes_no_per_client_rule() {
    let e = err(r#"
[[interface]]
name = "eth1"
root = "/srv/tftp"
[[interface.host]]
mac = "dc:a6:32:01:36:c2"
boot = "rpi/pi4"
class = "rpi"
"#);
    assert!(e.contains("rpi takes no per-client rule"), "{e}");
    let e = parse_from([
        "pocketpxe",
        "serve",
        "--interface",
        "eth1",
        "--boot-mac",
        "dc:a6:32:01:36:c2@rpi=rpi/pi4",
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("rpi takes no per-client rule"), "{e}");
}

#[test]
fn interfaces_may_share_a_lease_database_but_not_a_lease_file() {
    let text = "root = \"/r\"\nleases = \"postgresql://px:secret@db.example/leases\"\n\
                [[interface]]\nname = \"a\"\n[[interface]]\nname = \"b\"\n";
    let all = ok(text);
    assert_eq!(all.len(), 2);
    let described = describe(&all[1]);
    assert!(
        described.contains("leases=postgresql://db.example:5432/leases"),
        "{described}"
    );
    assert!(!described.contains("secret"), "{described}");
    assert!(
        err(&text.replace("postgresql://px:secret@db.example/leases", "/tmp/x"))
            .contains("would share the lease file /tmp/x")
    );
}

#[test]
fn a_flag_may_find_its_partner_in_the_file() {
    let nat = "[[interface]]\nname = \"eth1\"\nroot = \"/r\"\nnat = true\n";
    let all = resolve_with(nat, &["--uplink", "eth0"]).unwrap();
    assert_eq!(all[0].uplink.as_deref(), Some("eth0"));
    let e = resolve_with(&nat.replace("true", "false"), &["--uplink", "eth0"]).unwrap_err();
    assert!(e.contains("--uplink goes with --nat (or nat = true"), "{e}");

    let debian = "[[interface]]\nname = \"eth1\"\nroot = \"/r\"\ndebian = \"bookworm\"\n";
    let all = resolve_with(
        debian,
        &["--mirror", "http://mirror.lan/debian", "--via", "ipxe"],
    )
    .unwrap();
    assert_eq!(all[0].mirror, "http://mirror.lan/debian");
    let plain = "[[interface]]\nname = \"eth1\"\nroot = \"/r\"\n";
    for flag in [
        ["--mirror", "http://mirror.lan/debian"],
        ["--console", "ttyS0"],
        ["--via", "ipxe"],
    ] {
        let e = resolve_with(plain, &flag).unwrap_err();
        assert!(
            e.contains(&format!("{} goes with --debian", flag[0])),
            "{e}"
        );
    }
    let e = resolve_with(plain, &["--no-verify-signature"]).unwrap_err();
    assert!(
        e.contains("--no-verify-signature goes with --debian"),
        "{e}"
    );
}

#[test]
fn machine_tables_are_read_and_checked_at_their_key() {
    let text = r#"
root = "/srv/tftp"
control = "127.0.0.1:8067"
api = "http://10.0.0.5:8080"

[[machine]]
mac = "52:54:00:12:34:56"
hostname = "node-1"
address = "192.168.242.20"
kernel = "vmlinuz"
initrd = ["initrd.gz"]
cmdline = "console=ttyS0"
policy = "once"

[[machine]]
mac = "52:54:00:12:34:57"
policy = "never"

[[interface]]
name = "br0"
address = "192.168.242.1/24"
"#;
    let all = ok(text);
    assert_eq!(all[0].machines.len(), 2);
    assert_eq!(all[0].machines[0].hostname.as_deref(), Some("node-1"));
    assert_eq!(all[0].machines[1].policy, crate::machines::Policy::Never);
    assert_eq!(all[0].control, Some("127.0.0.1:8067".parse().unwrap()));
    assert_eq!(all[0].api.as_deref(), Some("http://10.0.0.5:8080"));
    let e = err(&text.replace("policy = \"never\"", "policy = \"twice\""));
    assert!(
        e.contains(":17:10: machine[1].policy") && e.contains("always, once or never"),
        "{e}"
    );
    let e = err(&text.replace("mac = \"52:54:00:12:34:57\"", "mac = \"52:54:00:12:34:56\""));
    assert!(e.contains("a second [[machine]]"), "{e}");
    let e = err(&format!("{text}control = \"127.0.0.1:1\"\n"));
    assert!(e.contains("process-wide"), "{e}");
}

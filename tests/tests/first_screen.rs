//! Measurement, not a check: how long from power-on until the Debian installer's first screen
//! shows on the serial console, for each way a QEMU (TCG) machine can get there. Ignored by
//! `cargo test` (a run takes many minutes); `benches/first_screen.sh` runs it, and
//! benches/README.md ("First screen") has the method and the results.
//!
//! Cases, BIOS (SeaBIOS + QEMU's iPXE ROM on an e1000) and UEFI (OVMF, EDK2's own PXE on
//! virtio-net) each:
//! * `pocketpxe --via ipxe`: the boot table `serve --debian --via ipxe` sets up (BIOS
//!   `undionly.kpxe`, UEFI `snponly.efi`, iPXE clients the `boot.ipxe` script), kernel and
//!   initrd over `serve`'s HTTP. QEMU's BIOS ROM already is iPXE and gets the script at once.
//! * `pocketpxe --via tftp`: the `--via tftp` table (BIOS `pxelinux.0`, UEFI shim, which
//!   chains GRUB), everything over TFTP.
//! * `dnsmasq`: DHCP + TFTP with pxelinux for BIOS and shim + GRUB for UEFI
//!   ([`server::dnsmasq_boot_server`]).
//! * `direct`: no network boot at all; QEMU loads the same kernel and initrd itself
//!   (`-kernel`/`-initrd`), so what is left is firmware start-up plus Linux and the installer
//!   starting under TCG: the floor no boot server can go below.
//!
//! Every menu boots at once (pxelinux `TIMEOUT 0`, GRUB `timeout=0`, an iPXE script without a
//! menu) with the same kernel command line, so the cases differ only in the path the files
//! take. The cases run interleaved, forwards in even rounds and backwards in odd ones, so that
//! a drift in the machine's load spreads over all of them. Besides the first screen, the run
//! records when each milestone first showed up in the server's log or on the serial console
//! (polled every 100 ms): DHCP done, first boot file sent, kernel sent, initrd sent, Linux
//! started, `/init` started.
//!
//! Environment: `POCKETPXE_FIRST_SCREEN_ROUNDS` (default 2, at most 10),
//! `POCKETPXE_FIRST_SCREEN_OUT` (a directory for the table and every run's serial console and
//! server log), `POCKETPXE_BIN` (the pocketpxe binary; the script passes a release build).

// Measurement code: a panic with the harness's report is the failure.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pocketpxe_tests::gate::{self, QEMU};
use pocketpxe_tests::netns::Lab;
use pocketpxe_tests::process::Proc;
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::serial::Console;
use pocketpxe_tests::server::{self, Serve};
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::{
    CONSOLE, INITRD, KERNEL, PXELINUX, SHIM, SNPONLY, TftpRoot, marker,
};
use pocketpxe_tests::{begin, secs};

/// Where `serve --debian` puts the iPXE script and `undionly.kpxe` (host/src/fetch).
const SCRIPT: &str = "debian-installer/amd64/boot.ipxe";
const UNDIONLY: &str = "ipxe/undionly.kpxe";
const UNDIONLY_PACKAGE: &str = "/usr/lib/ipxe/undionly.kpxe";
/// One boot, power-on to first screen, at most (the slowest seen is about 80 s).
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(100);
const MAX_ROUNDS: usize = 10;

#[test]
#[ignore = "a measurement of many minutes: run by benches/first_screen.sh"]
fn first_screen_times() {
    let mut needs = gate::vm_needs(&[gate::BIOS, gate::UEFI]);
    needs.extend([
        gate::Need::File(gate::SNPONLY_EFI),
        gate::Need::Program("dnsmasq"),
        gate::Need::Program("unshare"),
    ]);
    let Some(_lock) = begin("first_screen_times", &needs) else {
        return;
    };
    let rounds = std::env::var("POCKETPXE_FIRST_SCREEN_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(2)
        .clamp(1, MAX_ROUNDS);
    let out = std::env::var_os("POCKETPXE_FIRST_SCREEN_OUT").map(PathBuf::from);
    if let Some(out) = &out {
        std::fs::create_dir_all(out).unwrap();
    }
    let root = bench_root();

    let cases: Vec<Case> = [Firmware::Bios, Firmware::Uefi]
        .into_iter()
        .flat_map(|firmware| {
            [Route::Ipxe, Route::Tftp, Route::Dnsmasq, Route::Direct]
                .map(|path| Case { firmware, path })
        })
        .collect();
    let mut runs: Vec<Run> = Vec::new();
    for round in 0..rounds {
        let order: Vec<&Case> = if round % 2 == 0 {
            cases.iter().collect()
        } else {
            cases.iter().rev().collect()
        };
        for case in order {
            let load = load_average();
            let result = run_case(case, &root, round, out.as_deref());
            let line = match &result {
                Ok(m) => format!(
                    "round {}: {} {}: first screen after {} (load {load:.2})",
                    round + 1,
                    case.firmware_name(),
                    case.path.name(),
                    m.first_screen.map_or_else(|| "-".to_owned(), secs)
                ),
                Err(e) => format!(
                    "round {}: {} {}: FAILED (load {load:.2}): {e}",
                    round + 1,
                    case.firmware_name(),
                    case.path.name()
                ),
            };
            pocketpxe_tests::report(&line);
            runs.push(Run {
                case: *case,
                load,
                result,
            });
        }
    }

    let table = table(&cases, &runs, rounds);
    pocketpxe_tests::report(&table);
    if let Some(out) = &out {
        std::fs::write(out.join("table.md"), &table).unwrap();
    }
    let failed = runs.iter().filter(|r| r.result.is_err()).count();
    assert_eq!(
        failed,
        0,
        "{failed} of {} boots failed (see above)",
        runs.len()
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Ipxe,
    Tftp,
    Dnsmasq,
    Direct,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Self::Ipxe => "pocketpxe --via ipxe",
            Self::Tftp => "pocketpxe --via tftp",
            Self::Dnsmasq => "dnsmasq",
            Self::Direct => "direct -kernel (floor)",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::Ipxe => "ipxe",
            Self::Tftp => "tftp",
            Self::Dnsmasq => "dnsmasq",
            Self::Direct => "direct",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Case {
    firmware: Firmware,
    path: Route,
}

impl Case {
    fn firmware_name(&self) -> &'static str {
        match self.firmware {
            Firmware::Bios => "BIOS",
            _ => "UEFI",
        }
    }
}

#[derive(Debug)]
struct Run {
    case: Case,
    /// The 1-minute load average when the boot started.
    load: f64,
    result: Result<Milestones, String>,
}

/// When each step was first seen, from QEMU's start.
#[derive(Debug, Default, Clone, Copy)]
struct Milestones {
    dhcp: Option<Duration>,
    first_file: Option<Duration>,
    kernel_sent: Option<Duration>,
    initrd_sent: Option<Duration>,
    linux: Option<Duration>,
    init: Option<Duration>,
    first_screen: Option<Duration>,
}

/// The columns of the milestone table: name and accessor.
type Column = (&'static str, fn(&Milestones) -> Option<Duration>);
const COLUMNS: [Column; 7] = [
    ("DHCP done", |m| m.dhcp),
    ("1st file sent", |m| m.first_file),
    ("kernel sent", |m| m.kernel_sent),
    ("initrd sent", |m| m.initrd_sent),
    ("Linux started", |m| m.linux),
    ("/init", |m| m.init),
    ("first screen", |m| m.first_screen),
];

/// The Debian netboot tree with menus that boot at once, plus iPXE and its script.
fn bench_root() -> TftpRoot {
    let root = TftpRoot::debian_installer().unwrap();
    root.add_ipxe().unwrap();
    if let Ok(undionly) = std::fs::read(UNDIONLY_PACKAGE) {
        root.write(UNDIONLY, &undionly).unwrap();
    }
    root.write(
        "debian-installer/amd64/grub/grub.cfg",
        format!(
            "serial --unit=0 --speed=115200\nterminal_input serial console\n\
             terminal_output serial console\nset timeout=0\nset default=0\n\
             menuentry 'first screen' {{\n  linux /{KERNEL} {CONSOLE} ---\n  \
             initrd /{INITRD}\n}}\n"
        )
        .as_bytes(),
    )
    .unwrap();
    root.write(
        SCRIPT,
        format!(
            "#!ipxe\necho {}\nkernel /{KERNEL} initrd=initrd.gz {CONSOLE} ---\n\
             initrd --name initrd.gz /{INITRD}\nboot\n",
            marker::IPXE_SCRIPT
        )
        .as_bytes(),
    )
    .unwrap();
    root
}

/// One boot in a lab of its own; everything it started is stopped and the lab removed when it
/// returns (also on error).
fn run_case(
    case: &Case,
    root: &TftpRoot,
    round: usize,
    out: Option<&Path>,
) -> Result<Milestones, String> {
    let dir = TempDir::new("first-screen")?;
    let mut lab = Lab::new(true)?;
    let tap = lab.add_tap()?;
    let server_log = dir.join("server.log");
    let server: Option<Proc> = match case.path {
        Route::Ipxe => Some(
            Serve::new(root.path(), dir.path())
                .boot("bios", UNDIONLY)
                .boot("efi-x64", SNPONLY)
                .boot("ipxe", SCRIPT)
                .start(&lab.server, &server_log)?,
        ),
        Route::Tftp => Some(
            Serve::new(root.path(), dir.path())
                .boot("bios", PXELINUX)
                .boot("efi-x64", SHIM)
                .start(&lab.server, &server_log)?,
        ),
        Route::Dnsmasq => Some(server::start_dnsmasq(
            &lab.server,
            &server::dnsmasq_boot_server(root.path()),
            &server_log,
        )?),
        Route::Direct => None,
    };
    // The server's start-up lines are not part of the boot.
    let skip = server.as_ref().map_or(0, |s| s.log_text().len());

    let serial = dir.join("serial.log");
    let vm = Vm::new(case.firmware, &tap, 0x40, &serial);
    let start = Instant::now();
    let (mut qemu, console) = if case.path == Route::Direct {
        start_direct(&vm, root.path(), &lab)?
    } else {
        vm.start(&lab.lan)?
    };
    let result = watch(&mut qemu, &console, &server_log, skip, case.path, start);
    drop(qemu);
    drop(server);
    if let Some(out) = out {
        let name = format!(
            "r{}-{}-{}",
            round + 1,
            case.firmware_name().to_lowercase(),
            case.path.tag()
        );
        let _ = std::fs::copy(&serial, out.join(format!("{name}.serial.log")));
        let _ = std::fs::copy(&server_log, out.join(format!("{name}.server.log")));
    }
    result
}

/// QEMU as [`Vm`] builds it, but loading kernel and initrd itself instead of booting from the
/// network (the NIC stays, on a LAN without a server).
fn start_direct(vm: &Vm, root: &Path, lab: &Lab) -> Result<(Proc, Console), String> {
    let _ = std::fs::remove_file(&vm.serial);
    let mut args = vm.args();
    if let Some(i) = args.windows(2).position(|w| w[0] == "-boot" && w[1] == "n") {
        args.drain(i..i + 2);
    }
    let mut cmd = lab.lan.command(QEMU);
    cmd.args(&args)
        .arg("-kernel")
        .arg(root.join(KERNEL))
        .arg("-initrd")
        .arg(root.join(INITRD))
        .args(["-append", &format!("{CONSOLE} ---")]);
    let proc = Proc::spawn(
        "qemu (direct kernel)",
        cmd,
        &vm.serial.with_extension("qemu.log"),
    )?;
    Ok((proc, Console::new(&vm.serial)))
}

/// Polls the serial console and the server's log until the first screen shows, noting when
/// each milestone first appeared.
fn watch(
    qemu: &mut Proc,
    console: &Console,
    server_log: &Path,
    skip: usize,
    path: Route,
    start: Instant,
) -> Result<Milestones, String> {
    let mut m = Milestones::default();
    let deadline = start + BOOT_TIMEOUT;
    loop {
        let now = start.elapsed();
        let serial = console.text();
        let log = std::fs::read(server_log)
            .map(|b| String::from_utf8_lossy(b.get(skip..).unwrap_or_default()).into_owned())
            .unwrap_or_default();
        let note = |slot: &mut Option<Duration>, seen: bool| {
            if seen && slot.is_none() {
                *slot = Some(now);
            }
        };
        note(&mut m.dhcp, log.lines().any(|l| dhcp_done(l, path)));
        note(
            &mut m.first_file,
            log.lines().any(|l| file_sent(l, path, "")),
        );
        note(
            &mut m.kernel_sent,
            log.lines().any(|l| file_sent(l, path, "amd64/linux")),
        );
        note(
            &mut m.initrd_sent,
            log.lines().any(|l| file_sent(l, path, "amd64/initrd.gz")),
        );
        note(&mut m.linux, serial.contains(marker::KERNEL));
        note(&mut m.init, serial.contains(marker::INIT));
        note(
            &mut m.first_screen,
            serial.contains(marker::INSTALLER_FIRST_SCREEN),
        );
        if m.first_screen.is_some() {
            return Ok(m);
        }
        let why = if let Some(status) = qemu.exited() {
            format!("QEMU exited ({status})")
        } else if Instant::now() >= deadline {
            format!("no first screen within {BOOT_TIMEOUT:?}")
        } else {
            std::thread::sleep(POLL);
            continue;
        };
        return Err(format!(
            "{why}; milestones {m:?}\n--- serial ({}) ---\n{}\n--- {} ---\n{}",
            console.path().display(),
            pocketpxe_tests::serial::tail(&serial, 25),
            qemu.name(),
            qemu.log_tail(10)
        ));
    }
}

/// A DHCP ACK in the server's log.
fn dhcp_done(line: &str, path: Route) -> bool {
    match path {
        Route::Ipxe | Route::Tftp => line.contains("reply=ACK"),
        Route::Dnsmasq => line.contains("DHCPACK("),
        Route::Direct => false,
    }
}

/// A complete download of a file whose path ends with `suffix` (any file when empty), by TFTP
/// or HTTP, in the server's log.
fn file_sent(line: &str, path: Route, suffix: &str) -> bool {
    match path {
        Route::Ipxe | Route::Tftp => {
            line.contains("transfer ended")
                && (line.contains("outcome=ok") || line.contains("outcome=done"))
                && (suffix.is_empty() || line.contains(&format!("{suffix} ")))
        }
        // `sent /root/debian-installer/amd64/linux to 192.168.242.100`
        Route::Dnsmasq => {
            line.contains("sent /")
                && line.contains(" to ")
                && (suffix.is_empty() || line.contains(&format!("{suffix} to ")))
        }
        Route::Direct => false,
    }
}

/// The 1-minute load average (`/proc/loadavg`), or NaN.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// Two Markdown tables: first-screen medians with each round and the ratio to dnsmasq, and
/// the milestones' medians.
fn table(cases: &[Case], runs: &[Run], rounds: usize) -> String {
    let of = |case: &Case| -> Vec<&Run> { runs.iter().filter(|r| r.case == *case).collect() };
    let ok = |case: &Case| -> Vec<Milestones> {
        of(case)
            .iter()
            .filter_map(|r| r.result.as_ref().ok().copied())
            .collect()
    };
    let med = |case: &Case, f: fn(&Milestones) -> Option<Duration>| {
        median(
            ok(case)
                .iter()
                .filter_map(f)
                .map(|d| d.as_secs_f64())
                .collect(),
        )
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nFirst screen, s from power-on (QEMU TCG), median of {rounds} round(s)\n"
    );
    let _ = writeln!(
        t,
        "| firmware | path | median | each round | × dnsmasq | Linux → first screen | load (1 min) |"
    );
    let _ = writeln!(t, "|---|---|---:|---|---:|---:|---|");
    for case in cases {
        let first = med(case, |m| m.first_screen);
        let dnsmasq = med(
            &Case {
                firmware: case.firmware,
                path: Route::Dnsmasq,
            },
            |m| m.first_screen,
        );
        let each: Vec<String> = of(case)
            .iter()
            .map(|r| match &r.result {
                Ok(m) => cell(m.first_screen.map(|d| d.as_secs_f64())),
                Err(_) => "failed".to_owned(),
            })
            .collect();
        let linux_boot = median(
            ok(case)
                .iter()
                .filter_map(|m| Some((m.first_screen? - m.linux?).as_secs_f64()))
                .collect(),
        );
        let loads: Vec<String> = of(case).iter().map(|r| format!("{:.2}", r.load)).collect();
        let ratio = match (first, dnsmasq) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {ratio} | {} | {} |",
            case.firmware_name(),
            case.path.name(),
            cell(first),
            each.join(", "),
            cell(linux_boot),
            loads.join(", ")
        );
    }
    let _ = writeln!(t, "\nMilestones, s from power-on, medians\n");
    let mut header = "| firmware | path |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for (name, _) in COLUMNS {
        let _ = write!(header, " {name} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(t, "{header}\n{rule}");
    for case in cases {
        let mut row = format!("| {} | {} |", case.firmware_name(), case.path.name());
        for (_, f) in COLUMNS {
            let _ = write!(row, " {} |", cell(med(case, f)));
        }
        let _ = writeln!(t, "{row}");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_recognised() {
        let tftp = "INFO pocketpxe::serve::tftp: transfer ended client=192.168.242.100:2070 \
                    file=debian-installer/amd64/linux asked=tsize granted=tsize size=1 bytes=1 \
                    outcome=ok";
        assert!(file_sent(tftp, Route::Tftp, "amd64/linux"));
        assert!(!file_sent(tftp, Route::Tftp, "amd64/initrd.gz"));
        let probe = tftp.replace("outcome=ok", "outcome=size probe (client ended after OACK)");
        assert!(!file_sent(&probe, Route::Tftp, ""));
        let http = "INFO pocketpxe::serve::http: HTTP transfer ended client=192.168.242.100:1 \
                    file=debian-installer/amd64/initrd.gz status=200 outcome=done";
        assert!(file_sent(http, Route::Ipxe, "amd64/initrd.gz"));
        let dnsmasq = "dnsmasq-tftp: sent /tmp/x/debian-installer/amd64/linux to 192.168.242.100";
        assert!(!file_sent(
            "dnsmasq-dhcp: 1 sent size:  1 option: 53 message-type  5",
            Route::Dnsmasq,
            ""
        ));
        assert!(file_sent(dnsmasq, Route::Dnsmasq, "amd64/linux"));
        assert!(!file_sent(dnsmasq, Route::Dnsmasq, "amd64/initrd.gz"));
        assert!(dhcp_done(
            "dnsmasq-dhcp: 1 DHCPACK(lan0) 192.168.242.100 52:54:00:e2:e2:40",
            Route::Dnsmasq
        ));
        assert!(dhcp_done("DHCP interface=lan0 reply=ACK", Route::Ipxe));
        assert!(!dhcp_done("DHCP interface=lan0 reply=OFFER", Route::Ipxe));
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}

//! Scenario: machine records (docs/machines.md) with real firmware, one server, four boots of
//! BIOS VMs (SeaBIOS + the iPXE e1000 ROM) one after the other, the `once` machine with an
//! empty disk:
//!
//! 1. policy `once`: iPXE gets the machine's generated script, loads the Debian installer's
//!    kernel and a busybox initramfs over HTTP; its `/init` gets a lease, calls the
//!    install-done URL from the kernel command line with busybox `wget` (as a preseed
//!    `late_command` would) and reboots (QEMU exits: `-no-reboot`);
//! 2. the same machine again: it gets the script that exits to the next boot device, and no
//!    kernel (asserted from the serial console and the server's log);
//! 3. policy `never`: its DHCP requests get no answer at all;
//! 4. a machine without a record: the pixiecore-style backend (busybox httpd serving
//!    `v1/boot/MAC`) says what it boots, and it boots that.
//!
//! The control API's event stream (`curl -N`) is recorded throughout and must show the install
//! mark and the boots.

// Setup helpers outside `#[test]`: a failed step is a test failure.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pocketpxe_tests::initramfs::{busybox_machine_probe, marker as probe};
use pocketpxe_tests::netns::{Lab, SERVER_IP};
use pocketpxe_tests::process::Proc;
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::server::Serve;
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::{INITRD, KERNEL, PROBE_INITRD, TftpRoot, marker};
use pocketpxe_tests::{begin, gate, report, secs};

const TEST: &str = "machine_records_once_never_and_pixiecore_api";
/// Power-on to the probe's last line; measured ~40 s under TCG on 2 busy cores.
const BOOT: Duration = Duration::from_secs(300);
const ONCE: u8 = 0x31;
const NEVER: u8 = 0x32;
const PIXIE: u8 = 0x33;
const CONTROL: &str = "127.0.0.1:8067";

fn mac(n: u8) -> String {
    format!("52:54:00:e2:e2:{n:02x}")
}

#[test]
fn machine_records_once_never_and_pixiecore_api() {
    let mut needs = gate::vm_needs(&[gate::BIOS]);
    needs.extend([
        gate::Need::File(gate::BUSYBOX),
        gate::Need::Program("unshare"),
        gate::Need::Program("curl"),
    ]);
    let Some(_lock) = begin(TEST, &needs) else {
        return;
    };
    let started = Instant::now();
    let dir = TempDir::new("machines").unwrap();
    let root = TftpRoot::debian_installer().unwrap();
    let initramfs = busybox_machine_probe(&root.path().join(INITRD)).unwrap();
    root.write(PROBE_INITRD, &initramfs).unwrap();
    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();

    // The pixiecore-style backend: one answer, 404 for everyone else. The kernel comes from
    // pocketpxe's HTTP server (an absolute URL), the initrd from the backend (a naked path).
    let www = dir.join("www");
    std::fs::create_dir_all(www.join("v1/boot")).unwrap();
    std::fs::write(www.join("probe-initrd"), &initramfs).unwrap();
    std::fs::write(
        www.join(format!("v1/boot/{}", mac(PIXIE))),
        format!(
            r#"{{"kernel": "http://{SERVER_IP}/{KERNEL}", "initrd": ["/probe-initrd"], "cmdline": "console=ttyS0,115200 rdinit=/init panic=5", "message": "e2e pixiecore"}}"#
        ),
    )
    .unwrap();
    let mut httpd = lab.server.command(gate::BUSYBOX);
    httpd.args([
        "httpd",
        "-f",
        "-v",
        "-p",
        &format!("{SERVER_IP}:8081"),
        "-h",
    ]);
    httpd.arg(&www);
    let backend_log = dir.join("backend.log");
    let _backend = Proc::spawn("busybox httpd (backend)", httpd, &backend_log).unwrap();

    let config = dir.join("pocketpxe.toml");
    std::fs::write(
        &config,
        format!(
            r#"control = "{CONTROL}"
machine-state = "{state}"
api = "http://{SERVER_IP}:8081"

[[machine]]
mac = "{once}"
hostname = "e2e-once"
kernel = "{KERNEL}"
initrd = ["{PROBE_INITRD}"]
cmdline = "console=ttyS0,115200 rdinit=/init panic=5 done=http://{SERVER_IP}/pocketpxe/machines/${{net0/mac:hexhyp}}/installed"
policy = "once"

[[machine]]
mac = "{never}"
policy = "never"
"#,
            state = dir.join("machines.json").display(),
            once = mac(ONCE),
            never = mac(NEVER),
        ),
    )
    .unwrap();
    let server_log = dir.join("pocketpxe.log");
    let config_arg = config.display().to_string();
    let mut server = Serve::new(root.path(), dir.path())
        .boot("bios", "pxelinux.0")
        .flags(&["--config", &config_arg, "--boot-quiet", "3s"])
        .start(&lab.server, &server_log)
        .unwrap();
    let mut curl = lab.server.command("curl");
    curl.args([
        "-sN",
        "--max-time",
        "900",
        &format!("http://{CONTROL}/v1/events"),
    ]);
    let events_log = dir.join("events.log");
    let _events = Proc::spawn("curl (events)", curl, &events_log).unwrap();
    let log = || std::fs::read_to_string(&server_log).unwrap_or_default();

    // 1. Policy once, a machine with an empty disk: the installer stand-in runs and calls back.
    let disk = dir.join("empty-disk.img");
    std::fs::File::create(&disk)
        .and_then(|f| f.set_len(16 << 20))
        .unwrap();
    let (mut vm, console) = Vm::new(Firmware::Bios, &tap, ONCE, &dir.join("once-1.log"))
        .with_disk(&disk)
        .start(&lab.lan)
        .unwrap();
    console
        .wait_for(&mut vm, probe::MACHINE_BOOTED, BOOT)
        .unwrap_or_else(|e| panic!("{e}\n--- server ---\n{}", log()));
    let first = started.elapsed();
    let serial = console.text();
    assert!(
        serial.contains(&format!("{} ok", probe::CALLBACK_OK)),
        "the callback failed:\n{serial}\n--- server ---\n{}",
        log()
    );
    assert!(
        vm.wait_timeout(Duration::from_secs(60)).is_some(),
        "no reboot"
    );
    assert!(
        log().contains("machine reported its install done"),
        "{}",
        log()
    );
    let kernel_downloads = || {
        log()
            .lines()
            .filter(|l| l.contains("HTTP transfer ended") && l.contains(&format!("file={KERNEL} ")))
            .count()
    };
    assert_eq!(kernel_downloads(), 1, "{}", log());
    let scripts = |n: u8| {
        log()
            .lines()
            .filter(|l| {
                l.contains("HTTP machine request")
                    && l.contains(&mac(n))
                    && l.contains("boot.ipxe")
                    && l.contains("status=200")
            })
            .count()
    };
    assert_eq!(scripts(ONCE), 1, "{}", log());

    // 2. The same machine reboots: the exit script, no installer.
    let (mut vm, console) = Vm::new(Firmware::Bios, &tap, ONCE, &dir.join("once-2.log"))
        .with_disk(&disk)
        .start(&lab.lan)
        .unwrap();
    let wait = Instant::now();
    while scripts(ONCE) < 2 {
        assert!(
            wait.elapsed() < BOOT,
            "the second boot fetched no script:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Time to load a kernel if it were told to (the first boot took seconds from here).
    std::thread::sleep(Duration::from_secs(20));
    let serial = console.text();
    assert!(
        !serial.contains(marker::KERNEL) && !serial.contains(probe::MACHINE_BOOTED),
        "the installed machine booted the installer again:\n{serial}"
    );
    assert_eq!(kernel_downloads(), 1, "{}", log());
    vm.kill();
    let second = started.elapsed();

    // 3. Policy never: no answer of any kind.
    let (mut vm, _console) = Vm::new(Firmware::Bios, &tap, NEVER, &dir.join("never.log"))
        .start(&lab.lan)
        .unwrap();
    let ignored = || {
        log()
            .lines()
            .filter(|l| l.contains(&mac(NEVER)) && l.contains("ignored for this client"))
            .count()
    };
    let wait = Instant::now();
    while ignored() < 2 {
        assert!(
            wait.elapsed() < BOOT,
            "the never machine sent no DHCP:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(5));
    let answered: Vec<String> = log()
        .lines()
        .filter(|l| l.contains(&mac(NEVER)) && (l.contains("OFFER") || l.contains("ACK")))
        .map(str::to_owned)
        .collect();
    assert!(
        answered.is_empty(),
        "the never machine got answers: {answered:#?}"
    );
    vm.kill();
    let third = started.elapsed();

    // 4. No record: the backend's answer boots it.
    let (mut vm, console) = Vm::new(Firmware::Bios, &tap, PIXIE, &dir.join("pixie.log"))
        .start(&lab.lan)
        .unwrap();
    console
        .wait_for(&mut vm, probe::MACHINE_BOOTED, BOOT)
        .unwrap_or_else(|e| panic!("{e}\n--- server ---\n{}", log()));
    assert!(
        log().contains("pixiecore API: boot this machine"),
        "{}",
        log()
    );
    // busybox httpd -v logs `CLIENT:PORT: response:STATUS`: pocketpxe asked once (the answer
    // is cached), the VM fetched the initrd.
    let backend = std::fs::read_to_string(&backend_log).unwrap_or_default();
    let from = |server: bool| {
        backend
            .lines()
            .filter(|l| l.contains("response:200"))
            .filter(|l| l.starts_with(&format!("{SERVER_IP}:")) == server)
            .count()
    };
    assert_eq!((from(true), from(false)), (1, 1), "backend log:\n{backend}");
    let fourth = started.elapsed();

    // The event stream: the install mark and the boots of the once machine.
    let wait = Instant::now();
    loop {
        let events = std::fs::read_to_string(&events_log).unwrap_or_default();
        let boot = events
            .lines()
            .any(|l| l.starts_with("data: {\"boot\":") && l.contains(&mac(ONCE)));
        if boot && events.contains("\"event\":\"installed\"") {
            break;
        }
        assert!(
            wait.elapsed() < Duration::from_secs(30),
            "events:\n{events}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let answer = lab
        .server
        .run(
            "curl",
            &["-s", &format!("http://{CONTROL}/v1/machines/{}", mac(ONCE))],
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(
        answer.contains("\"installed\":") && !answer.contains("\"installed\":null"),
        "{answer}"
    );
    server.kill();
    report(&format!(
        "machines: once installed after {}, second boot went to the disk by {}, never ignored \
         by {}, pixiecore-style answer booted by {}",
        secs(first),
        secs(second),
        secs(third),
        secs(fourth)
    ));
}

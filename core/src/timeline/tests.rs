use super::*;
use crate::wire::tftp::ErrorCode;
use std::format;
use std::vec::Vec;

const MAC: Mac = Mac([0x52, 0x54, 0x00, 0xa5, 0x00, 0x01]);
const MAC2: Mac = Mac([0x52, 0x54, 0x00, 0xa5, 0x00, 0x02]);
const SECOND: Duration = Duration::from_secs(1);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 242, last)
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn summary(
    request: MessageType,
    mac: Mac,
    class: Option<ClientClass>,
    reply: Option<MessageType>,
) -> Summary {
    Summary {
        request,
        reply,
        mac,
        class,
        vendor_class: None,
        hostname: None,
        requested_ip: None,
        your_ip: None,
        client_ip: None,
        next_server: None,
        boot_file: None,
    }
}

/// An address-giving server's answer to `request`: `ip(10)` and `file`.
fn served(request: MessageType, mac: Mac, class: Option<ClientClass>, file: &str) -> Summary {
    let reply = match request {
        MessageType::Discover => MessageType::Offer,
        _ => MessageType::Ack,
    };
    let mut s = summary(request, mac, class, Some(reply));
    s.your_ip = Some(ip(10));
    if !file.is_empty() {
        s.boot_file = Some(file.try_into().unwrap());
    }
    s
}

/// A proxy's offer: a boot file, no address.
fn proxy_offer(mac: Mac) -> Summary {
    let mut s = summary(
        MessageType::Discover,
        mac,
        Some(ClientClass::Bios),
        Some(MessageType::Offer),
    );
    s.boot_file = Some("pxelinux.0".try_into().unwrap());
    s
}

fn peer(mac: Option<Mac>) -> Peer {
    Peer {
        address: ip(10),
        mac,
    }
}

fn end(outcome: Outcome, bytes: u64, ms: u64) -> TransferEnd {
    TransferEnd {
        outcome,
        bytes,
        duration: Duration::from_millis(ms),
        blksize: 1468,
    }
}

fn timeline(slots: &mut [ClientSlot]) -> Timeline<'_> {
    Timeline::new(TimelineConfig::default(), slots)
}

/// DISCOVER/OFFER and REQUEST/ACK of a UEFI client named pc1, handed `grubx64.efi`.
fn dhcp_boot(t: &mut Timeline<'_>, ms: u64) {
    let mut offer = served(
        MessageType::Discover,
        MAC,
        Some(ClientClass::EfiX64),
        "grubx64.efi",
    );
    offer.hostname = Some("pc1".try_into().unwrap());
    t.handle_dhcp(at(ms), &offer, 67, None);
    let ack = served(
        MessageType::Request,
        MAC,
        Some(ClientClass::EfiX64),
        "grubx64.efi",
    );
    t.handle_dhcp(at(ms + 100), &ack, 67, None);
}

fn diagnoses(t: &mut Timeline<'_>) -> Vec<Diagnosis> {
    core::iter::from_fn(|| t.poll_diagnosis()).collect()
}

fn records(t: &mut Timeline<'_>) -> Vec<BootRecord> {
    core::iter::from_fn(|| t.poll_record()).collect()
}

#[test]
fn a_boot_that_fetches_its_files_is_booted_after_the_quiet_period() {
    let mut slots = [ClientSlot::EMPTY; 4];
    let mut t = timeline(&mut slots);
    dhcp_boot(&mut t, 1000);
    let client = peer(Some(MAC));
    t.handle_tftp_request(at(1500), client, "grubx64.efi", Some(2000));
    t.handle_tftp_end(
        at(1800),
        client,
        "grubx64.efi",
        end(Outcome::Done, 2000, 300),
    );
    t.handle_tftp_request(at(2000), client, "grub/grub.cfg", Some(24));
    t.handle_tftp_end(
        at(2010),
        client,
        "grub/grub.cfg",
        end(Outcome::Done, 24, 10),
    );
    assert_eq!(t.active().count(), 1);
    // Not quiet long enough yet.
    assert_eq!(t.poll_timeout(), Some(at(2010) + 10 * SECOND));
    t.handle_timeout(at(11_000));
    assert!(records(&mut t).is_empty());
    t.handle_timeout(at(12_010));
    assert!(diagnoses(&mut t).is_empty());
    let recs = records(&mut t);
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(rec.outcome, BootOutcome::Booted);
    assert_eq!(rec.mac, Some(MAC));
    assert_eq!(rec.class, Some(ClientClass::EfiX64));
    assert_eq!(rec.address, Some(ip(10)));
    assert_eq!(rec.total(), Duration::from_millis(1010));
    assert_eq!(rec.bytes(), 2024);
    assert_eq!(
        format!("{rec}"),
        "boot booted mac=52:54:00:a5:00:01 class=efi-x64 ip=192.168.242.10 hostname=pc1 \
         time=1.010s files=2 bytes=2024 list=\"grubx64.efi 2000 bytes 300 ms, \
         grub/grub.cfg 24 bytes 10 ms\""
    );
    assert_eq!(t.active().count(), 0);
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn a_transfer_that_fails_last_fails_the_boot_and_one_still_running_leaves_it_incomplete() {
    let mut slots = [ClientSlot::EMPTY; 4];
    let mut t = timeline(&mut slots);
    dhcp_boot(&mut t, 0);
    let client = peer(Some(MAC));
    t.handle_tftp_request(at(500), client, "grubx64.efi", Some(5000));
    t.handle_tftp_end(
        at(6500),
        client,
        "grubx64.efi",
        end(Outcome::Failed(FailReason::TimedOut), 2936, 6000),
    );
    t.handle_timeout(at(16_500));
    let rec = records(&mut t).pop().expect("a record");
    assert_eq!(
        rec.outcome,
        BootOutcome::Failed(FailCause::Transfer(FailReason::TimedOut))
    );
    assert!(
        format!("{rec}").starts_with("boot failed (transfer timed out) mac=52:54:00:a5:00:01"),
        "{rec}"
    );
    assert!(format!("{rec}").ends_with("grubx64.efi 2936 bytes 6000 ms failed: timed out\""));

    // A transfer whose end never came: the boot ends after `stale`, incomplete.
    dhcp_boot(&mut t, 20_000);
    t.handle_tftp_request(at(20_500), client, "grubx64.efi", Some(5000));
    t.handle_timeout(at(40_500));
    assert!(
        records(&mut t).is_empty(),
        "a running transfer holds the boot"
    );
    t.handle_timeout(at(20_500) + t.config().stale);
    let rec = records(&mut t).pop().expect("a record");
    assert_eq!(rec.outcome, BootOutcome::Incomplete);
    assert!(format!("{rec}").contains("unfinished"));

    // DHCP and no file: incomplete.
    dhcp_boot(&mut t, 400_000);
    t.handle_timeout(at(500_000));
    let rec = records(&mut t).pop().expect("a record");
    assert_eq!(rec.outcome, BootOutcome::Incomplete);
    assert!(rec.files.is_empty());
}

#[test]
fn plain_dhcp_clients_are_not_followed_and_a_size_probe_is_no_file() {
    let mut slots = [ClientSlot::EMPTY; 4];
    let mut t = timeline(&mut slots);
    t.handle_dhcp(
        at(0),
        &served(MessageType::Discover, MAC2, None, ""),
        67,
        None,
    );
    t.handle_dhcp(
        at(1),
        &served(MessageType::Request, MAC2, None, ""),
        67,
        None,
    );
    assert_eq!(t.active().count(), 0);
    assert_eq!(t.poll_timeout(), None);
    // OVMF probes the size first, then fetches.
    dhcp_boot(&mut t, 10);
    let client = peer(Some(MAC));
    t.handle_tftp_request(at(200), client, "grubx64.efi", Some(99));
    t.handle_tftp_end(
        at(201),
        client,
        "grubx64.efi",
        end(Outcome::SizeProbe, 0, 1),
    );
    assert!(t.active().next().unwrap().files.is_empty());
    t.handle_tftp_request(at(202), client, "grubx64.efi", Some(99));
    t.handle_tftp_end(at(210), client, "grubx64.efi", end(Outcome::Done, 99, 8));
    t.handle_timeout(at(20_000));
    let rec = records(&mut t).pop().expect("a record");
    assert_eq!((rec.outcome, rec.files.len()), (BootOutcome::Booted, 1));
}

#[test]
fn a_proxy_offer_ignored_is_diagnosed_once() {
    let mut slots = [ClientSlot::EMPTY; 4];
    let mut t = timeline(&mut slots);
    t.handle_dhcp(at(0), &proxy_offer(MAC), 67, None);
    // Rediscovering before taking any address is not the pattern (PXE ROMs retry).
    t.handle_dhcp(at(1000), &proxy_offer(MAC), 67, None);
    assert!(diagnoses(&mut t).is_empty());
    // The client takes the DHCP server's address, then starts over without port 4011.
    let mut request = summary(MessageType::Request, MAC, Some(ClientClass::Bios), None);
    request.requested_ip = Some(ip(77));
    t.handle_dhcp(at(2000), &request, 67, Some(IgnoreReason::NotAddressedToUs));
    t.handle_dhcp(at(3000), &proxy_offer(MAC), 67, None);
    t.handle_dhcp(at(4000), &proxy_offer(MAC), 67, None);
    let found = diagnoses(&mut t);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].kind,
        DiagnosisKind::ProxyOfferIgnored { discovers: 3 }
    );
    assert_eq!(found[0].address, Some(ip(77)));
    assert_eq!(
        format!("{}", found[0]),
        "client ignored the proxy offer mac=52:54:00:a5:00:01 class=bios ip=192.168.242.77 \
         discovers=3: the client took its address from the DHCP server but never asked this \
         server on UDP port 4011: check that no firewall drops port 4011, or let pocketpxe give \
         the addresses (--mode dhcp)"
    );
    t.handle_timeout(at(100_000));
    let rec = records(&mut t).pop().expect("a record");
    assert_eq!(
        rec.outcome,
        BootOutcome::Failed(FailCause::ProxyOfferIgnored)
    );
    assert_eq!(rec.diagnoses, DiagnosisSet::PROXY_OFFER_IGNORED);

    // A client that comes to port 4011 after the same start is fine.
    t.handle_dhcp(at(200_000), &proxy_offer(MAC2), 67, None);
    let mut request = summary(MessageType::Request, MAC2, Some(ClientClass::Bios), None);
    request.requested_ip = Some(ip(78));
    t.handle_dhcp(
        at(200_100),
        &request,
        67,
        Some(IgnoreReason::NotAddressedToUs),
    );
    let mut boot = summary(
        MessageType::Request,
        MAC2,
        Some(ClientClass::Bios),
        Some(MessageType::Ack),
    );
    boot.client_ip = Some(ip(78));
    boot.boot_file = Some("pxelinux.0".try_into().unwrap());
    t.handle_dhcp(at(200_200), &boot, PXE_PORT, None);
    t.handle_dhcp(at(200_300), &proxy_offer(MAC2), 67, None);
    assert!(diagnoses(&mut t).is_empty());
}

#[test]
fn a_class_without_a_boot_rule_is_diagnosed_with_its_flag() {
    let mut slots = [ClientSlot::EMPTY; 4];
    let mut t = timeline(&mut slots);
    // Proxy: the core ignores the client.
    let s = summary(
        MessageType::Discover,
        MAC,
        Some(ClientClass::EfiArm64),
        None,
    );
    t.handle_dhcp(at(0), &s, 67, Some(IgnoreReason::NoBootRule));
    t.handle_dhcp(at(4000), &s, 67, Some(IgnoreReason::NoBootRule));
    // Address-giving: an offer without a file.
    let offer = served(MessageType::Discover, MAC2, Some(ClientClass::EfiX64), "");
    t.handle_dhcp(at(10), &offer, 67, None);
    let found = diagnoses(&mut t);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0].kind,
        DiagnosisKind::NoBootRule {
            class: ClientClass::EfiArm64
        }
    );
    assert_eq!(
        format!("{}", found[0]),
        "no boot rule for the client's class mac=52:54:00:a5:00:01 class=efi-arm64: add a boot \
         file for the class with --boot efi-arm64=FILE"
    );
    assert_eq!(
        found[1].kind,
        DiagnosisKind::NoBootRule {
            class: ClientClass::EfiX64
        }
    );
    t.handle_timeout(at(100_000));
    let recs = records(&mut t);
    assert_eq!(recs.len(), 2);
    assert!(
        recs.iter()
            .all(|r| r.outcome == BootOutcome::Failed(FailCause::NoBootRule))
    );
    assert_eq!(format!("{}", recs[0]).split(' ').nth(1), Some("failed"));
}

#[test]
fn a_missing_boot_file_is_diagnosed_at_once_and_missing_probes_only_if_nothing_follows() {
    let mut slots = [ClientSlot::EMPTY; 4];
    let mut t = timeline(&mut slots);
    dhcp_boot(&mut t, 0);
    let client = peer(Some(MAC));
    t.handle_tftp_refused(at(500), client, "/grubx64.efi", RejectReason::NotFound);
    let found = diagnoses(&mut t);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].kind,
        DiagnosisKind::FileNotFound {
            path: "/grubx64.efi".try_into().unwrap()
        }
    );
    assert_eq!(
        format!("{}", found[0]),
        "file not found mac=52:54:00:a5:00:01 class=efi-x64 ip=192.168.242.10 \
         path=/grubx64.efi: the path is relative to --root: check the name (and its case) \
         and the --boot flags"
    );
    t.handle_tftp_refused(at(600), client, "grubx64.efi", RejectReason::NotFound);
    assert!(diagnoses(&mut t).is_empty(), "once per boot");
    t.handle_timeout(at(20_000));
    let rec = records(&mut t).pop().expect("a record");
    assert_eq!(rec.outcome, BootOutcome::Failed(FailCause::FileNotFound));
    assert_eq!(rec.not_found, 2);

    // PXELINUX probes config names; the one it finds ends the story well.
    dhcp_boot(&mut t, 100_000);
    t.handle_tftp_request(at(100_200), client, "grubx64.efi", None);
    t.handle_tftp_end(
        at(100_300),
        client,
        "grubx64.efi",
        end(Outcome::Done, 10, 100),
    );
    for probe in ["pxelinux.cfg/01-52-54-00-a5-00-01", "pxelinux.cfg/C0A8F20A"] {
        t.handle_tftp_refused(at(100_400), client, probe, RejectReason::NotFound);
    }
    t.handle_tftp_request(at(100_500), client, "pxelinux.cfg/default", None);
    t.handle_tftp_end(
        at(100_600),
        client,
        "pxelinux.cfg/default",
        end(Outcome::Done, 10, 100),
    );
    t.handle_timeout(at(200_000));
    assert!(diagnoses(&mut t).is_empty());
    let rec = records(&mut t).pop().expect("a record");
    assert_eq!((rec.outcome, rec.not_found), (BootOutcome::Booted, 2));
    assert!(format!("{rec}").contains(" not_found=2 "));

    // A probe with nothing after it: reported when the boot ends.
    dhcp_boot(&mut t, 300_000);
    t.handle_tftp_refused(at(300_200), client, "grub/grub.cfg", RejectReason::NotFound);
    assert!(diagnoses(&mut t).is_empty());
    t.handle_timeout(at(400_000));
    let found = diagnoses(&mut t);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].kind,
        DiagnosisKind::FileNotFound {
            path: "grub/grub.cfg".try_into().unwrap()
        }
    );
    assert_eq!(
        records(&mut t).pop().map(|r| r.outcome),
        Some(BootOutcome::Failed(FailCause::FileNotFound))
    );
}

#[test]
fn transfers_stopping_at_the_same_block_are_diagnosed_with_the_block() {
    let mut slots = [ClientSlot::EMPTY; 4];
    let mut t = timeline(&mut slots);
    dhcp_boot(&mut t, 0);
    let client = peer(Some(MAC));
    let aborted = Outcome::Failed(FailReason::Aborted {
        code: ErrorCode::Undefined,
        during_negotiation: false,
    });
    // Two failures at block 2, one at block 3: not yet.
    for (n, bytes) in [2936, 2936, 5872].into_iter().enumerate() {
        let ms = 1000 * n as u64;
        t.handle_tftp_request(at(ms), client, "vmlinuz", Some(1 << 20));
        t.handle_tftp_end(at(ms + 500), client, "vmlinuz", end(aborted, bytes, 500));
    }
    assert!(diagnoses(&mut t).is_empty());
    for n in 3..6 {
        t.handle_tftp_request(at(1000 * n), client, "vmlinuz", Some(1 << 20));
        t.handle_tftp_end(
            at(1000 * n + 500),
            client,
            "vmlinuz",
            end(aborted, 4404, 500),
        );
    }
    let found = diagnoses(&mut t);
    assert_eq!(found.len(), 1, "once per boot: {found:?}");
    assert_eq!(
        found[0].kind,
        DiagnosisKind::StuckAtBlock {
            path: "vmlinuz".try_into().unwrap(),
            block: 3,
            blksize: 1468,
            failures: 3
        }
    );
    assert!(
        format!("{}", found[0]).starts_with(
            "transfers keep stopping at the same block mac=52:54:00:a5:00:01 class=efi-x64 \
             ip=192.168.242.10 path=vmlinuz block=3 blksize=1468 failures=3: large blocks"
        ),
        "{}",
        found[0]
    );
    // Superseded transfers are no failures.
    t.handle_tftp_request(at(7000), client, "vmlinuz", Some(1 << 20));
    t.handle_tftp_end(
        at(7001),
        client,
        "vmlinuz",
        end(Outcome::Failed(FailReason::Superseded), 4404, 1),
    );
    assert_eq!(
        t.active().next().unwrap().files[0].state,
        FileState::Running
    );
}

#[test]
fn discovers_without_a_request_are_diagnosed() {
    let mut slots = [ClientSlot::EMPTY; 4];
    let mut t = timeline(&mut slots);
    let offer = served(
        MessageType::Discover,
        MAC,
        Some(ClientClass::Bios),
        "pxelinux.0",
    );
    t.handle_dhcp(at(0), &offer, 67, None);
    t.handle_dhcp(at(4000), &offer, 67, None);
    assert!(diagnoses(&mut t).is_empty());
    t.handle_dhcp(at(8000), &offer, 67, None);
    let found = diagnoses(&mut t);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].kind,
        DiagnosisKind::NoRequest {
            discovers: 3,
            proxy: false
        }
    );
    assert!(
        format!("{}", found[0])
            .starts_with("DISCOVERs never followed by a REQUEST mac=52:54:00:a5:00:01 class=bios ip=192.168.242.10 discovers=3: another DHCP server"),
        "{}",
        found[0]
    );
    t.handle_dhcp(at(16_000), &offer, 67, None);
    assert!(diagnoses(&mut t).is_empty(), "once per boot");
    t.handle_timeout(at(30_000));
    assert_eq!(
        records(&mut t).pop().map(|r| r.outcome),
        Some(BootOutcome::Failed(FailCause::NeverRequested))
    );

    // A Raspberry Pi's boot ROM never sends a REQUEST: not a fault.
    let pi = Mac([0xb8, 0x27, 0xeb, 0x28, 0xf6, 0x6d]);
    let pi_offer = served(
        MessageType::Discover,
        pi,
        Some(ClientClass::RaspberryPi),
        "bootcode.bin",
    );
    for n in 0..4 {
        t.handle_dhcp(at(31_000 + n), &pi_offer, 67, None);
    }
    assert!(diagnoses(&mut t).is_empty());

    // Proxy offers only: no DHCP server gave an address; the advice says so.
    let mac3 = Mac([2; 6]);
    for n in 0..3 {
        t.handle_dhcp(at(35_000 + n), &proxy_offer(mac3), 67, None);
    }
    let found = diagnoses(&mut t);
    assert_eq!(
        found.iter().map(|d| &d.kind).collect::<Vec<_>>(),
        [&DiagnosisKind::NoRequest {
            discovers: 3,
            proxy: true
        }]
    );
    assert!(
        format!("{}", found[0]).contains("discovers=3: no DHCP server gave the client an address"),
        "{}",
        found[0]
    );

    // A client that requests after its retries is fine.
    let offer2 = served(
        MessageType::Discover,
        MAC2,
        Some(ClientClass::Bios),
        "pxelinux.0",
    );
    for n in 0..2 {
        t.handle_dhcp(at(40_000 + n), &offer2, 67, None);
    }
    let ack = served(
        MessageType::Request,
        MAC2,
        Some(ClientClass::Bios),
        "pxelinux.0",
    );
    t.handle_dhcp(at(40_010), &ack, 67, None);
    for n in 0..5 {
        t.handle_dhcp(at(40_020 + n), &offer2, 67, None);
    }
    assert!(diagnoses(&mut t).is_empty());
}

#[test]
fn a_tftp_request_from_an_address_never_offered_is_diagnosed() {
    let mut slots = [ClientSlot::EMPTY; 4];
    let mut t = timeline(&mut slots);
    let stranger = Peer {
        address: ip(200),
        mac: None,
    };
    t.handle_tftp_refused(at(0), stranger, "undionly.kpxe", RejectReason::NotFound);
    t.handle_tftp_request(at(10), stranger, "pxelinux.0", Some(10));
    let found = diagnoses(&mut t);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0],
        Diagnosis {
            mac: None,
            address: Some(ip(200)),
            class: None,
            kind: DiagnosisKind::UnknownAddress {
                path: "undionly.kpxe".try_into().unwrap()
            }
        }
    );
    assert_eq!(
        format!("{}", found[0]),
        "TFTP request from an address this server never offered ip=192.168.242.200 \
         path=undionly.kpxe: another DHCP server points clients at this TFTP server: use \
         --mode proxy next to it, or stop it from handing out boot information"
    );
    t.handle_tftp_end(at(20), stranger, "pxelinux.0", end(Outcome::Done, 10, 10));
    t.handle_timeout(at(20_000));
    let rec = records(&mut t).pop().expect("a record");
    assert_eq!((rec.mac, rec.outcome), (None, BootOutcome::Booted));
    assert!(format!("{rec}").starts_with("boot booted ip=192.168.242.200 time=0.020s files=1"));

    // An address the DHCP side knows (the driver gives its MAC): no diagnosis.
    t.handle_tftp_request(at(30_000), peer(Some(MAC2)), "pxelinux.0", None);
    assert!(diagnoses(&mut t).is_empty());
    // Nor without DHCP at all.
    let mut slots = [ClientSlot::EMPTY; 2];
    let cfg = TimelineConfig {
        serves_dhcp: false,
        ..TimelineConfig::default()
    };
    let mut t = Timeline::new(cfg, &mut slots[..]);
    t.handle_tftp_request(at(0), stranger, "pxelinux.0", None);
    assert!(diagnoses(&mut t).is_empty());
}

#[test]
fn a_full_table_drops_the_client_quiet_longest() {
    let mut slots = [ClientSlot::EMPTY; 2];
    let mut t = timeline(&mut slots);
    let macs = [MAC, MAC2, Mac([2; 6])];
    for (n, mac) in macs.into_iter().enumerate() {
        let offer = served(MessageType::Discover, mac, Some(ClientClass::Bios), "x");
        t.handle_dhcp(at(n as u64), &offer, 67, None);
    }
    assert_eq!(t.dropped(), 1);
    let mut left: Vec<_> = t.active().filter_map(|a| a.mac).collect();
    left.sort();
    assert_eq!(left, [Mac([2; 6]), MAC2]);
    // An empty table follows nobody and never panics.
    let mut t = Timeline::new(TimelineConfig::default(), &mut [][..]);
    dhcp_boot(&mut t, 0);
    t.handle_tftp_request(at(1), peer(None), "x", None);
    t.handle_timeout(at(1_000_000));
    assert!(diagnoses(&mut t).is_empty() && records(&mut t).is_empty());
}

#[test]
fn long_paths_are_cut_at_a_character_boundary() {
    let long = "é".repeat(100);
    let cut = truncated(&long);
    assert_eq!(cut.len(), PATH_MAX);
    assert!(long.starts_with(cut.as_str()));
    assert!(same_path("/boot.efi", "boot.efi"));
}

/// One input of the random sequences below.
#[derive(Debug, Clone)]
enum Input {
    Dhcp {
        mac: u8,
        request: u8,
        reply: u8,
        class: u8,
        port_4011: bool,
        ignored: bool,
        file: bool,
    },
    Request {
        mac: Option<u8>,
        host: u8,
        path: u8,
    },
    Refused {
        host: u8,
        path: u8,
    },
    End {
        host: u8,
        path: u8,
        outcome: u8,
        bytes: u16,
    },
    Timeout {
        ms: u16,
    },
}

fn input() -> impl proptest::strategy::Strategy<Value = Input> {
    use proptest::prelude::*;
    prop_oneof![
        (
            0u8..4,
            0u8..4,
            0u8..3,
            0u8..4,
            any::<bool>(),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(mac, request, reply, class, port_4011, ignored, file)| {
                Input::Dhcp {
                    mac,
                    request,
                    reply,
                    class,
                    port_4011,
                    ignored,
                    file,
                }
            }),
        (proptest::option::of(0u8..4), 0u8..4, 0u8..3)
            .prop_map(|(mac, host, path)| Input::Request { mac, host, path }),
        (0u8..4, 0u8..3).prop_map(|(host, path)| Input::Refused { host, path }),
        (0u8..4, 0u8..3, 0u8..4, any::<u16>()).prop_map(|(host, path, outcome, bytes)| {
            Input::End {
                host,
                path,
                outcome,
                bytes,
            }
        }),
        (0u16..20_000).prop_map(|ms| Input::Timeout { ms }),
    ]
}

proptest::proptest! {
    /// Whatever the drivers report, in whatever order: no panic, each diagnosis kind at most
    /// once per boot, and every boot followed ends in a record once the clients are quiet.
    #[test]
    fn any_sequence_keeps_the_promises(inputs in proptest::collection::vec(input(), 0..80)) {
        let mut slots = [ClientSlot::EMPTY; 3];
        let mut t = timeline(&mut slots);
        let mut now = 0u64;
        let mut seen: Vec<(Option<Mac>, Option<Ipv4Addr>, DiagnosisSet)> = Vec::new();
        let mut records = 0usize;
        let paths = ["a", "b/c", "pxelinux.0"];
        let drain = |t: &mut Timeline<'_>, seen: &mut Vec<_>, records: &mut usize| {
            while let Some(d) = t.poll_diagnosis() {
                let key = (d.mac, d.address, d.kind.flag());
                assert!(!seen.contains(&key), "twice: {d:?}");
                seen.push(key);
                let _ = format!("{d}");
            }
            while let Some(r) = t.poll_record() {
                *records += 1;
                let _ = format!("{r}");
                // A new boot of the same client may report again.
                seen.retain(|(mac, ip, _)| (*mac, *ip) != (r.mac, r.address) && (r.mac.is_none() || *mac != r.mac));
            }
        };
        for input in inputs {
            now += 7;
            let dropped = t.dropped();
            match input {
                Input::Dhcp { mac, request, reply, class, port_4011, ignored, file } => {
                    let request = [MessageType::Discover, MessageType::Request, MessageType::Release, MessageType::Inform][usize::from(request)];
                    let reply = [None, Some(MessageType::Offer), Some(MessageType::Ack)][usize::from(reply)];
                    let class = [None, Some(ClientClass::Bios), Some(ClientClass::EfiX64), Some(ClientClass::Ipxe)][usize::from(class)];
                    let mut s = summary(request, Mac([mac; 6]), class, reply);
                    if reply.is_some() && mac % 2 == 0 {
                        s.your_ip = Some(ip(mac));
                    }
                    if file {
                        s.boot_file = Some("pxelinux.0".try_into().unwrap());
                    }
                    let port = if port_4011 { PXE_PORT } else { 67 };
                    let ignored = ignored.then_some(IgnoreReason::NoBootRule);
                    t.handle_dhcp(at(now), &s, port, ignored);
                }
                Input::Request { mac, host, path } => {
                    let peer = Peer { address: ip(host), mac: mac.map(|m| Mac([m; 6])) };
                    t.handle_tftp_request(at(now), peer, paths[usize::from(path)], Some(10));
                }
                Input::Refused { host, path } => {
                    let peer = Peer { address: ip(host), mac: None };
                    t.handle_tftp_refused(at(now), peer, paths[usize::from(path)], RejectReason::NotFound);
                }
                Input::End { host, path, outcome, bytes } => {
                    let outcome = [
                        Outcome::Done,
                        Outcome::SizeProbe,
                        Outcome::Failed(FailReason::TimedOut),
                        Outcome::Failed(FailReason::Superseded),
                    ][usize::from(outcome)];
                    let peer = Peer { address: ip(host), mac: None };
                    let end = TransferEnd { outcome, bytes: u64::from(bytes), duration: Duration::from_millis(3), blksize: 512 };
                    t.handle_tftp_end(at(now), peer, paths[usize::from(path)], end);
                }
                Input::Timeout { ms } => {
                    now += u64::from(ms);
                    t.handle_timeout(at(now));
                }
            }
            if t.dropped() != dropped {
                // A boot made room for another, unreported: whose is not known here.
                seen.clear();
            }
            drain(&mut t, &mut seen, &mut records);
        }
        let followed = t.active().count();
        t.handle_timeout(at(now + 1_000_000));
        drain(&mut t, &mut seen, &mut records);
        proptest::prop_assert_eq!(t.active().count(), 0);
        proptest::prop_assert!(records >= followed, "{} boots followed, {} records", followed, records);
        proptest::prop_assert_eq!(t.poll_timeout(), None);
    }
}

proptest::proptest! {
    /// The slot filters never turn away a key they hold.
    #[test]
    fn the_key_filter_never_forgets(keys in proptest::collection::vec(proptest::prelude::any::<u32>(), 0..300)) {
        let mut filter = KeyFilter::default();
        for &key in &keys {
            filter.insert(key);
        }
        for &key in &keys {
            proptest::prop_assert!(filter.may_hold(key));
        }
    }
}

#[test]
fn clients_are_found_again_after_others_leave() {
    let mut slots = [ClientSlot::EMPTY; 4];
    let mut t = timeline(&mut slots);
    let offer = |mac| served(MessageType::Discover, mac, Some(ClientClass::Bios), "x");
    t.handle_dhcp(at(0), &offer(MAC), 67, None);
    t.handle_dhcp(at(20_000), &offer(MAC2), 67, None);
    // MAC's boot ends; its slot is freed and the filters rebuilt: MAC2 is still found.
    t.handle_timeout(at(15_000));
    assert_eq!(records(&mut t).len(), 1);
    t.handle_dhcp(at(20_001), &offer(MAC2), 67, None);
    t.handle_dhcp(at(20_002), &offer(MAC2), 67, None);
    assert_eq!(t.active().count(), 1);
    let found = diagnoses(&mut t);
    assert_eq!(found.len(), 1, "one boot, one diagnosis: {found:?}");
    assert_eq!(found[0].mac, Some(MAC2));
}

//! Wire parsing of real captured packets (testdata/captures/): every DHCP packet of the BIOS and
//! UEFI captures through `Packet::new_checked` + `Repr::parse`, and TFTP requests as real
//! clients send them.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pocketpxe_benches::capture_payloads;
use pocketpxe_core::wire::{dhcp, tftp};

fn parse(c: &mut Criterion) {
    let mut packets = capture_payloads("bios-dhcp.pcap");
    packets.extend(capture_payloads("uefi-dhcp.pcap"));
    assert!(packets.len() >= 8, "captures hold too few packets");
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.bench_function("dhcp_parse_captured", |b| {
        b.iter(|| {
            for p in &packets {
                let packet = dhcp::Packet::new_checked(&p[..]).expect("captured packets parse");
                black_box(dhcp::Repr::parse(&packet).expect("captured packets parse"));
            }
        });
    });
    let rrq: &[u8] = b"\x00\x01debian-installer/amd64/bootnetx64.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00windowsize\x004\x00";
    group.throughput(Throughput::Elements(1));
    group.bench_function("tftp_parse_ovmf_rrq", |b| {
        b.iter(|| black_box(tftp::Repr::parse_bytes(black_box(rrq)).expect("valid")));
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);

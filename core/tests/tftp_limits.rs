//! Hostile networks: the per-client transfer limit, and the gap counter that lets a
//! driver prove no retransmission came from a duplicate ACK.

#![allow(clippy::unwrap_used)]

use core::net::{Ipv4Addr, SocketAddrV4};

use pocketpxe_core::tftp::drive;
use pocketpxe_core::tftp::{RejectReason, RequestOutcome, Slot, TftpConfig, TftpEvent, TftpServer};
use pocketpxe_core::{Instant, MemStore, Received};

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 242, 1), 69);
const FLOODER: Ipv4Addr = Ipv4Addr::new(192, 168, 242, 66);
const HONEST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 242, 88), 2070);
static DATA: [u8; 5000] = [7; 5000];
static FILES: [(&str, &[u8]); 1] = [("big", &DATA)];

fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 1];
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(b"\0octet\0");
    for (k, v) in options {
        p.extend_from_slice(k.as_bytes());
        p.push(0);
        p.extend_from_slice(v.as_bytes());
        p.push(0);
    }
    p
}

/// A request through the reference drive loop (what it sends is dropped: the client is mute).
fn request<'p>(
    server: &mut TftpServer<'_, usize>,
    store: &mut MemStore<'_>,
    now: Instant,
    src: SocketAddrV4,
    payload: &'p [u8],
) -> RequestOutcome<'p> {
    let mut tx = [0u8; 1600];
    let rx = Received {
        src,
        dst: SERVER,
        payload,
    };
    drive::request(server, now, &rx, store, &mut tx, |_| {}).unwrap()
}

#[test]
fn one_address_cannot_take_every_slot() {
    let mut slots = [const { Slot::<usize>::EMPTY }; 16];
    let mut server = TftpServer::new(TftpConfig::default(), &mut slots[..]);
    assert_eq!(server.max_transfers_per_client(), None);
    server.set_max_transfers_per_client(Some(4));
    let mut store = MemStore::new(&FILES);
    let now = Instant::from_millis(0);
    let mut tx = [0u8; 1600];
    let mut accepted = 0;
    let mut refused = 0;
    for port in 1000..1100u16 {
        let src = SocketAddrV4::new(FLOODER, port);
        match request(&mut server, &mut store, now, src, &rrq("big", &[])) {
            RequestOutcome::Accepted { .. } => accepted += 1,
            RequestOutcome::Rejected { reason, .. } => {
                assert_eq!(reason, RejectReason::ClientBusy);
                assert_eq!(
                    reason.code(),
                    pocketpxe_core::wire::tftp::ErrorCode::Undefined
                );
                refused += 1;
            }
            RequestOutcome::Ignored(r) => panic!("ignored: {r:?}"),
        }
    }
    assert_eq!((accepted, refused), (4, 96));
    // Another client still gets a slot.
    let honest = rrq("big", &[]);
    let outcome = request(&mut server, &mut store, now, HONEST, &honest);
    assert!(
        matches!(outcome, RequestOutcome::Accepted { path, .. } if path.as_sent() == "big"),
        "the honest client was refused: {outcome:?}"
    );
    // The flooder never ACKs: after the retries its slots are reclaimed, and it may ask again.
    let mut t = 0;
    while server.live() > 0 && t < 60_000 {
        t += 100;
        let now = Instant::from_millis(t);
        drive::timeout(&mut server, now, &mut store, &mut tx, |_| {}).unwrap();
    }
    assert_eq!(server.live(), 0, "slots not reclaimed after the timeouts");
    let src = SocketAddrV4::new(FLOODER, 2000);
    assert!(matches!(
        request(
            &mut server,
            &mut store,
            Instant::from_millis(t),
            src,
            &rrq("big", &[])
        ),
        RequestOutcome::Accepted { .. }
    ));
    // Without a limit (the default), one address may use every slot (load tests).
    let mut slots = [const { Slot::<usize>::EMPTY }; 8];
    let mut server = TftpServer::new(TftpConfig::default(), &mut slots[..]);
    for port in 1..=8u16 {
        let src = SocketAddrV4::new(FLOODER, port);
        assert!(matches!(
            request(&mut server, &mut store, now, src, &rrq("big", &[])),
            RequestOutcome::Accepted { .. }
        ));
    }
}

#[test]
fn gap_acks_are_counted_duplicates_are_not_resent() {
    let mut slots = [const { Slot::<usize>::EMPTY }; 2];
    let mut server = TftpServer::new(TftpConfig::default(), &mut slots[..]);
    let mut store = MemStore::new(&FILES);
    let mut tx = [0u8; 1600];
    let now = Instant::from_millis(0);
    let payload = rrq("big", &[("blksize", "512"), ("windowsize", "4")]);
    let rx = Received {
        src: HONEST,
        dst: SERVER,
        payload: &payload,
    };
    let Ok(RequestOutcome::Accepted { id, .. }) =
        server.handle_request(now, &rx, &mut store, &mut tx)
    else {
        panic!("not accepted")
    };
    let mut drain = |server: &mut TftpServer<'_, usize>, store: &mut MemStore<'_>| {
        let mut sent = Vec::new();
        while let Some(t) = server.poll_transmit(now, id, store, &mut tx).unwrap() {
            let _ = t;
            // DATA: its block number; the OACK: 0.
            let is_data = tx[1] == 3;
            sent.push(if is_data {
                u16::from_be_bytes([tx[2], tx[3]])
            } else {
                0
            });
        }
        sent
    };
    assert_eq!(drain(&mut server, &mut store), [0], "OACK");
    let ack = |server: &mut TftpServer<'_, usize>, block: u16| {
        let payload = [0, 4, (block >> 8) as u8, block as u8];
        let rx = Received {
            src: HONEST,
            dst: SERVER,
            payload: &payload,
        };
        let _ = server.handle(now, id, &rx);
    };
    ack(&mut server, 0);
    assert_eq!(drain(&mut server, &mut store), [1, 2, 3, 4]);
    // The client saw 1 and 2, then a gap: ACK 2 rewinds to 3.
    ack(&mut server, 2);
    assert_eq!(drain(&mut server, &mut store), [3, 4, 5, 6]);
    // The same ACK again (duplicated by the network): nothing is resent.
    ack(&mut server, 2);
    assert_eq!(drain(&mut server, &mut store), Vec::<u16>::new());
    let stats = server.transfer(id).unwrap().stats;
    assert_eq!(
        (stats.gaps, stats.duplicate_acks, stats.retransmits),
        (1, 1, 2)
    );
    ack(&mut server, 6);
    assert_eq!(drain(&mut server, &mut store), [7, 8, 9, 10]);
    ack(&mut server, 10);
    let stats = server.transfer(id).unwrap().stats;
    assert_eq!(stats.gaps, 1, "window ends are not gaps");
    assert!(matches!(
        server.poll_event(&mut store),
        None | Some(TftpEvent::Finished { .. })
    ));
}

//! Property tests of the TFTP server: wire round trips, no panics on arbitrary input, and the
//! transfer machine against a reference client over a lossy, duplicating, reordering link.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use pocketpxe_core::tftp::drive::{self, Output};
use pocketpxe_core::tftp::{
    Handled, IgnoreReason, RejectReason, RequestOutcome, Slot, TftpConfig, TftpEvent, TftpServer,
};
use pocketpxe_core::wire::tftp::Repr;
use pocketpxe_core::{Instant, MemStore, Received};
use proptest::prelude::*;

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 69);
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 3000);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_never_panics_and_emit_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(repr) = Repr::parse_bytes(&bytes) {
            let mut buf = vec![0u8; repr.buffer_len()];
            let n = repr.emit(&mut buf).unwrap();
            prop_assert_eq!(Repr::parse_bytes(&buf[..n]).unwrap(), repr);
        }
    }

    #[test]
    fn server_never_panics_on_arbitrary_datagrams(
        datagrams in proptest::collection::vec(
            (any::<bool>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..40),
    ) {
        let file = vec![7u8; 3000];
        let files = [("f", &file[..])];
        let mut store = MemStore::new(&files);
        let mut slots = vec![Slot::EMPTY; 4];
        let mut server = TftpServer::new(TftpConfig::default(), &mut slots[..]);
        let mut tx = vec![0u8; 2048];
        let mut now = Instant::ZERO;
        let mut ids = Vec::new();
        let mut sent = 0usize;
        let mut count = |output: Output<'_>| {
            if let Output::Send { bytes, .. } = output {
                assert!(bytes.len() <= 4 + 1468);
                sent += 1;
            }
        };
        for (to_listener, port, mut payload) in datagrams {
            now = now + Duration::from_millis(u64::from(port) * 7);
            let src = SocketAddrV4::new(*CLIENT.ip(), 3000 + u16::from(port % 4));
            if to_listener {
                // Bias towards real requests for the one file.
                if port % 3 == 0 {
                    payload = [&[0u8, 1][..], b"f\0octet\0", &payload].concat();
                }
                let rx = Received { src, dst: SERVER, payload: &payload };
                if let RequestOutcome::Accepted { id, .. } =
                    drive::request(&mut server, now, &rx, &mut store, &mut tx, &mut count).unwrap()
                {
                    ids.push(id);
                }
            } else if let Some(&id) = ids.get(usize::from(port) % ids.len().max(1)) {
                let rx = Received { src, dst: SERVER, payload: &payload };
                let _ = drive::datagram(&mut server, now, id, &rx, &mut store, &mut tx, &mut count)
                    .unwrap();
            }
            drive::timeout(&mut server, now, &mut store, &mut tx, &mut count).unwrap();
            prop_assert!(server.live() <= 4);
            // Nothing is left that a driver visiting only ready transfers would miss.
            for &id in &ids {
                prop_assert_eq!(server.poll_transmit(now, id, &mut store, &mut tx).unwrap(), None);
            }
        }
    }

    #[test]
    fn transfers_complete_exactly_over_a_hostile_link(
        seed in any::<u64>(),
        len in 0usize..20_000,
        blksize in prop_oneof![Just(8u16), Just(16), Just(512), Just(1468)],
        windowsize in 1u16..=8,
        loss_pct in 0u32..=25,
        dup_pct in 0u32..=10,
        reorder_pct in 0u32..=30,
    ) {
        let link = Link { loss_pct, dup_pct, reorder_pct };
        simulate(seed, len, blksize, windowsize, link)?;
    }

    /// Duplicate requests, superseding, the per-client limit, full slots and the reporting of
    /// closed transfers, against a model that keeps every transfer in a plain list.
    #[test]
    fn slot_bookkeeping_matches_a_model(ops in proptest::collection::vec(slot_op(), 1..120)) {
        check_slot_bookkeeping(&ops)?;
    }
}

/// One step of [`check_slot_bookkeeping`].
#[derive(Debug, Clone)]
enum SlotOp {
    /// A request for file `a` or `b` from host `ip`, port `port`.
    Request { ip: u8, port: u8, other_file: bool },
    /// The client of the `n`-th live transfer sends an ERROR (it ends at once).
    ClientError(usize),
    /// The driver aborts the `n`-th live transfer, then drains its ERROR.
    Abort(usize),
    /// The driver takes every event.
    Drain,
}

fn slot_op() -> impl Strategy<Value = SlotOp> {
    prop_oneof![
        4 => (0u8..3, 0u8..3, any::<bool>())
            .prop_map(|(ip, port, other_file)| SlotOp::Request { ip, port, other_file }),
        1 => any::<usize>().prop_map(SlotOp::ClientError),
        1 => any::<usize>().prop_map(SlotOp::Abort),
        2 => Just(SlotOp::Drain),
    ]
}

/// A transfer as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Modelled {
    id: pocketpxe_core::tftp::TransferId,
    peer: SocketAddrV4,
    other_file: bool,
    closed: bool,
}

fn check_slot_bookkeeping(ops: &[SlotOp]) -> Result<(), TestCaseError> {
    const SLOTS: usize = 5;
    const PER_CLIENT: usize = 2;
    let file = vec![1u8; 5000];
    let files = [("a", &file[..]), ("b", &file[..])];
    let mut store = MemStore::new(&files);
    let mut slots = vec![Slot::EMPTY; SLOTS];
    let mut server = TftpServer::new(TftpConfig::default(), &mut slots[..]);
    server.set_max_transfers_per_client(Some(PER_CLIENT as u16));
    let mut tx = vec![0u8; 2048];
    let now = Instant::ZERO;
    let mut model: Vec<Modelled> = Vec::new();
    for op in ops {
        match *op {
            SlotOp::Request {
                ip,
                port,
                other_file,
            } => {
                let peer =
                    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 10 + ip), 2000 + u16::from(port));
                let name: &[u8] = if other_file { b"b" } else { b"a" };
                let payload = [&[0u8, 1][..], name, b"\0octet\0"].concat();
                let rx = Received {
                    src: peer,
                    dst: SERVER,
                    payload: &payload,
                };
                let outcome = server
                    .handle_request(now, &rx, &mut store, &mut tx)
                    .unwrap();
                let same = model.iter_mut().find(|t| t.peer == peer && !t.closed);
                if let Some(t) = same {
                    if t.other_file == other_file {
                        prop_assert_eq!(
                            outcome,
                            RequestOutcome::Ignored(IgnoreReason::DuplicateRequest)
                        );
                        continue;
                    }
                    t.closed = true; // superseded
                }
                let from_ip = model
                    .iter()
                    .filter(|t| t.peer.ip() == peer.ip() && !t.closed)
                    .count();
                if from_ip >= PER_CLIENT {
                    prop_assert!(
                        matches!(
                            outcome,
                            RequestOutcome::Rejected {
                                reason: RejectReason::ClientBusy,
                                ..
                            }
                        ),
                        "expected ClientBusy, got {:?}",
                        outcome
                    );
                } else if model.len() == SLOTS {
                    prop_assert!(
                        matches!(
                            outcome,
                            RequestOutcome::Rejected {
                                reason: RejectReason::Busy,
                                ..
                            }
                        ),
                        "expected Busy, got {:?}",
                        outcome
                    );
                } else {
                    let RequestOutcome::Accepted { id, .. } = outcome else {
                        return Err(TestCaseError::fail(format!(
                            "expected a new transfer, got {outcome:?}"
                        )));
                    };
                    prop_assert!(
                        model.iter().all(|t| t.id != id),
                        "id {} handed out twice",
                        id
                    );
                    model.push(Modelled {
                        id,
                        peer,
                        other_file,
                        closed: false,
                    });
                }
            }
            SlotOp::ClientError(n) => {
                let live: Vec<Modelled> = model.iter().copied().filter(|t| !t.closed).collect();
                if let Some(t) = live.get(n % live.len().max(1)) {
                    let rx = Received {
                        src: t.peer,
                        dst: SERVER,
                        payload: b"\0\x05\0\x00stop\0",
                    };
                    prop_assert_eq!(server.handle(now, t.id, &rx), Handled::Accepted);
                    model.iter_mut().find(|m| m.id == t.id).unwrap().closed = true;
                }
            }
            SlotOp::Abort(n) => {
                let live: Vec<Modelled> = model.iter().copied().filter(|t| !t.closed).collect();
                if let Some(t) = live.get(n % live.len().max(1)) {
                    server.abort(t.id, "stop");
                    let mut errors = 0;
                    let mut reported = Vec::new();
                    drive::flush(
                        &mut server,
                        now,
                        &mut store,
                        &mut tx,
                        |output| match output {
                            // Other transfers may still owe their first packet: only requests ran.
                            Output::Send { from, bytes, .. } if from == Some(t.id) => {
                                assert_eq!(&bytes[..2], [0, 5], "an ERROR");
                                errors += 1;
                            }
                            Output::Send { .. } => {}
                            Output::Event(event) => reported.push(event.id()),
                        },
                    )
                    .unwrap();
                    prop_assert_eq!(errors, 1, "one ERROR for the aborted transfer");
                    model.iter_mut().find(|m| m.id == t.id).unwrap().closed = true;
                    // The loop reported every closed transfer, the aborted one included.
                    prop_assert!(reported.contains(&t.id));
                    for id in reported {
                        let at = model.iter().position(|m| m.id == id && m.closed);
                        prop_assert!(at.is_some(), "event for {} which is not closed", id);
                        model.remove(at.unwrap());
                    }
                }
            }
            SlotOp::Drain => {
                while let Some(event) = server.poll_event(&mut store) {
                    let id = match event {
                        TftpEvent::Finished { id, .. } | TftpEvent::Failed { id, .. } => id,
                    };
                    let at = model.iter().position(|t| t.id == id && t.closed);
                    prop_assert!(at.is_some(), "event for {} which is not closed", id);
                    model.remove(at.unwrap());
                }
                prop_assert!(
                    model.iter().all(|t| !t.closed),
                    "a closed transfer was not reported"
                );
            }
        }
        prop_assert_eq!(server.live(), model.len());
        prop_assert_eq!(server.active().count(), model.len());
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Link {
    loss_pct: u32,
    dup_pct: u32,
    reorder_pct: u32,
}

/// A datagram in flight: (arrival time, sequence for stable ordering, to_server, bytes).
type Flight = (u64, u64, bool, Vec<u8>);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pct(&mut self, pct: u32) -> bool {
        (self.next() % 100) < u64::from(pct)
    }
}

/// The reference client: an RFC 7440 receiver that takes blocks strictly in order.
struct Client {
    blksize: usize,
    windowsize: u16,
    next: u64,
    since_ack: u16,
    got: Vec<u8>,
    done: bool,
    started: bool,
    last_heard: u64,
}

impl Client {
    /// Handles one packet from the server; returns an ACK to send, if any.
    fn on_packet(&mut self, now: u64, bytes: &[u8]) -> Option<u16> {
        self.last_heard = now;
        self.started = true;
        match Repr::parse_bytes(bytes).expect("server sends valid packets") {
            Repr::OptionAck { options } => {
                if let Some(b) = options.get("blksize") {
                    self.blksize = std::str::from_utf8(b).unwrap().parse().unwrap();
                }
                if let Some(w) = options.get("windowsize") {
                    self.windowsize = std::str::from_utf8(w).unwrap().parse().unwrap();
                }
                (self.next == 1).then_some(0)
            }
            Repr::Data { block, data } => {
                if self.done {
                    // Dally: re-acknowledge the final block.
                    return Some((self.next - 1) as u16);
                }
                if block == self.next as u16 {
                    assert!(data.len() <= self.blksize, "block larger than blksize");
                    self.got.extend_from_slice(data);
                    self.next += 1;
                    self.since_ack += 1;
                    if data.len() < self.blksize {
                        self.done = true;
                        self.since_ack = 0;
                        return Some((self.next - 1) as u16);
                    }
                    if self.since_ack >= self.windowsize {
                        self.since_ack = 0;
                        return Some((self.next - 1) as u16);
                    }
                    None
                } else if block == (self.next as u16).wrapping_sub(1) {
                    // A repeat of the last block: our ACK was lost (RFC 1350 §2).
                    self.since_ack = 0;
                    Some((self.next - 1) as u16)
                } else if block == (self.next as u16).wrapping_add(1)
                    || block == (self.next as u16).wrapping_add(2)
                {
                    // A gap: acknowledge what we have (RFC 7440 §4).
                    self.since_ack = 0;
                    Some((self.next - 1) as u16)
                } else {
                    None
                }
            }
            other => panic!("unexpected packet from server: {other:?}"),
        }
    }
}

fn simulate(
    seed: u64,
    len: usize,
    blksize: u16,
    windowsize: u16,
    link: Link,
) -> Result<(), TestCaseError> {
    let file: Vec<u8> = (0..len).map(|i| (i as u64 * 31 + seed) as u8).collect();
    let files = [("file", &file[..])];
    let mut store = MemStore::new(&files);
    let mut slots = vec![Slot::EMPTY; 2];
    let cfg = TftpConfig {
        max_retries: 60,
        ..TftpConfig::default()
    };
    let mut server = TftpServer::new(cfg, &mut slots[..]);
    let mut rng = Rng(seed | 1);
    let mut tx = vec![0u8; 4 + 1468];
    let mut now: u64 = 0;
    let mut seq = 0u64;
    let mut flights: Vec<Flight> = Vec::new();
    let mut client = Client {
        blksize: 512,
        windowsize: 1,
        next: 1,
        since_ack: 0,
        got: Vec::new(),
        done: false,
        started: false,
        last_heard: 0,
    };

    let request = {
        let mut p = vec![0, 1];
        p.extend_from_slice(b"file\0octet\0");
        p.extend_from_slice(format!("blksize\0{blksize}\0windowsize\0{windowsize}\0").as_bytes());
        p
    };
    let rx = Received {
        src: CLIENT,
        dst: SERVER,
        payload: &request,
    };
    let RequestOutcome::Accepted { id, .. } = server
        .handle_request(Instant::from_millis(now), &rx, &mut store, &mut tx)
        .unwrap()
    else {
        return Err(TestCaseError::fail("request refused"));
    };

    let mut send =
        |flights: &mut Vec<Flight>, rng: &mut Rng, now: u64, to_server: bool, bytes: Vec<u8>| {
            if rng.pct(link.loss_pct) {
                return;
            }
            let copies = if rng.pct(link.dup_pct) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = 5 + if rng.pct(link.reorder_pct) {
                    rng.next() % 40
                } else {
                    0
                };
                seq += 1;
                flights.push((now + delay, seq, to_server, bytes.clone()));
            }
        };

    // Absolute block numbers the server has sent, and whether a resend is allowed now.
    let mut highest_sent: u64 = 0;
    let mut resend_allowed = false;
    let mut finished = false;
    let mut steps = 0u32;

    loop {
        steps += 1;
        prop_assert!(steps < 2_000_000, "livelock: simulation did not end");

        // Drain the server as a driver does, checking the Sorcerer's Apprentice rule.
        let mut datagrams = Vec::new();
        let mut events = Vec::new();
        drive::flush(
            &mut server,
            Instant::from_millis(now),
            &mut store,
            &mut tx,
            |output| match output {
                Output::Send { from, dst, bytes } => datagrams.push((from, dst, bytes.to_vec())),
                Output::Event(event) => events.push(event),
            },
        )
        .unwrap();
        for (from, dst, bytes) in datagrams {
            prop_assert_eq!((from, dst), (Some(id), CLIENT));
            if let Repr::Data { block, .. } = Repr::parse_bytes(&bytes).unwrap() {
                // Map to absolute: the nearest block at or below highest_sent + 1.
                let base = highest_sent + 1;
                let back = u64::from((base as u16).wrapping_sub(block));
                let absolute = base - back.min(base - 1);
                if absolute <= highest_sent {
                    prop_assert!(
                        resend_allowed,
                        "block {} resent without a timeout or gap ACK",
                        absolute
                    );
                } else {
                    prop_assert_eq!(absolute, highest_sent + 1, "blocks skipped");
                    highest_sent = absolute;
                }
            }
            send(&mut flights, &mut rng, now, false, bytes);
        }
        resend_allowed = false;
        for event in events {
            match event {
                TftpEvent::Finished { stats, .. } => {
                    prop_assert_eq!(stats.bytes, len as u64);
                    finished = true;
                }
                TftpEvent::Failed { reason, .. } => {
                    return Err(TestCaseError::fail(format!("transfer failed: {reason}")));
                }
            }
        }
        if finished {
            break;
        }

        // The next thing to happen: a delivery, the server's deadline, or the client's.
        let next_flight = flights.iter().map(|f| (f.0, f.1)).min();
        let server_deadline = server.poll_timeout().map(Instant::total_millis);
        let client_deadline = (client.started && !client.done).then_some(client.last_heard + 3_000);
        let t = [next_flight.map(|f| f.0), server_deadline, client_deadline]
            .into_iter()
            .flatten()
            .min()
            .expect("something is always pending");
        prop_assert!(t >= now, "time goes backwards");
        now = t;

        if let Some((at, s)) = next_flight.filter(|f| f.0 == now) {
            let index = flights.iter().position(|f| f.0 == at && f.1 == s).unwrap();
            let (_, _, to_server, bytes) = flights.swap_remove(index);
            if to_server {
                let rx = Received {
                    src: CLIENT,
                    dst: SERVER,
                    payload: &bytes,
                };
                let handled = server.handle(Instant::from_millis(now), id, &rx);
                if handled == Handled::Accepted
                    && let Ok(Repr::Ack { block }) = Repr::parse_bytes(&bytes)
                    && block != (highest_sent as u16)
                {
                    // An ACK inside the window rewinds (RFC 7440 §4).
                    resend_allowed = true;
                }
            } else if let Some(ack) = client.on_packet(now, &bytes) {
                let mut buf = [0u8; 4];
                Repr::Ack { block: ack }.emit(&mut buf).unwrap();
                send(&mut flights, &mut rng, now, true, buf.to_vec());
            }
        } else if server_deadline == Some(now) {
            server.handle_timeout(Instant::from_millis(now));
            resend_allowed = true;
        } else {
            // The client heard nothing for a while: re-acknowledge (RFC 1350 §2).
            client.last_heard = now;
            let mut buf = [0u8; 4];
            Repr::Ack {
                block: (client.next - 1) as u16,
            }
            .emit(&mut buf)
            .unwrap();
            send(&mut flights, &mut rng, now, true, buf.to_vec());
        }
    }
    prop_assert!(client.got == file, "content differs");
    prop_assert_eq!(server.live(), 0);
    Ok(())
}

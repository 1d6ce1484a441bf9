//! Scenario tests of the TFTP server through its public API: exact packets, exact deadlines.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use pocketpxe_core::tftp::drive::{self, Output};
use pocketpxe_core::tftp::{
    FailReason, Handled, IgnoreReason, Outcome, RefusedLine, RejectReason, RequestOutcome, Slot,
    TftpConfig, TftpEvent, TftpServer, TransferId, WireText,
};
use pocketpxe_core::wire::tftp::{ErrorCode, Repr};
use pocketpxe_core::{FileStore, Instant, MemStore, OpenError, Opened, Received, SafePath};

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 242, 1), 69);
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 242, 88), 2070);
const STRANGER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 242, 89), 2071);

/// A MemStore that counts opens and closes, to prove every open is closed once.
struct CountingStore<'a> {
    inner: MemStore<'a>,
    open: i32,
    fail_reads: bool,
}

impl<'a> CountingStore<'a> {
    fn new(files: &'a [(&'a str, &'a [u8])]) -> Self {
        Self {
            inner: MemStore::new(files),
            open: 0,
            fail_reads: false,
        }
    }
}

impl FileStore for CountingStore<'_> {
    type Handle = usize;
    type Error = &'static str;

    fn open(&mut self, path: SafePath<'_>) -> Result<Opened<usize>, OpenError<&'static str>> {
        let opened = self.inner.open(path).map_err(|_| OpenError::NotFound)?;
        self.open += 1;
        Ok(opened)
    }

    fn read_at(&mut self, file: usize, offset: u64, buf: &mut [u8]) -> Result<usize, &'static str> {
        if self.fail_reads {
            return Err("disk on fire");
        }
        Ok(self.inner.read_at(file, offset, buf).unwrap_or(0))
    }

    fn close(&mut self, _file: usize) {
        self.open -= 1;
    }
}

struct Harness<'a> {
    server: TftpServer<'a, usize>,
    store: CountingStore<'a>,
    now: Instant,
    tx: Vec<u8>,
}

impl<'a> Harness<'a> {
    fn new(
        cfg: TftpConfig,
        slots: &'a mut [Slot<usize>],
        files: &'a [(&'a str, &'a [u8])],
    ) -> Self {
        Self {
            server: TftpServer::new(cfg, slots),
            store: CountingStore::new(files),
            now: Instant::from_millis(1_000),
            tx: vec![0u8; 65536],
        }
    }

    fn request<'p>(&mut self, from: SocketAddrV4, payload: &'p [u8]) -> RequestOutcome<'p> {
        let rx = Received {
            src: from,
            dst: SERVER,
            payload,
        };
        self.server
            .handle_request(self.now, &rx, &mut self.store, &mut self.tx)
            .unwrap()
    }

    fn rrq(&mut self, name: &str, options: &[(&str, &str)]) -> TransferId {
        let payload = rrq(name, options);
        match self.request(CLIENT, &payload) {
            RequestOutcome::Accepted { id, .. } => id,
            other => panic!("RRQ {name} not accepted: {other:?}"),
        }
    }

    fn send(&mut self, id: TransferId, from: SocketAddrV4, payload: &[u8]) -> Handled {
        let rx = Received {
            src: from,
            dst: SocketAddrV4::new(*SERVER.ip(), 40000),
            payload,
        };
        self.server.handle(self.now, id, &rx)
    }

    fn ack(&mut self, id: TransferId, block: u16) -> Handled {
        let mut buf = [0u8; 4];
        let n = Repr::Ack { block }.emit(&mut buf).unwrap();
        self.send(id, CLIENT, &buf[..n])
    }

    /// Every datagram the transfer wants sent now, as (destination, bytes).
    fn drain(&mut self, id: TransferId) -> Vec<(SocketAddrV4, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(t) = self
            .server
            .poll_transmit(self.now, id, &mut self.store, &mut self.tx)
            .unwrap()
        {
            out.push((t.dst, self.tx[..t.len].to_vec()));
            assert!(out.len() < 100_000, "poll_transmit does not stop");
        }
        out
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now + Duration::from_millis(ms);
        self.server.handle_timeout(self.now);
    }

    fn events(&mut self) -> Vec<TftpEvent> {
        std::iter::from_fn(|| self.server.poll_event(&mut self.store)).collect()
    }
}

fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 1];
    for s in [name, "octet"] {
        p.extend_from_slice(s.as_bytes());
        p.push(0);
    }
    for (n, v) in options {
        p.extend_from_slice(n.as_bytes());
        p.push(0);
        p.extend_from_slice(v.as_bytes());
        p.push(0);
    }
    p
}

fn parse(bytes: &[u8]) -> Repr<'_> {
    Repr::parse_bytes(bytes).unwrap()
}

fn data_block(bytes: &[u8]) -> (u16, usize) {
    match parse(bytes) {
        Repr::Data { block, data } => (block, data.len()),
        other => panic!("expected DATA, got {other:?}"),
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn exact_multiple_ends_with_an_empty_block() {
    let file = pattern(1024);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 4];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let id = h.rrq("f", &[]);
    let mut got = Vec::new();
    for block in 1..=3u16 {
        let out = h.drain(id);
        assert_eq!(out.len(), 1, "lock-step: one block at a time");
        assert_eq!(out[0].0, CLIENT);
        let Repr::Data { block: b, data } = parse(&out[0].1) else {
            panic!("not DATA")
        };
        assert_eq!(b, block);
        got.extend_from_slice(data);
        assert_eq!(h.ack(id, block), Handled::Accepted);
    }
    assert_eq!(got, file);
    let events = h.events();
    assert!(
        matches!(events[..], [TftpEvent::Finished { id: i, stats }] if i == id && stats.bytes == 1024 && stats.retransmits == 0),
        "{events:?}"
    );
    assert_eq!(h.store.open, 0, "file closed");
    assert_eq!(h.server.live(), 0);
    // The id is stale now.
    assert_eq!(
        h.ack(id, 3),
        Handled::Ignored(IgnoreReason::UnknownTransfer)
    );
    assert!(h.drain(id).is_empty());
}

#[test]
fn empty_file_is_one_empty_block() {
    let files = [("empty", &b""[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let id = h.rrq("empty", &[]);
    let out = h.drain(id);
    assert_eq!(data_block(&out[0].1), (1, 0));
    assert_eq!(h.ack(id, 1), Handled::Accepted);
    assert!(matches!(h.events()[..], [TftpEvent::Finished { .. }]));
}

#[test]
fn oack_then_ack0_then_data_with_options() {
    let file = pattern(3000);
    let files = [("debian-installer/amd64/bootnetx64.efi", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    // GRUB style: a leading slash is root-relative.
    let id = h.rrq(
        "/debian-installer/amd64/bootnetx64.efi",
        &[
            ("tsize", "0"),
            ("blksize", "1468"),
            ("timeout", "3"),
            ("foo", "bar"),
        ],
    );
    let out = h.drain(id);
    assert_eq!(out.len(), 1);
    let Repr::OptionAck { options } = parse(&out[0].1) else {
        panic!("expected OACK")
    };
    assert_eq!(options.get("tsize"), Some(&b"3000"[..]));
    assert_eq!(options.get("blksize"), Some(&b"1468"[..]));
    assert_eq!(options.get("timeout"), Some(&b"3"[..]));
    assert_eq!(
        options.get("foo"),
        None,
        "only accepted options are acknowledged"
    );
    assert_eq!(
        h.server.poll_timeout(),
        Some(h.now + Duration::from_secs(3))
    );
    // An ACK for block 1 before ACK 0 is unexpected.
    assert_eq!(h.ack(id, 1), Handled::Ignored(IgnoreReason::UnexpectedAck));
    assert_eq!(h.ack(id, 0), Handled::Accepted);
    let sizes: Vec<_> = (1..=3)
        .map(|b| {
            let out = h.drain(id);
            let block = data_block(&out[0].1);
            assert_eq!(h.ack(id, b), Handled::Accepted);
            block
        })
        .collect();
    assert_eq!(sizes, [(1, 1468), (2, 1468), (3, 64)]);
    assert!(matches!(h.events()[..], [TftpEvent::Finished { stats, .. }] if stats.bytes == 3000));
}

#[test]
fn ovmf_size_probe_ends_quietly() {
    let file = pattern(1_048_504);
    let files = [("bootnetx64.efi", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let id = h.rrq(
        "bootnetx64.efi",
        &[("tsize", "0"), ("blksize", "1468"), ("windowsize", "4")],
    );
    let out = h.drain(id);
    let Repr::OptionAck { options } = parse(&out[0].1) else {
        panic!("expected OACK")
    };
    assert_eq!(options.get("tsize"), Some(&b"1048504"[..]));
    assert_eq!(options.get("windowsize"), Some(&b"4"[..]));
    let mut err = [0u8; 32];
    let n = Repr::Error {
        code: ErrorCode::OptionNegotiation,
        message: b"",
    }
    .emit(&mut err)
    .unwrap();
    assert_eq!(h.send(id, CLIENT, &err[..n]), Handled::Accepted);
    assert!(h.drain(id).is_empty(), "an ERROR is never answered");
    let events = h.events();
    let [TftpEvent::Failed { reason, .. }] = events[..] else {
        panic!("{events:?}")
    };
    assert!(reason.is_size_probe());
    assert_eq!(events[0].outcome(), Outcome::SizeProbe);
    assert_eq!(
        events[0].line("bootnetx64.efi").to_string(),
        "tftp: size probe bootnetx64.efi"
    );
    assert_eq!(h.store.open, 0);
}

#[test]
fn stranger_gets_error_5_and_the_transfer_goes_on() {
    let file = pattern(600);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let id = h.rrq("f", &[]);
    assert_eq!(data_block(&h.drain(id)[0].1), (1, 512));
    let ack = [0, 4, 0, 1];
    assert_eq!(
        h.send(id, STRANGER, &ack),
        Handled::Ignored(IgnoreReason::UnknownTransferId)
    );
    let out = h.drain(id);
    assert_eq!(
        out.len(),
        1,
        "only the ERROR: the stranger's ACK moved nothing"
    );
    assert_eq!(out[0].0, STRANGER);
    assert!(matches!(
        parse(&out[0].1),
        Repr::Error {
            code: ErrorCode::UnknownTransferId,
            ..
        }
    ));
    // A stranger's ERROR is not answered.
    assert_eq!(
        h.send(id, STRANGER, &[0, 5, 0, 0, 0]),
        Handled::Ignored(IgnoreReason::UnknownTransferId)
    );
    assert!(h.drain(id).is_empty());
    assert_eq!(h.ack(id, 1), Handled::Accepted);
    assert_eq!(data_block(&h.drain(id)[0].1), (2, 88));
    assert_eq!(h.ack(id, 2), Handled::Accepted);
    assert!(matches!(h.events()[..], [TftpEvent::Finished { .. }]));
}

#[test]
fn duplicate_ack_never_resends_and_timeouts_do_at_exact_times() {
    let file = pattern(2000);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let cfg = TftpConfig {
        max_retries: 2,
        ..TftpConfig::default()
    };
    let mut h = Harness::new(cfg, &mut slots, &files);
    let id = h.rrq("f", &[]);
    let t0 = h.now;
    assert_eq!(data_block(&h.drain(id)[0].1), (1, 512));
    assert_eq!(h.ack(id, 1), Handled::Accepted);
    assert_eq!(data_block(&h.drain(id)[0].1), (2, 512));
    // The ACK for block 1 again: Sorcerer's Apprentice says no resend.
    assert_eq!(h.ack(id, 1), Handled::Ignored(IgnoreReason::DuplicateAck));
    assert!(h.drain(id).is_empty());
    // An ACK for a block not sent yet is refused.
    assert_eq!(h.ack(id, 3), Handled::Ignored(IgnoreReason::UnexpectedAck));
    assert_eq!(h.server.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    h.advance(999);
    assert!(h.drain(id).is_empty(), "no resend before the deadline");
    h.advance(1);
    let out = h.drain(id);
    assert_eq!(out.len(), 1);
    assert_eq!(data_block(&out[0].1), (2, 512), "resent on timeout");
    assert_eq!(h.server.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    h.advance(1000);
    assert_eq!(data_block(&h.drain(id)[0].1), (2, 512));
    // Retries exhausted: dropped, no packet, slot freed, file closed.
    h.advance(1000);
    assert!(h.drain(id).is_empty());
    let events = h.events();
    let [TftpEvent::Failed { reason, stats, .. }] = events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(reason, FailReason::TimedOut);
    assert_eq!(stats.retransmits, 2);
    assert_eq!(stats.duplicate_acks, 1);
    assert_eq!(stats.timeouts, 3);
    assert_eq!(h.store.open, 0);
    assert_eq!(h.server.live(), 0);
    // A spurious handle_timeout is a no-op.
    h.advance(10_000);
    assert!(h.events().is_empty());
}

#[test]
fn window_sends_a_burst_and_rewinds_on_a_gap_ack() {
    let file = pattern(512 * 10 + 1);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let id = h.rrq("f", &[("windowsize", "4")]);
    assert!(matches!(parse(&h.drain(id)[0].1), Repr::OptionAck { .. }));
    assert_eq!(h.ack(id, 0), Handled::Accepted);
    let blocks: Vec<_> = h.drain(id).iter().map(|(_, p)| data_block(p).0).collect();
    assert_eq!(blocks, [1, 2, 3, 4]);
    // The client saw a gap after block 2.
    assert_eq!(h.ack(id, 2), Handled::Accepted);
    let blocks: Vec<_> = h.drain(id).iter().map(|(_, p)| data_block(p).0).collect();
    assert_eq!(blocks, [3, 4, 5, 6]);
    assert_eq!(h.ack(id, 6), Handled::Accepted);
    let blocks: Vec<_> = h.drain(id).iter().map(|(_, p)| data_block(p).0).collect();
    assert_eq!(blocks, [7, 8, 9, 10]);
    // Timeout: rewind to the block after the last ACK.
    h.advance(1000);
    let blocks: Vec<_> = h.drain(id).iter().map(|(_, p)| data_block(p).0).collect();
    assert_eq!(blocks, [7, 8, 9, 10]);
    assert_eq!(h.ack(id, 10), Handled::Accepted);
    let out = h.drain(id);
    assert_eq!(out.len(), 1, "the last, short block ends the window");
    assert_eq!(data_block(&out[0].1), (11, 1));
    assert_eq!(h.ack(id, 11), Handled::Accepted);
    let events = h.events();
    let [TftpEvent::Finished { stats, .. }] = events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(stats.retransmits, 6);
    assert_eq!(stats.bytes, file.len() as u64);
}

#[test]
fn block_numbers_roll_over_past_65535() {
    // blksize 8 keeps the file small: 70 000 blocks.
    let file = pattern(8 * 70_000 + 5);
    let files = [("big", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let id = h.rrq("big", &[("blksize", "8"), ("windowsize", "16")]);
    assert!(matches!(parse(&h.drain(id)[0].1), Repr::OptionAck { .. }));
    assert_eq!(h.ack(id, 0), Handled::Accepted);
    let mut got = Vec::with_capacity(file.len());
    let mut expected_block: u64 = 1;
    loop {
        let out = h.drain(id);
        assert!(!out.is_empty());
        let mut last = 0;
        for (_, p) in &out {
            let Repr::Data { block, data } = parse(p) else {
                panic!("not DATA")
            };
            assert_eq!(
                block, expected_block as u16,
                "wire block wraps modulo 65536"
            );
            expected_block += 1;
            got.extend_from_slice(data);
            last = block;
        }
        assert_eq!(h.ack(id, last), Handled::Accepted);
        if !h.events().is_empty() {
            break;
        }
    }
    assert_eq!(expected_block - 1, 70_001);
    assert!(got == file, "content differs");
}

#[test]
fn repeated_request_is_one_transfer_and_a_new_one_supersedes() {
    let file = pattern(100);
    let files = [("a", &file[..]), ("b", &file[..])];
    let mut slots = vec![Slot::EMPTY; 4];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let first = h.rrq("a", &[]);
    for _ in 0..4 {
        assert_eq!(
            h.request(CLIENT, &rrq("a", &[])),
            RequestOutcome::Ignored(IgnoreReason::DuplicateRequest)
        );
    }
    assert_eq!(h.server.live(), 1);
    let second = h.rrq("b", &[]);
    assert_ne!(first, second);
    let events = h.events();
    assert!(
        matches!(events[..], [TftpEvent::Failed { id, reason: FailReason::Superseded, .. }] if id == first),
        "{events:?}"
    );
    assert_eq!(h.store.open, 1);
}

#[test]
fn requests_that_are_refused() {
    let file = pattern(10);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let mut wrq = rrq("f", &[]);
    wrq[1] = 2;
    let mut netascii = rrq("f", &[]);
    let len = netascii.len();
    netascii.splice(len - 6..len - 1, *b"netascii");
    let cases: Vec<(Vec<u8>, RejectReason, ErrorCode)> = vec![
        (
            rrq("missing", &[]),
            RejectReason::NotFound,
            ErrorCode::FileNotFound,
        ),
        (
            rrq("../etc/passwd", &[]),
            RejectReason::BadPath(pocketpxe_core::PathError::ParentComponent),
            ErrorCode::AccessViolation,
        ),
        (
            rrq("a/../../x", &[]),
            RejectReason::BadPath(pocketpxe_core::PathError::ParentComponent),
            ErrorCode::AccessViolation,
        ),
        (
            rrq("/", &[]),
            RejectReason::BadPath(pocketpxe_core::PathError::Empty),
            ErrorCode::AccessViolation,
        ),
        (wrq, RejectReason::ReadOnly, ErrorCode::AccessViolation),
        (
            netascii,
            RejectReason::UnsupportedMode,
            ErrorCode::IllegalOperation,
        ),
        (
            b"\x00\x01f\x00".to_vec(),
            RejectReason::Malformed(pocketpxe_core::WireError::Unterminated),
            ErrorCode::IllegalOperation,
        ),
    ];
    for (payload, want_reason, want_code) in cases {
        let RequestOutcome::Rejected {
            transmit,
            reason,
            request,
        } = h.request(CLIENT, &payload)
        else {
            panic!("not rejected: {payload:?}")
        };
        assert_eq!(reason, want_reason);
        assert_eq!(transmit.dst, CLIENT);
        // The name comes back as sent, for the driver's log, unless the request did not parse.
        match request {
            Some(request) => {
                let name = payload[2..].split(|&b| b == 0).next().unwrap();
                assert_eq!(request.filename.0, name);
            }
            None => assert!(matches!(reason, RejectReason::Malformed(_))),
        }
        let Repr::Error { code, message } = parse(&h.tx[..transmit.len]) else {
            panic!("not an ERROR")
        };
        assert_eq!(code, want_code);
        assert!(!message.is_empty());
    }
    // Not requests: dropped silently.
    for garbage in [
        &b""[..],
        b"\x00",
        b"\x00\x04\x00\x01",
        b"\x00\x03\x00\x01abc",
        b"\xff\xff",
    ] {
        assert!(matches!(
            h.request(CLIENT, garbage),
            RequestOutcome::Ignored(_)
        ));
    }
    assert_eq!(h.server.live(), 0);
    assert_eq!(h.store.open, 0);
}

#[test]
fn full_slots_answer_busy_and_free_again() {
    let file = pattern(10);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let id = h.rrq("f", &[]);
    let RequestOutcome::Rejected { reason, .. } = h.request(STRANGER, &rrq("f", &[])) else {
        panic!("not rejected")
    };
    assert_eq!(reason, RejectReason::Busy);
    h.drain(id);
    assert_eq!(h.ack(id, 1), Handled::Accepted);
    assert_eq!(h.events().len(), 1);
    assert!(matches!(
        h.request(STRANGER, &rrq("f", &[])),
        RequestOutcome::Accepted { .. }
    ));
}

#[test]
fn read_errors_abort_with_error_0() {
    let file = pattern(10);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let id = h.rrq("f", &[]);
    h.store.fail_reads = true;
    let out = h.drain(id);
    assert_eq!(out.len(), 1);
    assert!(matches!(
        parse(&out[0].1),
        Repr::Error {
            code: ErrorCode::Undefined,
            ..
        }
    ));
    assert!(matches!(
        h.events()[..],
        [TftpEvent::Failed {
            reason: FailReason::ReadError,
            ..
        }]
    ));
    assert_eq!(h.store.open, 0);
}

#[test]
fn small_buffers_are_caller_errors_that_change_nothing() {
    let file = pattern(1000);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let payload = rrq("f", &[]);
    let rx = Received {
        src: CLIENT,
        dst: SERVER,
        payload: &payload,
    };
    let mut tiny = [0u8; 8];
    let err = h
        .server
        .handle_request(h.now, &rx, &mut h.store, &mut tiny)
        .unwrap_err();
    assert!(err.required > 8);
    assert_eq!(h.server.live(), 0);
    let id = h.rrq("f", &[]);
    let mut small = [0u8; 100];
    let err = h
        .server
        .poll_transmit(h.now, id, &mut h.store, &mut small)
        .unwrap_err();
    assert_eq!(err.required, 4 + 512);
    // Nothing was consumed: the full buffer still gets block 1.
    assert_eq!(data_block(&h.drain(id)[0].1), (1, 512));
}

#[test]
fn options_off_serves_plain_rfc1350() {
    let file = pattern(700);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let cfg = TftpConfig {
        options: false,
        ..TftpConfig::default()
    };
    let mut h = Harness::new(cfg, &mut slots, &files);
    let id = h.rrq("f", &[("blksize", "1468"), ("tsize", "0")]);
    assert_eq!(data_block(&h.drain(id)[0].1), (1, 512));
}

#[test]
fn driver_abort_sends_error_0_once() {
    let file = pattern(5000);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let id = h.rrq("f", &[]);
    h.drain(id);
    h.server.abort(id, "shutting down");
    let out = h.drain(id);
    assert_eq!(out.len(), 1);
    assert_eq!(
        parse(&out[0].1),
        Repr::Error {
            code: ErrorCode::Undefined,
            message: b"shutting down"
        }
    );
    assert!(matches!(
        h.events()[..],
        [TftpEvent::Failed {
            reason: FailReason::ServerAborted,
            ..
        }]
    ));
    assert_eq!(h.store.open, 0);
}

#[test]
fn an_accepted_request_carries_its_validated_path_and_options() {
    let file = pattern(10);
    let files = [("pxelinux.cfg/default", &file[..])];
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let payload = rrq(
        "\\pxelinux.cfg\\default",
        &[("tsize", "0"), ("blksize", "1468")],
    );
    let RequestOutcome::Accepted { id, path, options } = h.request(CLIENT, &payload) else {
        panic!("not accepted")
    };
    assert_eq!(path.as_sent(), "\\pxelinux.cfg\\default");
    assert_eq!(path.to_string(), "pxelinux.cfg/default");
    assert_eq!(options.to_string(), "tsize=0 blksize=1468");
    let granted = h.server.transfer(id).unwrap().options;
    assert_eq!(granted.to_string(), "blksize=1468 tsize=10");
}

#[test]
fn only_transfers_with_output_are_ready() {
    let file = pattern(5000);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 4];
    let cfg = TftpConfig {
        timeout: Duration::from_secs(1),
        ..TftpConfig::default()
    };
    let mut h = Harness::new(cfg, &mut slots, &files);
    assert_eq!(h.server.poll_ready(), None);
    let a = h.rrq("f", &[]);
    let b = match h.request(STRANGER, &rrq("f", &[])) {
        RequestOutcome::Accepted { id, .. } => id,
        other => panic!("{other:?}"),
    };
    // Both owe DATA 1, in the order they came; the queue rotates until drained.
    assert_eq!(h.server.poll_ready(), Some(a));
    assert_eq!(h.server.poll_ready(), Some(b));
    assert_eq!(h.server.poll_ready(), Some(a));
    assert_eq!(h.drain(a).len(), 1);
    assert_eq!(h.server.poll_ready(), Some(b));
    assert_eq!(h.server.poll_ready(), Some(b), "b alone is left");
    assert_eq!(h.drain(b).len(), 1);
    assert_eq!(h.server.poll_ready(), None, "both wait for their ACK");
    // A duplicate ACK leaves nothing to send; a new one does.
    assert_eq!(
        h.send(b, STRANGER, &[0, 4, 0, 0]),
        Handled::Ignored(IgnoreReason::DuplicateAck)
    );
    assert_eq!(h.server.poll_ready(), None);
    h.now = h.now + Duration::from_millis(500);
    assert_eq!(h.send(b, STRANGER, &[0, 4, 0, 1]), Handled::Accepted);
    assert_eq!(h.server.poll_ready(), Some(b));
    assert_eq!(data_block(&h.drain(b)[0].1), (2, 512));
    // A timeout readies only the transfer whose deadline passed: a's (b's is later).
    h.now = h.now + Duration::from_millis(499);
    h.server.handle_timeout(h.now);
    assert_eq!(h.server.poll_ready(), None);
    h.now = h.now + Duration::from_millis(1);
    h.server.handle_timeout(h.now);
    assert_eq!(h.server.poll_ready(), Some(a));
    assert_eq!(h.server.poll_ready(), Some(a));
    assert_eq!(data_block(&h.drain(a)[0].1), (1, 512));
    assert_eq!(h.server.poll_ready(), None);
    // An abort readies the transfer for its ERROR; once ended it is never ready again.
    h.server.abort(b, "shutting down");
    assert_eq!(h.server.poll_ready(), Some(b));
    let out = h.drain(b);
    assert!(matches!(parse(&out[0].1), Repr::Error { .. }));
    assert_eq!(h.server.poll_ready(), None);
    let events = h.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id(), b);
}

#[test]
fn the_reference_loop_reports_lines_both_drivers_log() {
    let file = pattern(1000);
    let files = [("f", &file[..])];
    let mut slots = vec![Slot::EMPTY; 2];
    let mut h = Harness::new(TftpConfig::default(), &mut slots, &files);
    let mut out: Vec<(Option<TransferId>, SocketAddrV4, Vec<u8>)> = Vec::new();
    let mut events = Vec::new();
    let mut sink = |o: Output<'_>| match o {
        Output::Send { from, dst, bytes } => out.push((from, dst, bytes.to_vec())),
        Output::Event(e) => events.push(e),
    };
    let missing = rrq("missing\n[fake]", &[]);
    let rx = Received {
        src: STRANGER,
        dst: SERVER,
        payload: &missing,
    };
    let outcome = drive::request(
        &mut h.server,
        h.now,
        &rx,
        &mut h.store,
        &mut h.tx,
        &mut sink,
    );
    let Ok(RequestOutcome::Rejected {
        reason,
        request: Some(request),
        ..
    }) = outcome
    else {
        panic!("{outcome:?}")
    };
    let line = RefusedLine {
        name: request.filename,
        peer: STRANGER,
        reason,
    };
    assert_eq!(
        line.to_string(),
        "tftp: refused missing\\n[fake] to 192.168.242.89:2071: file not found",
        "a name cannot start a new log line"
    );
    let payload = rrq("f", &[]);
    let rx = Received {
        src: CLIENT,
        dst: SERVER,
        payload: &payload,
    };
    let started = h.now;
    let id = match drive::request(
        &mut h.server,
        h.now,
        &rx,
        &mut h.store,
        &mut h.tx,
        &mut sink,
    ) {
        Ok(RequestOutcome::Accepted { id, .. }) => id,
        other => panic!("{other:?}"),
    };
    for block in 1..=2u16 {
        h.now = h.now + Duration::from_millis(20);
        let rx = Received {
            src: CLIENT,
            dst: SERVER,
            payload: &[0, 4, 0, block as u8],
        };
        let handled = drive::datagram(
            &mut h.server,
            h.now,
            id,
            &rx,
            &mut h.store,
            &mut h.tx,
            &mut sink,
        );
        assert_eq!(handled, Ok(Handled::Accepted));
    }
    // The ERROR from the listener, then DATA 1 and 2 from the transfer's port; one event.
    let from: Vec<_> = out.iter().map(|(from, dst, _)| (*from, *dst)).collect();
    assert_eq!(
        from,
        [(None, STRANGER), (Some(id), CLIENT), (Some(id), CLIENT)]
    );
    let [event] = events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(event.outcome(), Outcome::Done);
    assert_eq!(event.stats().started, started);
    assert_eq!(event.stats().elapsed(), Duration::from_millis(40));
    assert_eq!(
        event.line("f").to_string(),
        "tftp: done f 1000 bytes in 40 ms (2 blocks, 0 retransmitted)"
    );
    assert_eq!(Outcome::Done.to_string(), "ok");
    assert_eq!(
        Outcome::Failed(FailReason::TimedOut).to_string(),
        "timed out"
    );
    assert_eq!(WireText(b"a\xffb").to_string(), "a\u{fffd}b");
}

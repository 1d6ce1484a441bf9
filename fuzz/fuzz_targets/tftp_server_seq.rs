//! The TFTP server fed an arbitrary sequence of datagrams (requests, ACKs, ERRORs, garbage, from
//! its peers and from strangers) and time steps, driven exactly as a driver would. Nothing may
//! panic, every datagram must fit the buffer and the limits, and slots must be reclaimed.
#![no_main]

use core::cell::RefCell;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use pocketpxe_core::tftp::drive::{self, Output};
use pocketpxe_core::tftp::{RequestOutcome, Slot, TftpConfig, TftpServer, TransferId};
use pocketpxe_core::{Instant, MemStore, Received};

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 69);
const SLOTS: usize = 4;
const MAX_BLKSIZE: u16 = 1468;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }
}

fn request(input: &mut Input<'_>) -> Option<Vec<u8>> {
    let names = ["f", "/big", "empty", "missing", "../x", "a\\..\\b", ""];
    let flags = input.byte()?;
    let mut p = vec![0, if flags & 0x80 != 0 { 2 } else { 1 }];
    p.extend_from_slice(names[usize::from(flags) % names.len()].as_bytes());
    p.push(0);
    p.extend_from_slice(if flags & 0x40 != 0 {
        b"netascii\0"
    } else {
        b"octet\0"
    });
    for (bit, name) in [
        (1, "blksize"),
        (2, "windowsize"),
        (4, "tsize"),
        (8, "timeout"),
    ] {
        if flags & bit != 0 {
            let value = input.u16()?;
            p.extend_from_slice(format!("{name}\0{value}\0").as_bytes());
        }
    }
    Some(p)
}

fuzz_target!(|data: &[u8]| {
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let small = [7u8; 3000];
    let files = [("f", &small[..]), ("big", &big[..]), ("empty", &[][..])];
    let mut store = MemStore::new(&files);
    let mut slots = vec![Slot::EMPTY; SLOTS];
    let cfg = TftpConfig {
        max_blksize: MAX_BLKSIZE,
        max_windowsize: 16,
        max_retries: 3,
        ..TftpConfig::default()
    };
    let mut server = TftpServer::new(cfg, &mut slots[..]);
    let mut tx = vec![0u8; 4 + usize::from(MAX_BLKSIZE)];
    let mut now = Instant::ZERO;
    let mut ids: Vec<TransferId> = Vec::new();
    let mut input = Input(data);
    let mut steps = 0;
    // What a driver would send: checked as it leaves, counted per transfer and turn.
    let sent: RefCell<Vec<TransferId>> = RefCell::new(Vec::new());
    let mut check = |output: Output<'_>| {
        if let Output::Send {
            from: Some(id),
            bytes,
            ..
        } = output
        {
            assert!(bytes.len() <= 4 + usize::from(MAX_BLKSIZE));
            sent.borrow_mut().push(id);
        }
    };
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 200 {
            break;
        }
        let port = 3000 + u16::from(op >> 4);
        let src = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2 + (op >> 7)), port);
        match op % 4 {
            0 | 3 => {
                let payload = if op % 4 == 0 {
                    let Some(p) = request(&mut input) else { break };
                    p
                } else {
                    let n = usize::from(input.byte().unwrap_or(0));
                    input.bytes(n)
                };
                let rx = Received {
                    src,
                    dst: SERVER,
                    payload: &payload,
                };
                match drive::request(&mut server, now, &rx, &mut store, &mut tx, &mut check) {
                    Ok(RequestOutcome::Accepted { id, path, .. }) => {
                        assert!(!path.as_sent().is_empty());
                        ids.push(id);
                    }
                    Ok(RequestOutcome::Rejected { transmit, .. }) => {
                        assert!(transmit.len <= tx.len());
                        assert_eq!(transmit.dst, src);
                    }
                    Ok(RequestOutcome::Ignored(_)) => {}
                    Err(e) => panic!("tx buffer of {} bytes too small: {e}", tx.len()),
                }
            }
            1 => {
                let Some(which) = input.byte() else { break };
                let Some(&id) = ids.get(usize::from(which) % ids.len().max(1)) else {
                    continue;
                };
                let payload = match which % 3 {
                    0 => {
                        let Some(block) = input.u16() else { break };
                        let b = block.to_be_bytes();
                        vec![0, 4, b[0], b[1]]
                    }
                    1 => vec![0, 5, 0, which % 9, b'x', 0],
                    _ => {
                        let n = usize::from(input.byte().unwrap_or(0) % 32);
                        input.bytes(n)
                    }
                };
                let dst = SocketAddrV4::new(*SERVER.ip(), 40000);
                let rx = Received {
                    src,
                    dst,
                    payload: &payload,
                };
                let _ = drive::datagram(&mut server, now, id, &rx, &mut store, &mut tx, &mut check)
                    .expect("tx holds 4 + max_blksize");
            }
            _ => {
                let Some(ms) = input.u16() else { break };
                now = now + Duration::from_millis(u64::from(ms));
                drive::timeout(&mut server, now, &mut store, &mut tx, &mut check)
                    .expect("tx holds 4 + max_blksize");
            }
        }
        for &id in &ids {
            let from_id = sent.borrow().iter().filter(|&&s| s == id).count();
            assert!(from_id <= 17, "more than a window plus one ERROR at once");
            // The readiness queue left nothing behind.
            assert_eq!(server.poll_transmit(now, id, &mut store, &mut tx), Ok(None));
        }
        sent.borrow_mut().clear();
        ids.retain(|&id| server.transfer(id).is_some());
        assert!(server.live() <= SLOTS);
        assert_eq!(
            server.live(),
            ids.len(),
            "every live transfer is known to the driver"
        );
    }
    // Left alone long enough, every transfer times out and its slot is freed.
    for _ in 0..10 {
        now = now + Duration::from_secs(300);
        drive::timeout(&mut server, now, &mut store, &mut tx, |_| {}).expect("fits");
    }
    assert_eq!(server.live(), 0, "slots reclaimed after the timeout");
});

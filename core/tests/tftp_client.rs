//! The core's TFTP client against the core's TFTP server over a simulated link: both machines
//! are driven exactly as a driver would, on a virtual clock.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use pocketpxe_core::tftp::drive::{self, Output};
use pocketpxe_core::tftp::{
    ClientConfig, ClientError, ClientInput, RequestOutcome, Slot, TftpClient, TftpConfig,
    TftpEvent, TftpServer, TransferId,
};
use pocketpxe_core::wire::tftp::ErrorCode;
use pocketpxe_core::{Instant, MemStore, Received};
use proptest::prelude::*;

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 69);
const TID: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 50000);
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 3000);

struct Outcome {
    result: Result<u64, ClientError>,
    content: Vec<u8>,
    server_events: Vec<TftpEvent>,
    client_retransmits: u32,
}

/// Runs one download; about one datagram in `drop_nth` is dropped, pseudo-randomly (0: none).
fn run(file: &[u8], name: &str, cfg: ClientConfig, drop_nth: u64) -> Outcome {
    let files = [("file", file)];
    let mut store = MemStore::new(&files);
    let mut slots = vec![Slot::EMPTY; 1];
    let mut server = TftpServer::new(TftpConfig::default(), &mut slots[..]);
    let mut client = TftpClient::new(cfg, SERVER, name.as_bytes());
    let mut tx = vec![0u8; 65536];
    let mut now = Instant::from_millis(0);
    let mut content = vec![0u8; 0];
    let mut server_events = Vec::new();
    let mut id: Option<TransferId> = None;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ drop_nth;
    let mut lose = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        drop_nth != 0 && rng.is_multiple_of(drop_nth)
    };
    // Datagrams in flight: (to_server, bytes); delivered in order, one step later.
    let mut wire: Vec<(bool, SocketAddrV4, Vec<u8>)> = Vec::new();
    for _ in 0..1_000_000 {
        while let Some(t) = client.poll_transmit(now, &mut tx).unwrap() {
            if !lose() {
                wire.push((true, t.dst, tx[..t.len].to_vec()));
            }
        }
        drive::flush(
            &mut server,
            now,
            &mut store,
            &mut tx,
            |output| match output {
                Output::Send { dst, bytes, .. } => {
                    assert_eq!(dst, CLIENT);
                    if !lose() {
                        wire.push((false, CLIENT, bytes.to_vec()));
                    }
                }
                Output::Event(e) => server_events.push(e),
            },
        )
        .unwrap();
        if let Some(result) = client.outcome()
            && wire.is_empty()
            && server.live() == 0
        {
            return Outcome {
                result,
                content,
                server_events,
                client_retransmits: client.stats().retransmits,
            };
        }
        if wire.is_empty() {
            // Nothing in flight: jump to the next deadline.
            let next = [client.poll_timeout(), server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else {
                panic!("deadlock: nothing in flight and no deadline")
            };
            now = now.max(next);
            client.handle_timeout(now);
            server.handle_timeout(now);
            continue;
        }
        now = now + Duration::from_millis(1);
        for (to_server, dst, bytes) in std::mem::take(&mut wire) {
            if to_server {
                if dst == SERVER {
                    let rx = Received {
                        src: CLIENT,
                        dst: SERVER,
                        payload: &bytes,
                    };
                    match server
                        .handle_request(now, &rx, &mut store, &mut tx)
                        .unwrap()
                    {
                        RequestOutcome::Accepted { id: new, .. } => id = Some(new),
                        RequestOutcome::Rejected { transmit, .. } => {
                            wire.push((false, CLIENT, tx[..transmit.len].to_vec()));
                        }
                        RequestOutcome::Ignored(_) => {}
                    }
                } else if let Some(id) = id {
                    assert_eq!(dst, TID);
                    let rx = Received {
                        src: CLIENT,
                        dst: TID,
                        payload: &bytes,
                    };
                    let _ = server.handle(now, id, &rx);
                }
            } else {
                // Listener rejections come from :69; transfers from their own TID.
                let src = if id.is_some() { TID } else { SERVER };
                let rx = Received {
                    src,
                    dst: CLIENT,
                    payload: &bytes,
                };
                if let ClientInput::Data { offset, data } = client.handle(now, &rx) {
                    assert_eq!(offset, content.len() as u64, "data in order");
                    content.extend_from_slice(data);
                }
            }
        }
    }
    panic!("livelock");
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 253) as u8).collect()
}

#[test]
fn plain_download() {
    let file = pattern(5000);
    let out = run(&file, "file", ClientConfig::default(), 0);
    assert_eq!(out.result, Ok(5000));
    assert!(out.content == file);
    assert!(matches!(
        out.server_events[..],
        [TftpEvent::Finished { .. }]
    ));
    assert_eq!(out.client_retransmits, 0);
}

#[test]
fn windowed_download_with_options_and_loss() {
    let file = pattern(300_000);
    let cfg = ClientConfig {
        blksize: Some(1468),
        windowsize: Some(16),
        tsize: true,
        ..ClientConfig::default()
    };
    let out = run(&file, "/file", cfg, 0);
    assert_eq!(out.result, Ok(300_000));
    assert!(out.content == file);
    let lossy = run(&file, "/file", cfg, 37);
    assert_eq!(lossy.result, Ok(300_000));
    assert!(lossy.content == file);
    assert!(
        matches!(lossy.server_events[..], [TftpEvent::Finished { stats, .. }] if stats.retransmits > 0)
    );
}

#[test]
fn missing_file_is_a_server_error() {
    let out = run(&pattern(10), "nope", ClientConfig::default(), 0);
    assert_eq!(
        out.result,
        Err(ClientError::Server(ErrorCode::FileNotFound))
    );
    assert!(out.server_events.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_size_any_options_any_loss(
        len in 0usize..40_000,
        blksize in proptest::option::of(8u16..2000),
        windowsize in proptest::option::of(1u16..32),
        drop_nth in prop_oneof![Just(0u64), 5u64..50],
    ) {
        let file = pattern(len);
        let cfg = ClientConfig { blksize, windowsize, tsize: true, max_retries: 50, ..ClientConfig::default() };
        let out = run(&file, "file", cfg, drop_nth);
        prop_assert_eq!(out.result, Ok(len as u64));
        prop_assert!(out.content == file);
    }
}

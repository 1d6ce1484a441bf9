//! Timeout paths, in-process through the library API (`TftpService`) on a paused tokio clock:
//! retransmission only on timeout, at the configured interval, then the transfer is dropped;
//! shutdown with nothing running returns at once.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{TempDir, as_error, opcode, rrq};
use pocketpxe::serve::tftp::{TftpService, TftpTaskConfig};
use pocketpxe::sys::shutdown;
use pocketpxe_core::tftp::TftpConfig;
use std::net::SocketAddrV4;
use std::time::Duration;
use tokio::net::UdpSocket;

fn config(root: &std::path::Path, retries: u8, max_transfers: u16) -> TftpTaskConfig {
    TftpTaskConfig {
        root: root.to_path_buf(),
        listen: SocketAddrV4::new([127, 0, 0, 1].into(), 0),
        max_transfers,
        core: TftpConfig {
            timeout: Duration::from_secs(1),
            max_retries: retries,
            ..TftpConfig::default()
        },
        grace: Duration::from_secs(5),
    }
}

async fn recv(socket: &UdpSocket, limit: Duration) -> Option<(Vec<u8>, std::net::SocketAddr)> {
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(limit, socket.recv_from(&mut buf)).await {
        Ok(Ok((n, src))) => {
            buf.truncate(n);
            Some((buf, src))
        }
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn unanswered_data_is_resent_on_timeout_then_dropped() {
    let tmp = TempDir::new("timeouts");
    std::fs::write(tmp.join("f"), vec![1u8; 2000]).unwrap();
    let service = TftpService::bind(config(&tmp.path, 3, 8)).unwrap();
    let addr = service.local_addr();
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(service.run(shutdown));

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(&rrq(b"f", &[]), addr).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut arrivals = Vec::new();
    while let Some((packet, _)) = recv(&client, Duration::from_secs(30)).await {
        assert_eq!(opcode(&packet), 3, "{:?}", as_error(&packet));
        assert_eq!(&packet[2..4], &[0, 1], "only block 1 may be resent");
        arrivals.push(start.elapsed());
    }
    // The first send plus 3 retransmissions, one timeout (1 s) apart.
    assert_eq!(arrivals.len(), 4, "{arrivals:?}");
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(999) && gap <= Duration::from_millis(1100),
            "{arrivals:?}"
        );
    }
    trigger.trigger();
    // The transfer was dropped, so shutdown does not wait for the grace period.
    let stopped = tokio::time::Instant::now();
    task.await.unwrap().unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn duplicate_acks_do_not_trigger_resends() {
    let tmp = TempDir::new("dupack");
    std::fs::write(tmp.join("f"), vec![2u8; 2000]).unwrap();
    let service = TftpService::bind(config(&tmp.path, 5, 8)).unwrap();
    let addr = service.local_addr();
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(service.run(shutdown));

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(&rrq(b"f", &[]), addr).await.unwrap();
    let (data1, tid) = recv(&client, Duration::from_secs(5)).await.unwrap();
    assert_eq!(&data1[..4], &[0, 3, 0, 1]);
    client.send_to(&[0, 4, 0, 1], tid).await.unwrap();
    let (data2, _) = recv(&client, Duration::from_millis(500)).await.unwrap();
    assert_eq!(&data2[..4], &[0, 3, 0, 2]);
    // Sorcerer's Apprentice: ACK 1 again must not bring DATA 2 again before the timeout.
    client.send_to(&[0, 4, 0, 1], tid).await.unwrap();
    assert!(recv(&client, Duration::from_millis(900)).await.is_none());
    trigger.trigger();
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_full_server_refuses_with_busy() {
    let tmp = TempDir::new("busy");
    std::fs::write(tmp.join("f"), vec![3u8; 2000]).unwrap();
    let service = TftpService::bind(config(&tmp.path, 5, 1)).unwrap();
    let addr = service.local_addr();
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(service.run(shutdown));

    let first = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    first.send_to(&rrq(b"f", &[]), addr).await.unwrap();
    let (data, _) = recv(&first, Duration::from_secs(5)).await.unwrap();
    assert_eq!(opcode(&data), 3);
    let second = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    second.send_to(&rrq(b"f", &[]), addr).await.unwrap();
    let (reply, src) = recv(&second, Duration::from_secs(5)).await.unwrap();
    assert_eq!(as_error(&reply).map(|(code, _)| code), Some(0));
    assert_eq!(
        src,
        std::net::SocketAddr::V4(addr),
        "refusals come from the listener"
    );
    trigger.trigger();
    task.await.unwrap().unwrap();
}

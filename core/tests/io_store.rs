//! `IoStore`: the `FileStore` over `embedded-io` files. An in-memory `Read + Seek` file with
//! injectable faults stands in for an SD card or flash file system.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use embedded_io::{ErrorKind, ErrorType, Read, Seek, SeekFrom};
use pocketpxe_core::tftp::{
    FailReason, Handled, RequestOutcome, Slot, TftpConfig, TftpEvent, TftpServer,
};
use pocketpxe_core::wire::tftp::{ErrorCode, Repr};
use pocketpxe_core::{
    Directory, FileStore, Instant, IoStore, IoStoreError, OpenError, Received, SafePath,
};

/// Faults a [`MemFile`] injects.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    /// Bytes returned per `read` at most (0: no limit).
    max_read: usize,
    /// A `read` starting at this position fails once.
    fail_read_at: Option<u64>,
    /// `SeekFrom::Start` fails.
    fail_seek: bool,
    /// `SeekFrom::End` fails with this kind.
    fail_end_seek: Option<ErrorKind>,
    /// Seeks past the end land at the end.
    clamp: bool,
}

/// What the files of one directory did, shared with the test.
#[derive(Debug, Default)]
struct Log {
    seeks: Cell<usize>,
    reads: Cell<usize>,
    live: Cell<i32>,
}

struct MemFile {
    data: Vec<u8>,
    pos: u64,
    faults: Faults,
    log: Rc<Log>,
}

impl ErrorType for MemFile {
    type Error = ErrorKind;
}

impl Read for MemFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.log.reads.set(self.log.reads.get() + 1);
        if self.faults.fail_read_at == Some(self.pos) {
            self.faults.fail_read_at = None;
            return Err(ErrorKind::Other);
        }
        let start = usize::try_from(self.pos).unwrap().min(self.data.len());
        let mut n = buf.len().min(self.data.len() - start);
        if self.faults.max_read > 0 {
            n = n.min(self.faults.max_read);
        }
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for MemFile {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, ErrorKind> {
        self.log.seeks.set(self.log.seeks.get() + 1);
        let len = self.data.len() as i64;
        let target = match pos {
            SeekFrom::Start(_) if self.faults.fail_seek => return Err(ErrorKind::Other),
            SeekFrom::Start(at) => i64::try_from(at).unwrap(),
            SeekFrom::End(_) if self.faults.fail_end_seek.is_some() => {
                return Err(self.faults.fail_end_seek.unwrap());
            }
            SeekFrom::End(delta) => len + delta,
            SeekFrom::Current(delta) => i64::try_from(self.pos).unwrap() + delta,
        };
        if target < 0 {
            return Err(ErrorKind::InvalidInput);
        }
        let target = if self.faults.clamp {
            target.min(len)
        } else {
            target
        };
        self.pos = target as u64;
        Ok(self.pos)
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        self.log.live.set(self.log.live.get() - 1);
    }
}

/// A file by name, or the error opening it gives.
type Entry = (&'static str, Result<(Vec<u8>, Faults), ErrorKind>);

/// Files by name.
struct MemDir {
    files: Vec<Entry>,
    log: Rc<Log>,
}

impl MemDir {
    fn new(files: Vec<Entry>) -> Self {
        Self {
            files,
            log: Rc::default(),
        }
    }
}

impl ErrorType for MemDir {
    type Error = ErrorKind;
}

impl Directory for MemDir {
    type File = MemFile;

    fn open(&mut self, path: SafePath<'_>) -> Result<MemFile, ErrorKind> {
        let (_, entry) = self
            .files
            .iter()
            .find(|(name, _)| path.matches(name))
            .ok_or(ErrorKind::NotFound)?;
        let (data, faults) = entry.clone()?;
        self.log.live.set(self.log.live.get() + 1);
        Ok(MemFile {
            data,
            pos: 0,
            faults,
            log: Rc::clone(&self.log),
        })
    }
}

fn path(name: &str) -> SafePath<'_> {
    SafePath::parse(name.as_bytes()).unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn one_file(data: Vec<u8>, faults: Faults) -> IoStore<MemDir, 2> {
    IoStore::new(MemDir::new(vec![("boot/file", Ok((data, faults)))]))
}

#[test]
fn reads_at_offsets_and_seeks_only_when_not_sequential() {
    let data = pattern(1000);
    let mut store = one_file(data.clone(), Faults::default());
    let opened = store.open(path("/boot//file")).unwrap();
    assert_eq!(opened.size, Some(1000));
    let log = Rc::clone(&store.directory().log);
    assert_eq!(log.seeks.get(), 1, "the size costs one seek to the end");

    let mut buf = [0u8; 300];
    // Sequential reads from the start: one seek back to 0, then none.
    for offset in [0u64, 300, 600] {
        assert_eq!(store.read_at(opened.handle, offset, &mut buf).unwrap(), 300);
        let at = offset as usize;
        assert_eq!(buf[..], data[at..at + 300]);
    }
    assert_eq!(log.seeks.get(), 2);
    // A rewind (retransmission) seeks once, and the read after it is sequential again.
    assert_eq!(store.read_at(opened.handle, 300, &mut buf).unwrap(), 300);
    assert_eq!(buf[..], data[300..600]);
    assert_eq!(store.read_at(opened.handle, 600, &mut buf).unwrap(), 300);
    assert_eq!(log.seeks.get(), 3);
    // The tail is short: end of file.
    assert_eq!(store.read_at(opened.handle, 900, &mut buf).unwrap(), 100);
    assert_eq!(buf[..100], data[900..]);
    assert_eq!(store.read_at(opened.handle, 1000, &mut buf).unwrap(), 0);
    assert_eq!(store.read_at(opened.handle, 5000, &mut buf).unwrap(), 0);

    assert_eq!(store.open_files(), 1);
    store.close(opened.handle);
    assert_eq!(store.open_files(), 0);
    assert_eq!(log.live.get(), 0, "closing drops the file");
    assert_eq!(
        store.read_at(opened.handle, 0, &mut buf),
        Err(IoStoreError::NotOpen)
    );
}

#[test]
fn short_reads_are_looped_until_the_buffer_is_full() {
    let data = pattern(1300);
    let faults = Faults {
        max_read: 7,
        ..Faults::default()
    };
    let mut store = one_file(data.clone(), faults);
    let handle = store.open(path("boot/file")).unwrap().handle;
    let mut buf = [0u8; 512];
    assert_eq!(store.read_at(handle, 0, &mut buf).unwrap(), 512);
    assert_eq!(buf[..], data[..512]);
    let log = Rc::clone(&store.directory().log);
    assert_eq!(log.reads.get(), 512usize.div_ceil(7));
    assert_eq!(store.read_at(handle, 512, &mut buf).unwrap(), 512);
    assert_eq!(buf[..], data[512..1024]);
    // Only end of file ends a read short.
    assert_eq!(store.read_at(handle, 1024, &mut buf).unwrap(), 276);
    assert_eq!(buf[..276], data[1024..]);
}

#[test]
fn seek_errors_are_values() {
    let faults = Faults {
        fail_seek: true,
        ..Faults::default()
    };
    let mut store = one_file(pattern(100), faults);
    let handle = store.open(path("boot/file")).unwrap().handle;
    let mut buf = [0u8; 10];
    assert_eq!(
        store.read_at(handle, 0, &mut buf),
        Err(IoStoreError::Io(ErrorKind::Other))
    );

    // A seek that lands short of the offset asked for is refused, not read from.
    let faults = Faults {
        clamp: true,
        ..Faults::default()
    };
    let mut store = one_file(pattern(100), faults);
    let handle = store.open(path("boot/file")).unwrap().handle;
    assert_eq!(
        store.read_at(handle, 150, &mut buf),
        Err(IoStoreError::SeekLanded {
            wanted: 150,
            landed: 100
        })
    );
    assert_eq!(store.read_at(handle, 90, &mut buf).unwrap(), 10);

    // A file that cannot seek to its end is served without a size; any other failure there
    // fails the open (and does not leak the file).
    let faults = Faults {
        fail_end_seek: Some(ErrorKind::Unsupported),
        ..Faults::default()
    };
    let mut store = one_file(pattern(100), faults);
    let opened = store.open(path("boot/file")).unwrap();
    assert_eq!(opened.size, None);
    assert_eq!(store.read_at(opened.handle, 0, &mut buf).unwrap(), 10);
    let faults = Faults {
        fail_end_seek: Some(ErrorKind::TimedOut),
        ..Faults::default()
    };
    let mut store = one_file(pattern(100), faults);
    assert_eq!(
        store.open(path("boot/file")),
        Err(OpenError::Io(IoStoreError::Io(ErrorKind::TimedOut)))
    );
    assert_eq!(store.open_files(), 0);
    assert_eq!(store.directory().log.live.get(), 0);
}

#[test]
fn read_errors_are_values_and_the_next_read_seeks_again() {
    let data = pattern(600);
    let faults = Faults {
        fail_read_at: Some(200),
        ..Faults::default()
    };
    let mut store = one_file(data.clone(), faults);
    let handle = store.open(path("boot/file")).unwrap().handle;
    let mut buf = [0u8; 200];
    assert_eq!(store.read_at(handle, 0, &mut buf).unwrap(), 200);
    let log = Rc::clone(&store.directory().log);
    let seeks = log.seeks.get();
    assert_eq!(
        store.read_at(handle, 200, &mut buf),
        Err(IoStoreError::Io(ErrorKind::Other))
    );
    // The position is unknown after a failure: the retry seeks before reading.
    assert_eq!(store.read_at(handle, 200, &mut buf).unwrap(), 200);
    assert_eq!(buf[..], data[200..400]);
    assert_eq!(log.seeks.get(), seeks + 1);
}

#[test]
fn open_errors_map_by_kind_and_slots_are_bounded() {
    let mut store: IoStore<MemDir, 2> = IoStore::new(MemDir::new(vec![
        ("a", Ok((pattern(10), Faults::default()))),
        ("b", Ok((pattern(20), Faults::default()))),
        ("secret", Err(ErrorKind::PermissionDenied)),
        ("broken", Err(ErrorKind::InvalidData)),
    ]));
    assert_eq!(store.open(path("missing")), Err(OpenError::NotFound));
    assert_eq!(store.open(path("secret")), Err(OpenError::Denied));
    assert_eq!(
        store.open(path("broken")),
        Err(OpenError::Io(IoStoreError::Io(ErrorKind::InvalidData)))
    );
    let a = store.open(path("a")).unwrap();
    let b = store.open(path("b")).unwrap();
    assert_ne!(a.handle, b.handle);
    assert_eq!(b.size, Some(20));
    assert_eq!(
        store.open(path("a")),
        Err(OpenError::Io(IoStoreError::TooManyOpen))
    );
    store.close(a.handle);
    let again = store.open(path("b")).unwrap();
    assert_eq!(again.handle, a.handle, "a closed slot is reused");
    assert_eq!(store.directory().log.live.get(), 2);
    // Out-of-range and already-closed handles are harmless.
    store.close(99);
    let mut buf = [0u8; 4];
    assert_eq!(store.read_at(99, 0, &mut buf), Err(IoStoreError::NotOpen));
}

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 242, 1), 69);
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 242, 88), 2070);

/// An RRQ for `name` in octet mode with `options`.
fn rrq_bytes(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut payload = vec![0, 1];
    for s in [name, "octet"]
        .into_iter()
        .chain(options.iter().flat_map(|(n, v)| [*n, *v]))
    {
        payload.extend_from_slice(s.as_bytes());
        payload.push(0);
    }
    payload
}

/// A TFTP server reading through an `IoStore`, driven as a driver would.
struct Harness<'a> {
    server: TftpServer<'a, usize>,
    store: IoStore<MemDir, 2>,
    now: Instant,
    tx: Vec<u8>,
}

impl Harness<'_> {
    fn rrq<'p>(&mut self, payload: &'p [u8]) -> RequestOutcome<'p> {
        let rx = Received {
            src: CLIENT,
            dst: SERVER,
            payload,
        };
        self.server
            .handle_request(self.now, &rx, &mut self.store, &mut self.tx)
            .unwrap()
    }

    fn drain(&mut self, id: pocketpxe_core::tftp::TransferId) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(t) = self
            .server
            .poll_transmit(self.now, id, &mut self.store, &mut self.tx)
            .unwrap()
        {
            assert_eq!(t.dst, CLIENT);
            out.push(self.tx[..t.len].to_vec());
            assert!(out.len() < 10_000, "poll_transmit does not stop");
        }
        out
    }

    fn ack(&mut self, id: pocketpxe_core::tftp::TransferId, block: u16) {
        let mut buf = [0u8; 4];
        let n = Repr::Ack { block }.emit(&mut buf).unwrap();
        let rx = Received {
            src: CLIENT,
            dst: SocketAddrV4::new(*SERVER.ip(), 40000),
            payload: &buf[..n],
        };
        assert_eq!(self.server.handle(self.now, id, &rx), Handled::Accepted);
    }

    fn events(&mut self) -> Vec<TftpEvent> {
        std::iter::from_fn(|| self.server.poll_event(&mut self.store)).collect()
    }
}

#[test]
fn tftp_transfer_through_io_store_delivers_the_exact_bytes() {
    // Short reads from the file, a window of 4, and one lost window that is sent again.
    let file = pattern(5000);
    let faults = Faults {
        max_read: 100,
        ..Faults::default()
    };
    let mut slots = vec![Slot::EMPTY; 2];
    let mut h = Harness {
        server: TftpServer::new(TftpConfig::default(), &mut slots[..]),
        store: one_file(file.clone(), faults),
        now: Instant::from_millis(1_000),
        tx: vec![0; 65536],
    };
    let request = rrq_bytes(
        "/boot/file",
        &[("tsize", "0"), ("blksize", "512"), ("windowsize", "4")],
    );
    let RequestOutcome::Accepted { id, .. } = h.rrq(&request) else {
        panic!("RRQ not accepted")
    };
    let out = h.drain(id);
    let Ok(Repr::OptionAck { options }) = Repr::parse_bytes(&out[0]) else {
        panic!("expected OACK, got {out:?}")
    };
    assert_eq!(options.get("tsize"), Some(&b"5000"[..]));
    h.ack(id, 0);

    let mut blocks: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    let mut lost_one = false;
    for _ in 0..100 {
        let out = h.drain(id);
        if out.is_empty() {
            break;
        }
        let mut last = 0;
        for datagram in &out {
            let Ok(Repr::Data { block, data }) = Repr::parse_bytes(datagram) else {
                panic!("expected DATA")
            };
            if let Some(before) = blocks.insert(block, data.to_vec()) {
                assert_eq!(before, data, "a retransmitted block holds the same bytes");
            }
            last = block;
        }
        if last == 8 && !lost_one {
            // The window 5..=8 is lost: the server times out and sends it again.
            lost_one = true;
            h.now = h.now + Duration::from_secs(1);
            h.server.handle_timeout(h.now);
            continue;
        }
        h.ack(id, last);
    }
    assert!(lost_one);
    let got: Vec<u8> = blocks.values().flatten().copied().collect();
    assert_eq!(got, file);
    assert_eq!(blocks.len(), 10, "9 full blocks and a short one");
    // One seek to learn the size, one back to the start, one to resend block 5.
    assert_eq!(h.store.directory().log.seeks.get(), 3);
    let events = h.events();
    assert!(
        matches!(events[..], [TftpEvent::Finished { stats, .. }] if stats.bytes == 5000 && stats.retransmits == 4),
        "{events:?}"
    );
    assert_eq!(h.store.open_files(), 0);
    assert_eq!(h.store.directory().log.live.get(), 0, "the file was closed");
}

#[test]
fn tftp_read_error_through_io_store_aborts_with_error_0() {
    let faults = Faults {
        fail_read_at: Some(512),
        ..Faults::default()
    };
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness {
        server: TftpServer::new(TftpConfig::default(), &mut slots[..]),
        store: one_file(pattern(2000), faults),
        now: Instant::from_millis(1_000),
        tx: vec![0; 65536],
    };
    let request = rrq_bytes("boot/file", &[]);
    let RequestOutcome::Accepted { id, .. } = h.rrq(&request) else {
        panic!("RRQ not accepted")
    };
    let out = h.drain(id);
    assert!(matches!(
        Repr::parse_bytes(&out[0]),
        Ok(Repr::Data { block: 1, .. })
    ));
    h.ack(id, 1);
    let out = h.drain(id);
    assert!(
        matches!(
            Repr::parse_bytes(&out[0]),
            Ok(Repr::Error {
                code: ErrorCode::Undefined,
                ..
            })
        ),
        "{out:?}"
    );
    assert!(matches!(
        h.events()[..],
        [TftpEvent::Failed {
            reason: FailReason::ReadError,
            ..
        }]
    ));
    assert_eq!(h.store.directory().log.live.get(), 0, "the file was closed");
}

#[test]
fn tftp_missing_and_denied_files_get_errors_1_and_2() {
    let mut slots = vec![Slot::EMPTY; 1];
    let mut h = Harness {
        server: TftpServer::new(TftpConfig::default(), &mut slots[..]),
        store: IoStore::new(MemDir::new(vec![(
            "secret",
            Err(ErrorKind::PermissionDenied),
        )])),
        now: Instant::from_millis(1_000),
        tx: vec![0; 65536],
    };
    for (name, code) in [
        ("missing", ErrorCode::FileNotFound),
        ("secret", ErrorCode::AccessViolation),
    ] {
        let request = rrq_bytes(name, &[]);
        let outcome = h.rrq(&request);
        let RequestOutcome::Rejected { transmit, .. } = outcome else {
            panic!("{name}: {outcome:?}")
        };
        let Ok(Repr::Error { code: got, .. }) = Repr::parse_bytes(&h.tx[..transmit.len]) else {
            panic!("{name}: not an ERROR")
        };
        assert_eq!(got, code, "{name}");
    }
}

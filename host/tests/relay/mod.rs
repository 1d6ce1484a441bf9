//! A seeded UDP impairment relay for tests: loss, duplication, reordering and delay, set per
//! direction, because the kernel here has no netem.
//!
//! * [`TftpRelay`] follows TFTP's port change (RFC 1350 §4). The client talks to the relay's
//!   front port; for each client address the relay forwards from an upstream socket of its
//!   own to the server's port 69. When the server answers from a new transfer port `T`, the
//!   relay opens a front socket `F(T)` and sends the server's datagrams to the client from it;
//!   what the client sends to `F(T)` goes on to `T`. The client therefore sees exactly what a
//!   direct conversation would show: an answer from a new port, and its ACKs go to that port.
//! * [`DhcpBridge`] carries DHCP between two interfaces of a namespace: broadcasts to :67 on
//!   the client side are re-broadcast to :67 on the server side (from :68), broadcasts to :68
//!   on the server side are re-broadcast to :68 on the client side (from :67). Clients ask
//!   for broadcast replies (`udhcpc -B`); the relay is invisible to the server, which sees an
//!   ordinary client on its own link, and no DHCP relay agent (giaddr) semantics are involved.
//!
//! Impairment decisions come from a splitmix64 generator per direction, seeded, so a run's
//! pattern of drops is reproducible up to thread scheduling. Everything is bounded: sessions
//! end after an idle timeout, threads stop when the relay is dropped.
//!
//! Network safety: the TFTP relay binds 127.0.0.1 only; the DHCP bridge only uses sockets the
//! test opened inside a namespace it created.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use super::common::SplitMix64;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What happens to datagrams going one way.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back by `reorder_hold` extra, so that later ones
    /// overtake it.
    pub reorder: f64,
    /// How long a reordered datagram is held back (on top of its delay).
    pub reorder_hold: Duration,
    /// Base one-way delay.
    pub delay: Duration,
    /// The delay varies uniformly in `delay ± jitter`.
    pub jitter: Duration,
}

impl Impairment {
    /// A perfect link.
    pub const NONE: Self = Self {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_hold: Duration::ZERO,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
    };

    /// The hostile link the tests use: 10 % loss, 5 % duplication, 25 % reordering, 20 ms ± 10 ms.
    pub const HOSTILE: Self = Self {
        loss: 0.10,
        duplicate: 0.05,
        reorder: 0.25,
        reorder_hold: Duration::from_millis(25),
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
    };
}

/// Counters of one direction.
#[derive(Debug, Default)]
pub struct DirStats {
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    pub sent: AtomicU64,
}

impl DirStats {
    pub fn summary(&self) -> String {
        format!(
            "received {} dropped {} duplicated {} reordered {} sent {}",
            self.received.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.duplicated.load(Ordering::Relaxed),
            self.reordered.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed)
        )
    }
}

/// Both directions' counters.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Client to server.
    pub up: DirStats,
    /// Server to client.
    pub down: DirStats,
    /// Transfer ports followed (one front socket each).
    pub followed_ports: AtomicU64,
}

/// The TFTP relay on 127.0.0.1.
pub struct TftpRelay {
    front: SocketAddrV4,
    stats: Arc<RelayStats>,
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TftpRelay {
    /// Listens on 127.0.0.1 (a free port) and relays to `server` (its port 69 equivalent).
    pub fn start(server: SocketAddrV4, up: Impairment, down: Impairment, seed: u64) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        front.set_read_timeout(Some(POLL)).unwrap();
        let front_addr = v4(front.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(RelayStats::default());
        let sched = Scheduler::start(stop.clone());
        let threads = Arc::new(Mutex::new(vec![
            sched.thread.lock().unwrap().take().unwrap(),
        ]));
        let ctx = Arc::new(Ctx {
            server,
            front: Arc::new(front),
            up: Mutex::new(Dir::new(up, seed)),
            down: Mutex::new(Dir::new(down, seed ^ 0xD0D0_D0D0)),
            stats: stats.clone(),
            stop: stop.clone(),
            sched,
            sessions: Mutex::new(HashMap::new()),
            threads: threads.clone(),
        });
        let c = ctx.clone();
        let t = std::thread::spawn(move || front_loop(&c));
        threads.lock().unwrap().push(t);
        Self {
            front: front_addr,
            stats,
            stop,
            threads,
        }
    }

    /// Where clients send their requests.
    pub fn addr(&self) -> SocketAddrV4 {
        self.front
    }

    pub fn stats(&self) -> &RelayStats {
        &self.stats
    }
}

impl Drop for TftpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let threads: Vec<_> = self.threads.lock().unwrap().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// The DHCP bridge between two interfaces of a namespace.
pub struct DhcpBridge {
    stats: Arc<RelayStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl DhcpBridge {
    /// `client_side`: bound to 0.0.0.0:67 on the client-facing interface, broadcast allowed;
    /// `server_side`: bound to 0.0.0.0:68 on the server-facing interface, broadcast allowed.
    pub fn start(
        client_side: UdpSocket,
        server_side: UdpSocket,
        up: Impairment,
        down: Impairment,
        seed: u64,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(RelayStats::default());
        let sched = Scheduler::start(stop.clone());
        let mut threads = vec![sched.thread.lock().unwrap().take().unwrap()];
        let sched = Arc::new(sched);
        client_side.set_read_timeout(Some(POLL)).unwrap();
        server_side.set_read_timeout(Some(POLL)).unwrap();
        let client_side = Arc::new(client_side);
        let server_side = Arc::new(server_side);
        for (from, to, port, imp, seed_x, upward) in [
            (
                client_side.clone(),
                server_side.clone(),
                67u16,
                up,
                seed,
                true,
            ),
            (
                server_side,
                client_side,
                68u16,
                down,
                seed ^ 0xD0D0_D0D0,
                false,
            ),
        ] {
            let stop = stop.clone();
            let stats = stats.clone();
            let sched = sched.clone();
            threads.push(std::thread::spawn(move || {
                let mut dir = Dir::new(imp, seed_x);
                let mut buf = vec![0u8; 2048];
                let dst = SocketAddrV4::new(std::net::Ipv4Addr::BROADCAST, port);
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, _)) = from.recv_from(&mut buf) else {
                        continue;
                    };
                    let s = if upward { &stats.up } else { &stats.down };
                    dir.schedule(&sched, s, to.clone(), dst, &buf[..len]);
                }
            }));
        }
        Self {
            stats,
            stop,
            threads,
        }
    }

    pub fn stats(&self) -> &RelayStats {
        &self.stats
    }
}

impl Drop for DhcpBridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// How often blocked receivers look at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// A client session (and its followed ports) ends after this long without traffic.
const IDLE: Duration = Duration::from_secs(30);

struct Ctx {
    server: SocketAddrV4,
    front: Arc<UdpSocket>,
    up: Mutex<Dir>,
    down: Mutex<Dir>,
    stats: Arc<RelayStats>,
    stop: Arc<AtomicBool>,
    sched: Scheduler,
    /// Client address → its upstream socket.
    sessions: Mutex<HashMap<SocketAddrV4, Arc<UdpSocket>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Ctx {
    fn up(&self, via: &Arc<UdpSocket>, dst: SocketAddrV4, payload: &[u8]) {
        self.up
            .lock()
            .unwrap()
            .schedule(&self.sched, &self.stats.up, via.clone(), dst, payload);
    }

    fn down(&self, via: &Arc<UdpSocket>, dst: SocketAddrV4, payload: &[u8]) {
        self.down.lock().unwrap().schedule(
            &self.sched,
            &self.stats.down,
            via.clone(),
            dst,
            payload,
        );
    }

    fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        let t = std::thread::spawn(f);
        self.threads.lock().unwrap().push(t);
    }
}

/// Requests from clients on the front port.
fn front_loop(ctx: &Arc<Ctx>) {
    let mut buf = vec![0u8; 65_536];
    while !ctx.stop.load(Ordering::Relaxed) {
        let Ok((len, src)) = ctx.front.recv_from(&mut buf) else {
            continue;
        };
        let client = v4(src);
        let upstream = {
            let mut sessions = ctx.sessions.lock().unwrap();
            if let Some(s) = sessions.get(&client) {
                s.clone()
            } else {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(POLL)).unwrap();
                let s = Arc::new(s);
                sessions.insert(client, s.clone());
                let (c, s2) = (ctx.clone(), s.clone());
                ctx.spawn(move || upstream_loop(&c, client, &s2));
                s
            }
        };
        ctx.up(&upstream, ctx.server, &buf[..len]);
    }
}

/// What the server sends to one client's upstream socket.
fn upstream_loop(ctx: &Arc<Ctx>, client: SocketAddrV4, upstream: &Arc<UdpSocket>) {
    let mut followed: HashMap<SocketAddrV4, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut last = Instant::now();
    while !ctx.stop.load(Ordering::Relaxed) && last.elapsed() < IDLE {
        let Ok((len, src)) = upstream.recv_from(&mut buf) else {
            continue;
        };
        last = Instant::now();
        let src = v4(src);
        if src == ctx.server {
            // The listener itself answered (an ERROR to the request): from the front port.
            ctx.down(&ctx.front, client, &buf[..len]);
            continue;
        }
        let front = followed
            .entry(src)
            .or_insert_with(|| {
                let f = UdpSocket::bind("127.0.0.1:0").unwrap();
                f.set_read_timeout(Some(POLL)).unwrap();
                let f = Arc::new(f);
                ctx.stats.followed_ports.fetch_add(1, Ordering::Relaxed);
                let (c, f2, u) = (ctx.clone(), f.clone(), upstream.clone());
                ctx.spawn(move || transfer_loop(&c, client, src, &f2, &u));
                f
            })
            .clone();
        ctx.down(&front, client, &buf[..len]);
    }
    ctx.sessions.lock().unwrap().remove(&client);
}

/// What the client sends to the front socket that stands for transfer port `tid`.
fn transfer_loop(
    ctx: &Arc<Ctx>,
    client: SocketAddrV4,
    tid: SocketAddrV4,
    front: &Arc<UdpSocket>,
    upstream: &Arc<UdpSocket>,
) {
    let mut buf = vec![0u8; 65_536];
    let mut last = Instant::now();
    while !ctx.stop.load(Ordering::Relaxed) && last.elapsed() < IDLE {
        let Ok((len, src)) = front.recv_from(&mut buf) else {
            continue;
        };
        last = Instant::now();
        if v4(src) != client {
            continue; // a stranger: the relay stands for one client only
        }
        ctx.up(upstream, tid, &buf[..len]);
    }
}

/// One direction's impairment state.
struct Dir {
    imp: Impairment,
    rng: SplitMix64,
}

impl Dir {
    fn new(imp: Impairment, seed: u64) -> Self {
        Self {
            imp,
            rng: SplitMix64(seed),
        }
    }

    fn schedule(
        &mut self,
        sched: &Scheduler,
        stats: &DirStats,
        via: Arc<UdpSocket>,
        dst: SocketAddrV4,
        payload: &[u8],
    ) {
        stats.received.fetch_add(1, Ordering::Relaxed);
        if self.rng.chance(self.imp.loss) {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copies = if self.rng.chance(self.imp.duplicate) {
            stats.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = self.imp.delay;
            if !self.imp.jitter.is_zero() {
                let j = self.imp.jitter.as_secs_f64();
                let offset = (self.rng.unit() * 2.0 - 1.0) * j;
                delay = Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0));
            }
            if self.rng.chance(self.imp.reorder) {
                stats.reordered.fetch_add(1, Ordering::Relaxed);
                delay += self.imp.reorder_hold;
            }
            sched.push(Instant::now() + delay, via.clone(), dst, payload.into());
        }
        stats.sent.fetch_add(copies, Ordering::Relaxed);
    }
}

struct Pending {
    due: Instant,
    seq: u64,
    via: Arc<UdpSocket>,
    dst: SocketAddrV4,
    payload: Box<[u8]>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed: `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// Datagrams waiting for their time, and the next sequence number (ties keep arrival order).
type Queue = (Mutex<(BinaryHeap<Pending>, u64)>, Condvar);

/// Sends queued datagrams when they are due.
struct Scheduler {
    queue: Arc<Queue>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Scheduler {
    fn start(stop: Arc<AtomicBool>) -> Self {
        let queue: Arc<Queue> = Arc::new((Mutex::new((BinaryHeap::new(), 0)), Condvar::new()));
        let q = queue.clone();
        let thread = std::thread::spawn(move || {
            let (lock, cvar) = &*q;
            let mut guard = lock.lock().unwrap();
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                let wait = match guard.0.peek() {
                    Some(p) if p.due <= now => {
                        let p = guard.0.pop().unwrap();
                        drop(guard);
                        let _ = p.via.send_to(&p.payload, p.dst);
                        guard = lock.lock().unwrap();
                        continue;
                    }
                    Some(p) => (p.due - now).min(POLL),
                    None => POLL,
                };
                guard = cvar.wait_timeout(guard, wait).unwrap().0;
            }
        });
        Self {
            queue,
            thread: Mutex::new(Some(thread)),
        }
    }

    fn push(&self, due: Instant, via: Arc<UdpSocket>, dst: SocketAddrV4, payload: Box<[u8]>) {
        let (lock, cvar) = &*self.queue;
        let mut guard = lock.lock().unwrap();
        let seq = guard.1;
        guard.1 += 1;
        guard.0.push(Pending {
            due,
            seq,
            via,
            dst,
            payload,
        });
        cvar.notify_one();
    }
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => panic!("relay: IPv6 peer {a}"),
    }
}

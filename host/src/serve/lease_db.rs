//! Leases in PostgreSQL, shared by every pocketpxe serving the same pools (replicas).
//!
//! `--leases postgresql://USER@HOST[:PORT]/DB` (or `postgresql:///DB?host=/run/postgresql` for
//! a unix socket) keeps the leases in the table `pocketpxe_leases`, one row per address:
//!
//! * **The database decides who gets an address.** The address is the primary key; a binding
//!   is written with `INSERT … ON CONFLICT (ip) DO UPDATE … WHERE` the row is the same client's
//!   or has expired. A binding another server made first is left alone and reported back
//!   ([`Committed::refused`]) with the winning lease, which the caller teaches its lease table
//!   (`DhcpServer::learn`); its DHCPACK is withheld, so the client is NAKed when it asks again
//!   and is offered another address. Two servers racing for one address serialize on its row.
//! * **Durable before announced**, as with the lease file: the changes of one batch of
//!   datagrams are written in one transaction ([`DbSession::commit`]); its DHCPACKs leave only
//!   after `COMMIT` returned (PostgreSQL's `synchronous_commit`, on by default, makes that a
//!   WAL flush).
//! * **The database is down:** a commit fails at once (or after [`QUERY_TIMEOUT`]); the ACKs
//!   waiting for it are withheld, the error is logged once per outage with the database's host,
//!   and later commits reconnect (1 s after the failure, then backing off to 8 s; an attempt
//!   waits at most [`CONNECT_TIMEOUT`], during which the DHCP task waits too). Releases
//!   not written wait for the next commit; bindings need not (their clients retry).
//! * **Schema:** created or migrated when a connection is made (table `pocketpxe_schema`
//!   holds the version; an advisory lock keeps two starting servers from migrating at once).
//!
//! No TLS: connect over a unix socket or loopback, or through a tunnel (docs/replicas.md).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls, Statement};

use crate::serve::lease_file::LeaseRecord;
use crate::sys::netif::{format_mac, parse_mac};

/// Where the leases are kept: a PostgreSQL database.
#[derive(Clone)]
pub struct LeaseDb {
    config: tokio_postgres::Config,
    /// Host and database for logs (never the password).
    name: String,
}

impl std::fmt::Debug for LeaseDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseDb").field("name", &self.name).finish()
    }
}

/// Why a database URL is not usable or the database refused a commit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseDbError {
    /// `--leases` looks like a URL but does not parse.
    #[error("lease database URL: {0}")]
    Url(String),
    /// Connecting, migrating or writing failed.
    #[error("lease database {name}: {error}")]
    Db {
        /// Host and database.
        name: String,
        /// What went wrong.
        error: String,
    },
}

/// Whether `leases` names a PostgreSQL database rather than a lease file.
pub fn is_db_url(leases: &str) -> bool {
    leases.starts_with("postgresql://") || leases.starts_with("postgres://")
}

impl LeaseDb {
    /// The database named by `url` (`postgresql://…`); nothing is connected yet.
    ///
    /// # Errors
    /// [`LeaseDbError::Url`] if the URL does not parse.
    pub fn new(url: &str) -> Result<Self, LeaseDbError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| LeaseDbError::Url(e.to_string()))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("pocketpxe");
        }
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => format!("{host}:{port}"),
            Some(Host::Unix(dir)) => format!("{}/.s.PGSQL.{port}", dir.display()),
            None => format!("localhost:{port}"),
        };
        let db = config.get_dbname().or(config.get_user()).unwrap_or("");
        Ok(Self {
            name: format!("{host}/{db}"),
            config,
        })
    }

    /// Host and database, as logs name it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What a commit did beyond making the changes durable.
#[derive(Debug, Default)]
pub struct Committed {
    /// Addresses whose binding was refused: another client holds them in the database (its
    /// lease is in `learned`).
    pub refused: Vec<Ipv4Addr>,
    /// Leases this server should know: the winners of refused bindings and, on the first
    /// connection, every unexpired lease in the database.
    pub learned: Vec<LeaseRecord>,
}

/// A connection to the lease database (or its absence) and the changes waiting for it.
pub struct DbSession {
    db: LeaseDb,
    /// This server's identifier, written with each lease (which replica bound it).
    server: String,
    conn: Option<Conn>,
    /// Whether the leases were loaded once (on the first connection).
    loaded: bool,
    /// When the last connection attempt failed, to space out the next ones.
    failed_at: Option<tokio::time::Instant>,
    /// How long after a failed attempt the next one is made (doubles up to [`RECONNECT_MAX`]).
    backoff: Duration,
    /// Whether the database is known to be unreachable (logged once per outage).
    down: bool,
    /// Releases and declines not yet written (bindings are retried by their clients).
    removals: Vec<LeaseRecord>,
}

struct Conn {
    client: Client,
    bind: Statement,
    refused: Statement,
    remove: Statement,
}

impl DbSession {
    /// A session for `db`, writing `server` (this server's identifier) with each lease.
    pub fn new(db: LeaseDb, server: Ipv4Addr) -> Self {
        Self {
            db,
            server: server.to_string(),
            conn: None,
            loaded: false,
            failed_at: None,
            backoff: RECONNECT_EVERY,
            down: false,
            removals: Vec::new(),
        }
    }

    /// The database, for logs.
    pub fn db(&self) -> &LeaseDb {
        &self.db
    }

    /// Connects (if not connected) and, the first time, loads every unexpired lease into
    /// [`Committed::learned`], without writing anything.
    ///
    /// # Errors
    /// [`LeaseDbError::Db`] if the database cannot be reached or migrated.
    pub async fn open(&mut self) -> Result<Committed, LeaseDbError> {
        self.commit(Vec::new()).await
    }

    /// Writes `changes` (in order; `expires_unix: 0` removes the client's address) in one
    /// transaction, connecting first if need be. On success every change is durable except
    /// the refused bindings.
    ///
    /// # Errors
    /// [`LeaseDbError::Db`] naming the database; nothing of this commit is durable then.
    pub async fn commit(&mut self, changes: Vec<LeaseRecord>) -> Result<Committed, LeaseDbError> {
        let now = unix_now();
        // Releases not written yet go first.
        let pending = std::mem::take(&mut self.removals);
        let (binds, removals) = plan(pending.into_iter().chain(changes));
        let result = tokio::time::timeout(QUERY_TIMEOUT, self.write(&binds, &removals, now))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {QUERY_TIMEOUT:?}")));
        match result {
            Ok(done) => {
                if self.down {
                    tracing::info!(database = self.db.name, "lease database reachable again");
                }
                self.down = false;
                Ok(done)
            }
            Err(error) => {
                self.conn = None;
                self.removals = removals;
                if !self.down {
                    tracing::error!(
                        database = self.db.name,
                        error,
                        "lease database unreachable: DHCPACKs withheld until it is back"
                    );
                }
                self.down = true;
                Err(LeaseDbError::Db {
                    name: self.db.name.clone(),
                    error,
                })
            }
        }
    }

    async fn write(
        &mut self,
        binds: &[LeaseRecord],
        removals: &[LeaseRecord],
        now: u64,
    ) -> Result<Committed, String> {
        let mut done = Committed::default();
        if self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            self.conn = None;
            if let Some(at) = self.failed_at
                && at.elapsed() < self.backoff
            {
                return Err("not connected (retrying)".to_owned());
            }
            match self.connect().await {
                Ok(conn) => {
                    self.failed_at = None;
                    self.backoff = RECONNECT_EVERY;
                    self.conn = Some(conn);
                }
                Err(err) => {
                    if self.failed_at.is_some() {
                        self.backoff = (self.backoff * 2).min(RECONNECT_MAX);
                    }
                    self.failed_at = Some(tokio::time::Instant::now());
                    return Err(err);
                }
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err("not connected".to_owned());
        };
        if !self.loaded {
            let rows = conn
                .client
                .query(
                    "SELECT ip, mac, expires FROM pocketpxe_leases WHERE expires > $1",
                    &[&to_i64(now)],
                )
                .await
                .map_err(|e| e.to_string())?;
            done.learned.extend(rows.iter().filter_map(record));
            self.loaded = true;
        }
        if binds.is_empty() && removals.is_empty() {
            return Ok(done);
        }
        let tx = conn.client.transaction().await.map_err(|e| e.to_string())?;
        if !binds.is_empty() {
            let ips: Vec<IpAddr> = binds.iter().map(|b| IpAddr::V4(b.ip)).collect();
            let macs: Vec<String> = binds.iter().map(|b| format_mac(&b.mac)).collect();
            let expires: Vec<i64> = binds.iter().map(|b| to_i64(b.expires_unix)).collect();
            let rows = tx
                .query(
                    &conn.bind,
                    &[&ips, &macs, &expires, &self.server, &to_i64(now)],
                )
                .await
                .map_err(|e| e.to_string())?;
            let accepted: Vec<Ipv4Addr> = rows.iter().filter_map(|r| v4(r.get(0))).collect();
            let refused: Vec<IpAddr> = ips
                .iter()
                .filter(|ip| !matches!(ip, IpAddr::V4(v) if accepted.contains(v)))
                .copied()
                .collect();
            if !refused.is_empty() {
                let rows = tx
                    .query(&conn.refused, &[&refused])
                    .await
                    .map_err(|e| e.to_string())?;
                done.learned.extend(rows.iter().filter_map(record));
                done.refused = refused
                    .iter()
                    .filter_map(|ip| match ip {
                        IpAddr::V4(v) => Some(*v),
                        IpAddr::V6(_) => None,
                    })
                    .collect();
            }
        }
        if !removals.is_empty() {
            let ips: Vec<IpAddr> = removals.iter().map(|r| IpAddr::V4(r.ip)).collect();
            let macs: Vec<String> = removals.iter().map(|r| format_mac(&r.mac)).collect();
            tx.execute(&conn.remove, &[&ips, &macs])
                .await
                .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(done)
    }

    /// A new connection with the schema in place and the statements prepared.
    async fn connect(&self) -> Result<Conn, String> {
        let (mut client, connection) = self
            .db
            .config
            .connect(NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let name = self.db.name.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(database = name, error = %error, "lease database connection lost");
            }
        });
        migrate(&mut client).await.map_err(|e| e.to_string())?;
        let bind = client.prepare(BIND).await.map_err(|e| e.to_string())?;
        let refused = client
            .prepare("SELECT ip, mac, expires FROM pocketpxe_leases WHERE ip = ANY($1::inet[])")
            .await
            .map_err(|e| e.to_string())?;
        let remove = client.prepare(REMOVE).await.map_err(|e| e.to_string())?;
        tracing::info!(database = self.db.name, "lease database connected");
        Ok(Conn {
            client,
            bind,
            refused,
            remove,
        })
    }
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 1;

/// Creates the schema or migrates it to [`SCHEMA_VERSION`], under an advisory lock (several
/// servers may start at once).
async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS pocketpxe_schema (version integer NOT NULL)")
        .await?;
    let version: i32 = tx
        .query_opt("SELECT max(version) FROM pocketpxe_schema", &[])
        .await?
        .and_then(|row| row.get::<_, Option<i32>>(0))
        .unwrap_or(0);
    if version > SCHEMA_VERSION {
        tracing::warn!(
            version,
            known = SCHEMA_VERSION,
            "lease database schema is newer than this pocketpxe: used as version {SCHEMA_VERSION}"
        );
    }
    if version < 1 {
        tx.batch_execute(
            "CREATE TABLE pocketpxe_leases (
                 ip inet PRIMARY KEY,
                 mac text NOT NULL,
                 expires bigint NOT NULL,
                 server text NOT NULL,
                 updated timestamptz NOT NULL DEFAULT now()
             );
             CREATE INDEX pocketpxe_leases_mac ON pocketpxe_leases (mac);
             INSERT INTO pocketpxe_schema (version) VALUES (1);",
        )
        .await?;
    }
    tx.commit().await
}

/// Binds each (ip, mac, expires) unless another client holds the address unexpired; a client's
/// other addresses go (one binding per client). Returns the addresses bound.
const BIND: &str = "
WITH bound AS (
    INSERT INTO pocketpxe_leases AS l (ip, mac, expires, server)
    SELECT n.ip, n.mac, n.expires, $4::text
    FROM unnest($1::inet[], $2::text[], $3::bigint[]) AS n(ip, mac, expires)
    ORDER BY n.ip
    ON CONFLICT (ip) DO UPDATE
        SET mac = excluded.mac, expires = excluded.expires, server = excluded.server,
            updated = now()
        WHERE l.mac = excluded.mac OR l.expires <= $5::bigint
    RETURNING l.ip, l.mac
), moved AS (
    DELETE FROM pocketpxe_leases d USING bound
    WHERE d.mac = bound.mac AND d.ip <> bound.ip
)
SELECT ip FROM bound";

/// Removes each (ip, mac) if the address is still that client's.
const REMOVE: &str = "
DELETE FROM pocketpxe_leases l
USING unnest($1::inet[], $2::text[]) AS n(ip, mac)
WHERE l.ip = n.ip AND l.mac = n.mac";

/// The advisory lock taken while migrating (any fixed number; "pxe1").
const MIGRATION_LOCK: i64 = 0x7078_6531;
/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a commit may take before it counts as failed (its ACKs are withheld).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// While the database is unreachable, a new connection is tried this long after the first
/// failure, then twice as long after each further one, up to [`RECONNECT_MAX`].
pub const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// The longest wait between two connection attempts.
pub const RECONNECT_MAX: Duration = Duration::from_secs(8);

/// The writes `changes` (in order) come to: the last change of each address, and of the
/// bindings only each client's last (the core moved it); bindings sorted by address (one lock
/// order for every server, so two batches never deadlock), then removals.
fn plan(changes: impl IntoIterator<Item = LeaseRecord>) -> (Vec<LeaseRecord>, Vec<LeaseRecord>) {
    let mut latest: HashMap<Ipv4Addr, (usize, LeaseRecord)> = HashMap::new();
    for (seq, change) in changes.into_iter().enumerate() {
        latest.insert(change.ip, (seq, change));
    }
    let mut last_bind: HashMap<[u8; 6], usize> = HashMap::new();
    for (seq, change) in latest.values() {
        if change.expires_unix != 0 {
            let at = last_bind.entry(change.mac).or_insert(*seq);
            *at = (*at).max(*seq);
        }
    }
    let (mut binds, mut removals): (Vec<LeaseRecord>, Vec<LeaseRecord>) = latest
        .into_values()
        .filter(|(seq, c)| c.expires_unix == 0 || last_bind.get(&c.mac) == Some(seq))
        .map(|(_, c)| c)
        .partition(|c| c.expires_unix != 0);
    binds.sort_by_key(|b| b.ip);
    removals.sort_by_key(|r| r.ip);
    (binds, removals)
}

fn record(row: &tokio_postgres::Row) -> Option<LeaseRecord> {
    let ip = v4(row.try_get(0).ok()?)?;
    let mac = parse_mac(row.try_get::<_, &str>(1).ok()?)?;
    let expires: i64 = row.try_get(2).ok()?;
    Some(LeaseRecord {
        mac,
        ip,
        expires_unix: u64::try_from(expires).ok()?,
    })
}

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v) => Some(v),
        IpAddr::V6(_) => None,
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unix_now() -> u64 {
    crate::sys::clock::unix_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_and_database_without_the_password() {
        let db = LeaseDb::new("postgresql://px:secret@db.example:5433/leases").unwrap();
        assert_eq!(db.name(), "db.example:5433/leases");
        assert!(!format!("{db:?}").contains("secret"));
        let db = LeaseDb::new("postgresql:///leases?host=/run/postgresql").unwrap();
        assert_eq!(db.name(), "/run/postgresql/.s.PGSQL.5432/leases");
        assert!(matches!(
            LeaseDb::new("postgresql://h/db?sslmode=nonsense"),
            Err(LeaseDbError::Url(_))
        ));
        assert!(is_db_url("postgres://h/db") && !is_db_url("/var/lib/x.leases"));
    }

    #[test]
    fn a_batch_writes_the_last_change_of_each_address_and_client() {
        let rec = |mac: u8, ip: u8, expires: u64| LeaseRecord {
            mac: [mac; 6],
            ip: Ipv4Addr::new(10, 0, 0, ip),
            expires_unix: expires,
        };
        let (binds, removals) = plan([
            // Client 1 is bound to .9, then moves to .5: only .5 is written.
            rec(1, 9, 100),
            rec(1, 5, 200),
            // .7 is released by client 2, then bound to client 3.
            rec(2, 7, 0),
            rec(3, 7, 300),
            // .8 is bound to client 4, then released: only the removal.
            rec(4, 8, 400),
            rec(4, 8, 0),
        ]);
        assert_eq!(binds, [rec(1, 5, 200), rec(3, 7, 300)], "sorted by address");
        assert_eq!(removals, [rec(4, 8, 0)]);
        assert_eq!(plan([]), (Vec::new(), Vec::new()));
    }
}

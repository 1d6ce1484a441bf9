//! `pocketpxe serve`: DHCP (or proxyDHCP), TFTP and HTTP on one or more interfaces.
//!
//! [`Serve::prepare_all`] takes one set of settings per interface (see
//! [`crate::config::resolve`]) and, interface by interface, checks everything that can be
//! checked before serving, in an order that gives the most useful error first: flags, the
//! service user, the interface (exists, up), its address, the range against the subnet, the
//! TFTP root, the lease file, the sockets (naming who holds a taken port), and then, as the
//! user that will serve, that the TFTP root can be read and the lease file written (warning
//! about `--boot` files it cannot serve); only then does it add that interface's `--address`.
//! A failure undoes what was done for the interfaces before. Then it sets up NAT and drops
//! root, once. [`Serve::run`] serves every interface until shutdown or until any task fails,
//! and removes the addresses it added; on each reload request it reloads the boot rules and
//! reservations of every interface (see [`reload`]).

pub mod dhcp;
pub mod http;
pub mod lease_db;
pub mod lease_file;
pub mod reload;
pub mod router_advert;
pub mod status;
pub mod tftp;
pub mod timeline;

use crate::cli::{AddrRange, Optional, ServeArgs, ServeMode};
use crate::fs_store::{FsStore, RootError};
use crate::machines::api::ControlServer;
use crate::machines::{Machines, Served};
use crate::metrics::{Metrics, MetricsServer};
use crate::serve::dhcp::{
    BootSpec, DhcpModeConfig, DhcpService, DhcpTaskConfig, DhcpTaskError, LeaseStore,
};
use crate::serve::lease_db::LeaseDb;
use crate::serve::lease_file::{LeaseFile, LeaseFileError};
use crate::serve::reload::{InterfaceRules, ReloadTarget, Reloader};
use crate::serve::router_advert::RouterAdvertiser;
use crate::serve::status::{StatusError, StatusSocket};
use crate::serve::tftp::{TftpService, TftpTaskError};
use crate::serve::timeline::{BootWatch, InterfaceStatus, PoolStatus};
use crate::sys::netif::{AddedAddress, AddressLedger, Interface, Ipv4Cidr, NetIfError};
use crate::sys::shutdown::Shutdown;
use crate::sys::udp::{BindOptions, ListenError};
use pocketpxe_core::dhcp::{ClientClass, Pool, Reservation};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

/// Why `serve` cannot start or had to stop. Each message is one line naming the interface,
/// file or port concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Flags that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// The interface is missing, down, or has no address.
    #[error(transparent)]
    Interface(NetIfError),
    /// `--address` could not be added.
    #[error("cannot add {cidr} to {iface}: {detail}")]
    AddAddress {
        /// The address.
        cidr: Ipv4Cidr,
        /// The interface.
        iface: String,
        /// What went wrong.
        detail: String,
    },
    /// The range does not fit the subnet.
    #[error("{0}")]
    Range(String),
    /// The TFTP root is unusable.
    #[error(transparent)]
    Root(#[from] RootError),
    /// A socket could not be set up.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The DHCP task failed.
    #[error(transparent)]
    Dhcp(#[from] DhcpTaskError),
    /// The TFTP task failed.
    #[error(transparent)]
    Tftp(#[from] TftpTaskError),
    /// `--status-socket` could not be set up.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// `--debian`: fetching the installer failed.
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    /// A diskless profile is incomplete, or what it points to is missing.
    #[error(transparent)]
    Diskless(#[from] crate::diskless::DisklessError),
    /// `--nat` could not be set up.
    #[error(transparent)]
    Nat(#[from] crate::sys::nat::NatError),
    /// Root could not be dropped (`--user`).
    #[error(transparent)]
    PrivDrop(#[from] crate::sys::privdrop::PrivDropError),
    /// `--metrics`: the address cannot be listened on.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// `--router-advert on`: the router advertisement socket could not be set up.
    #[error("router advertisements on {iface}: {error}")]
    RouterAdvert {
        /// The interface.
        iface: String,
        /// The failing step.
        error: std::io::Error,
    },
    /// The user `serve` runs as cannot save leases.
    #[error("lease file {} cannot be written by user {user} ({error}): {fix}", .path.display())]
    LeasesNotWritable {
        /// The lease file.
        path: PathBuf,
        /// The user.
        user: String,
        /// The OS error (part of the message, so not a `source()`).
        error: std::io::Error,
        /// What to do about it.
        fix: String,
    },
    /// The user `serve` runs as cannot read the TFTP root.
    #[error("TFTP root {} is not readable by user {user} ({error}): {fix}", .path.display())]
    RootNotReadable {
        /// The root.
        path: PathBuf,
        /// The user.
        user: String,
        /// The OS error (part of the message, so not a `source()`).
        error: std::io::Error,
        /// What to do about it.
        fix: String,
    },
    /// The HTTP task failed.
    #[error(transparent)]
    Http(#[from] http::HttpTaskError),
    /// The machine state file is unreadable or corrupt.
    #[error(transparent)]
    MachineState(#[from] crate::machines::state::StateError),
    /// `--control` cannot be set up.
    #[error(transparent)]
    Control(#[from] crate::machines::api::ControlError),
}

/// Everything set up, ready to serve: one or more interfaces.
#[derive(Debug)]
pub struct Serve {
    units: Vec<Unit>,
    // What a reload hands new rules to, one per interface.
    reload: Vec<ReloadTarget>,
    // The `--metrics` endpoint, one per process.
    metrics: Option<MetricsServer>,
    // The machine records, one set per process.
    machines: Machines,
    // The control API (`--control`), one per process.
    control: Option<ControlServer>,
    // Dropped after the tasks, before the addresses.
    nat: Option<crate::sys::nat::NatGuard>,
    // Dropped last: the addresses stay until every task is done.
    added: Vec<AddedAddress>,
}

/// One interface's DHCP and TFTP services.
#[derive(Debug)]
struct Unit {
    summary: String,
    dhcp: DhcpService,
    tftp: TftpService,
    // The interface's boot timeline, fed by both services.
    watch: BootWatch,
    // Where `pocketpxe status` asks about this interface.
    status: Option<StatusSocket>,
    // "No router here" to IPv6 router solicitations (`--router-advert`).
    router_advert: Option<RouterAdvertiser>,
    // The HTTP server (unless `--no-http`).
    http: Option<http::HttpService>,
}

/// One interface prepared, before NAT and the drop of root.
struct Prepared {
    unit: Unit,
    reload: ReloadTarget,
    served: Served,
    server: Ipv4Cidr,
    added: Option<AddedAddress>,
}

impl Serve {
    /// Checks the flags and the interface, adds `--address` if needed, and binds every socket.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// One [`ServeError`] naming what is wrong; an address added so far is removed again.
    pub fn prepare(args: &ServeArgs) -> Result<Self, ServeError> {
        Self::prepare_all(std::slice::from_ref(args))
    }

    /// [`Serve::prepare`] for several interfaces, each with its own settings (see
    /// [`crate::config::resolve`]); the process-wide ones (`user`, `uplink`) are the first's.
    /// Every interface is checked and bound in turn; then NAT is set up and root dropped,
    /// once. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The first [`ServeError`], naming the interface; what was set up for the interfaces
    /// before it (addresses, sockets) is undone.
    pub fn prepare_all(ifaces: &[ServeArgs]) -> Result<Self, ServeError> {
        let first = ifaces
            .first()
            .ok_or_else(|| ServeError::Usage("no interface to serve".to_owned()))?;
        for args in ifaces {
            check_mode_flags(args)?;
        }
        for (i, a) in ifaces.iter().enumerate() {
            let shared = ifaces[..i]
                .iter()
                .find(|b| a.status_socket.is_some() && b.status_socket == a.status_socket);
            if let (Some(b), Some(path)) = (shared, &a.status_socket) {
                return Err(ServeError::Usage(format!(
                    "interfaces {} and {} share the status socket {}: give each its own \
                     status-socket (or none, for the default per interface)",
                    b.iface(),
                    a.iface(),
                    path.display()
                )));
            }
        }
        // Before anything changes: a missing service user stops nothing half-done.
        let run_as = RunAs::resolve(first)?;
        // One registry and one endpoint for the process (`metrics` is a process-wide key),
        // bound before any interface changes, so a taken address leaves them as they were.
        let metrics = first
            .metrics
            .map(|addr| MetricsServer::bind(addr, Metrics::new()))
            .transpose()?;
        let machines = open_machines(first)?;
        let mut done: Vec<Prepared> = Vec::with_capacity(ifaces.len());
        for args in ifaces {
            // On an error, `done` drops: sockets close, added addresses are removed.
            done.push(prepare_one(
                args,
                &run_as,
                metrics.as_ref().map(MetricsServer::metrics),
                &machines,
            )?);
        }
        machines.set_served(done.iter().map(|p| p.served.clone()).collect());
        check_machine_addresses(&first.machines, &machines.served()).map_err(ServeError::Usage)?;
        let control = match first.control {
            Some(addr) => {
                let leases = ifaces
                    .iter()
                    .filter(|a| a.mode == ServeMode::Dhcp)
                    .map(|a| {
                        let path = a
                            .leases
                            .clone()
                            .unwrap_or_else(|| crate::config::default_lease_file(a.iface()));
                        (a.iface().to_owned(), path)
                    })
                    .collect();
                Some(ControlServer::bind(
                    addr,
                    first.control_token.as_deref(),
                    machines.clone(),
                    leases,
                )?)
            }
            None => None,
        };
        let nat_for = ifaces
            .iter()
            .zip(&done)
            .find(|(args, _)| args.nat)
            .map(|(args, p)| (args, p.server));
        let served: Vec<&str> = ifaces.iter().map(ServeArgs::iface).collect();
        let nat = setup_nat(nat_for, first.uplink.as_deref(), &served)?;
        let cleanup = done.iter().any(|p| p.added.is_some()) || nat.is_some();
        drop_root(&run_as, cleanup)?;
        log_run_as(&run_as, cleanup);
        let mut units = Vec::with_capacity(done.len());
        let mut reload = Vec::with_capacity(done.len());
        let mut added = Vec::new();
        for p in done {
            units.push(p.unit);
            reload.push(p.reload);
            added.extend(p.added);
        }
        Ok(Self {
            units,
            reload,
            metrics,
            machines,
            control,
            nat,
            added,
        })
    }

    /// The metrics it records (`--metrics`), to record more in (completed boots).
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref().map(MetricsServer::metrics)
    }

    /// Serves until `shutdown` fires (DHCP stops at once, TFTP transfers get their grace
    /// period) or a task of any interface fails, which stops them all; then removes the
    /// addresses it added. Each message on `reloads` reloads the boot rules and reservations
    /// of every interface through `reloader` ([`reload::reload`]) while serving goes on.
    ///
    /// # Errors
    /// The first task failure.
    pub async fn run(
        self,
        mut shutdown: Shutdown,
        mut reloads: tokio::sync::mpsc::Receiver<()>,
        mut reloader: Reloader,
    ) -> Result<(), ServeError> {
        let Self {
            units,
            reload,
            metrics,
            machines,
            control,
            nat,
            added,
        } = self;
        let summary = units
            .iter()
            .map(|u| u.summary.as_str())
            .collect::<Vec<_>>()
            .join(" | ");
        tracing::info!("pocketpxe serve ready: {summary}");
        crate::sys::notify::ready(&format!("serving: {summary}"));
        let (trigger, inner) = crate::sys::shutdown::channel();
        let metrics = metrics.map(|server| tokio::spawn(server.run(inner.clone())));
        let control = control.map(|server| tokio::spawn(server.run(inner.clone())));
        let mut tasks: Vec<Task<'_>> = Vec::with_capacity(units.len() * 4);
        for Unit {
            dhcp,
            tftp,
            watch,
            status,
            router_advert,
            http,
            ..
        } in units
        {
            if let Some(http) = http {
                tasks.push(stops_all(&trigger, http.run(inner.clone())));
            }
            if let Some(advertiser) = router_advert {
                let advert_shutdown = inner.clone();
                tasks.push(Box::pin(async move {
                    if let Err(error) = advertiser.run(advert_shutdown).await {
                        // Clients then wait for IPv6 routers as before; serving goes on.
                        tracing::warn!(%error, "router advertisements stopped");
                    }
                    Ok(())
                }));
            }
            let (timeline, status_shutdown) = (watch.clone(), inner.clone());
            let timeline_shutdown = inner.clone();
            tasks.push(Box::pin(async move {
                timeline.run(timeline_shutdown).await;
                Ok(())
            }));
            if let Some(status) = status {
                tasks.push(Box::pin(async move {
                    status.run(watch, status_shutdown).await;
                    Ok(())
                }));
            }
            tasks.push(stops_all(&trigger, dhcp.run(inner.clone())));
            tasks.push(stops_all(&trigger, tftp.run(inner.clone())));
        }
        let outer = async {
            let status = format!("serving: {summary}");
            loop {
                tokio::select! {
                    () = shutdown.requested() => {
                        trigger.trigger();
                        break;
                    }
                    () = wait_fired(inner.clone()) => break,
                    Some(()) = reloads.recv() => {
                        // A stop request waits for the reload (it only waits for the tasks).
                        let _ = reload::reload(&mut reloader, &reload, &status, &machines).await;
                    }
                }
            }
            crate::sys::notify::stopping();
        };
        let (results, ()) = tokio::join!(join_all(tasks), outer);
        if let Some(task) = metrics {
            task.abort();
        }
        if let Some(task) = control {
            task.abort();
        }
        drop(nat);
        drop(added);
        results.into_iter().collect()
    }
}

type Task<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), ServeError>> + 'a>>;

/// A serving task whose failure stops every other task (through `trigger`).
fn stops_all<'a, E: Into<ServeError>>(
    trigger: &'a crate::sys::shutdown::ShutdownTrigger,
    task: impl Future<Output = Result<(), E>> + 'a,
) -> Task<'a> {
    Box::pin(async move {
        let result = task.await.map_err(Into::into);
        if result.is_err() {
            trigger.trigger();
        }
        result
    })
}

/// Runs every task to its end; their results in order.
async fn join_all(mut tasks: Vec<Task<'_>>) -> Vec<Result<(), ServeError>> {
    let mut results: Vec<Option<Result<(), ServeError>>> = tasks.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (task, result) in tasks.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match task.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => *result = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// One interface: checks, binds, and (last) adds its address; NAT and the drop of root come
/// after every interface is prepared.
fn prepare_one(
    args: &ServeArgs,
    run_as: &RunAs,
    metrics: Option<&Metrics>,
    machines: &Machines,
) -> Result<Prepared, ServeError> {
    let iface_name = args.iface();
    let root = args.tftp_root();
    let mut iface = match args.wait_interface {
        Some(limit) => Interface::wait_up(iface_name, limit, args.address.is_none()),
        None => Interface::lookup_up(iface_name),
    }
    .map_err(ServeError::Interface)?;
    // Before the server address is chosen: a killed run's leftover must not become it.
    let ledger = AddressLedger::for_this_namespace();
    let had_records = ledger.path().exists();
    let take_over = recover_addresses(&ledger, iface_name, args.address);
    if had_records {
        iface = Interface::lookup_up(iface_name).map_err(ServeError::Interface)?;
    }
    let server =
        match args.address {
            Some(cidr) => cidr,
            None => iface.addrs.first().copied().ok_or_else(|| {
                ServeError::Interface(NetIfError::NoAddress(iface_name.to_owned()))
            })?,
        };
    let mode = dhcp_mode(args, iface_name, server)?;
    let reservations = reservations(args, iface_name, server)?;
    let relay_subnets = relay_subnets(args, iface_name, server)?;
    if let Some(dist) = &args.debian {
        fetch_debian(args, dist, server)?;
    }
    if let Some(profile) = crate::diskless::Profile::from_args(args)? {
        profile.prepare(root, server.addr, (!args.no_http).then_some(args.http_port))?;
    }
    let store = FsStore::open_root(root)?.with_fallback_dir(rpi_dir(args).as_deref());
    let db_url = args
        .leases
        .as_deref()
        .and_then(std::path::Path::to_str)
        .filter(|l| lease_db::is_db_url(l));
    let leases = match (args.mode == ServeMode::Dhcp, db_url) {
        (false, _) => None,
        (true, Some(url)) => Some(LeaseStore::Postgres(
            LeaseDb::new(url)
                .map(Box::new)
                .map_err(|e| ServeError::Dhcp(DhcpTaskError::LeaseDb(e)))?,
        )),
        (true, None) => {
            let file = LeaseFile::new(
                args.leases
                    .clone()
                    .unwrap_or_else(|| crate::config::default_lease_file(iface_name)),
            );
            Some(LeaseStore::File(match metrics {
                Some(metrics) => file.with_metrics(metrics.lease_file(iface_name)),
                None => file,
            }))
        }
    };
    let lease_path = leases.as_ref().map(|store| match store {
        LeaseStore::File(f) => f.path().display().to_string(),
        LeaseStore::Postgres(db) => format!("postgresql://{}", db.name()),
    });
    let dhcp = DhcpService::bind(DhcpTaskConfig {
        interface: iface_name.to_owned(),
        server,
        mode: mode.clone(),
        boot: boot_table(args),
        reservations,
        leases,
        port: args.dhcp_port,
        // HTTP boot URLs and iPXE scripts point at the HTTP server, unless it is off.
        http_port: (!args.no_http).then_some(args.http_port),
        relay_subnets,
    })?;
    let tftp_listen = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, args.tftp_port);
    let listener = crate::sys::udp::bind(
        tftp_listen,
        BindOptions {
            device: Some(iface_name),
            ..BindOptions::default()
        },
    )
    .map_err(|step| ListenError::new("TFTP", args.tftp_port, iface_name, step))?;
    let tftp_cfg = args.tftp.task_config(root.to_owned(), tftp_listen);
    let watch = BootWatch::new(
        root.to_owned(),
        Some(dhcp.client_book()),
        args.mode == ServeMode::Dhcp,
        args.boot_quiet,
    );
    watch.add_interface(interface_status(iface_name, server, &mode));
    let watch = watch.with_events(machines.clone());
    let watch = match metrics {
        Some(metrics) => watch.with_metrics(metrics.clone()),
        None => watch,
    };
    let dhcp = dhcp
        .with_boot_watch(watch.clone())
        .with_machines(machines.clone());
    let dhcp = match (metrics, &mode) {
        (Some(metrics), DhcpModeConfig::Authoritative { pool, .. }) => {
            dhcp.with_metrics(metrics.dhcp(iface_name, Some(*pool)))
        }
        (Some(metrics), DhcpModeConfig::Proxy) => dhcp.with_metrics(metrics.dhcp(iface_name, None)),
        (None, _) => dhcp,
    };
    let tftp = TftpService::with_parts(tftp_cfg, store, listener)?
        .bind_transfers(server.addr, Some(iface_name.to_owned()))
        .with_client_book(dhcp.client_book())
        .with_boot_watch(watch.clone())
        .max_transfers_per_client(
            (args.max_transfers_per_client > 0).then_some(args.max_transfers_per_client),
        );
    let tftp = match metrics {
        Some(metrics) => tftp.with_metrics(metrics.tftp(iface_name)),
        None => tftp,
    };
    let http =
        bind_http(args, iface_name, &dhcp, &watch)?.map(|h| h.with_machines(machines.clone()));
    // As the user that will serve, and before the interface changes: a refusal leaves it
    // as it was.
    prepare_lease_dir(run_as, lease_path.as_deref())?;
    check_as_server(args, run_as, &dhcp, &tftp)?;
    // Last, so that every error above leaves the interface as it was. The sockets listen on
    // 0.0.0.0 and do not need the address yet.
    let added = match args.address {
        Some(cidr) => iface
            .ensure_address_recorded(cidr, &ledger, take_over.is_some())
            .map_err(|e| add_error(cidr, iface_name, e))?,
        None => None,
    };
    let status = bind_status(args, run_as)?;
    let router_advert = bind_router_advert(args, &iface)?;
    match (&added, &take_over) {
        (Some(added), Some(pid)) => {
            tracing::info!(interface = iface_name, address = %added.cidr(), killed_pid = pid,
                "address left by a killed pocketpxe taken over (removed again on exit)");
        }
        (Some(added), None) => {
            tracing::info!(interface = iface_name, address = %added.cidr(),
                "address added (removed again on exit)");
        }
        (None, _) => {}
    }
    let summary = match &mode {
        DhcpModeConfig::Authoritative {
            pool,
            lease_time,
            router,
            dns,
        } => format!(
            "mode=dhcp range={}-{} lease_time={}s router={} dns={} leases={}",
            pool.start,
            pool.end,
            lease_time.as_secs(),
            router.map_or("none".to_owned(), |r| r.to_string()),
            if dns.is_empty() {
                "none".to_owned()
            } else {
                dns.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            },
            lease_path.unwrap_or_default(),
        ),
        DhcpModeConfig::Proxy => "mode=proxy".to_owned(),
    };
    let reload = ReloadTarget {
        interface: iface_name.to_owned(),
        server,
        proxy: args.mode == ServeMode::Proxy,
        rules: dhcp.rule_sender(),
    };
    let served = Served {
        interface: iface_name.to_owned(),
        server,
        pool: match &mode {
            DhcpModeConfig::Authoritative { pool, .. } => Some(*pool),
            DhcpModeConfig::Proxy => None,
        },
    };
    Ok(Prepared {
        reload,
        served,
        unit: Unit {
            summary: format!(
                "interface={iface_name} server={server} {summary} root={}",
                root.display()
            ),
            dhcp,
            tftp,
            watch,
            status,
            router_advert,
            http,
        },
        server,
        added,
    })
}

/// The machine records of the config file and the state file (`machine-state`, default
/// `machines.json` beside the first interface's lease file), with the pixiecore-style API
/// client of `--api`.
fn open_machines(first: &ServeArgs) -> Result<Machines, ServeError> {
    let state = first.machine_state.clone().unwrap_or_else(|| {
        let leases = first
            .leases
            .clone()
            .unwrap_or_else(|| crate::config::default_lease_file(first.iface()));
        leases.parent().map_or_else(
            || PathBuf::from("machines.json"),
            |d| d.join("machines.json"),
        )
    });
    let machines = Machines::open(first.machines.clone(), Some(state), Vec::new())?;
    Ok(match &first.api {
        Some(url) => {
            let client = crate::machines::pixiecore::Client::new(url).map_err(ServeError::Usage)?;
            machines.with_pixiecore(client)
        }
        None => machines,
    })
}

/// The config file's machine addresses against the served interfaces.
pub(crate) fn check_machine_addresses(
    specs: &[crate::machines::MachineSpec],
    served: &[Served],
) -> Result<(), String> {
    for spec in specs {
        spec.check_address(served).map_err(|e| {
            format!(
                "[[machine]] {}: {e}",
                crate::sys::netif::format_mac(&spec.mac)
            )
        })?;
    }
    Ok(())
}

/// The HTTP server on `--http-port` of the interface (`0.0.0.0` with `SO_BINDTODEVICE`, as
/// TFTP), serving the root through a store of its own; `None` with `--no-http`.
fn bind_http(
    args: &ServeArgs,
    iface: &str,
    dhcp: &DhcpService,
    watch: &BootWatch,
) -> Result<Option<http::HttpService>, ServeError> {
    if args.no_http {
        return Ok(None);
    }
    let listen = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, args.http_port);
    let listener = crate::sys::tcp::listen(listen, Some(iface))
        .map_err(|step| ListenError::new_tcp("HTTP", args.http_port, iface, step))?;
    let service = http::HttpService::with_parts(FsStore::open_root(args.tftp_root())?, listener)?
        .with_client_book(dhcp.client_book())
        .with_boot_watch(watch.clone())
        .grace(args.tftp.grace());
    Ok(Some(service))
}

/// The status socket for `pocketpxe status`, bound as root and handed to the service user.
/// `--status-socket` must work; the default may fail (not started as root) with a warning.
fn bind_status(args: &ServeArgs, run_as: &RunAs) -> Result<Option<StatusSocket>, ServeError> {
    let owner = match run_as {
        RunAs::User(user) => Some((user.uid, user.gid)),
        RunAs::Unprivileged | RunAs::Root => None,
    };
    match &args.status_socket {
        Some(path) => Ok(Some(StatusSocket::bind(path, owner)?)),
        None => {
            let path = status::default_socket(args.iface());
            match StatusSocket::bind(&path, owner) {
                Ok(socket) => Ok(Some(socket)),
                Err(err) => {
                    tracing::warn!(error = %err, "`pocketpxe status` will not answer");
                    Ok(None)
                }
            }
        }
    }
}

/// The interface as `pocketpxe status` shows it.
fn interface_status(iface: &str, server: Ipv4Cidr, mode: &DhcpModeConfig) -> InterfaceStatus {
    let pool = match mode {
        DhcpModeConfig::Authoritative { pool, .. } => {
            let size = u64::from(u32::from(pool.end).saturating_sub(u32::from(pool.start))) + 1;
            Some(PoolStatus {
                start: pool.start,
                end: pool.end,
                size,
                used: 0,
                free: size,
            })
        }
        DhcpModeConfig::Proxy => None,
    };
    InterfaceStatus {
        name: iface.to_owned(),
        server: server.to_string(),
        mode: if pool.is_some() { "dhcp" } else { "proxy" }.to_owned(),
        pool,
    }
}

/// `--router-advert`, default on in dhcp mode and off in proxy mode: the raw ICMPv6 socket,
/// opened while still privileged. When on by default, a failure (IPv6 disabled, no
/// CAP_NET_RAW) is a warning; asked for with `on`, it stops the start.
fn bind_router_advert(
    args: &ServeArgs,
    iface: &Interface,
) -> Result<Option<RouterAdvertiser>, ServeError> {
    use crate::cli::OnOff;
    let wanted = args.router_advert.unwrap_or(match args.mode {
        ServeMode::Dhcp => OnOff::On,
        ServeMode::Proxy => OnOff::Off,
    });
    if wanted == OnOff::Off {
        return Ok(None);
    }
    match RouterAdvertiser::bind(args.iface(), iface.index, iface.mac) {
        Ok(advertiser) => Ok(Some(advertiser)),
        Err(error) if args.router_advert.is_none() => {
            tracing::warn!(interface = args.iface(), %error,
                "router advertisements off (clients like iPXE may wait ~13 s for IPv6 routers)");
            Ok(None)
        }
        Err(error) => Err(ServeError::RouterAdvert {
            iface: args.iface().to_owned(),
            error,
        }),
    }
}

async fn wait_fired(mut shutdown: Shutdown) {
    shutdown.requested().await;
}

/// Flags that only make sense in dhcp mode are refused in proxy mode, not ignored.
fn check_mode_flags(args: &ServeArgs) -> Result<(), ServeError> {
    if args.mode != ServeMode::Proxy {
        return Ok(());
    }
    let mut given = Vec::new();
    if args.range.is_some() {
        given.push("--range");
    }
    if args.lease_time.is_some() {
        given.push("--lease-time");
    }
    if !args.reserve.is_empty() {
        given.push("--reserve");
    }
    if args.router.is_some() {
        given.push("--router");
    }
    if !args.dns.is_empty() {
        given.push("--dns");
    }
    if args.leases.is_some() {
        given.push("--leases");
    }
    if given.is_empty() {
        return Ok(());
    }
    Err(ServeError::Usage(format!(
        "{} only apply to --mode dhcp: in proxy mode the other DHCP server hands out addresses",
        given.join(", ")
    )))
}

fn dhcp_mode(
    args: &ServeArgs,
    iface: &str,
    server: Ipv4Cidr,
) -> Result<DhcpModeConfig, ServeError> {
    if args.mode == ServeMode::Proxy {
        return Ok(DhcpModeConfig::Proxy);
    }
    let subnet = Ipv4Cidr {
        addr: server.network(),
        prefix: server.prefix,
    };
    let range = match args.range {
        Some(range) => range,
        None => default_range(server).ok_or_else(|| {
            ServeError::Range(format!(
                "subnet {subnet} of {iface} is too small for the default range: give --range"
            ))
        })?,
    };
    check_range(range, server, iface).map_err(ServeError::Range)?;
    let with_default = |given: Option<Optional<Ipv4Addr>>| match given {
        None => Some(server.addr),
        Some(Optional::Some(ip)) => Some(ip),
        Some(Optional::None) => None,
    };
    let dns = if args.dns.is_empty() && args.nat {
        // pocketpxe runs no DNS server: behind NAT, hand out the host's own resolvers.
        let upstream = crate::sys::netif::upstream_resolvers();
        if upstream.is_empty() {
            tracing::warn!(
                "--nat: no usable nameserver in /etc/resolv.conf; clients get {} as DNS, \
                 which runs no DNS server: give --dns",
                server.addr
            );
            vec![server.addr]
        } else {
            upstream
        }
    } else if args.dns.is_empty() {
        vec![server.addr]
    } else {
        args.dns
            .iter()
            .filter_map(|d| match d {
                Optional::Some(ip) => Some(*ip),
                Optional::None => None,
            })
            .collect()
    };
    Ok(DhcpModeConfig::Authoritative {
        pool: Pool {
            start: range.start,
            end: range.end,
        },
        lease_time: args.lease_time.unwrap_or(Duration::from_secs(3600)),
        router: with_default(args.router),
        dns,
    })
}

/// The range must lie in the server's subnet, without its network or broadcast address.
///
/// # Errors
/// A message naming the range, the interface and the subnet.
pub(crate) fn check_range(range: AddrRange, server: Ipv4Cidr, iface: &str) -> Result<(), String> {
    let subnet = Ipv4Cidr {
        addr: server.network(),
        prefix: server.prefix,
    };
    for ip in [range.start, range.end] {
        if !server.contains(ip) {
            return Err(format!(
                "range {range} is outside {iface}'s subnet {subnet} (server address {server})"
            ));
        }
    }
    if server.prefix < 31 && (range.start == server.network() || range.end == server.broadcast()) {
        return Err(format!(
            "range {range} includes the network or broadcast address of {subnet}"
        ));
    }
    Ok(())
}

/// Each reserved address must be a client address in the server's subnet.
///
/// # Errors
/// A message naming the reservation, the interface and the subnet.
pub(crate) fn check_reservations(
    reserve: &[crate::cli::ReserveArg],
    server: Ipv4Cidr,
    iface: &str,
) -> Result<(), String> {
    for r in reserve {
        if !server.contains(r.ip) || r.ip == server.addr {
            return Err(format!(
                "reservation {}={} is not a client address in {iface}'s subnet {server}",
                crate::sys::netif::format_mac(&r.mac),
                r.ip
            ));
        }
    }
    Ok(())
}

/// `.2` to `.99` of the server's subnet, clipped to its last host address.
pub(crate) fn default_range(server: Ipv4Cidr) -> Option<AddrRange> {
    if server.prefix > 30 {
        return None;
    }
    let net = u32::from(server.network());
    let last_host = u32::from(server.broadcast()) - 1;
    let start = net + 2;
    if start > last_host {
        return None;
    }
    Some(AddrRange {
        start: Ipv4Addr::from(start),
        end: Ipv4Addr::from((net + 99).min(last_host)),
    })
}

fn reservations(
    args: &ServeArgs,
    iface: &str,
    server: Ipv4Cidr,
) -> Result<Vec<Reservation>, ServeError> {
    check_reservations(&args.reserve, server, iface).map_err(ServeError::Range)?;
    Ok(args
        .reserve
        .iter()
        .map(|r| Reservation {
            mac: r.mac,
            ip: r.ip,
        })
        .collect())
}

/// The subnets behind relay agents (`--relay-subnet`, `[[subnet]]`), checked: dhcp mode only,
/// ranges and hosts inside their network, apart from each other and from the server's subnet.
///
/// # Errors
/// A message naming the subnet and what is wrong.
fn relay_subnets(
    args: &ServeArgs,
    iface: &str,
    server: Ipv4Cidr,
) -> Result<Vec<dhcp::RelaySubnetSpec>, ServeError> {
    if args.relay_subnet.is_empty() {
        return Ok(Vec::new());
    }
    if args.mode != ServeMode::Dhcp {
        return Err(ServeError::Range(format!(
            "relayed subnets on {iface} only apply in dhcp mode"
        )));
    }
    let overlap = |a: Ipv4Cidr, b: Ipv4Cidr| a.contains(b.network()) || b.contains(a.network());
    let mut out: Vec<dhcp::RelaySubnetSpec> = Vec::new();
    for r in &args.relay_subnet {
        crate::config::check_relay_subnet(r).map_err(|(_, m)| ServeError::Range(m))?;
        if overlap(r.network, server) {
            return Err(ServeError::Range(format!(
                "relayed subnet {} overlaps {iface}'s own subnet {server}",
                r.network
            )));
        }
        if let Some(other) = out.iter().find(|o| overlap(o.network, r.network)) {
            return Err(ServeError::Range(format!(
                "relayed subnets {} and {} overlap",
                other.network, r.network
            )));
        }
        out.push(dhcp::RelaySubnetSpec {
            network: r.network,
            pool: Pool {
                start: r.range.start,
                end: r.range.end,
            },
            router: r.router,
            dns: r.dns.clone(),
            lease_time: r.lease_time,
            boot: r
                .boot
                .iter()
                .map(|b| BootSpec {
                    class: b.class,
                    mac: None,
                    file: b.file.clone(),
                })
                .collect(),
            hosts: r
                .hosts
                .iter()
                .map(|h| Reservation {
                    mac: h.mac,
                    ip: h.ip,
                })
                .collect(),
        });
    }
    Ok(out)
}

/// The rules a reload can change, per interface, from resolved settings (flags, or a config
/// file with flags over it; see [`crate::config::resolve`]). Reservations are checked against
/// the subnet by the reload.
pub fn flag_rules(ifaces: &[ServeArgs]) -> Vec<InterfaceRules> {
    ifaces
        .iter()
        .map(|args| InterfaceRules {
            interface: args.iface().to_owned(),
            machines: args.machines.clone(),
            boot: boot_table(args),
            reservations: args
                .reserve
                .iter()
                .map(|r| Reservation {
                    mac: r.mac,
                    ip: r.ip,
                })
                .collect(),
        })
        .collect()
}

/// The boot table of these flags: `--boot` rules (default `bios=pxelinux.0`, with `--debian`
/// also the UEFI shim), then one rule per class of each `--boot-mac`.
pub(crate) fn boot_table(args: &ServeArgs) -> Vec<BootSpec> {
    let mut table: Vec<BootSpec> = args
        .boot
        .iter()
        .map(|b| BootSpec {
            class: b.class,
            mac: None,
            file: b.file.clone(),
        })
        .collect();
    if table.is_empty() {
        table.extend(default_boot_table(args));
    }
    for b in &args.boot_mac {
        let classes: Vec<ClientClass> = match b.class {
            Some(class) => vec![class],
            // Not ipxe: an iPXE client must get its script, not the loader again. Not rpi:
            // its rule names a directory, not a file.
            None => ClientClass::ALL
                .into_iter()
                .filter(|c| !matches!(c, ClientClass::Ipxe | ClientClass::RaspberryPi))
                .collect(),
        };
        table.extend(classes.into_iter().map(|class| BootSpec {
            class,
            mac: Some(b.mac),
            file: b.file.clone(),
        }));
    }
    table
}

/// The boot table without `--boot` flags: BIOS pxelinux.0, and with `--debian` what `fetch
/// debian` puts in the root for each of `--arch`. For amd64, by `--via`:
/// * `tftp`: BIOS pxelinux.0, UEFI x64 the signed shim (which chains GRUB), both over TFTP;
/// * `ipxe`: BIOS `undionly.kpxe`, UEFI x64 `snponly.efi`, and iPXE the generated `boot.ipxe`
///   (whose kernel and initrd come over HTTP when the server serves HTTP);
/// * `auto` (the default): BIOS as `ipxe` (much sooner at the installer), UEFI x64 as `tftp`
///   (as soon there, and signed for Secure Boot, which Debian's iPXE is not).
///
/// In proxy mode UEFI x64 machines chain through iPXE with either: Debian's GRUB asks the
/// address-giving server for its files (docs/protocol.md §2) and stops at its prompt.
/// For arm64, UEFI arm64 (RFC 4578 architecture type 11) gets the signed shim
/// `bootnetaa64.efi` whatever `--via` says: Debian's ipxe package has no arm64 iPXE.
/// UEFI HTTP boot clients get their architecture's UEFI file as a URL (the core's fallback
/// from `efi-x64-http` to `efi-x64`, `efi-arm64-http` to `efi-arm64`).
fn default_boot_table(args: &ServeArgs) -> Vec<BootSpec> {
    use crate::cli::Via;
    use crate::fetch::{efi_class, ipxe, menus::Arch};
    let spec = |class, file: &str| BootSpec {
        class,
        mac: None,
        file: file.to_owned(),
    };
    if args.debian.is_none() {
        let mut table = vec![spec(ClientClass::Bios, DEFAULT_BIOS_BOOT)];
        // A diskless profile: iPXE clients (SeaBIOS + iPXE ROMs, or chained) get its script.
        if args.diskless_live.is_some() || args.diskless_nfs.is_some() {
            table.push(spec(ClientClass::Ipxe, crate::diskless::IPXE_SCRIPT));
        }
        return table;
    }
    let chain = args.via != Via::Tftp && args.arch.contains(Arch::Amd64);
    let uefi_chain = args.via == Via::Ipxe || args.mode == ServeMode::Proxy;
    let mut table = Vec::new();
    for arch in args.arch.as_slice() {
        match arch {
            Arch::Amd64 => {
                table.push(spec(
                    efi_class(*arch),
                    &if uefi_chain {
                        ipxe::UEFI_X64.to_owned()
                    } else {
                        arch.efi_loader()
                    },
                ));
                table.push(spec(
                    ClientClass::Bios,
                    if chain { ipxe::BIOS } else { DEFAULT_BIOS_BOOT },
                ));
            }
            Arch::Arm64 => table.push(spec(efi_class(*arch), &arch.efi_loader())),
        }
    }
    if chain || uefi_chain {
        // The iPXE that is handed out is Debian's x86 one: it runs amd64's script.
        let script_arch = if args.arch.contains(Arch::Amd64) {
            Arch::Amd64
        } else {
            args.arch.as_slice()[0]
        };
        table.push(spec(
            ClientClass::Ipxe,
            &crate::fetch::menus::ipxe_script_path(script_arch),
        ));
    }
    table
}

/// `--debian DIST`: fetches Debian's netboot installer for each of `--arch` into the root
/// unless a verified copy is there (no network then), and (re)writes its generated menus.
fn fetch_debian(args: &ServeArgs, dist: &str, server: Ipv4Cidr) -> Result<(), ServeError> {
    use crate::fetch::menus::{Arch, MenuWrite};
    use crate::fetch::{FetchAction, FetchMode, FetchRequest};
    for arch in args.arch.as_slice() {
        let req = FetchRequest {
            dist: dist.to_owned(),
            arch: *arch,
            mirror: args.mirror.clone(),
            root: args.tftp_root().to_owned(),
            console: args.console.clone(),
            // docs/protocol.md §2: behind another DHCP server, GRUB must be told where the
            // files are.
            tftp_server: (args.mode == ServeMode::Proxy).then_some(server.addr),
            mode: FetchMode::IfMissing,
            verification: crate::fetch::Verification::from_flags(
                args.keyring.clone(),
                args.no_verify_signature,
            ),
        };
        let report = crate::fetch::fetch_debian(&req)?;
        if let FetchAction::Downloaded { bytes } = report.action {
            tracing::info!(dist, arch = %arch, bytes, sha256 = %report.sha256,
                root = %args.tftp_root().display(), "Debian installer fetched and verified");
        }
        for (file, outcome) in report.menus {
            if outcome == MenuWrite::KeptHandEdited {
                tracing::warn!(
                    file,
                    "boot menu edited by hand (no pocketpxe marker line): left as it is"
                );
            }
        }
    }
    if args.arch.contains(Arch::Amd64) {
        let package = std::path::Path::new(crate::fetch::ipxe::PACKAGE_DIR);
        crate::fetch::ipxe::log_install(
            args.tftp_root(),
            &crate::fetch::ipxe::install_ipxe(args.tftp_root(), package)?,
        );
    }
    if args.arch.contains(Arch::Arm64) && args.mode == ServeMode::Proxy {
        tracing::warn!(
            "arm64 behind another DHCP server: Debian's arm64 GRUB asks that server for its \
             grub.cfg, and Debian has no arm64 iPXE to chain through instead; boot arm64 \
             machines in dhcp mode (docs/arm64.md)"
        );
    }
    Ok(())
}

/// Who serves once setup is done.
#[derive(Debug)]
enum RunAs {
    /// Not started as root: nothing to drop, it serves as who it is.
    Unprivileged,
    /// `--user root` (or another user with uid 0): keeps root.
    Root,
    /// Started as root: drops to this user.
    User(crate::sys::privdrop::ServiceUser),
}

impl RunAs {
    /// `--user`, default [`crate::sys::privdrop::DEFAULT_USER`], looked up when running as
    /// root; there is no fallback to another user.
    fn resolve(args: &ServeArgs) -> Result<Self, ServeError> {
        use crate::sys::privdrop::{DEFAULT_USER, ServiceUser, running_as_root};
        if !running_as_root() {
            if let Some(name) = &args.user {
                tracing::debug!(user = %name, "not started as root: --user has nothing to drop");
            }
            return Ok(Self::Unprivileged);
        }
        let user = ServiceUser::lookup(args.user.as_deref().unwrap_or(DEFAULT_USER))?;
        Ok(if user.is_root() {
            Self::Root
        } else {
            Self::User(user)
        })
    }

    /// The name used in messages.
    fn name(&self) -> String {
        match self {
            Self::Unprivileged => crate::sys::privdrop::ServiceUser::current().name,
            Self::Root => "root".to_owned(),
            Self::User(user) => user.name.clone(),
        }
    }
}

/// The lease file's directory, made usable by the service user where that is pocketpxe's
/// business (see [`crate::sys::privdrop::prepare_dir`]).
fn prepare_lease_dir(run_as: &RunAs, lease_path: Option<&str>) -> Result<(), ServeError> {
    let RunAs::User(user) = run_as else {
        return Ok(());
    };
    if let Some(dir) = lease_path
        .and_then(|p| std::path::Path::new(p).parent())
        .filter(|dir| !dir.as_os_str().is_empty())
    {
        crate::sys::privdrop::prepare_dir(dir, user, dir.starts_with("/var/lib/pocketpxe"))?;
    }
    Ok(())
}

/// Least privilege (see [`crate::sys::privdrop`]): everything that needs root is done; switch to
/// the service user, keeping CAP_NET_ADMIN only if an address or NAT must be undone on exit.
fn drop_root(run_as: &RunAs, cleanup: bool) -> Result<(), ServeError> {
    use crate::sys::privdrop::{drop_to, prepare_dir};
    let user = match run_as {
        RunAs::Unprivileged | RunAs::Root => return Ok(()),
        RunAs::User(user) => user,
    };
    // NAT and address state (removed on exit): /run/pocketpxe and this namespace's directory
    // in it.
    for state in [
        PathBuf::from(crate::sys::nat::DEFAULT_STATE_DIR),
        crate::sys::nat::default_state_dir(),
    ] {
        if state.exists() {
            prepare_dir(&state, user, true)?;
        }
    }
    drop_to(user, cleanup)?;
    Ok(())
}

/// Says who serves (once the checks as that user passed, so that a refusal stays one line).
fn log_run_as(run_as: &RunAs, cleanup: bool) {
    match run_as {
        RunAs::Unprivileged => {}
        RunAs::Root => tracing::info!("--user root: keeping root privileges"),
        RunAs::User(user) => {
            let name = &user.name;
            tracing::info!(user = %name, uid = user.uid, gid = user.gid, cap_net_admin = cleanup,
                "dropped root: running as {name}{}",
                if cleanup { " with CAP_NET_ADMIN only (to undo the address/NAT on exit)" } else { " without capabilities" });
        }
    }
}

/// What would otherwise fail only once clients come, checked as the user that will serve
/// (with its credentials, see [`crate::sys::privdrop::as_user`], so the kernel judges): the
/// TFTP root must be readable and the lease file writable (errors); each `--boot` file should
/// be there and readable (warnings: other classes can still boot).
fn check_as_server(
    args: &ServeArgs,
    run_as: &RunAs,
    dhcp: &DhcpService,
    tftp: &TftpService,
) -> Result<(), ServeError> {
    match run_as {
        RunAs::User(user) => {
            crate::sys::privdrop::as_user(user, || check_access(args, run_as, dhcp, tftp))?
        }
        RunAs::Unprivileged | RunAs::Root => check_access(args, run_as, dhcp, tftp),
    }
}

fn check_access(
    args: &ServeArgs,
    run_as: &RunAs,
    dhcp: &DhcpService,
    tftp: &TftpService,
) -> Result<(), ServeError> {
    let user = run_as.name();
    let dropped = matches!(run_as, RunAs::User(_));
    let store = tftp.store();
    if let Err(err) = store.check_readable() {
        let RootError::Unreadable { error, .. } = err else {
            return Err(ServeError::Root(err));
        };
        let root = args.tftp_root().display();
        return Err(ServeError::RootNotReadable {
            path: args.tftp_root().to_owned(),
            user: user.clone(),
            error,
            fix: format!(
                "make it readable and searchable by {user} (for example chmod a+rx {root}), \
                 or pick another --root"
            ),
        });
    }
    if let Err(err) = dhcp.check_lease_file() {
        return Err(match err {
            LeaseFileError::Io {
                path,
                error: source,
            } => {
                let dir = match path.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir.display().to_string(),
                    _ => ".".to_owned(),
                };
                let fix = if dropped {
                    format!(
                        "make {dir} writable by {user} (for example chown {user} {dir}), \
                         pick another --leases, or keep root with --user root"
                    )
                } else {
                    format!("make {dir} writable by {user}, or pick another --leases")
                };
                ServeError::LeasesNotWritable {
                    path,
                    user,
                    error: source,
                    fix,
                }
            }
            other => ServeError::Dhcp(DhcpTaskError::Leases(other)),
        });
    }
    if let Some(dir) = rpi_dir(args) {
        match store.probe(&dir) {
            // A directory is not a file to serve: present.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {}
            _ => tracing::warn!(
                dir,
                clients = "rpi",
                "Raspberry Pi boot directory {dir} is missing under the TFTP root {}: Raspberry Pis will not boot",
                args.tftp_root().display()
            ),
        }
    }
    for (file, whom) in boot_files(args) {
        match store.probe(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => tracing::warn!(
                file, clients = %whom,
                "boot file {file} is missing under the TFTP root {}: {whom} clients will not boot",
                args.tftp_root().display()
            ),
            Err(e) => tracing::warn!(
                file, clients = %whom, user = %user,
                "boot file {file} under the TFTP root {} cannot be served to {whom} clients: {e} (as user {user})",
                args.tftp_root().display()
            ),
        }
    }
    Ok(())
}

/// The Raspberry Pi boot directory: the `rpi` rule of the boot table (one for every Pi; a Pi's
/// own files go in its per-serial or per-MAC directory inside it, docs/raspberry-pi.md §2).
fn rpi_dir(args: &ServeArgs) -> Option<String> {
    boot_table(args)
        .into_iter()
        .find(|spec| spec.class == ClientClass::RaspberryPi && spec.mac.is_none())
        .map(|spec| spec.file)
}

/// The files the boot rules send clients to over TFTP (not HTTP ones), each once, with whom
/// it is for: `bios, efi-x64` or, for `--boot-mac` rules, `bios, efi-x64 of 52:54:00:12:34:56`.
fn boot_files(args: &ServeArgs) -> Vec<(String, String)> {
    let mut files: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for spec in boot_table(args) {
        // An rpi rule names a directory, checked by `check_rpi_dir`.
        if spec.class.is_http()
            || spec.class == ClientClass::RaspberryPi
            || spec.file.contains("://")
        {
            continue;
        }
        let at = match files.iter().position(|(file, ..)| *file == spec.file) {
            Some(at) => at,
            None => {
                files.push((spec.file.clone(), Vec::new(), Vec::new()));
                files.len() - 1
            }
        };
        let (_, classes, macs) = &mut files[at];
        let class = spec.class.to_string();
        if !classes.contains(&class) {
            classes.push(class);
        }
        if let Some(mac) = spec.mac {
            let mac = crate::sys::netif::format_mac(&mac);
            if !macs.contains(&mac) {
                macs.push(mac);
            }
        }
    }
    files
        .into_iter()
        .map(|(file, classes, macs)| {
            let mut whom = classes.join(", ");
            if !macs.is_empty() {
                whom = format!("{whom} of {}", macs.join(", "));
            }
            (file, whom)
        })
        .collect()
}

/// Undoes the addresses killed runs left in this namespace (see [`AddressLedger::recover`]);
/// returns the killed run's PID when it had added `wanted` on `iface`, which this run then
/// takes over. Problems are warnings: they cost the cleanup, not the service.
fn recover_addresses(ledger: &AddressLedger, iface: &str, wanted: Option<Ipv4Cidr>) -> Option<u32> {
    let done = match ledger.recover(iface, wanted) {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!("cannot check for addresses left by a killed pocketpxe: {e}");
            return None;
        }
    };
    for r in &done.removed {
        tracing::info!(interface = %r.iface, address = %r.cidr, killed_pid = r.pid,
            "removed an address left by a killed pocketpxe");
    }
    for r in &done.stale {
        tracing::debug!(interface = %r.iface, address = %r.cidr, killed_pid = r.pid,
            "dropped a stale address record (the interface is gone or is another one now)");
    }
    for (r, why) in &done.failed {
        tracing::warn!(interface = %r.iface, address = %r.cidr, killed_pid = r.pid,
            "cannot remove an address left by a killed pocketpxe: {why}");
    }
    done.taken_over.map(|r| r.pid)
}

/// NAT for the interface with `--nat` (at most one; `uplink` may not be a served interface);
/// without it, only a killed run's leftovers are undone.
fn setup_nat(
    nat_for: Option<(&ServeArgs, Ipv4Cidr)>,
    uplink: Option<&str>,
    served: &[&str],
) -> Result<Option<crate::sys::nat::NatGuard>, ServeError> {
    use crate::sys::nat::{Nat, default_state_dir};
    let Some((args, server)) = nat_for else {
        if default_state_dir().join("nat.state").exists() {
            match Nat::cleanup_leftovers() {
                Ok(done) => tracing::info!(
                    table_removed = done.table_removed,
                    ip_forward = done.forwarding_restored.as_deref(),
                    state_file = done.state_found,
                    "undid NAT left behind by a killed pocketpxe"
                ),
                Err(e) => tracing::warn!("could not undo NAT left by a killed pocketpxe: {e}"),
            }
        }
        return Ok(None);
    };
    let uplink = match uplink {
        Some(uplink) => uplink.to_owned(),
        None => crate::sys::nat::default_uplink()?,
    };
    if served.contains(&uplink.as_str()) {
        let what = if uplink == args.iface() {
            "the interface being served"
        } else {
            "an interface being served"
        };
        return Err(ServeError::Usage(format!(
            "--nat: the uplink {uplink} is {what}; name another with --uplink"
        )));
    }
    Ok(Some(Nat::enable(server, &uplink)?))
}

fn add_error(cidr: Ipv4Cidr, iface: &str, err: NetIfError) -> ServeError {
    let detail = match err {
        NetIfError::Netlink { error: source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            format!("{source} (needs root or CAP_NET_ADMIN)")
        }
        NetIfError::Netlink { error: source, .. } => source.to_string(),
        other => other.to_string(),
    };
    ServeError::AddAddress {
        cidr,
        iface: iface.to_owned(),
        detail,
    }
}

/// The origin's boot file for BIOS clients.
const DEFAULT_BIOS_BOOT: &str = "pxelinux.0";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    /// `pocketpxe serve --interface e --root /` and `extra`.
    fn argv(extra: &[&'static str]) -> Vec<&'static str> {
        let mut v = vec!["pocketpxe", "serve", "--interface", "e", "--root", "/"];
        v.extend_from_slice(extra);
        v
    }

    /// The default boot table of `serve --debian bookworm` and `extra`, as (class, file).
    fn files(extra: &[&str]) -> Vec<(ClientClass, String)> {
        let mut argv = vec!["--debian", "bookworm"];
        argv.extend_from_slice(extra);
        boot_table(&parse(&argv))
            .into_iter()
            .map(|b| (b.class, b.file))
            .collect()
    }

    /// Whether `serve` refuses these arguments: when parsing them, or when resolving them
    /// without a config file (where flags that need a partner are checked).
    fn refused(argv: Vec<&str>) -> bool {
        match crate::cli::parse_from(argv) {
            Err(_) => true,
            Ok(cli) => match cli.command {
                Command::Serve(args) => {
                    let no_file = std::path::Path::new("/nonexistent/pocketpxe.toml");
                    crate::config::resolve(&args, no_file).is_err()
                }
                other => panic!("{other:?}"),
            },
        }
    }

    fn parse(args: &[&str]) -> ServeArgs {
        let mut argv = vec![
            "pocketpxe",
            "serve",
            "--interface",
            "eth1",
            "--root",
            "/srv",
        ];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(args) => args,
            other => panic!("{other:?}"),
        }
    }

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn signature_flags_go_with_debian() {
        use crate::fetch::Verification;
        let from =
            |a: &ServeArgs| Verification::from_flags(a.keyring.clone(), a.no_verify_signature);
        assert_eq!(
            from(&parse(&["--debian", "bookworm"])),
            Verification::Signed { keyring: None }
        );
        assert_eq!(
            from(&parse(&["--debian", "bookworm", "--keyring", "/k.pgp"])),
            Verification::Signed {
                keyring: Some("/k.pgp".into())
            }
        );
        assert_eq!(
            from(&parse(&["--debian", "bookworm", "--no-verify-signature"])),
            Verification::SumsOnly
        );
        let argv = |extra: &[&'static str]| {
            let mut v = vec!["pocketpxe", "serve", "--interface", "eth1"];
            v.extend_from_slice(extra);
            v
        };
        assert!(refused(argv(&["--keyring", "/k.pgp"])));
        assert!(refused(argv(&["--no-verify-signature"])));
        assert!(refused(argv(&[
            "--debian",
            "bookworm",
            "--keyring",
            "/k.pgp",
            "--no-verify-signature"
        ])));
    }

    #[test]
    fn defaults_follow_the_origin() {
        let args = parse(&[]);
        let mode = dhcp_mode(&args, "eth1", cidr("192.168.242.1/24")).unwrap();
        let server = Ipv4Addr::new(192, 168, 242, 1);
        assert_eq!(
            mode,
            DhcpModeConfig::Authoritative {
                pool: Pool {
                    start: Ipv4Addr::new(192, 168, 242, 2),
                    end: Ipv4Addr::new(192, 168, 242, 99),
                },
                lease_time: Duration::from_secs(3600),
                router: Some(server),
                dns: vec![server],
            }
        );
        assert_eq!(
            boot_table(&args),
            [BootSpec {
                class: ClientClass::Bios,
                mac: None,
                file: "pxelinux.0".into()
            }]
        );
        // A /28 clips the range to its last host.
        let r = default_range(cidr("10.0.0.17/28")).unwrap();
        assert_eq!(r.to_string(), "10.0.0.18-10.0.0.30");
        assert_eq!(default_range(cidr("10.0.0.1/31")), None);
    }

    #[test]
    fn flags_parse_and_are_checked() {
        let args = parse(&[
            "--range",
            "10.0.0.10-10.0.0.20",
            "--lease-time",
            "30m",
            "--router",
            "none",
            "--dns",
            "1.1.1.1",
            "--dns",
            "9.9.9.9",
            "--boot",
            "efi-x64=ipxe.efi",
            "--boot-mac",
            "52:54:00:12:34:56@bios=test.0",
            "--boot-mac",
            "52:54:00:12:34:57=all.efi",
            "--reserve",
            "52:54:00:12:34:56=10.0.0.50",
        ]);
        let mode = dhcp_mode(&args, "eth1", cidr("10.0.0.1/24")).unwrap();
        let DhcpModeConfig::Authoritative {
            pool,
            lease_time,
            router,
            dns,
        } = mode
        else {
            panic!()
        };
        assert_eq!(
            (pool.start, pool.end),
            ("10.0.0.10".parse().unwrap(), "10.0.0.20".parse().unwrap())
        );
        assert_eq!(lease_time, Duration::from_secs(1800));
        assert_eq!(router, None);
        assert_eq!(dns.len(), 2);
        let table = boot_table(&args);
        assert_eq!(
            table.len(),
            1 + 1 + 7,
            "no bios default once --boot is given"
        );
        assert!(table.iter().all(|b| b.class != ClientClass::Ipxe));
        assert!(table.iter().all(|b| b.class != ClientClass::RaspberryPi));
        assert_eq!(
            reservations(&args, "eth1", cidr("10.0.0.1/24"))
                .unwrap()
                .len(),
            1
        );
        let err = reservations(&args, "eth1", cidr("10.9.0.1/24"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("10.0.0.50") && err.contains("eth1"), "{err}");
        // Outside the subnet.
        let err = dhcp_mode(&args, "eth1", cidr("192.168.1.1/24"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("outside eth1's subnet 192.168.1.0/24"),
            "{err}"
        );
        // Proxy mode refuses dhcp-only flags.
        let mut proxy = args.clone();
        proxy.mode = ServeMode::Proxy;
        let err = check_mode_flags(&proxy).unwrap_err().to_string();
        assert!(err.contains("--range") && err.contains("--dns"), "{err}");
        // Bad values.
        for bad in [
            ["--range", "10.0.0.20-10.0.0.10"],
            ["--boot", "pdp11=x"],
            ["--lease-time", "1fortnight"],
            ["--reserve", "zz=10.0.0.1"],
            ["--router", "gateway"],
        ] {
            let mut argv = vec!["pocketpxe", "serve", "--interface", "e", "--root", "/"];
            argv.extend_from_slice(&bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn boot_files_are_listed_once_with_their_clients() {
        let args = parse(&[
            "--boot",
            "bios=pxelinux.0",
            "--boot",
            "efi-x64=/bootx64.efi",
            "--boot",
            "efi-ia32=pxelinux.0",
            "--boot",
            "efi-x64-http=boot/x.efi",
            "--boot",
            "ipxe=http://10.0.0.1/boot.ipxe",
            "--boot-mac",
            "52:54:00:12:34:56@bios=one.0",
        ]);
        assert_eq!(
            boot_files(&args),
            [
                ("pxelinux.0".to_owned(), "bios, efi-ia32".to_owned()),
                ("/bootx64.efi".to_owned(), "efi-x64".to_owned()),
                ("one.0".to_owned(), "bios of 52:54:00:12:34:56".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn join_all_runs_every_task_to_its_end() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let tasks: Vec<Task<'_>> = vec![
            Box::pin(async move {
                // Ends only after the third task ran.
                rx.await.map_err(|_| ServeError::Usage("dropped".into()))
            }),
            Box::pin(async { Err(ServeError::Usage("second".into())) }),
            Box::pin(async move {
                tokio::task::yield_now().await;
                tx.send(()).map_err(|()| ServeError::Usage("closed".into()))
            }),
        ];
        let results = join_all(tasks).await;
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok() && results[2].is_ok());
        assert_eq!(results[1].as_ref().unwrap_err().to_string(), "second");
        let first_error: Result<(), ServeError> = results.into_iter().collect();
        assert_eq!(first_error.unwrap_err().to_string(), "second");
    }

    #[test]
    fn debian_and_nat_flags() {
        let args = parse(&[
            "--debian",
            "bookworm",
            "--console",
            "ttyS0",
            "--nat",
            "--via",
            "tftp",
        ]);
        assert_eq!(args.debian.as_deref(), Some("bookworm"));
        assert_eq!(args.console.as_ref().map(|c| c.baud), Some(115_200));
        assert!(args.nat && args.uplink.is_none());
        let files: Vec<(ClientClass, String)> = boot_table(&args)
            .into_iter()
            .map(|b| (b.class, b.file))
            .collect();
        assert_eq!(
            files,
            [
                (
                    ClientClass::EfiX64,
                    "debian-installer/amd64/bootnetx64.efi".to_owned()
                ),
                (ClientClass::Bios, "pxelinux.0".to_owned()),
            ]
        );
        // Explicit --boot wins over the Debian defaults.
        let args = parse(&["--debian", "trixie", "--boot", "efi-x64=ipxe.efi"]);
        assert_eq!(boot_table(&args).len(), 1);
        assert!(refused(argv(&["--uplink", "eth0"])));
        assert!(refused(argv(&["--console", "ttyS0"])));
        assert!(!refused(argv(&["--nat", "--uplink", "eth0"])));
    }

    #[test]
    fn debian_arches_map_each_uefi_class_to_its_loader() {
        use pocketpxe_core::dhcp::{BootRule, ClientInfo, choose};
        let amd64 = [
            (
                ClientClass::EfiX64,
                "debian-installer/amd64/bootnetx64.efi".to_owned(),
            ),
            (ClientClass::Bios, "ipxe/undionly.kpxe".to_owned()),
        ];
        let script = (
            ClientClass::Ipxe,
            "debian-installer/amd64/boot.ipxe".to_owned(),
        );
        let arm64 = (
            ClientClass::EfiArm64,
            "debian-installer/arm64/bootnetaa64.efi".to_owned(),
        );
        // amd64 is the default, and unchanged.
        let mut alone = amd64.to_vec();
        alone.push(script.clone());
        assert_eq!(files(&[]), alone);
        assert_eq!(files(&["--arch", "amd64"]), alone);
        let mut both = amd64.to_vec();
        both.push(arm64.clone());
        both.push(script);
        assert_eq!(files(&["--arch", "amd64,arm64"]), both);
        assert_eq!(files(&["--arch", "arm64"]), std::slice::from_ref(&arm64));
        // No arm64 iPXE in Debian: arm64 keeps shim and GRUB; iPXE runs amd64's script.
        assert_eq!(
            files(&["--arch", "arm64,amd64", "--via", "ipxe"]),
            [
                arm64.clone(),
                (ClientClass::EfiX64, "ipxe/snponly.efi".to_owned()),
                (ClientClass::Bios, "ipxe/undionly.kpxe".to_owned()),
                (
                    ClientClass::Ipxe,
                    "debian-installer/amd64/boot.ipxe".to_owned()
                ),
            ]
        );
        // Through the core: a client of architecture type 11 (RFC 4578 §2.1) gets the arm64
        // shim, type 7 and 9 the amd64 one, type 0 iPXE, type 19 (arm64 HTTP boot) the arm64
        // shim as a URL.
        let table = boot_table(&parse(&["--debian", "bookworm", "--arch", "amd64,arm64"]));
        let rules: Vec<BootRule<'_>> = table
            .iter()
            .map(|b| BootRule::new(b.class, &b.file))
            .collect();
        for (arch_type, want) in [
            (11u8, "debian-installer/arm64/bootnetaa64.efi"),
            (7, "debian-installer/amd64/bootnetx64.efi"),
            (9, "debian-installer/amd64/bootnetx64.efi"),
            (0, "ipxe/undionly.kpxe"),
            (19, "debian-installer/arm64/bootnetaa64.efi"),
        ] {
            let arch = pocketpxe_core::wire::dhcp_option::Arch::from(u16::from(arch_type));
            let info = ClientInfo {
                arch: Some(arch),
                arch_class: ClientClass::from_arch(arch),
                pxe: true,
                http: arch_type == 19,
                ipxe: false,
            };
            let choice = choose(&rules, &info, [0x52, 0x54, 0, 0, 0, 1]).unwrap();
            assert_eq!(choice.rule.file, want, "architecture type {arch_type}");
        }
        // --arch goes with --debian, and names known architectures once.
        assert!(refused(argv(&["--arch", "arm64"])));
        assert!(refused(argv(&["--debian", "bookworm", "--arch", "i386"])));
        assert!(
            Cli::try_parse_from(argv(&["--debian", "bookworm", "--arch", "arm64,arm64"])).is_err()
        );
    }

    #[test]
    fn via_and_proxy_mode_choose_the_debian_chain() {
        let chain = [
            (ClientClass::EfiX64, "ipxe/snponly.efi".to_owned()),
            (ClientClass::Bios, "ipxe/undionly.kpxe".to_owned()),
            (
                ClientClass::Ipxe,
                "debian-installer/amd64/boot.ipxe".to_owned(),
            ),
        ];
        assert_eq!(files(&["--via", "ipxe"]), chain);
        assert_eq!(files(&["--via", "ipxe", "--mode", "proxy"]), chain);
        // Proxy mode over TFTP: BIOS keeps pxelinux, UEFI chains through iPXE.
        assert_eq!(
            files(&["--mode", "proxy", "--via", "tftp"]),
            [
                (ClientClass::EfiX64, "ipxe/snponly.efi".to_owned()),
                (ClientClass::Bios, "pxelinux.0".to_owned()),
                (
                    ClientClass::Ipxe,
                    "debian-installer/amd64/boot.ipxe".to_owned()
                ),
            ]
        );
        // The default: BIOS through iPXE, UEFI through the signed shim.
        assert_eq!(files(&["--via", "auto"]), files(&[]));
        assert_eq!(
            files(&[]),
            [
                (
                    ClientClass::EfiX64,
                    "debian-installer/amd64/bootnetx64.efi".to_owned()
                ),
                (ClientClass::Bios, "ipxe/undionly.kpxe".to_owned()),
                (
                    ClientClass::Ipxe,
                    "debian-installer/amd64/boot.ipxe".to_owned()
                ),
            ]
        );
        assert_eq!(files(&["--mode", "proxy"]), chain);
        assert_eq!(
            files(&["--via", "tftp"]),
            [
                (
                    ClientClass::EfiX64,
                    "debian-installer/amd64/bootnetx64.efi".to_owned()
                ),
                (ClientClass::Bios, "pxelinux.0".to_owned()),
            ]
        );
        // --via needs --debian; --router-advert takes on or off.
        assert!(refused(argv(&["--via", "ipxe"])));
        assert!(refused(argv(&["--router-advert", "yes"])));
        assert_eq!(
            parse(&["--router-advert", "off"]).router_advert,
            Some(crate::cli::OnOff::Off)
        );
        assert_eq!(parse(&[]).router_advert, None);
    }
}

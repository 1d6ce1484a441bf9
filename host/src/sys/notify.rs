//! Start-up and shutdown notices to the service manager, as `Type=notify` units expect
//! (sd_notify(3)): `READY=1` once every socket is bound and privileges are dropped,
//! `RELOADING=1` (with `MONOTONIC_USEC=`) when a reload begins and `READY=1` again when it is
//! done, `STOPPING=1` when shutdown begins. Each notice is one datagram to the `AF_UNIX` socket named by
//! `NOTIFY_SOCKET`; without that variable (not started by systemd) nothing is sent.
//!
//! A notice that cannot be sent costs a warning, never the service.

use sd_notify::NotifyState;

/// `READY=1` with a one-line `STATUS=` (shown by `systemctl status`).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `RELOADING=1` with the `MONOTONIC_USEC=` systemd's reload protocol asks for: a reload has
/// begun; [`ready`] ends it.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading, NotifyState::Status("reloading")];
    match NotifyState::monotonic_usec_now() {
        Ok(now) => states.push(now),
        Err(e) => tracing::warn!("cannot read the monotonic clock for MONOTONIC_USEC: {e}"),
    }
    send(&states);
}

/// `STOPPING=1`: shutdown has begun (running transfers get their grace period).
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        let socket = std::env::var_os("NOTIFY_SOCKET").unwrap_or_default();
        tracing::warn!(
            "cannot notify the service manager through NOTIFY_SOCKET={}: {e}",
            socket.to_string_lossy()
        );
    }
}

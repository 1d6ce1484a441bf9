//! Cooperative shutdown: a trigger, any number of listeners, and the OS signals that pull it.
//!
//! Tasks hold a [`Shutdown`] and stop accepting new work once it fires; running work may finish
//! until the task's grace deadline.

use tokio::sync::watch;

/// Fires [`Shutdown`]s. Dropping it without triggering leaves them waiting forever.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// Learns that shutdown was requested. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// A connected trigger and listener.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Requests shutdown; every [`Shutdown`] sees it. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    /// A listener that never fires (for callers without a shutdown story).
    pub fn never() -> Self {
        // With the sender gone, `requested()` pends forever and `is_requested()` stays false.
        let (_, rx) = watch::channel(false);
        Self { rx }
    }

    /// Whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once shutdown is requested (at once if it already was). If the trigger was
    /// dropped without firing, never completes.
    pub async fn requested(&mut self) {
        if self.rx.wait_for(|fired| *fired).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM and returns the signal's name.
///
/// # Errors
/// Installing a signal handler failed.
pub async fn signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        _ = int.recv() => Ok("SIGINT"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_reaches_clones() {
        let (trigger, shutdown) = channel();
        let mut a = shutdown.clone();
        assert!(!shutdown.is_requested());
        trigger.trigger();
        a.requested().await;
        assert!(shutdown.is_requested());
    }
}

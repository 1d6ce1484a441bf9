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

/// SIGINT (Ctrl-C) and SIGTERM handlers. Install them before announcing readiness, so that
/// a signal that arrives right after is not fatal.
#[derive(Debug)]
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// Installing a signal handler failed.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM and returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    /// Pulls `trigger` on the first signal (spawn this).
    pub async fn trigger_on_signal(mut self, trigger: ShutdownTrigger) {
        let name = self.recv().await;
        tracing::info!(signal = name, "stopping");
        trigger.trigger();
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

//! Cooperative shutdown: a trigger, any number of listeners, and the OS signals that pull it
//! (or, for SIGHUP, ask for a reload).
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

/// Handlers for every catchable signal whose default action ends the process,
/// [`ENDING_SIGNALS`], so that none of them ends it uncleanly: SIGHUP asks for a reload
/// ([`SignalRequest::Reload`]), every other one ends it cleanly (the address and NAT undone).
/// Install them before announcing readiness, so that a signal that arrives right after is not
/// fatal.
///
/// SIGPIPE is not among them: Rust programs ignore it, so a write to a closed pipe fails with
/// `EPIPE` instead, which the log writer drops.
#[derive(Debug)]
pub struct Signals {
    handlers: Vec<(&'static str, tokio::signal::unix::Signal)>,
}

/// The signals [`Signals`] catches: SIGHUP, the conventional reload request (`systemctl
/// reload`), and those it turns into a clean stop: the usual stop requests (SIGTERM from init
/// or `kill`, SIGINT from Ctrl-C, SIGQUIT from `Ctrl-\`), and the others whose default action
/// would end the process on the spot: SIGUSR1, SIGUSR2 and SIGALRM (nothing here uses them),
/// SIGXCPU and SIGXFSZ (resource limits reached), SIGPWR (power failure).
pub const ENDING_SIGNALS: [(&str, i32); 10] = [
    ("SIGTERM", libc::SIGTERM),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGHUP", libc::SIGHUP),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGALRM", libc::SIGALRM),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGPWR", libc::SIGPWR),
];

/// What a caught signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalRequest {
    /// A clean stop, by the named signal.
    Stop(&'static str),
    /// Reload the configuration and go on serving (SIGHUP).
    Reload,
}

impl SignalRequest {
    /// What the signal named `name` (one of [`ENDING_SIGNALS`]) asks for.
    pub fn of(name: &'static str) -> Self {
        if name == "SIGHUP" {
            Self::Reload
        } else {
            Self::Stop(name)
        }
    }
}

impl Signals {
    /// Installs the handlers. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// Installing a signal handler failed.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = ENDING_SIGNALS
            .iter()
            .map(|&(name, number)| Ok((name, signal(SignalKind::from_raw(number))?)))
            .collect::<std::io::Result<_>>()?;
        Ok(Self { handlers })
    }

    /// Waits for the next of [`ENDING_SIGNALS`] and returns its name.
    pub async fn recv(&mut self) -> &'static str {
        std::future::poll_fn(|cx| {
            for (name, signal) in &mut self.handlers {
                if signal.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(*name);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }

    /// Waits for the next signal and returns what it asks for.
    pub async fn request(&mut self) -> SignalRequest {
        SignalRequest::of(self.recv().await)
    }

    /// Pulls `trigger` on the first stop request; passes each reload request to `reload`
    /// (requests that arrive while one is pending are merged into it), or, without `reload`,
    /// logs that there is nothing to reload (spawn this).
    pub async fn trigger_on_signal(
        mut self,
        trigger: ShutdownTrigger,
        reload: Option<tokio::sync::mpsc::Sender<()>>,
    ) {
        loop {
            match self.request().await {
                SignalRequest::Stop(name) => {
                    tracing::info!(signal = name, "stopping");
                    trigger.trigger();
                    return;
                }
                SignalRequest::Reload => match &reload {
                    Some(reload) => {
                        tracing::info!(signal = "SIGHUP", "reloading");
                        // Full: a reload is pending and will read the newest configuration.
                        let _ = reload.try_send(());
                    }
                    None => tracing::info!(signal = "SIGHUP", "nothing to reload: ignored"),
                },
            }
        }
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

    #[tokio::test]
    async fn every_ending_signal_is_caught() {
        let mut signals = Signals::install().unwrap();
        for (name, number) in [("SIGHUP", libc::SIGHUP), ("SIGUSR2", libc::SIGUSR2)] {
            rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::from_named_raw(number).unwrap(),
            )
            .unwrap();
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), signals.recv())
                .await
                .unwrap();
            assert_eq!(got, name);
        }
        // In the same test: every handler sees every signal raised in the process.
        sighup_goes_to_the_reload_channel_and_sigterm_stops().await;
    }

    #[test]
    fn sighup_reloads_and_the_others_stop() {
        for (name, _) in ENDING_SIGNALS {
            let want = if name == "SIGHUP" {
                SignalRequest::Reload
            } else {
                SignalRequest::Stop(name)
            };
            assert_eq!(SignalRequest::of(name), want);
        }
    }

    async fn sighup_goes_to_the_reload_channel_and_sigterm_stops() {
        let signals = Signals::install().unwrap();
        let (trigger, mut shutdown) = channel();
        let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel(1);
        let task = tokio::spawn(signals.trigger_on_signal(trigger, Some(reload_tx)));
        let raise = |number| {
            rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::from_named_raw(number).unwrap(),
            )
            .unwrap();
        };
        let limit = std::time::Duration::from_secs(5);
        raise(libc::SIGHUP);
        tokio::time::timeout(limit, reload_rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(!shutdown.is_requested(), "SIGHUP must not stop");
        raise(libc::SIGTERM);
        tokio::time::timeout(limit, shutdown.requested())
            .await
            .unwrap();
        tokio::time::timeout(limit, task).await.unwrap().unwrap();
    }
}

//! Child processes that are stopped by the PID we started, and reaped, on drop.
//!
//! Signals go only to a child that has not been reaped yet, so its PID cannot have been reused.
//! Every child also gets `PR_SET_PDEATHSIG = SIGKILL`: if the test process itself is killed
//! (a CI timeout), QEMU and the servers die with it instead of lingering in a namespace.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// A running child process with its output in a log file.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `cmd` with stdin from `/dev/null` and stdout + stderr appended to `log`.
    ///
    /// # Errors
    /// When the log cannot be created or the program cannot be started.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> crate::Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{name}: open {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{name}: dup log fd: {e}"))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: the closure only makes one async-signal-safe system call (prctl).
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                    .map_err(Into::into)
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("{name}: spawn {cmd:?}: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            status: None,
        })
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the process has ended (reaping it), else `None`.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Sends `sig` to the process, unless it has already ended.
    ///
    /// # Errors
    /// When `kill(2)` fails.
    pub fn signal(&mut self, sig: Signal) -> crate::Result<()> {
        if self.exited().is_some() {
            return Ok(());
        }
        let pid = i32::try_from(self.pid())
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| format!("{}: bad pid {}", self.name, self.pid()))?;
        rustix::process::kill_process(pid, sig)
            .map_err(|e| format!("{}: kill({}, {sig:?}): {e}", self.name, self.pid()))
    }

    /// Waits up to `timeout` for the process to end.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then SIGKILL if the process is still there after `grace`.
    ///
    /// Returns the exit status and whether SIGKILL was needed.
    pub fn terminate(&mut self, grace: Duration) -> (ExitStatus, bool) {
        let _ = self.signal(Signal::TERM);
        if let Some(status) = self.wait_timeout(grace) {
            return (status, false);
        }
        (self.kill(), true)
    }

    /// SIGKILL and reap.
    ///
    /// # Panics
    /// When the process cannot be reaped (an OS error, not a test result).
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.signal(Signal::KILL);
        if let Some(status) = self.status {
            return status;
        }
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("{}: wait: {e}", self.name));
        self.status = Some(status);
        status
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far (lossy UTF-8).
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log, cleaned of terminal escapes.
    pub fn log_tail(&self, lines: usize) -> String {
        crate::serial::tail(&self.log_text(), lines)
    }

    /// Waits until the log contains `needle`, the process ends, or `timeout` passes.
    ///
    /// # Errors
    /// A report with the log's tail when the text did not appear.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> crate::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log_text().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "{} exited ({status}) before logging {needle:?}; log:\n{}",
                    self.name,
                    self.log_tail(40)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not log {needle:?} within {:?}; log:\n{}",
                    self.name,
                    timeout,
                    self.log_tail(40)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.signal(Signal::KILL);
            let _ = self.child.wait();
        }
    }
}

/// Runs a short command to completion with a timeout; returns its stdout.
///
/// # Errors
/// When it cannot start, times out (it is then killed) or exits non-zero; the report names the
/// command and includes stderr.
pub fn run(mut cmd: Command, timeout: Duration) -> crate::Result<String> {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: timed out after {timeout:?}"));
            }
            Err(e) => return Err(format!("{what}: wait: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

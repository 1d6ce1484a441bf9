//! One VM at a time: an exclusive `flock` on a file in the temp directory.
//!
//! Tests inside one binary run on parallel threads and cargo runs test binaries one after the
//! other; a file lock serialises both, and also two `cargo test` runs on one machine. The
//! lock is released when the guard drops or the process dies.

use std::fs::{File, OpenOptions};
use std::time::Instant;

use rustix::fs::{FlockOperation, flock};

/// Holds the VM lock until dropped.
#[derive(Debug)]
pub struct VmLock {
    _file: File,
}

impl VmLock {
    /// Blocks until no other VM test runs.
    ///
    /// # Panics
    /// When the lock file cannot be opened or locked (an environment problem, not a test result).
    pub fn acquire() -> Self {
        let path = std::env::temp_dir().join("pocketpxe-e2e-vm.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let start = Instant::now();
            eprintln!("waiting for another VM test to finish ({})", path.display());
            flock(&file, FlockOperation::LockExclusive)
                .unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
            eprintln!("got the VM lock after {}", crate::secs(start.elapsed()));
        }
        Self { _file: file }
    }
}

//! The state file: the control API's records and the installed marks, as JSON.
//!
//! Every change is written to a temporary file beside the real one, `fsync`ed, renamed over
//! it, and the directory `fsync`ed, before it is in force: a crash leaves the old file or
//! the new one, never a mix, and an answered API request is on disk. A file that cannot be
//! read as a whole is an error naming it: records are never dropped silently.

use super::{FieldError, MachineSpec};
use crate::sys::netif::{format_mac, parse_mac};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The state file's format version.
pub const VERSION: u64 = 1;

/// What the state file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// The API's records.
    pub machines: BTreeMap<[u8; 6], MachineSpec>,
    /// Install-done marks: when (Unix seconds).
    pub installed: BTreeMap<[u8; 6], u64>,
}

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("machine state file {}: {error}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The file is not what pocketpxe writes.
    #[error("machine state file {} is corrupt ({why}): fix or remove it (its records are lost then)", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// The state file at one path.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file at `path` (not read yet).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads it; a missing file is an empty state.
    ///
    /// # Errors
    /// [`StateError::Io`] or [`StateError::Corrupt`], naming the file.
    pub fn load(&self) -> Result<State, StateError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
            Err(error) => {
                return Err(StateError::Io {
                    path: self.path.clone(),
                    error,
                });
            }
        };
        parse(&text).map_err(|why| StateError::Corrupt {
            path: self.path.clone(),
            why,
        })
    }

    /// Replaces it with `state`, durably (see the module docs).
    ///
    /// # Errors
    /// [`StateError::Io`]; the old file is then untouched.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let io_err = |error| StateError::Io {
            path: self.path.clone(),
            error,
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut text = serde_json::to_string_pretty(&to_json(state))
            .map_err(|e| io_err(io::Error::other(e)))?;
        text.push('\n');
        let written = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            File::open(&dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(io_err)
    }
}

fn to_json(state: &State) -> Value {
    let installed: Map<String, Value> = state
        .installed
        .iter()
        .map(|(mac, at)| (format_mac(mac), Value::from(*at)))
        .collect();
    serde_json::json!({
        "version": VERSION,
        "machines": state.machines.values().map(MachineSpec::to_json).collect::<Vec<_>>(),
        "installed": installed,
    })
}

fn parse(text: &str) -> Result<State, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let obj = doc.as_object().ok_or("not a JSON object")?;
    match obj.get("version").and_then(Value::as_u64) {
        Some(VERSION) => {}
        Some(v) => {
            return Err(format!(
                "version {v}, this pocketpxe reads version {VERSION}"
            ));
        }
        None => return Err("no version".to_owned()),
    }
    let mut state = State::default();
    let machines = obj
        .get("machines")
        .and_then(Value::as_array)
        .ok_or("no machines list")?;
    for (i, m) in machines.iter().enumerate() {
        let spec = MachineSpec::from_json(None, m)
            .map_err(|FieldError { field, message }| format!("machines[{i}].{field}: {message}"))?;
        if state.machines.insert(spec.mac, spec).is_some() {
            return Err(format!("machines[{i}]: a second record for the same MAC"));
        }
    }
    let installed = obj
        .get("installed")
        .and_then(Value::as_object)
        .ok_or("no installed table")?;
    for (mac, at) in installed {
        let key =
            parse_mac(mac).ok_or_else(|| format!("installed: '{mac}' is not a MAC address"))?;
        let at = at
            .as_u64()
            .ok_or_else(|| format!("installed.{mac}: not a Unix time"))?;
        state.installed.insert(key, at);
    }
    Ok(state)
}

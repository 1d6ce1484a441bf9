//! A client of pixiecore's API mode (`--api URL`): machines without a record are looked up
//! with `GET URL/v1/boot/MAC`, as pixiecore does.
//!
//! A 200 answer with a JSON object holding `kernel` (and optionally `initrd`, a list,
//! `cmdline`, `message`) boots the machine like a record with that kernel: plain PXE firmware
//! is chained to iPXE, which loads a generated script. Kernel and initrd URLs may be absolute
//! or a naked path, resolved against the API server's origin (not its path), as pixiecore
//! does; `{{ URL "..." }}` in the command line becomes the (resolved) URL itself. Unlike
//! pixiecore, pocketpxe does not proxy the downloads: the machine fetches the URLs itself.
//! Any other answer, a malformed body, a `file://` URL or no answer within the timeout means
//! "ignore this machine": it gets no boot information ([`Answer::Refused`]). In proxy mode that
//! is no answer at all, as with pixiecore; an address-giving server still leases it an address
//! like any other client, so machines the backend does not know keep their network.
//!
//! The DHCP task cannot wait for the API: the first request of an unknown machine starts a
//! lookup in the background and goes unanswered; its retransmission (PXE firmware retries
//! within seconds) gets the answer from the cache, where it stays for [`CACHE_TTL`].

use super::{MachineSpec, MachineView, Policy, Source};
use crate::sys::netif::format_mac;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an answer (boot or ignore) is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// How long a lookup may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Machines remembered at once.
pub const MAX_ENTRIES: usize = 4096;
/// Lookups under way at once.
pub const MAX_LOOKUPS: usize = 16;

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    base: Arc<str>,
    cache: Arc<Mutex<HashMap<[u8; 6], Entry>>>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// What the API said about a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Not known yet (a lookup is under way): the server does not answer the machine, which
    /// retransmits.
    Pending,
    /// The API refused it ("ignore this machine"): no boot information. In proxy mode no
    /// answer at all; an address-giving server still leases it an address, as any client.
    Refused,
    /// Boot this.
    Boot(MachineView),
}

enum Entry {
    Pending,
    Answer {
        view: Option<MachineView>,
        at: Instant,
    },
}

impl Client {
    /// A client of the API at `base` (`http://host[:port][/prefix]`).
    ///
    /// # Errors
    /// `base` is not an http(s) URL.
    pub fn new(base: &str) -> Result<Self, String> {
        let base = base.trim_end_matches('/');
        let ok = (base.starts_with("http://") || base.starts_with("https://"))
            && origin(base).is_some()
            && !base.contains(char::is_whitespace);
        if !ok {
            return Err(format!("--api '{base}' is not an http:// or https:// URL"));
        }
        let agent = ureq::Agent::config_builder()
            .user_agent(concat!("pocketpxe/", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            base: Arc::from(base),
            cache: Arc::default(),
            agent,
        })
    }

    /// The cached answer for `mac`; on a miss, starts a lookup ([`Answer::Pending`] for now).
    pub fn lookup(&self, mac: [u8; 6]) -> Answer {
        let mut cache = self.lock();
        match cache.get(&mac) {
            Some(Entry::Answer { view, at }) if at.elapsed() < CACHE_TTL => {
                return view.clone().map_or(Answer::Refused, Answer::Boot);
            }
            Some(Entry::Pending) => return Answer::Pending,
            _ => {}
        }
        // Bounded against a flood of made-up MACs: expired answers go first; beyond the
        // limits, a machine is ignored until its retransmission finds room.
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, e| {
                matches!(e, Entry::Answer { at, .. } if at.elapsed() < CACHE_TTL)
                    || matches!(e, Entry::Pending)
            });
        }
        let pending = cache
            .values()
            .filter(|e| matches!(e, Entry::Pending))
            .count();
        if cache.len() >= MAX_ENTRIES || pending >= MAX_LOOKUPS {
            return Answer::Pending;
        }
        cache.insert(mac, Entry::Pending);
        drop(cache);
        let this = self.clone();
        std::thread::spawn(move || {
            let view = this.fetch(mac);
            this.lock().insert(
                mac,
                Entry::Answer {
                    view,
                    at: Instant::now(),
                },
            );
        });
        Answer::Pending
    }

    /// The cached answer for `mac`, without starting a lookup.
    pub fn cached(&self, mac: [u8; 6]) -> Option<MachineView> {
        match self.lock().get(&mac) {
            Some(Entry::Answer { view, .. }) => view.clone(),
            _ => None,
        }
    }

    /// Asks the API about `mac` (blocking, at most [`TIMEOUT`]): its boot, or `None`
    /// (ignore it).
    pub fn fetch(&self, mac: [u8; 6]) -> Option<MachineView> {
        let url = format!("{}/v1/boot/{}", self.base, format_mac(&mac));
        let answer = (|| {
            let mut response = self.agent.get(&url).call().map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(format!("HTTP status {status}"));
            }
            let body = response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_vec()
                .map_err(|e| e.to_string())?;
            let json: Value =
                serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
            self.spec(mac, &json)
        })();
        match answer {
            Ok(spec) => {
                tracing::info!(mac = %format_mac(&mac), api = %url, kernel = spec.kernel.as_deref(),
                    "pixiecore API: boot this machine");
                Some(MachineView {
                    spec,
                    source: Source::Pixiecore,
                    installed: None,
                })
            }
            Err(why) => {
                tracing::info!(mac = %format_mac(&mac), api = %url, reason = %why,
                    "pixiecore API: ignoring this machine");
                None
            }
        }
    }

    /// The record for an API answer.
    fn spec(&self, mac: [u8; 6], json: &Value) -> Result<MachineSpec, String> {
        let obj = json.as_object().ok_or("not a JSON object")?;
        let kernel = obj
            .get("kernel")
            .and_then(Value::as_str)
            .ok_or("no kernel")?;
        let mut spec = MachineSpec::new(mac);
        spec.kernel = Some(self.resolve(kernel)?);
        spec.initrd = match obj.get("initrd") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or("initrd is not a list of strings".to_owned())
                        .and_then(|u| self.resolve(u))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("initrd is not a list of strings".to_owned()),
        };
        spec.cmdline = match obj.get("cmdline") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(self.template(s)?),
            Some(_) => return Err("cmdline is not a string".to_owned()),
        };
        spec.message = obj
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned);
        spec.policy = Policy::Always;
        spec.check().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    /// An absolute URL for `url`: as is, or a naked path on the API server's origin.
    fn resolve(&self, url: &str) -> Result<String, String> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(url.to_owned());
        }
        if url.contains("://") {
            return Err(format!(
                "'{url}': only http(s) URLs and paths are supported"
            ));
        }
        let origin = origin(&self.base).ok_or("bad API URL")?;
        Ok(format!("{origin}/{}", url.trim_start_matches('/')))
    }

    /// The command line with `{{ URL "..." }}` replaced by the resolved URL.
    fn template(&self, cmdline: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = cmdline;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").ok_or("unclosed {{ in cmdline")? + start;
            let inner = rest[start + 2..end].trim();
            let arg = inner
                .strip_prefix("URL")
                .map(str::trim)
                .and_then(|a| a.strip_prefix('"')?.strip_suffix('"'))
                .ok_or_else(|| format!("unsupported template {{{{{inner}}}}} in cmdline"))?;
            out.push_str(&self.resolve(arg)?);
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 6], Entry>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> Option<&str> {
    let after = url.find("://")? + 3;
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    (end > after).then(|| &url[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_against_the_origin_and_templates_expand() {
        let c = Client::new("http://10.0.0.5:8080/api/").unwrap();
        assert_eq!(c.resolve("/kernel").unwrap(), "http://10.0.0.5:8080/kernel");
        assert_eq!(
            c.resolve("initrd.0").unwrap(),
            "http://10.0.0.5:8080/initrd.0"
        );
        assert_eq!(
            c.resolve("https://x.example/k").unwrap(),
            "https://x.example/k"
        );
        assert!(c.resolve("file:///mnt/k").is_err());
        assert_eq!(
            c.template("a=1 cfg={{ URL \"/cc\" }} b").unwrap(),
            "a=1 cfg=http://10.0.0.5:8080/cc b"
        );
        assert!(c.template("x={{ .Foo }}").is_err());
        assert!(Client::new("ftp://x").is_err());
        assert!(Client::new("http://").is_err());
    }

    #[test]
    fn answers_become_kernel_records_or_nothing() {
        let c = Client::new("http://10.0.0.5").unwrap();
        let mac = [2, 0, 0, 0, 0, 1];
        let spec = c
            .spec(
                mac,
                &serde_json::json!({"kernel": "/k", "initrd": ["/i0", "http://h/i1"], "cmdline": "quiet", "message": "hi"}),
            )
            .unwrap();
        assert_eq!(spec.kernel.as_deref(), Some("http://10.0.0.5/k"));
        assert_eq!(spec.initrd, ["http://10.0.0.5/i0", "http://h/i1"]);
        assert_eq!(
            (spec.cmdline.as_deref(), spec.message.as_deref()),
            (Some("quiet"), Some("hi"))
        );
        assert!(c.spec(mac, &serde_json::json!({"initrd": ["/i"]})).is_err());
        assert!(
            c.spec(mac, &serde_json::json!({"kernel": "/k", "initrd": "/i"}))
                .is_err()
        );
        assert!(c.spec(mac, &serde_json::json!(["kernel"])).is_err());
    }
}

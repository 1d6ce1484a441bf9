//! Reloading boot rules and reservations while serving (SIGHUP).
//!
//! The caller supplies a [`Reloader`]: it reads the configuration anew and returns the rules
//! of every served interface, or why it cannot. A reload tells the service manager
//! `RELOADING=1`, calls it, checks the answer against what is served, and only when all of it
//! is acceptable hands each interface's rules to its DHCP task and waits until they are in
//! force; then `READY=1`. A refused reload changes nothing. Leases, offers, the lease file and
//! running TFTP transfers are untouched either way (see [`crate::serve::dhcp`]).

use crate::serve::dhcp::{BootSpec, RuleChange, RuleSender};
use crate::sys::netif::Ipv4Cidr;
use pocketpxe_core::dhcp::Reservation;

/// The rules of one interface that a reload can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceRules {
    /// The interface, as served.
    pub interface: String,
    /// Its boot table (class rules and per-MAC rules).
    pub boot: Vec<BootSpec>,
    /// Its fixed addresses.
    pub reservations: Vec<Reservation>,
    /// The config file's machine records (the same for every interface).
    pub machines: Vec<crate::machines::MachineSpec>,
}

/// Reads the configuration anew: the rules of every served interface, or a one-line reason
/// (naming the file, line and key where there is one) to refuse the reload.
pub type Reloader = Box<dyn FnMut() -> Result<Vec<InterfaceRules>, String> + Send>;

/// One served interface's DHCP task, as a reload sees it.
#[derive(Debug, Clone)]
pub struct ReloadTarget {
    /// The interface.
    pub interface: String,
    /// Our address and subnet on it (reservations must lie there).
    pub server: Ipv4Cidr,
    /// Whether it runs proxyDHCP (no reservations).
    pub proxy: bool,
    /// Its DHCP task.
    pub rules: RuleSender,
}

/// One reload, from `RELOADING=1` to `READY=1`: the changes per interface, or why it was
/// refused (already logged as one ERROR line; nothing changed).
///
/// # Errors
/// The reason the reload was refused.
pub async fn reload(
    reloader: &mut Reloader,
    targets: &[ReloadTarget],
    status: &str,
    machines: &crate::machines::Machines,
) -> Result<Vec<(String, RuleChange)>, String> {
    crate::sys::notify::reloading();
    let checked = reloader().and_then(|rules| {
        let specs = rules
            .first()
            .map(|r| r.machines.clone())
            .unwrap_or_default();
        crate::serve::check_machine_addresses(&specs, &machines.served())?;
        check(rules, targets).map(|rules| (rules, specs))
    });
    let result = match checked {
        Ok((rules, specs)) => {
            let count = specs.len();
            machines.set_config(specs);
            tracing::info!(
                machines = count,
                "reloaded: machine records of the config file"
            );
            Ok(apply(rules, targets).await)
        }
        Err(why) => {
            tracing::error!("reload refused: {why}; the running configuration stays");
            Err(why)
        }
    };
    crate::sys::notify::ready(status);
    result
}

/// The rules in `targets`' order, if they fit what is served.
fn check(
    mut rules: Vec<InterfaceRules>,
    targets: &[ReloadTarget],
) -> Result<Vec<InterfaceRules>, String> {
    if let Some(extra) = rules
        .iter()
        .find(|r| !targets.iter().any(|t| t.interface == r.interface))
    {
        return Err(format!(
            "interface {} is not served (serving another interface needs a restart)",
            extra.interface
        ));
    }
    let mut ordered = Vec::with_capacity(targets.len());
    for target in targets {
        let iface = &target.interface;
        let matching: Vec<usize> = (0..rules.len())
            .filter(|&i| rules[i].interface == *iface)
            .collect();
        let [at] = matching[..] else {
            return Err(if matching.is_empty() {
                format!("no rules for interface {iface} (no longer serving it needs a restart)")
            } else {
                format!("interface {iface} is given more than once")
            });
        };
        let found = rules.swap_remove(at);
        if target.proxy && !found.reservations.is_empty() {
            return Err(format!(
                "reservations on {iface} only apply in dhcp mode: in proxy mode the other DHCP server hands out addresses"
            ));
        }
        let server = target.server;
        if let Some(r) = found
            .reservations
            .iter()
            .find(|r| !server.contains(r.ip) || r.ip == server.addr)
        {
            return Err(format!(
                "reservation {}={} is not a client address in {iface}'s subnet {server}",
                crate::sys::netif::format_mac(&r.mac),
                r.ip
            ));
        }
        ordered.push(found);
    }
    Ok(ordered)
}

/// Hands each target its rules and logs what changed, one line per interface.
async fn apply(rules: Vec<InterfaceRules>, targets: &[ReloadTarget]) -> Vec<(String, RuleChange)> {
    let mut changes = Vec::with_capacity(targets.len());
    for (target, rules) in targets.iter().zip(rules) {
        let iface = target.interface.clone();
        match target.rules.apply(rules.boot, rules.reservations).await {
            Some(change) => {
                tracing::info!(
                    interface = %iface,
                    boot_rules = change.boot_after,
                    boot_rules_before = change.boot_before,
                    boot_changed = change.boot_changed,
                    reservations_added = change.reservations_added,
                    reservations_removed = change.reservations_removed,
                    "reloaded: {}",
                    describe(&change)
                );
                changes.push((iface, change));
            }
            None => {
                tracing::warn!(interface = %iface, "reload not applied: the DHCP task has stopped")
            }
        }
    }
    changes
}

/// `boot rules: 3 (changed), reservations: +1 -0`, or `nothing changed`.
fn describe(change: &RuleChange) -> String {
    if change.is_empty() {
        return "nothing changed".to_owned();
    }
    format!(
        "boot rules: {} ({}), reservations: +{} -{}",
        change.boot_after,
        if change.boot_changed {
            "changed"
        } else {
            "unchanged"
        },
        change.reservations_added,
        change.reservations_removed
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::dhcp::TestRules;
    use pocketpxe_core::dhcp::ClientClass;
    use std::net::Ipv4Addr;

    fn target(rules: RuleSender) -> ReloadTarget {
        ReloadTarget {
            interface: "eth1".into(),
            server: "10.0.0.1/24".parse().unwrap(),
            proxy: false,
            rules,
        }
    }

    fn no_machines() -> crate::machines::Machines {
        crate::machines::Machines::open(Vec::new(), None, Vec::new()).unwrap()
    }

    fn rules(file: &str, reserve: &[(u8, Ipv4Addr)]) -> InterfaceRules {
        InterfaceRules {
            machines: Vec::new(),
            interface: "eth1".into(),
            boot: vec![BootSpec {
                class: ClientClass::Bios,
                mac: None,
                file: file.into(),
            }],
            reservations: reserve
                .iter()
                .map(|&(last, ip)| Reservation {
                    mac: [2, 0, 0, 0, 0, last],
                    ip,
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn a_refused_reload_sends_nothing() {
        let (sender, mut task) = TestRules::channel();
        let targets = [target(sender)];
        let refusals: [(Reloader, &str); 4] = [
            (
                Box::new(|| Err("/etc/pocketpxe/pocketpxe.toml line 3: unknown key `bot`".into())),
                "unknown key `bot`",
            ),
            (
                Box::new(|| Ok(vec![rules("a.0", &[(1, Ipv4Addr::new(10, 9, 0, 5))])])),
                "not a client address in eth1's subnet 10.0.0.1/24",
            ),
            (
                Box::new(|| {
                    let mut other = rules("a.0", &[]);
                    other.interface = "eth2".into();
                    Ok(vec![rules("a.0", &[]), other])
                }),
                "interface eth2 is not served",
            ),
            (Box::new(|| Ok(Vec::new())), "no rules for interface eth1"),
        ];
        for (mut reloader, why) in refusals {
            let err = reload(&mut reloader, &targets, "serving", &no_machines())
                .await
                .unwrap_err();
            assert!(err.contains(why), "{err}");
            assert_eq!(task.try_take(), None, "{why}: rules were sent");
        }
    }

    #[tokio::test]
    async fn an_accepted_reload_waits_until_applied() {
        let (sender, mut task) = TestRules::channel();
        let targets = [target(sender)];
        let old = rules("a.0", &[(1, Ipv4Addr::new(10, 0, 0, 50))]);
        let new = rules(
            "b.0",
            &[
                (1, Ipv4Addr::new(10, 0, 0, 50)),
                (2, Ipv4Addr::new(10, 0, 0, 51)),
            ],
        );
        let given = new.clone();
        let mut reloader: Reloader = Box::new(move || Ok(vec![given.clone()]));
        let machines = no_machines();
        let (result, applied) = tokio::join!(
            reload(&mut reloader, &targets, "serving", &machines),
            task.answer((&old.boot, &old.reservations))
        );
        assert_eq!(applied, Some((new.boot.clone(), new.reservations.clone())));
        let changes = result.unwrap();
        assert_eq!(changes.len(), 1);
        let (iface, change) = &changes[0];
        assert_eq!(iface, "eth1");
        assert!(change.boot_changed);
        assert_eq!(
            (change.reservations_added, change.reservations_removed),
            (1, 0)
        );
        assert_eq!(
            describe(change),
            "boot rules: 1 (changed), reservations: +1 -0"
        );
    }
}

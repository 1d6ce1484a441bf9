//! Authoritative DHCP: offers, binds, renews, declines and releases addresses (RFC 2131 §4.3).

use core::net::Ipv4Addr;

use super::config::Subnet;
use super::lease::{self, Entry, State};
use super::{Commit, Ctx, DhcpEvent, DhcpServer, IgnoreReason, Lease, Mode, Plan, Scratch};
use crate::wire::dhcp::{MessageType, Repr};
use crate::wire::dhcp_option::{AddrList, OptionBytes};

impl<'a> DhcpServer<'a> {
    /// Authoritative DHCP (RFC 2131 §4.3).
    pub(super) fn authoritative<'r>(
        &mut self,
        ctx: &Ctx<'_, 'r>,
        scratch: &'r mut Scratch,
    ) -> Result<Plan<'r>, IgnoreReason>
    where
        'a: 'r,
    {
        let subnet = self.cfg.subnet_for(ctx.req)?;
        let (commit, reply) = match ctx.msg {
            MessageType::Discover => {
                let (slot, entry) = self.pick_address(ctx, &subnet)?;
                let mut reply = self.base(ctx.req, MessageType::Offer);
                reply.your_ip = entry.lease.ip;
                let hold_until = ctx.now + self.cfg.offer_hold;
                let commit = match entry.state {
                    // A client that never sends a DHCPREQUEST is bound by its offer, reported
                    // like an ACK's binding so the driver stores it before the offer goes out.
                    state if ctx.info.binds_at_offer(ctx.mac) => {
                        let lease = Lease {
                            mac: ctx.mac,
                            ip: entry.lease.ip,
                            expires_at: ctx.now + subnet.lease_time,
                        };
                        let event = if state == State::Bound {
                            DhcpEvent::LeaseRenewed(lease)
                        } else {
                            DhcpEvent::LeaseGranted(lease)
                        };
                        Binding { slot, lease, event }.commit()
                    }
                    // Offering a client its own lease does not shorten it.
                    State::Bound if entry.lease.expires_at >= hold_until => Commit::Nothing,
                    // ...but holds it at least as long as any offer (RFC 2131 §4.3.1).
                    State::Bound => Commit::Set {
                        slot,
                        entry: Some(Entry {
                            lease: Lease {
                                expires_at: hold_until,
                                ..entry.lease
                            },
                            state: State::Bound,
                        }),
                        event: None,
                    },
                    _ => Commit::Set {
                        slot,
                        entry: Some(Entry {
                            lease: Lease {
                                mac: ctx.mac,
                                ip: entry.lease.ip,
                                expires_at: hold_until,
                            },
                            state: State::Offered,
                        }),
                        event: None,
                    },
                };
                (commit, reply)
            }
            MessageType::Request => match self.request(ctx, &subnet)? {
                Answer::Ack(binding) => {
                    let mut reply = self.base(ctx.req, MessageType::Ack);
                    reply.client_ip = ctx.req.client_ip;
                    reply.your_ip = binding.lease.ip;
                    (binding.commit(), reply)
                }
                Answer::Nak => {
                    let mut nak = self.base(ctx.req, MessageType::Nak);
                    nak.message = Some(OptionBytes::new(b"requested address not available"));
                    return Ok(Plan {
                        reply: Some(nak),
                        nak: true,
                        commit: Commit::Nothing,
                    });
                }
            },
            MessageType::Decline | MessageType::Release => {
                return self.decline_or_release(ctx).map(|commit| Plan {
                    reply: None,
                    nak: false,
                    commit,
                });
            }
            MessageType::Inform => {
                // RFC 2131 §4.3.5: configuration only, no yiaddr, no lease time.
                let mut reply = self.base(ctx.req, MessageType::Ack);
                reply.client_ip = ctx.req.client_ip;
                self.add_subnet(&mut reply, &subnet, false);
                self.add_boot_if_client(&mut reply, ctx, scratch, subnet.boot)?;
                return Ok(Plan {
                    reply: Some(reply),
                    nak: false,
                    commit: Commit::Nothing,
                });
            }
            _ => return Err(IgnoreReason::UnexpectedMessage),
        };
        let mut reply = reply;
        self.add_subnet(&mut reply, &subnet, true);
        // RFC 2132 §3.14.
        reply.host_name = ctx.machine.hostname.map(|h| OptionBytes::new(h.as_bytes()));
        self.add_boot_if_client(&mut reply, ctx, scratch, subnet.boot)?;
        if ctx.req.ipxe_encap.is_some() && !reply.boot_file.is_empty() {
            // This server gives the boot file too: iPXE need not wait for ProxyDHCP offers.
            reply.ipxe_encap = Some(OptionBytes::new(&IPXE_NO_PXEDHCP));
        }
        Ok(Plan {
            reply: Some(reply),
            nak: false,
            commit,
        })
    }

    /// DHCPREQUEST in authoritative mode (RFC 2131 §4.3.2): a binding to ACK, or a NAK.
    fn request(&mut self, ctx: &Ctx<'_, '_>, subnet: &Subnet<'_>) -> Result<Answer, IgnoreReason> {
        let req = ctx.req;
        let ciaddr = Some(req.client_ip).filter(|ip| !ip.is_unspecified());
        let ip = match req.server_identifier {
            // SELECTING.
            Some(id) if id != self.cfg.server_ip => {
                self.slots.remove_offers(ctx.mac, None);
                self.hold_for_other_server(ctx, subnet);
                return Err(IgnoreReason::OtherServerId);
            }
            Some(_) => req.requested_ip.or(ciaddr),
            // INIT-REBOOT names the address in option 50; RENEWING/REBINDING in ciaddr.
            None => req.requested_ip.or(ciaddr),
        }
        .ok_or(IgnoreReason::MissingAddress)?;

        let expires_at = ctx.now + subnet.lease_time;
        let lease = Lease {
            mac: ctx.mac,
            ip,
            expires_at,
        };
        if let Some((slot, held)) = lease::of_client(&self.slots, ctx.mac, |l| l == ip) {
            let event = if held.state == State::Bound {
                DhcpEvent::LeaseRenewed(lease)
            } else {
                DhcpEvent::LeaseGranted(lease)
            };
            return Ok(Answer::Ack(Binding { slot, lease, event }));
        }
        // No record of this binding. Being authoritative for the pool, grant a free address
        // that this client may have (e.g. after a lost lease database); NAK anything else.
        let holder = lease::holder(&self.slots, ip);
        let own_hold =
            holder.filter(|(_, e)| e.state == State::Elsewhere && e.lease.mac == ctx.mac);
        if self.may_hold(ctx, ip, subnet) && (holder.is_none() || own_hold.is_some()) {
            // The client's own hold (it chose another server's offer, and now asks here, as
            // when that server is gone) is only a hint: dropped at once, the binding takes a
            // slot as any other.
            if let Some((held, _)) = own_hold {
                self.slots.set(held, None);
            }
            // One binding per client: an older offer or lease of this MAC moves to the new
            // address instead of staying bound beside it (found by fuzz/dhcp_server_seq).
            let slot = match lease::of_client(&self.slots, ctx.mac, |_| true) {
                Some((slot, _)) => slot,
                None => lease::free_slot(&self.slots).ok_or(IgnoreReason::LeaseTableFull)?,
            };
            return Ok(Answer::Ack(Binding {
                slot,
                lease,
                event: DhcpEvent::LeaseGranted(lease),
            }));
        }
        Ok(Answer::Nak)
    }

    /// A DHCPREQUEST that chose another server's offer (RFC 2131 §4.3.2, SELECTING): the
    /// address it asks for, if it is ours to give and free here, is held for the client as
    /// long as an offer would be, so that this server offers it to no one else while the other
    /// server binds it (replicas sharing a pool hear each other's clients through the same
    /// relay or segment). No slot free: nothing is held.
    fn hold_for_other_server(&mut self, ctx: &Ctx<'_, '_>, subnet: &Subnet<'_>) {
        let Some(ip) = ctx.req.requested_ip else {
            return;
        };
        if !self.cfg.allowed(ctx.mac, ip, subnet) || lease::holder(&self.slots, ip).is_some() {
            return;
        }
        if let Some(slot) = lease::free_slot(&self.slots) {
            let entry = Entry {
                lease: Lease {
                    mac: ctx.mac,
                    ip,
                    expires_at: ctx.now + self.cfg.offer_hold,
                },
                state: State::Elsewhere,
            };
            self.slots.set(slot, Some(entry));
        }
    }

    /// DHCPDECLINE (RFC 2131 §4.3.3) and DHCPRELEASE (§4.3.4).
    pub(super) fn decline_or_release(&mut self, ctx: &Ctx<'_, '_>) -> Result<Commit, IgnoreReason> {
        let req = ctx.req;
        if req
            .server_identifier
            .is_some_and(|id| id != self.cfg.server_ip)
        {
            return Err(IgnoreReason::OtherServerId);
        }
        let ip = if ctx.msg == MessageType::Decline {
            req.requested_ip
        } else {
            Some(req.client_ip).filter(|ip| !ip.is_unspecified())
        }
        .ok_or(IgnoreReason::MissingAddress)?;
        let (slot, held) = lease::of_client(&self.slots, ctx.mac, |l| l == ip)
            .ok_or(IgnoreReason::UnknownLease)?;
        Ok(if ctx.msg == MessageType::Decline {
            let lease = Lease {
                expires_at: ctx.now + self.cfg.decline_hold,
                ..held.lease
            };
            Commit::Set {
                slot,
                entry: Some(Entry {
                    lease,
                    state: State::Declined,
                }),
                event: Some(DhcpEvent::LeaseDeclined(lease)),
            }
        } else {
            Commit::Set {
                slot,
                entry: None,
                event: (held.state == State::Bound).then_some(DhcpEvent::LeaseReleased(held.lease)),
            }
        })
    }

    /// Chooses the address to offer: the client's current offer or lease, its reservation,
    /// the address it asks for (option 50), or the first free one (RFC 2131 §4.3.1).
    pub(super) fn pick_address(
        &self,
        ctx: &Ctx<'_, '_>,
        subnet: &Subnet<'_>,
    ) -> Result<(usize, Entry), IgnoreReason> {
        let mac = ctx.mac;
        if let Some(found) = lease::of_client(&self.slots, mac, |ip| self.may_hold(ctx, ip, subnet))
        {
            return Ok(found);
        }
        let free = |ip: &Ipv4Addr| {
            self.may_hold(ctx, *ip, subnet) && lease::holder(&self.slots, *ip).is_none()
        };
        let reserved = ctx.machine.address.or_else(|| {
            self.cfg
                .reservations
                .iter()
                .find(|r| r.mac == mac)
                .map(|r| r.ip)
        });
        let ip = reserved
            .filter(free)
            .or(ctx.req.requested_ip.filter(free))
            .or_else(|| {
                lease::first_free(&self.slots, &subnet.pool, |ip| {
                    self.cfg.allowed(mac, ip, subnet)
                })
            })
            .ok_or(IgnoreReason::PoolExhausted)?;
        let slot = lease::free_slot(&self.slots).ok_or(IgnoreReason::LeaseTableFull)?;
        Ok((
            slot,
            Entry {
                lease: Lease {
                    mac,
                    ip,
                    expires_at: ctx.now,
                },
                state: State::Offered,
            },
        ))
    }

    /// Whether the client may hold `ip`: the driver's fixed address for it
    /// ([`Machine::address`](super::Machine::address)) in its subnet, or what the
    /// configuration allows it.
    fn may_hold(&self, ctx: &Ctx<'_, '_>, ip: Ipv4Addr, subnet: &Subnet<'_>) -> bool {
        ctx.machine.address == Some(ip) && subnet.holds(ip) || self.cfg.allowed(ctx.mac, ip, subnet)
    }

    /// Options 1, 3, 6, 28 and (for a lease) 51, 58, 59.
    pub(super) fn add_subnet(&self, reply: &mut Repr<'a>, subnet: &Subnet<'a>, lease: bool) {
        if !matches!(self.cfg.mode, Mode::Authoritative { .. }) {
            return;
        }
        let dns = subnet.dns;
        reply.subnet_mask = Some(subnet.mask);
        reply.router = subnet.router;
        reply.broadcast_address = subnet.broadcast;
        reply.dns_servers = (!dns.is_empty()).then_some(AddrList::Addrs(dns));
        if lease {
            let secs = u32::try_from(subnet.lease_time.as_secs()).unwrap_or(u32::MAX);
            reply.lease_time = Some(secs);
            // An infinite lease is never renewed: no T1, T2 (RFC 2131 §4.4.5 defines them as
            // fractions of a finite duration).
            if secs != u32::MAX {
                reply.renewal_time = Some(secs / 2);
                reply.rebinding_time = Some((u64::from(secs) * 7 / 8) as u32);
            }
        }
    }
}

/// The answer to a DHCPREQUEST (RFC 2131 §4.3.2).
enum Answer {
    /// Bind and acknowledge.
    Ack(Binding),
    /// The address is not the client's to have.
    Nak,
}

/// A lease to bind in `slot`, announced by `event`.
struct Binding {
    slot: usize,
    lease: Lease,
    event: DhcpEvent,
}

impl Binding {
    fn commit(&self) -> Commit {
        Commit::Set {
            slot: self.slot,
            entry: Some(Entry {
                lease: self.lease,
                state: State::Bound,
            }),
            event: Some(self.event),
        }
    }
}

/// Option 175 (iPXE's encapsulated options) holding sub-option 176 `no-pxedhcp` = 1: iPXE
/// then takes the offer at once instead of waiting about 2 s for ProxyDHCP offers, which a
/// server that answers with the boot file itself makes pointless (docs/protocol.md §2).
const IPXE_NO_PXEDHCP: [u8; 3] = [176, 1, 1];

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;

    #[test]
    fn discover_offer_request_ack_with_event_before_reply() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let out = send(&mut s, 0, &msg(MessageType::Discover, MAC, Some(7)));
        let (dst, offer) = out.reply();
        assert_eq!(dst, Destination::Broadcast { port: 68 });
        assert_eq!(offer.message_type, Some(MessageType::Offer));
        assert_eq!(offer.your_ip, ip(88));
        assert_eq!(offer.server_identifier, Some(SERVER));
        assert_eq!(offer.server_ip, SERVER);
        assert_eq!(offer.boot_file, b"debian-installer/amd64/bootnetx64.efi");
        assert_eq!(offer.bootfile_name, Some(OptionBytes::new(offer.boot_file)));
        assert_eq!(
            offer.tftp_server_name,
            Some(OptionBytes::new(b"192.168.242.1"))
        );
        assert_eq!(offer.lease_time, Some(3600));
        assert_eq!(offer.renewal_time, Some(1800));
        assert_eq!(offer.rebinding_time, Some(3150));
        assert_eq!(offer.subnet_mask, Some(MASK));
        assert_eq!(offer.router, Some(SERVER));
        assert_eq!(offer.broadcast_address, Some(ip(255)));
        assert_eq!(offer.dns_servers, Some(AddrList::Addrs(&DNS)));
        assert_eq!(offer.vendor_class_id, None, "no 60 outside proxy mode");
        assert_eq!(s.poll_event(), None, "an offer is not a lease");
        assert_eq!(s.leases().count(), 0);

        let out = send(&mut s, 100, &request(MAC, ip(88), Some(7)));
        let (_, ack) = out.reply();
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert_eq!(ack.your_ip, ip(88));
        let lease = Lease {
            mac: MAC,
            ip: ip(88),
            expires_at: Instant::from_millis(3_600_100),
        };
        // The event is queued by the time the reply is returned.
        assert_eq!(s.poll_event(), Some(DhcpEvent::LeaseGranted(lease)));
        assert_eq!(s.poll_event(), None);
        assert_eq!(s.leases().copied().collect::<Vec<_>>(), [lease]);
        assert_eq!(s.poll_timeout(), Some(lease.expires_at));
    }

    #[test]
    fn ipxe_clients_are_told_not_to_wait_for_proxy_offers() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let mut discover = msg(MessageType::Discover, MAC, Some(0));
        discover.ipxe_encap = Some(OptionBytes::new(&[16, 1, 1, 19, 1, 1]));
        let (_, offer) = send(&mut s, 0, &discover).reply();
        assert!(!offer.boot_file.is_empty());
        assert_eq!(offer.ipxe_encap, Some(OptionBytes::new(&[176, 1, 1])));
        let mut request = request(MAC, offer.your_ip, Some(0));
        request.ipxe_encap = discover.ipxe_encap;
        let (_, ack) = send(&mut s, 1, &request).reply();
        assert_eq!(ack.ipxe_encap, Some(OptionBytes::new(&[176, 1, 1])));

        let (_, plain) = send(&mut s, 2, &msg(MessageType::Discover, MAC2, Some(0))).reply();
        assert_eq!(plain.ipxe_encap, None, "only iPXE reads option 175");
        let mut not_boot = msg(MessageType::Discover, [0x52, 0x54, 0, 0xa5, 0, 3], None);
        not_boot.ipxe_encap = discover.ipxe_encap;
        let (_, not_boot) = send(&mut s, 3, &not_boot).reply();
        assert!(not_boot.boot_file.is_empty());
        assert_eq!(
            not_boot.ipxe_encap, None,
            "no boot file here: a proxy may give one"
        );
    }

    #[test]
    fn request_for_other_server_frees_offer() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 88), &mut slots[..]);
        let _ = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        // The only address is held by the offer.
        assert_eq!(
            send(&mut s, 1, &msg(MessageType::Discover, MAC2, None))
                .outcome
                .ignore_reason(),
            Some(IgnoreReason::PoolExhausted)
        );
        let mut r = request(MAC, ip(88), None);
        r.server_identifier = Some(ip(254));
        assert_eq!(
            send(&mut s, 2, &r).outcome.ignore_reason(),
            Some(IgnoreReason::OtherServerId)
        );
        // The offer is withdrawn, but the address stays held for MAC while the other server
        // binds it: another client gets it only once an offer would have run out.
        assert_eq!(
            send(&mut s, 3, &msg(MessageType::Discover, MAC2, None))
                .outcome
                .ignore_reason(),
            Some(IgnoreReason::PoolExhausted)
        );
        assert_eq!(s.leases().count(), 0, "a hold is not a lease");
        let (_, offer) = send(&mut s, 60_002, &msg(MessageType::Discover, MAC2, None)).reply();
        assert_eq!(offer.your_ip, ip(88));
        assert_eq!(s.poll_event(), None, "a hold ends without an event");
    }

    #[test]
    fn a_request_to_another_server_holds_that_servers_address_for_the_client() {
        const MAC3: [u8; 6] = [0x52, 0x54, 0, 0xa5, 0, 3];
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 91), &mut slots[..]);
        // Both servers offered; MAC takes the other one's .89.
        let (_, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        assert_eq!(offer.your_ip, ip(88));
        let mut r = request(MAC, ip(89), None);
        r.server_identifier = Some(ip(254));
        assert_eq!(
            send(&mut s, 1, &r).outcome.ignore_reason(),
            Some(IgnoreReason::OtherServerId)
        );
        // .88 is free again, .89 is not offered to anyone.
        let (_, offer) = send(&mut s, 2, &msg(MessageType::Discover, MAC2, None)).reply();
        assert_eq!(offer.your_ip, ip(88));
        let (_, offer) = send(&mut s, 3, &msg(MessageType::Discover, MAC3, None)).reply();
        assert_eq!(offer.your_ip, ip(90));
        // The other server is gone: MAC asks here for the address it chose (INIT-REBOOT) and
        // is granted it, as a new lease.
        let mut reboot = msg(MessageType::Request, MAC, None);
        reboot.requested_ip = Some(ip(89));
        let (_, ack) = send(&mut s, 4, &reboot).reply();
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert_eq!(ack.your_ip, ip(89));
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseGranted(l)) if l.ip == ip(89)));
        assert_eq!(s.leases().count(), 1);
        // Another client asking for a held address is NAKed.
        let mut r = request([7; 6], ip(91), None);
        r.server_identifier = Some(ip(254));
        let _ = send(&mut s, 5, &r);
        let mut other = msg(MessageType::Request, [8; 6], None);
        other.requested_ip = Some(ip(91));
        let (_, nak) = send(&mut s, 6, &other).reply();
        assert_eq!(nak.message_type, Some(MessageType::Nak));
    }

    #[test]
    fn learned_lease_displaces_an_offer_and_the_client_is_offered_another_address() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 90), &mut slots[..]);
        let _ = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        // Another replica bound .88 to MAC2 first (its store said so).
        let theirs = Lease {
            mac: MAC2,
            ip: ip(88),
            expires_at: Instant::from_millis(3_600_000),
        };
        s.learn(theirs).unwrap();
        assert_eq!(s.leases().copied().collect::<Vec<_>>(), [theirs]);
        assert_eq!(s.poll_event(), None, "the store already holds it");
        // MAC's request for its offer is NAKed (RFC 2131 §4.3.2); it starts over and is
        // offered another address.
        let (_, nak) = send(&mut s, 1, &request(MAC, ip(88), None)).reply();
        assert_eq!(nak.message_type, Some(MessageType::Nak));
        let (_, offer) = send(&mut s, 2, &msg(MessageType::Discover, MAC, None)).reply();
        assert_eq!(offer.your_ip, ip(89));
        // The learned lease is renewed here (the store is shared).
        let mut renew = msg(MessageType::Request, MAC2, None);
        renew.client_ip = ip(88);
        let (_, ack) = send(&mut s, 3, &renew).reply();
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseRenewed(l)) if l.ip == ip(88)));
    }

    #[test]
    fn learned_lease_displaces_a_refused_binding_and_moves_the_clients_own() {
        let mut slots = [LeaseSlot::EMPTY; 3];
        let mut s = DhcpServer::new(auth(88, 95), &mut slots[..]);
        // This server bound .88 to MAC, but the store refused it: MAC2 holds it.
        let _ = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        let _ = send(&mut s, 1, &request(MAC, ip(88), None)).reply();
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseGranted(_))));
        let mac2 = |at: u8| Lease {
            mac: MAC2,
            ip: ip(at),
            expires_at: Instant::from_millis(7_000_000),
        };
        s.learn(mac2(88)).unwrap();
        assert_eq!(s.leases().copied().collect::<Vec<_>>(), [mac2(88)]);
        let mut again = request(MAC, ip(88), None);
        again.client_ip = ip(88);
        again.server_identifier = None;
        let (_, nak) = send(&mut s, 2, &again).reply();
        assert_eq!(nak.message_type, Some(MessageType::Nak));
        // MAC2's binding moves: one binding per client.
        s.learn(mac2(91)).unwrap();
        assert_eq!(s.leases().copied().collect::<Vec<_>>(), [mac2(91)]);
        // An older copy of the same lease does not shorten it; a newer one extends it.
        let at = |ms: u64| Lease {
            expires_at: Instant::from_millis(ms),
            ..mac2(91)
        };
        s.learn(at(5_000_000)).unwrap();
        assert_eq!(s.leases().copied().collect::<Vec<_>>(), [mac2(91)]);
        s.learn(at(9_000_000)).unwrap();
        s.learn(mac2(91)).unwrap();
        assert_eq!(s.leases().copied().collect::<Vec<_>>(), [at(9_000_000)]);
        // Full table: a new address cannot be learned, one already held can.
        for (i, mac) in [[7u8; 6], [8; 6]].into_iter().enumerate() {
            s.learn(Lease {
                mac,
                ip: ip(92 + i as u8),
                ..mac2(0)
            })
            .unwrap();
        }
        assert_eq!(
            s.learn(Lease {
                mac: [9; 6],
                ip: ip(95),
                ..mac2(0)
            }),
            Err(RestoreError::TableFull)
        );
        s.learn(Lease {
            mac: [9; 6],
            ip: ip(92),
            ..mac2(0)
        })
        .unwrap();
        assert_eq!(s.leases().count(), 3);
    }

    #[test]
    fn nak_for_foreign_or_taken_address() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        s.restore(Lease {
            mac: MAC2,
            ip: ip(90),
            expires_at: Instant::from_millis(1_000_000),
        })
        .unwrap();
        for wanted in [Ipv4Addr::new(10, 0, 0, 5), ip(90), SERVER] {
            let mut r = msg(MessageType::Request, MAC, None);
            r.requested_ip = Some(wanted); // INIT-REBOOT
            r.client_ip = Ipv4Addr::UNSPECIFIED;
            let (dst, nak) = send(&mut s, 0, &r).reply();
            assert_eq!(nak.message_type, Some(MessageType::Nak), "{wanted}");
            assert_eq!(nak.your_ip, Ipv4Addr::UNSPECIFIED);
            assert_eq!(nak.lease_time, None);
            assert_eq!(dst, Destination::Broadcast { port: 68 });
        }
        assert_eq!(s.poll_event(), None);
        // INIT-REBOOT for a free pool address without a record: granted (authoritative).
        let mut r = msg(MessageType::Request, MAC, None);
        r.requested_ip = Some(ip(95));
        assert_eq!(
            send(&mut s, 0, &r).reply().1.message_type,
            Some(MessageType::Ack)
        );
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseGranted(l)) if l.ip == ip(95)));
    }

    #[test]
    fn renew_by_ciaddr_is_unicast_and_reported() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let _ = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        let _ = send(&mut s, 0, &request(MAC, ip(88), None)).reply();
        let _ = s.poll_event();
        let mut renew = msg(MessageType::Request, MAC, None);
        renew.client_ip = ip(88);
        let (dst, ack) = send(&mut s, 1_800_000, &renew).reply();
        assert_eq!(dst, Destination::Unicast(SocketAddrV4::new(ip(88), 68)));
        assert_eq!(ack.client_ip, ip(88));
        assert_eq!(ack.your_ip, ip(88));
        assert!(matches!(
            s.poll_event(),
            Some(DhcpEvent::LeaseRenewed(l)) if l.expires_at == Instant::from_millis(5_400_000)
        ));
    }

    #[test]
    fn decline_quarantines_and_release_frees() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 89), &mut slots[..]);
        let _ = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        let _ = send(&mut s, 0, &request(MAC, ip(88), None)).reply();
        let _ = s.poll_event();
        let mut decline = msg(MessageType::Decline, MAC, None);
        decline.server_identifier = Some(SERVER);
        decline.requested_ip = Some(ip(88));
        assert!(matches!(
            send(&mut s, 10, &decline).outcome,
            DhcpOutcome::Handled { .. }
        ));
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseDeclined(l)) if l.ip == ip(88)));
        assert_eq!(s.leases().count(), 0);
        // .88 is quarantined: the next client gets .89, then the pool is empty.
        let (_, offer) = send(&mut s, 20, &msg(MessageType::Discover, MAC, None)).reply();
        assert_eq!(offer.your_ip, ip(89));
        assert_eq!(
            send(&mut s, 20, &msg(MessageType::Discover, MAC2, None))
                .outcome
                .ignore_reason(),
            Some(IgnoreReason::PoolExhausted)
        );
        let _ = send(&mut s, 30, &request(MAC, ip(89), None)).reply();
        let _ = s.poll_event();
        let mut release = msg(MessageType::Release, MAC, None);
        release.client_ip = ip(89);
        assert!(matches!(
            send(&mut s, 40, &release).outcome,
            DhcpOutcome::Handled { .. }
        ));
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseReleased(l)) if l.ip == ip(89)));
        // Release of something not held.
        assert_eq!(
            send(&mut s, 41, &release).outcome.ignore_reason(),
            Some(IgnoreReason::UnknownLease)
        );
        // The quarantine ends after decline_hold.
        s.handle_timeout(Instant::from_millis(10 + 600_000));
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.poll_event(), None, "quarantine end is not a lease event");
    }

    #[test]
    fn infinite_lease_is_all_ones_without_t1_t2_and_does_not_expire() {
        let mut cfg = auth(88, 99);
        if let Mode::Authoritative { lease_time, .. } = &mut cfg.mode {
            *lease_time = INFINITE_LEASE;
        }
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(cfg, &mut slots[..]);
        let (_, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC, Some(7))).reply();
        assert_eq!(offer.lease_time, Some(0xffff_ffff));
        assert_eq!((offer.renewal_time, offer.rebinding_time), (None, None));
        let mut request = msg(MessageType::Request, MAC, Some(8));
        request.requested_ip = Some(offer.your_ip);
        request.server_identifier = Some(SERVER);
        let (_, ack) = send(&mut s, 10, &request).reply();
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert_eq!(ack.lease_time, Some(0xffff_ffff));
        assert_eq!((ack.renewal_time, ack.rebinding_time), (None, None));
        let Some(DhcpEvent::LeaseGranted(lease)) = s.poll_event() else {
            panic!("no lease granted")
        };
        // A hundred years on, the address is still the client's.
        s.handle_timeout(Instant::from_millis(100 * 365 * 86_400_000));
        assert_eq!(s.poll_event(), None);
        assert_eq!(s.leases().count(), 1);
        assert_eq!(lease.ip, offer.your_ip);
    }

    #[test]
    fn inform_gets_config_without_lease() {
        let mut slots = [LeaseSlot::EMPTY; 2];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let mut inform = msg(MessageType::Inform, MAC, None);
        inform.client_ip = ip(20);
        let (dst, ack) = send(&mut s, 0, &inform).reply();
        assert_eq!(dst, Destination::Unicast(SocketAddrV4::new(ip(20), 68)));
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert_eq!(ack.your_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(ack.lease_time, None);
        assert_eq!(ack.subnet_mask, Some(MASK));
        assert_eq!(ack.boot_file, b"", "not a PXE client");
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn expiry_is_driven_by_now() {
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let _ = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        assert_eq!(s.poll_timeout(), Some(Instant::from_millis(60_000)));
        s.handle_timeout(Instant::from_millis(59_999));
        assert_eq!(s.poll_timeout(), Some(Instant::from_millis(60_000)));
        s.handle_timeout(Instant::from_millis(60_000));
        assert_eq!(s.poll_timeout(), None, "offer withdrawn");
        let _ = send(&mut s, 70_000, &request(MAC, ip(88), None)).reply();
        let _ = s.poll_event();
        s.handle_timeout(Instant::from_millis(70_000 + 3_600_000));
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseExpired(l)) if l.ip == ip(88)));
        assert_eq!(s.leases().count(), 0);
    }

    #[test]
    fn reservation_and_exclusions() {
        let res = [Reservation {
            mac: MAC2,
            ip: ip(200),
        }];
        let mut cfg = auth(1, 3);
        cfg.reservations = &res;
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(cfg, &mut slots[..]);
        let (_, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC2, None)).reply();
        assert_eq!(offer.your_ip, ip(200));
        // .1 is the server itself: never offered.
        let (_, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        assert_eq!(offer.your_ip, ip(2));
    }

    #[test]
    fn relay_uses_giaddr_subnet_and_port_67() {
        let relays = [RelaySubnet {
            router: Some(Ipv4Addr::new(10, 9, 0, 1)),
            ..RelaySubnet::new(
                Pool {
                    start: Ipv4Addr::new(10, 9, 0, 100),
                    end: Ipv4Addr::new(10, 9, 0, 110),
                },
                MASK,
            )
        }];
        let mut cfg = auth(88, 99);
        if let Mode::Authoritative { relay_subnets, .. } = &mut cfg.mode {
            *relay_subnets = &relays;
        }
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(cfg, &mut slots[..]);
        let mut r = msg(MessageType::Discover, MAC, None);
        r.relay_agent_ip = Ipv4Addr::new(10, 9, 0, 1);
        let (dst, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(
            dst,
            Destination::Unicast(SocketAddrV4::new(r.relay_agent_ip, 67))
        );
        assert_eq!(offer.your_ip, Ipv4Addr::new(10, 9, 0, 100));
        assert_eq!(offer.relay_agent_ip, r.relay_agent_ip);
        assert_eq!(offer.router, Some(Ipv4Addr::new(10, 9, 0, 1)));
        r.relay_agent_ip = Ipv4Addr::new(10, 8, 0, 1);
        assert_eq!(
            send(&mut s, 0, &r).outcome.ignore_reason(),
            Some(IgnoreReason::NoSubnetForRelay)
        );
    }

    /// Two relayed subnets: 10.9.0.0/24 (router given, own lease time and DNS) and
    /// 10.7.0.0/24 (router: the relay).
    fn relayed(relays: &[RelaySubnet<'static>]) -> DhcpConfig<'static> {
        let mut cfg = auth(88, 99);
        let relays: &'static [RelaySubnet<'static>] = Vec::leak(relays.to_vec());
        if let Mode::Authoritative { relay_subnets, .. } = &mut cfg.mode {
            *relay_subnets = relays;
        }
        cfg
    }

    const RELAY_DNS: [Ipv4Addr; 1] = [Ipv4Addr::new(10, 9, 0, 53)];

    fn two_relay_subnets() -> [RelaySubnet<'static>; 2] {
        let pool = |net: u8| Pool {
            start: Ipv4Addr::new(10, net, 0, 100),
            end: Ipv4Addr::new(10, net, 0, 110),
        };
        [
            RelaySubnet {
                router: Some(Ipv4Addr::new(10, 9, 0, 254)),
                dns: &RELAY_DNS,
                lease_time: Some(Duration::from_secs(600)),
                ..RelaySubnet::new(pool(9), MASK)
            },
            RelaySubnet::new(pool(7), MASK),
        ]
    }

    /// Option 82 with a circuit id (sub-option 1) and, if given, a link selection (5).
    fn agent_info(link: Option<Ipv4Addr>) -> &'static [u8] {
        let mut v = vec![1, 3, b'e', b't', b'h'];
        if let Some(link) = link {
            v.extend_from_slice(&[5, 4]);
            v.extend_from_slice(&link.octets());
        }
        Vec::leak(v)
    }

    #[test]
    fn relay_router_defaults_to_giaddr_and_subnet_settings_apply() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(relayed(&two_relay_subnets()), &mut slots[..]);
        let mut r = msg(MessageType::Discover, MAC, None);
        r.relay_agent_ip = Ipv4Addr::new(10, 7, 0, 1);
        let (dst, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(
            dst,
            Destination::Unicast(SocketAddrV4::new(r.relay_agent_ip, 67))
        );
        assert_eq!(offer.your_ip, Ipv4Addr::new(10, 7, 0, 100));
        assert_eq!(offer.router, Some(r.relay_agent_ip), "the relay routes");
        assert_eq!(
            offer.dns_servers,
            Some(AddrList::Addrs(&DNS)),
            "server's DNS"
        );
        assert_eq!(offer.lease_time, Some(3600), "server's lease time");
        assert_eq!(offer.broadcast_address, None);

        let mut r = msg(MessageType::Discover, MAC2, None);
        r.relay_agent_ip = Ipv4Addr::new(10, 9, 0, 1);
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.your_ip, Ipv4Addr::new(10, 9, 0, 100));
        assert_eq!(offer.router, Some(Ipv4Addr::new(10, 9, 0, 254)));
        assert_eq!(offer.dns_servers, Some(AddrList::Addrs(&RELAY_DNS)));
        assert_eq!(offer.lease_time, Some(600));
        assert_eq!(offer.renewal_time, Some(300));
        let mut req = request(MAC2, offer.your_ip, None);
        req.relay_agent_ip = r.relay_agent_ip;
        let (_, ack) = send(&mut s, 1000, &req).reply();
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert!(matches!(
            s.poll_event(),
            Some(DhcpEvent::LeaseGranted(l)) if l.expires_at == Instant::from_millis(601_000)
        ));
        // A relayed client asking for an address of another subnet is refused.
        let mut wrong = msg(MessageType::Request, MAC, None);
        wrong.relay_agent_ip = Ipv4Addr::new(10, 7, 0, 1);
        wrong.requested_ip = Some(Ipv4Addr::new(10, 9, 0, 105));
        let (dst, nak) = send(&mut s, 2000, &wrong).reply();
        assert_eq!(nak.message_type, Some(MessageType::Nak));
        assert_eq!(
            dst,
            Destination::Unicast(SocketAddrV4::new(wrong.relay_agent_ip, 67)),
            "a NAK goes to the relay too (RFC 2131 §4.1)"
        );
    }

    #[test]
    fn link_selection_picks_the_subnet_and_replies_go_to_giaddr() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(relayed(&two_relay_subnets()), &mut slots[..]);
        // The relay's giaddr is on 10.9.0.0/24 but the client sits on 10.7.0.0/24.
        let mut r = msg(MessageType::Discover, MAC, None);
        r.relay_agent_ip = Ipv4Addr::new(10, 9, 0, 1);
        r.relay_agent_info = Some(OptionBytes::new(agent_info(Some(Ipv4Addr::new(
            10, 7, 0, 0,
        )))));
        let (dst, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.your_ip, Ipv4Addr::new(10, 7, 0, 100));
        assert_eq!(
            dst,
            Destination::Unicast(SocketAddrV4::new(r.relay_agent_ip, 67))
        );
        assert_eq!(offer.router, None, "giaddr is not on the client's link");
        // A link selection naming no configured subnet is not served from giaddr's.
        r.relay_agent_info = Some(OptionBytes::new(agent_info(Some(Ipv4Addr::new(
            10, 5, 0, 0,
        )))));
        assert_eq!(
            send(&mut s, 0, &r).outcome.ignore_reason(),
            Some(IgnoreReason::NoSubnetForRelay)
        );
        // Without giaddr the sub-option is not trusted: the client is local.
        r.relay_agent_ip = Ipv4Addr::UNSPECIFIED;
        r.relay_agent_info = Some(OptionBytes::new(agent_info(Some(Ipv4Addr::new(
            10, 7, 0, 0,
        )))));
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.your_ip, ip(88));
    }

    #[test]
    fn option_82_is_echoed_last() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(relayed(&two_relay_subnets()), &mut slots[..]);
        let info = agent_info(Some(Ipv4Addr::new(10, 7, 0, 0)));
        let mut r = msg(MessageType::Discover, MAC, Some(7));
        r.relay_agent_ip = Ipv4Addr::new(10, 7, 0, 1);
        r.relay_agent_info = Some(OptionBytes::new(info));
        let out = send(&mut s, 0, &r);
        let (_, offer) = out.reply();
        assert_eq!(offer.relay_agent_info, Some(OptionBytes::new(info)));
        // On the wire: the last option before End.
        let bytes = &out.bytes[..out.outcome.transmit().unwrap().len];
        let mut at = 240;
        let mut last = None;
        while bytes[at] != 255 {
            if bytes[at] == 0 {
                at += 1;
                continue;
            }
            last = Some(at);
            at += 2 + usize::from(bytes[at + 1]);
        }
        let last = last.unwrap();
        assert_eq!(bytes[last], 82);
        assert_eq!(&bytes[last + 2..last + 2 + info.len()], info);
        // A request without option 82 gets none back.
        let (_, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC2, None)).reply();
        assert_eq!(offer.relay_agent_info, None);
    }

    #[test]
    fn link_selection_reads_only_a_well_formed_sub_option_5() {
        let read = |b: &[u8]| link_selection(OptionBytes::new(b));
        assert_eq!(read(&[5, 4, 10, 7, 0, 0]), Some(Ipv4Addr::new(10, 7, 0, 0)));
        assert_eq!(
            read(&[1, 2, 5, 4, 2, 0, 5, 4, 10, 7, 0, 0]),
            Some(Ipv4Addr::new(10, 7, 0, 0)),
            "a 5 inside another sub-option's data is data"
        );
        assert_eq!(read(&[5, 3, 10, 7, 0]), None, "wrong length");
        assert_eq!(read(&[5, 4, 10, 7]), None, "truncated");
        assert_eq!(read(&[1, 9, 1]), None);
        assert_eq!(read(&[]), None);
    }

    #[test]
    fn relayed_subnet_boot_table_replaces_the_servers() {
        const LAB: [BootRule<'static>; 1] = [BootRule::new(ClientClass::EfiX64, "lab.efi")];
        let mut relays = two_relay_subnets();
        relays[0].boot = &LAB;
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(relayed(&relays), &mut slots[..]);
        let mut r = msg(MessageType::Discover, MAC, Some(7));
        r.relay_agent_ip = Ipv4Addr::new(10, 9, 0, 1);
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.boot_file, b"lab.efi");
        // A BIOS client there has no rule in the subnet's table: a plain lease.
        let mut bios = msg(MessageType::Discover, MAC2, Some(0));
        bios.relay_agent_ip = r.relay_agent_ip;
        let (_, offer) = send(&mut s, 0, &bios).reply();
        assert_eq!(offer.your_ip, Ipv4Addr::new(10, 9, 0, 101));
        assert_eq!(offer.boot_file, b"");
        // The other relayed subnet and the local one keep the server's table.
        r.relay_agent_ip = Ipv4Addr::new(10, 7, 0, 1);
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.boot_file, b"debian-installer/amd64/bootnetx64.efi");
        r.relay_agent_ip = Ipv4Addr::UNSPECIFIED;
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.boot_file, b"debian-installer/amd64/bootnetx64.efi");
    }
}

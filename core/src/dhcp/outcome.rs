//! What [`DhcpServer::handle`](super::DhcpServer::handle) decided: a reply, nothing, or a
//! reason to ignore the message.

use core::fmt;

use super::Summary;
use crate::net::Transmit;
use crate::wire;

/// The result of [`DhcpServer::handle`](super::DhcpServer::handle), with a [`Summary`] of the
/// exchange for the driver's logs.
#[must_use = "a Reply must be sent and an Ignored reason should be logged"]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DhcpOutcome {
    /// Send `tx[..transmit.len]` to `transmit.dst` (after draining events, see the module
    /// docs).
    Reply {
        /// The reply's bytes and destination.
        transmit: Transmit,
        /// The request and the reply.
        summary: Summary,
    },
    /// The message was processed and the protocol wants no reply (DHCPDECLINE, DHCPRELEASE).
    Handled {
        /// The request.
        summary: Summary,
    },
    /// The message was dropped, for this reason.
    Ignored {
        /// Why.
        reason: IgnoreReason,
        /// The request, if it got far enough to have a MAC address and a message type.
        summary: Option<Summary>,
    },
}

impl DhcpOutcome {
    /// The reply to send, if any.
    pub fn transmit(&self) -> Option<Transmit> {
        match self {
            Self::Reply { transmit, .. } => Some(*transmit),
            _ => None,
        }
    }

    /// What the server read and answered.
    pub fn summary(&self) -> Option<&Summary> {
        match self {
            Self::Reply { summary, .. } | Self::Handled { summary } => Some(summary),
            Self::Ignored { summary, .. } => summary.as_ref(),
        }
    }

    /// Why the message was dropped, if it was.
    pub fn ignore_reason(&self) -> Option<IgnoreReason> {
        match self {
            Self::Ignored { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// Why a message got no reply.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IgnoreReason {
    /// The bytes are not a DHCP message.
    Malformed(wire::Error),
    /// `op` is BOOTREPLY: another server's answer.
    NotBootRequest,
    /// `htype`/`hlen` is not Ethernet.
    UnsupportedHardware,
    /// No option 53: plain BOOTP, which pocketpxe does not serve.
    NotDhcp,
    /// Option 53 holds a value RFC 2132 §9.6 does not define.
    UnknownMessageType {
        /// The value.
        code: u8,
    },
    /// A message type a server does not answer here (e.g. DHCPOFFER from a client, INFORM to a
    /// proxy).
    UnexpectedMessage,
    /// The client chose another server (option 54, RFC 2131 §4.3.2); our offer was withdrawn.
    OtherServerId,
    /// A proxy got a DHCPREQUEST on port 67 not addressed to it: the real server answers.
    NotAddressedToUs,
    /// No free address in the pool.
    PoolExhausted,
    /// Every lease slot is in use.
    LeaseTableFull,
    /// Not a PXE or HTTP boot client (proxy mode and port 4011 only serve those).
    NotPxeClient,
    /// A boot client for which the boot table has no rule (proxy mode, port 4011).
    NoBootRule,
    /// The boot file (or URL) does not fit the 128-byte BOOTP `file` field with its NUL.
    BootFileTooLong,
    /// `giaddr` lies in no configured subnet.
    NoSubnetForRelay,
    /// DECLINE/RELEASE for an address this client does not hold.
    UnknownLease,
    /// A DHCPREQUEST/DECLINE without the address it is about (options 50 / `ciaddr`).
    MissingAddress,
    /// The reply does not fit the client's maximum message size (option 57 or 576).
    ReplyTooLarge,
    /// Events were not drained; a lease change would go unreported.
    EventQueueFull,
    /// The driver's [`Directive::Ignore`](super::Directive::Ignore) for this client.
    Directed,
}

impl IgnoreReason {
    /// A stable lowercase name for metrics and machine-read logs, e.g. `pool_exhausted`.
    pub const fn label(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::NotBootRequest => "not_boot_request",
            Self::UnsupportedHardware => "unsupported_hardware",
            Self::NotDhcp => "not_dhcp",
            Self::UnknownMessageType { .. } => "unknown_message_type",
            Self::UnexpectedMessage => "unexpected_message",
            Self::OtherServerId => "other_server_id",
            Self::NotAddressedToUs => "not_addressed_to_us",
            Self::PoolExhausted => "pool_exhausted",
            Self::LeaseTableFull => "lease_table_full",
            Self::NotPxeClient => "not_pxe_client",
            Self::NoBootRule => "no_boot_rule",
            Self::BootFileTooLong => "boot_file_too_long",
            Self::NoSubnetForRelay => "no_subnet_for_relay",
            Self::UnknownLease => "unknown_lease",
            Self::MissingAddress => "missing_address",
            Self::ReplyTooLarge => "reply_too_large",
            Self::EventQueueFull => "event_queue_full",
            Self::Directed => "directed",
        }
    }
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed DHCP message: {e}"),
            Self::NotBootRequest => f.write_str("not a BOOTREQUEST"),
            Self::UnsupportedHardware => f.write_str("hardware type is not Ethernet"),
            Self::NotDhcp => f.write_str("plain BOOTP (no message type) is not served"),
            Self::UnknownMessageType { code } => write!(f, "unknown DHCP message type {code}"),
            Self::UnexpectedMessage => f.write_str("message type not expected here"),
            Self::OtherServerId => f.write_str("client chose another DHCP server"),
            Self::NotAddressedToUs => f.write_str("request is for the address-giving server"),
            Self::PoolExhausted => f.write_str("address pool exhausted"),
            Self::LeaseTableFull => f.write_str("lease table full"),
            Self::NotPxeClient => f.write_str("not a PXE/HTTP boot client"),
            Self::NoBootRule => f.write_str("no boot rule for this client"),
            Self::BootFileTooLong => f.write_str("boot file name longer than 127 bytes"),
            Self::NoSubnetForRelay => f.write_str("relay address in no configured subnet"),
            Self::UnknownLease => f.write_str("client holds no such lease"),
            Self::MissingAddress => f.write_str("request names no address"),
            Self::ReplyTooLarge => f.write_str("reply exceeds the client's maximum message size"),
            Self::EventQueueFull => f.write_str("lease events not drained"),
            Self::Directed => f.write_str("ignored for this client by the driver"),
        }
    }
}

impl core::error::Error for IgnoreReason {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_labels_are_distinct_lowercase_names() {
        let all = [
            IgnoreReason::Malformed(wire::Error::Truncated),
            IgnoreReason::NotBootRequest,
            IgnoreReason::UnsupportedHardware,
            IgnoreReason::NotDhcp,
            IgnoreReason::UnknownMessageType { code: 99 },
            IgnoreReason::UnexpectedMessage,
            IgnoreReason::OtherServerId,
            IgnoreReason::NotAddressedToUs,
            IgnoreReason::PoolExhausted,
            IgnoreReason::LeaseTableFull,
            IgnoreReason::NotPxeClient,
            IgnoreReason::NoBootRule,
            IgnoreReason::BootFileTooLong,
            IgnoreReason::NoSubnetForRelay,
            IgnoreReason::UnknownLease,
            IgnoreReason::MissingAddress,
            IgnoreReason::ReplyTooLarge,
            IgnoreReason::EventQueueFull,
            IgnoreReason::Directed,
        ];
        for (i, a) in all.iter().enumerate() {
            let label = a.label();
            assert!(
                !label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{label}"
            );
            for b in &all[i + 1..] {
                assert_ne!(label, b.label());
            }
        }
        assert_eq!(IgnoreReason::PoolExhausted.label(), "pool_exhausted");
    }
}

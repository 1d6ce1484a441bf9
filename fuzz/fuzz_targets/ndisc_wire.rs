//! IPv6 router solicitations and advertisements: the first 32 bytes are the packet's source
//! and destination addresses, the rest the ICMPv6 message. Nothing may panic; a parsed
//! advertisement emits with a valid checksum and parses back to itself.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use pocketpxe_core::wire::ndisc::{RouterAdvertisement, RouterSolicitation, checksum};

fuzz_target!(|data: &[u8]| {
    let Some((addrs, message)) = data.split_at_checked(32) else {
        return;
    };
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&addrs[..16]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&addrs[16..]).unwrap());
    let _ = RouterSolicitation::parse(message, src, dst);
    let _ = checksum(src, dst, message);
    if let Ok(ra) = RouterAdvertisement::parse(message, src, dst) {
        let mut buf = vec![0u8; ra.buffer_len()];
        let len = ra
            .emit(src, dst, &mut buf)
            .expect("a parsed advertisement emits into buffer_len bytes");
        assert_eq!(len, ra.buffer_len());
        let again = RouterAdvertisement::parse(&buf, src, dst).expect("an emitted one parses");
        assert_eq!(again, ra);
    }
});

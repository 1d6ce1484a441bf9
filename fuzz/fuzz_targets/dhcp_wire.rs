//! DHCP wire format: parse, emit, parse again; both parses must agree, emission never uses
//! option overload, and nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketpxe_core::wire::dhcp::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let Ok(repr) = Repr::parse(&packet) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]))
        .expect("a parsed packet emits into buffer_len bytes");
    let reparsed = Packet::new_checked(&buf[..]).expect("an emitted packet is well formed");
    let again = Repr::parse(&reparsed).expect("an emitted packet parses");
    assert_eq!(again, repr);
    assert!(
        !reparsed
            .options()
            .iter()
            .any(|o| o.is_ok_and(|o| o.code == 52)),
        "emission never uses option overload"
    );
});

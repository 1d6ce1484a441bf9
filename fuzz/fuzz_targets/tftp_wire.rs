//! TFTP wire format: parse, emit, parse again; both parses must agree and nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketpxe_core::wire::tftp::Repr;

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = Repr::parse_bytes(data) {
        let mut buf = vec![0u8; repr.buffer_len()];
        let len = repr
            .emit(&mut buf)
            .expect("a parsed packet emits into buffer_len bytes");
        assert_eq!(len, repr.buffer_len());
        let again = Repr::parse_bytes(&buf[..len]).expect("an emitted packet parses");
        assert_eq!(again, repr);
    }
});

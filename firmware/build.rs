//! Puts the selected board's memory map on the linker path as `memory.x`.

use std::path::PathBuf;

fn main() {
    let board = if std::env::var_os("CARGO_FEATURE_W5500_PICO").is_some() {
        "memory-rp2040.x"
    } else {
        "memory-mps2.x"
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::copy(board, out.join("memory.x")).expect("memory map copies to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={board}");
    println!("cargo:rerun-if-changed=build.rs");
}

//! mkbootimg: builds the pocket boot server's boot-file image from a directory, and converts
//! the RP2040 firmware ELF to UF2.
//!
//! ```text
//! mkbootimg DIR OUT.img                     image for QEMU (-device loader,addr=0x21000000)
//! mkbootimg DIR OUT.uf2 [--base ADDR]       image as UF2 at ADDR (default 0x10100000, Pico flash)
//! mkbootimg --elf2uf2 FIRMWARE.elf OUT.uf2  the W5500-EVB-Pico firmware as UF2
//! mkbootimg --list IMAGE                    what an image holds
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use pocketpxe_bootimg::{ENTRY_LEN, Entry, HEADER_LEN, Header, build_image, collect_dir, uf2};

/// RP2040's UF2 family id.
const RP2040_FAMILY: u32 = 0xe48b_ff56;
/// Where the W5500-EVB-Pico firmware looks for the image (1 MiB into its 2 MiB flash).
const PICO_IMAGE_BASE: u32 = 0x1010_0000;
/// Room for the image on the W5500-EVB-Pico.
const PICO_IMAGE_MAX: usize = 1024 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mkbootimg: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [flag, elf, out] if flag == "--elf2uf2" => elf2uf2(Path::new(elf), Path::new(out)),
        [flag, image] if flag == "--list" => list(Path::new(image)),
        [dir, out] => image(Path::new(dir), Path::new(out), PICO_IMAGE_BASE),
        [dir, out, flag, base] if flag == "--base" => {
            let base = base.trim_start_matches("0x");
            let base = u32::from_str_radix(base, 16).map_err(|e| format!("--base: {e}"))?;
            image(Path::new(dir), Path::new(out), base)
        }
        _ => Err(USAGE.to_string()),
    }
}

fn image(dir: &Path, out: &Path, base: u32) -> Result<(), String> {
    let files = collect_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let image = build_image(&files).map_err(|e| format!("{}: {e}", dir.display()))?;
    let uf2_out = out.extension().is_some_and(|e| e == "uf2");
    let bytes = if uf2_out {
        if image.len() > PICO_IMAGE_MAX && base == PICO_IMAGE_BASE {
            return Err(format!(
                "image is {} bytes; the W5500-EVB-Pico has room for {PICO_IMAGE_MAX}",
                image.len()
            ));
        }
        uf2(&[(base, &image)], RP2040_FAMILY)
    } else {
        image.clone()
    };
    std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{}: {} files, {} bytes",
        out.display(),
        files.len(),
        image.len()
    );
    Ok(())
}

fn list(path: &Path) -> Result<(), String> {
    let image = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let head: &[u8; HEADER_LEN] = image
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or("too short for an image")?;
    let header = Header::parse(head).map_err(|e| e.to_string())?;
    for i in 0..header.count as usize {
        let at = HEADER_LEN + i * ENTRY_LEN;
        let raw = image
            .get(at..at + ENTRY_LEN)
            .and_then(|r| r.try_into().ok())
            .ok_or("table truncated")?;
        let entry = Entry::parse(raw).map_err(|e| e.to_string())?;
        println!("{:>10} {:>10}  {}", entry.offset, entry.len, entry.name());
    }
    Ok(())
}

/// Converts the loadable segments of a 32-bit little-endian ELF file to UF2.
fn elf2uf2(elf: &Path, out: &Path) -> Result<(), String> {
    let bytes = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    if bytes.get(..6) != Some(b"\x7fELF\x01\x01".as_slice()) {
        return Err(format!("{}: not a 32-bit little-endian ELF", elf.display()));
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let phoff = u32_at(0x1c) as usize;
    let phentsize = usize::from(u16_at(0x2a));
    let phnum = usize::from(u16_at(0x2c));
    if phoff + phnum * phentsize > bytes.len() {
        return Err("program headers truncated".to_string());
    }
    let mut segments = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let (kind, offset, paddr, filesz) = (
            u32_at(ph),
            u32_at(ph + 4) as usize,
            u32_at(ph + 12),
            u32_at(ph + 16) as usize,
        );
        // PT_LOAD with bytes in the file, placed in flash (XIP at 0x1000_0000).
        if kind == 1 && filesz > 0 && (0x1000_0000..0x2000_0000).contains(&paddr) {
            let data = bytes
                .get(offset..offset + filesz)
                .ok_or("segment truncated")?;
            segments.push((paddr, data));
        }
    }
    if segments.is_empty() {
        return Err("no loadable segments in flash".to_string());
    }
    // The RP2040 boot ROM writes whole 256-byte pages: merge segments into zero-filled pages.
    let mut pages: BTreeMap<u32, [u8; 256]> = BTreeMap::new();
    for (addr, data) in &segments {
        for (i, byte) in data.iter().enumerate() {
            let at = addr + i as u32;
            pages.entry(at & !0xff).or_insert([0; 256])[(at & 0xff) as usize] = *byte;
        }
    }
    let pages: Vec<(u32, &[u8])> = pages.iter().map(|(a, p)| (*a, &p[..])).collect();
    std::fs::write(out, uf2(&pages, RP2040_FAMILY))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    println!("{}: {} pages", out.display(), pages.len());
    Ok(())
}

const USAGE: &str = "usage:
  mkbootimg DIR OUT.img                     boot image (QEMU: -device loader,addr=0x21000000)
  mkbootimg DIR OUT.uf2 [--base ADDR]       boot image as UF2 (default 0x10100000, W5500-EVB-Pico)
  mkbootimg --elf2uf2 FIRMWARE.elf OUT.uf2  firmware ELF to UF2 (RP2040)
  mkbootimg --list IMAGE                    list an image";

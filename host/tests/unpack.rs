//! `unpack_safely` against hand-made hostile tarballs: every entry that could land outside the
//! destination is refused, nothing is written outside it, and garbage never panics.

#![allow(clippy::unwrap_used)]

use pocketpxe::fetch::unpack::{UnpackFailure, UnpackLimits, unpack_safely};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// `dest/` (empty, to unpack into) and `outside/` (must stay empty) in a fresh temp dir.
struct Sandbox {
    base: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let base = std::env::temp_dir().join(format!(
            "pocketpxe-unpack-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("dest")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/secret"), "secret").unwrap();
        Self { base }
    }

    fn dest(&self) -> PathBuf {
        self.base.join("dest")
    }

    fn unpack(&self, tar: &[u8]) -> Result<Vec<String>, UnpackFailure> {
        unpack_safely(tar, &self.dest(), UnpackLimits::default())
    }

    /// Asserts refusal with `needle` in the message and that `outside/` is as it was.
    fn refuses(&self, tar: &[u8], needle: &str) {
        let err = self.unpack(tar).expect_err("must be refused").to_string();
        assert!(err.contains(needle), "error '{err}' lacks '{needle}'");
        let outside: Vec<_> = fs::read_dir(self.base.join("outside"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(outside, ["secret"], "something was written outside");
        assert_eq!(
            fs::read_to_string(self.base.join("outside/secret")).unwrap(),
            "secret"
        );
        assert!(!self.base.join("x").exists(), "../x escaped");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

const REG: u8 = b'0';
const HARD: u8 = b'1';
const SYM: u8 = b'2';
const CHR: u8 = b'3';
const DIR: u8 = b'5';

/// One raw ustar entry (GNU long-name/long-link records first when a name exceeds 100 bytes),
/// built by hand so that no library sanitises the hostile names.
fn entry(name: &[u8], kind: u8, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if name.len() > 100 {
        out.extend(long_record(b'L', name));
    }
    if link.len() > 100 {
        out.extend(long_record(b'K', link));
    }
    out.extend(header(
        &name[..name.len().min(100)],
        kind,
        &link[..link.len().min(100)],
        data.len(),
    ));
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn long_record(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut data = value.to_vec();
    data.push(0);
    let mut out = header(b"././@LongLink", kind, b"", data.len());
    out.extend_from_slice(&data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn header(name: &[u8], kind: u8, link: &[u8], size: usize) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar ");
    h[263..265].copy_from_slice(b" \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend(vec![0u8; 1024]);
    out
}

#[test]
fn debian_like_tree_unpacks_with_its_symlinks() {
    let sb = Sandbox::new();
    let tar = archive(&[
        entry(b"./", DIR, b"", b""),
        entry(b"./debian-installer/", DIR, b"", b""),
        entry(b"./debian-installer/amd64/", DIR, b"", b""),
        entry(b"./debian-installer/amd64/boot-screens/", DIR, b"", b""),
        entry(
            b"./debian-installer/amd64/boot-screens/syslinux.cfg",
            REG,
            b"",
            b"menu\n",
        ),
        entry(b"./debian-installer/amd64/pxelinux.0", REG, b"", b"PXE"),
        entry(b"./debian-installer/amd64/pxelinux.cfg/", DIR, b"", b""),
        entry(
            b"./debian-installer/amd64/pxelinux.cfg/default",
            SYM,
            b"../boot-screens/syslinux.cfg",
            b"",
        ),
        entry(
            b"./pxelinux.0",
            SYM,
            b"debian-installer/amd64/pxelinux.0",
            b"",
        ),
        entry(
            b"./pxelinux.cfg",
            SYM,
            b"debian-installer/amd64/pxelinux.cfg",
            b"",
        ),
        entry(
            b"./hard.0",
            HARD,
            b"./debian-installer/amd64/pxelinux.0",
            b"",
        ),
        entry(b"./version.info", REG, b"", b"Debian version:  12\n"),
    ]);
    let files = sb.unpack(&tar).unwrap();
    assert_eq!(
        files,
        [
            "debian-installer/amd64/boot-screens/syslinux.cfg",
            "debian-installer/amd64/pxelinux.0",
            "debian-installer/amd64/pxelinux.cfg/default",
            "pxelinux.0",
            "pxelinux.cfg",
            "hard.0",
            "version.info",
        ]
    );
    let d = sb.dest();
    assert_eq!(fs::read(d.join("pxelinux.0")).unwrap(), b"PXE");
    assert_eq!(fs::read(d.join("hard.0")).unwrap(), b"PXE");
    assert_eq!(
        fs::read_to_string(d.join("pxelinux.cfg/default")).unwrap(),
        "menu\n"
    );
    assert_eq!(
        fs::read_link(d.join("pxelinux.0")).unwrap(),
        Path::new("debian-installer/amd64/pxelinux.0")
    );
}

#[test]
fn dot_dot_is_refused() {
    let sb = Sandbox::new();
    sb.refuses(&archive(&[entry(b"../x", REG, b"", b"x")]), "'..'");
    let sb = Sandbox::new();
    sb.refuses(&archive(&[entry(b"a/../../x", REG, b"", b"x")]), "'..'");
}

#[test]
fn absolute_is_refused() {
    let sb = Sandbox::new();
    let target = sb.base.join("outside/abs");
    sb.refuses(
        &archive(&[entry(target.to_str().unwrap().as_bytes(), REG, b"", b"x")]),
        "absolute",
    );
}

#[test]
fn symlink_then_through_symlink_is_refused() {
    // The classic: `a -> /etc`, then `a/passwd`.
    let sb = Sandbox::new();
    let outside = sb.base.join("outside");
    sb.refuses(
        &archive(&[
            entry(b"a", SYM, outside.to_str().unwrap().as_bytes(), b""),
            entry(b"a/passwd", REG, b"", b"root::0:0::/:/bin/sh\n"),
        ]),
        "absolute target",
    );
    // Relative escape.
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[entry(b"a", SYM, b"../outside", b"")]),
        "above the root",
    );
    // A symlink that stays inside is fine, but nothing may be written through it.
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[
            entry(b"sub/", DIR, b"", b""),
            entry(b"a", SYM, b"sub", b""),
            entry(b"a/passwd", REG, b"", b"x"),
        ]),
        "a is a symlink",
    );
    assert!(!sb.dest().join("sub/passwd").exists());
    // `d/up -> ..` is inside; `d/esc -> up/..` would resolve above the root through it.
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[
            entry(b"d/", DIR, b"", b""),
            entry(b"d/up", SYM, b"..", b""),
            entry(b"d/esc", SYM, b"up/..", b""),
        ]),
        "after a name",
    );
}

#[test]
fn hardlink_to_outside_is_refused() {
    let sb = Sandbox::new();
    let secret = sb.base.join("outside/secret");
    sb.refuses(
        &archive(&[entry(b"h", HARD, secret.to_str().unwrap().as_bytes(), b"")]),
        "absolute",
    );
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[entry(b"h", HARD, b"../outside/secret", b"")]),
        "'..'",
    );
    // Through a symlink that itself is inside: the link target must be a plain unpacked file.
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[
            entry(b"up", SYM, b".", b""),
            entry(b"h", HARD, b"up/secret", b""),
        ]),
        "not an unpacked regular file",
    );
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[entry(b"h", HARD, b"missing", b"")]),
        "not an unpacked regular file",
    );
}

#[test]
fn huge_names_are_refused() {
    let sb = Sandbox::new();
    let long = format!("{}/f", "d/".repeat(2100));
    sb.refuses(
        &archive(&[entry(long.as_bytes(), REG, b"", b"x")]),
        "longer than 4096",
    );
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[entry("n".repeat(300).as_bytes(), REG, b"", b"x")]),
        "longer than 255",
    );
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[entry(b"l", SYM, "x/".repeat(3000).as_bytes(), b"")]),
        "longer than 4096",
    );
}

#[test]
fn odd_entries_are_refused() {
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[entry(b"tty", CHR, b"", b"")]),
        "unsupported entry type",
    );
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[entry(b"f", REG, b"", b"1"), entry(b"f", REG, b"", b"2")]),
        "duplicate",
    );
    let sb = Sandbox::new();
    sb.refuses(&archive(&[entry(b"a\nb", REG, b"", b"1")]), "control");
    // A file where a later entry wants a directory.
    let sb = Sandbox::new();
    sb.refuses(
        &archive(&[entry(b"f", REG, b"", b"1"), entry(b"f/g", REG, b"", b"2")]),
        "f is a symlink or a file",
    );
}

#[test]
fn limits_hold() {
    let sb = Sandbox::new();
    let tar = archive(&[
        entry(b"a", REG, b"", &[1u8; 600]),
        entry(b"b", REG, b"", &[2u8; 600]),
    ]);
    let err = unpack_safely(
        &tar[..],
        &sb.dest(),
        UnpackLimits {
            max_entries: 10,
            max_bytes: 1000,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("exceeds 1000 bytes"), "{err}");
    let err = unpack_safely(
        &tar[..],
        &Sandbox::new().dest(),
        UnpackLimits {
            max_entries: 1,
            max_bytes: 1 << 20,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("more than 1 entries"), "{err}");
}

#[test]
fn truncated_and_garbage_input_errs_without_panic() {
    let good = archive(&[entry(b"f", REG, b"", &[7u8; 5000])]);
    for cut in [1, 100, 511, 512, 700, 3000, good.len() - 1025] {
        let sb = Sandbox::new();
        // An error or (for cuts inside the zero trailer) success; never a panic or a long file.
        if let Ok(files) = sb.unpack(&good[..cut]) {
            assert_eq!(files, ["f"]);
            assert_eq!(fs::read(sb.dest().join("f")).unwrap().len(), 5000);
        }
    }
    let mut state = 0x1234_5678_u32;
    for _ in 0..50 {
        let bytes: Vec<u8> = (0..2048)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        let sb = Sandbox::new();
        let _ = sb.unpack(&bytes);
    }
}

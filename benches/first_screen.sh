#!/usr/bin/env bash
# benches/first_screen.sh: power-on to the Debian installer's first screen under QEMU (TCG),
# BIOS and UEFI, through pocketpxe --via ipxe, pocketpxe --via tftp, dnsmasq, and QEMU's own
# -kernel/-initrd (the floor), interleaved for N rounds; prints medians and the ratio to
# dnsmasq. See benches/README.md ("First screen").
#
#   sudo benches/first_screen.sh [--rounds N] [--bin PATH] [--out DIR]
#
# The measurement is the ignored test tests/tests/first_screen.rs; it takes the machine-wide
# VM lock of the end-to-end tests, builds its network namespaces itself and removes them again
# (also when a boot fails). Each boot is bounded (300 s), the whole run by --rounds × 8 boots.
# pocketpxe is a release build unless --bin names one. Needs root, QEMU, OVMF, iPXE, dnsmasq
# and the Debian netboot tree (scripts/setup installs them).

set -euo pipefail

ROUNDS=2
BIN=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift ;;
        --bin) BIN="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "first_screen.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$ROUNDS" in
    ''|*[!0-9]*) echo "first_screen.sh: --rounds wants a number" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
    echo "first_screen.sh: needs root (network namespaces, taps)" >&2
    exit 2
fi

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="${OUT:-$(mktemp -d /tmp/pocketpxe-first-screen.XXXXXX)}"
mkdir -p "$OUT"
if [ -z "$BIN" ]; then
    (cd "$REPO" && cargo build --release -q -p pocketpxe --bin pocketpxe)
    BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/pocketpxe"
fi

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpus: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "qemu: $(qemu-system-x86_64 --version | head -n 1)"
    echo "dnsmasq: $(dnsmasq --version | head -n 1)"
    echo "pocketpxe: $("$BIN" --version)"
    echo "uptime before: $(uptime)"
} | tee "$OUT/machine.txt"

# 8 boots a round, each at most 300 s, plus building the test binary.
limit=$((ROUNDS * 8 * 300 + 900))
status=0
(
    cd "$REPO"
    POCKETPXE_BIN="$BIN" POCKETPXE_FIRST_SCREEN_ROUNDS="$ROUNDS" POCKETPXE_FIRST_SCREEN_OUT="$OUT" \
        timeout --signal=TERM --kill-after=30 "$limit" \
        cargo test -q -p pocketpxe-tests --test first_screen -- --ignored --nocapture --test-threads=1
) 2>&1 | tee "$OUT/run.log" || status=$?
echo "uptime after: $(uptime)" | tee -a "$OUT/machine.txt"
echo "results, serial consoles and server logs: $OUT"
exit "$status"

#!/usr/bin/env bash
# Builds the fuzz targets and gives each a short, bounded run, seeded with the real captures in
# testdata/captures/ at the repository's top. Needs a nightly toolchain and cargo-fuzz (scripts/setup installs both
# when FUZZ=1). Usage: fuzz/run.sh [SECONDS_PER_TARGET]   (default 30)
# Prints one line per target: "fuzz: TARGET: N executions in S s, clean".
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
targets=(tftp_wire dhcp_wire tftp_server_seq dhcp_server_seq ndisc_wire)

# Seeds: every DHCP payload of the captures; TFTP requests as real clients send them.
mkdir -p corpus/dhcp_wire corpus/tftp_wire
python3 - ../testdata/captures corpus/dhcp_wire <<'PY'
import os, struct, sys, hashlib
src, dst = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(src)):
    if not name.endswith(".pcap"):
        continue
    data = open(os.path.join(src, name), "rb").read()
    at = 24
    while at + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, at + 8)[0]
        frame = data[at + 16:at + 16 + caplen]
        at += 16 + caplen
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        payload = frame[14 + ihl + 8:]
        open(os.path.join(dst, hashlib.sha1(payload).hexdigest()), "wb").write(payload)
PY
printf '\x00\x01debian-installer/amd64/bootnetx64.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00windowsize\x004\x00' > corpus/tftp_wire/ovmf-rrq
printf '\x00\x01pxelinux.0\x00octet\x00blksize\x001432\x00tsize\x000\x00' > corpus/tftp_wire/pxelinux-rrq
printf '\x00\x06blksize\x001468\x00tsize\x0031236\x00' > corpus/tftp_wire/oack
printf '\x00\x05\x00\x08\x00' > corpus/tftp_wire/error8
printf '\x00\x04\xff\xff' > corpus/tftp_wire/ack

cargo +nightly fuzz build --release
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  if ! cargo +nightly fuzz run --release "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $t: FAILED (crash input saved under fuzz/artifacts/$t)"
    exit 1
  fi
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
  echo "fuzz: $t: $runs executions in ${secs} s, clean"
  rm -f "$log"
done

#!/usr/bin/env bash
# benches/tftp_syscalls.sh: system calls per lock-step block of TFTP servers, counted by
# `perf stat -e 'syscalls:sys_enter_*'` on the server process (every thread) while curl clients
# download with `--tftp-blksize 1468` (no windowsize).
#
#   sudo benches/tftp_syscalls.sh NAME=COMMAND...
#
# Each argument names a server and gives its command line, with @ROOT@ for the served
# directory; the server must listen on port 69 of every address. Loads: one client × 32 MiB
# and 64 clients × 2 MiB (one client: server and client pinned to CPU 0), on loopback and over
# a veth pair, in two network namespaces this script creates and deletes (nothing touches the
# host's interfaces). Prints, per server and load, the calls per block (file bytes ÷ 1468) of
# every system call above 0.01 per block.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
log() { echo "[syscalls] $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/netns_pair.sh
. "$HERE/netns_pair.sh"

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, perf)"
command -v perf >/dev/null || die "needs perf"
command -v curl >/dev/null || die "needs curl"

TAG="ppxs$$"
NS_SRV="$TAG-srv"
NS_CLI="$TAG-cli"
SRV_IP=10.78.0.1
OUT="$(mktemp -d /tmp/pocketpxe-syscalls.XXXXXX)"
ROOT="$OUT/root"
SERVER_PID=""
cleanup() {
    [ -z "$SERVER_PID" ] || { kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
    delete_namespaces "$NS_SRV" "$NS_CLI"
}
trap cleanup EXIT

make_veth_pair "$NS_SRV" "$NS_CLI" "${TAG}s" "${TAG}c" "$SRV_IP/24" "10.78.0.2/24"
mkdir -p "$ROOT"
chmod 755 "$OUT" "$ROOT"
head -c $((32 * 1024 * 1024)) /dev/urandom > "$ROOT/big.bin"
head -c $((2 * 1024 * 1024)) /dev/urandom > "$ROOT/conc.bin"
chmod 644 "$ROOT"/*.bin

# load N FILE HOST NS: N curl downloads of FILE at once (each under `timeout 300`).
load() {
    local n="$1" file="$2" host="$3" ns="$4" i pids=() pin=()
    # One client: server and client on CPU 0, as compare.sh runs them.
    if [ "$n" = 1 ]; then
        pin=(taskset -c 0)
        taskset -a -p -c 0 "$SERVER_PID" >/dev/null
    else
        taskset -a -p -c "0-$(( $(nproc) - 1 ))" "$SERVER_PID" >/dev/null
    fi
    for i in $(seq "$n"); do
        timeout 300 ip netns exec "$ns" "${pin[@]}" curl -s --tftp-blksize 1468 -o "$OUT/dl.$i" \
            "tftp://$host/$file" &
        pids+=($!)
    done
    wait "${pids[@]}"
    rm -f "$OUT"/dl.*
}

for spec in "$@"; do
    name="${spec%%=*}"
    cmd="${spec#*=}"
    cmd="${cmd//@ROOT@/$ROOT}"
    # shellcheck disable=SC2086
    ip netns exec "$NS_SRV" $cmd >"$OUT/$name.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 50); do
        ip netns exec "$NS_SRV" grep -q ':0045 ' /proc/net/udp 2>/dev/null && break
        sleep 0.1
    done
    for path in lo veth; do
        if [ "$path" = lo ]; then host=127.0.0.1; ns="$NS_SRV"; else host="$SRV_IP"; ns="$NS_CLI"; fi
        for clients in 1 64; do
            if [ "$clients" = 1 ]; then file=big.bin; else file=conc.bin; fi
            blocks=$(( clients * $(stat -c %s "$ROOT/$file") / 1468 ))
            perf stat -x, -e 'syscalls:sys_enter_*' -p "$SERVER_PID" -o "$OUT/perf.csv" &
            perf_pid=$!
            sleep 0.5
            load "$clients" "$file" "$host" "$ns"
            kill -INT "$perf_pid"
            wait "$perf_pid" 2>/dev/null || true
            awk -F, -v b="$blocks" -v who="$name $path $clients" '
                $1 ~ /^[0-9]+$/ && $1 > 0 {
                    sub("syscalls:sys_enter_", "", $3); per = $1 / b; total += per
                    if (per >= 0.01) parts = parts sprintf(" %s %.2f", $3, per)
                }
                END { printf "%s clients: %.2f per block:%s\n", who, total, parts }' "$OUT/perf.csv"
        done
    done
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
done

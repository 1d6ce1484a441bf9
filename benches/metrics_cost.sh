#!/usr/bin/env bash
# benches/metrics_cost.sh: what recording metrics costs the TFTP data path.
#
#   sudo benches/metrics_cost.sh OLD_BIN NEW_BIN [ROUNDS]
#
# Runs `pocketpxe serve` in a network namespace (veth to a client namespace, see
# netns_pair.sh) as three variants: OLD_BIN (a build without metrics), NEW_BIN, and NEW_BIN with
# `--metrics` scraped once a second during the load. Each round runs every variant once, in
# turn (the order turning from round to round), for each load; the table gives medians over the rounds of MB/s and of the server's CPU
# seconds per GB (utime+stime from /proc/PID/stat). Only the namespaces it creates are touched;
# every process it starts is stopped by its PID; the namespaces are deleted on exit.
set -euo pipefail

OLD="${1:?usage: metrics_cost.sh OLD_BIN NEW_BIN [ROUNDS]}"
NEW="${2:?usage: metrics_cost.sh OLD_BIN NEW_BIN [ROUNDS]}"
ROUNDS="${3:-3}"
SECONDS_PER_RUN=8
HERE="$(cd "$(dirname "$0")" && pwd)"
TAG="ppxm$$"
NS_SRV="$TAG-srv"
NS_CLI="$TAG-cli"
WORK="$(mktemp -d /tmp/pocketpxe-metrics-cost.XXXXXX)"
log() { echo "metrics_cost: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=netns_pair.sh
. "$HERE/netns_pair.sh"

SERVER_PID=""
SCRAPER_PID=""
cleanup() {
    [ -n "$SCRAPER_PID" ] && kill "$SCRAPER_PID" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    delete_namespaces "$NS_SRV" "$NS_CLI"
    rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
make_veth_pair "$NS_SRV" "$NS_CLI" eth1 eth0 192.168.77.1/24 192.168.77.2/24
mkdir -p "$WORK/root"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$WORK/root/2m.bin"
head -c $((64 * 1024)) /dev/urandom >"$WORK/root/64k.bin"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run VARIANT BIN LOAD: one measurement; prints "VARIANT LOAD MB/s CPU_S_PER_GB" (in this
# shell, not a subshell, so that the EXIT trap knows the PIDs).
run() {
    local variant="$1" bin="$2" load="$3" extra=()
    [ "$variant" = new+metrics ] && extra=(--metrics 127.0.0.1:9469)
    rm -f "$WORK/leases"
    ip netns exec "$NS_SRV" "$bin" serve --interface eth1 --root "$WORK/root" \
        --leases "$WORK/leases" --user root --max-transfers 4096 --max-transfers-per-client 0 \
        "${extra[@]}" 2>"$WORK/serve.log" &
    SERVER_PID=$!
    for _ in $(seq 300); do
        grep -q "pocketpxe serve ready" "$WORK/serve.log" && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "pocketpxe serve ready" "$WORK/serve.log" \
        || die "serve ($variant) not ready within 30 s: $(cat "$WORK/serve.log")"
    if [ "$variant" = new+metrics ]; then
        ip netns exec "$NS_SRV" timeout $((SECONDS_PER_RUN + 5)) sh -c \
            'while :; do curl -sf -o /dev/null http://127.0.0.1:9469/metrics || exit 1; sleep 1; done' &
        SCRAPER_PID=$!
    fi
    local args
    case "$load" in
        c64) args=(--file 2m.bin --clients 64 --blksize 1468) ;;
        w16c64) args=(--file 2m.bin --clients 64 --blksize 1468 --windowsize 16) ;;
        c256x64k) args=(--file 64k.bin --clients 256 --blksize 1468) ;;
    esac
    local before after json
    before=$(cpu_ticks "$SERVER_PID")
    json=$(ip netns exec "$NS_CLI" timeout 120 "$NEW" bench tftp --server 192.168.77.1:69 \
        "${args[@]}" --duration "${SECONDS_PER_RUN}s" --threads "$(nproc)" --json)
    after=$(cpu_ticks "$SERVER_PID")
    if [ -n "$SCRAPER_PID" ]; then
        kill "$SCRAPER_PID" 2>/dev/null || true
        wait "$SCRAPER_PID" 2>/dev/null || true
        SCRAPER_PID=""
    fi
    kill "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
    python3 - "$variant" "$load" "$json" "$((after - before))" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
variant, load, text, ticks, hz = sys.argv[1:]
r = json.loads(text)
assert r["failed"] == 0 and r["corrupt"] == 0, r
gb = r["bytes"] / 1e9
print(variant, load, "%.1f" % r["mb_per_s"], "%.2f" % (int(ticks) / int(hz) / gb))
EOF
}

results="$WORK/results"
VARIANTS=(old new new+metrics)
for round in $(seq "$ROUNDS"); do
    for load in c64 w16c64 c256x64k; do
        # The order turns each round, so that no variant always runs first or last.
        for i in 0 1 2; do
            variant="${VARIANTS[$(( (i + round) % 3 ))]}"
            bin="$NEW"
            [ "$variant" = old ] && bin="$OLD"
            run "$variant" "$bin" "$load" >>"$results"
            log "round $round: $(tail -n 1 "$results")"
        done
    done
done
python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    variant, load, mbs, cpu = line.split()
    rows.setdefault((load, variant), []).append((float(mbs), float(cpu)))
print("| load | variant | MB/s (median) | server CPU s/GB (median) | runs |")
print("| --- | --- | --- | --- | --- |")
for (load, variant), runs in rows.items():
    print("| %s | %s | %.1f | %.2f | %d |" % (load, variant,
          statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), len(runs)))
EOF

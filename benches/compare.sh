#!/usr/bin/env bash
# benches/compare.sh: pocketpxe's TFTP server side by side with its peers (tftpd-hpa, atftpd,
# dnsmasq, rs-tftpd, async-tftp), the same client load against each, interleaved, several
# rounds, medians in one table. See benches/README.md.
#
#   sudo benches/compare.sh [--quick] [--rounds N] [--out DIR] [--peers DIR] [--max-minutes M]
#                           [--only SERVER,...] [--scenarios "c64 w16c64 ..."] [--client-threads N]
#
# With PPX_BASE=/path/to/an/earlier/pocketpxe, that build is measured too, as pocketpxe-base
# (before/after in the same run; it is not counted as a peer).
#
# Loads with many clients run the load tool with --threads N (default: the number of CPUs),
# so that the client side is not capped at one CPU while the server may be the bottleneck.
#
# Network safety: every byte of load stays inside two network namespaces this script creates
# (their loopback, and a veth pair between them with MTU 1500). Servers are started inside
# them and stopped by the PID this script got when starting them; the namespaces are deleted
# on exit, on failure and on Ctrl-C. Every client command runs under `timeout`, and the whole
# run stops starting new measurements after --max-minutes.
#
# Peers are installed without starting any service: `apt-get download` + `dpkg-deb -x` into a
# private directory (tftpd-hpa and atftpd conflict as installed packages), dnsmasq-base,
# `cargo install tftpd` (rs-tftpd), and async-tftp's README server built with cargo.

set -euo pipefail

QUICK=0
ROUNDS=""
OUT=""
PEERS="${PEERS_DIR:-/var/tmp/pocketpxe-peers}"
MAX_MINUTES=""
ONLY=""
SCENARIOS=""
CLIENT_THREADS="$(nproc)"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --rounds) ROUNDS="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --peers) PEERS="$2"; shift ;;
        --max-minutes) MAX_MINUTES="$2"; shift ;;
        --only) ONLY="$2"; shift ;;
        --scenarios) SCENARIOS="$2"; shift ;;
        --client-threads) CLIENT_THREADS="$2"; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    ROUNDS="${ROUNDS:-1}"; MAX_MINUTES="${MAX_MINUTES:-8}"
    BIG_MIB=8; CONC_KIB=1024; SMALL_KIB=256
    SCENARIOS="${SCENARIOS:-1468 w16 c64 w16c64 curl-1468}"
else
    ROUNDS="${ROUNDS:-3}"; MAX_MINUTES="${MAX_MINUTES:-75}"
    BIG_MIB=32; CONC_KIB=2048; SMALL_KIB=256
    SCENARIOS="${SCENARIOS:-512 1468 max w16 c8 c64 c256 c1000 w16c64 w16c256 curl-1468 curl-c64 atftp-w16}"
fi

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="${OUT:-$(mktemp -d /tmp/pocketpxe-compare.XXXXXX)}"
mkdir -p "$OUT" "$PEERS"
RESULTS="$OUT/results.tsv"
: > "$RESULTS"
TAG="ppxc$$"
NS_SRV="$TAG-srv"
NS_CLI="$TAG-cli"
SRV_IP=10.77.0.1
CLI_IP=10.77.0.2
ROOT="$OUT/root"
DEADLINE=$(( $(date +%s) + MAX_MINUTES * 60 ))
SERVER_PID=""
TCK=$(getconf CLK_TCK)

log() { echo "compare: $*" >&2; }
# shellcheck source=benches/netns_pair.sh
. "$HERE/netns_pair.sh"
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces); nothing was changed"
for tool in ip timeout curl python3 sha256sum; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done

cleanup() {
    set +e
    stop_server
    delete_namespaces "$NS_SRV" "$NS_CLI"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- peers (no services started)
# Whether server $1 is to be measured (every one unless --only names others).
wanted() { [ -z "$ONLY" ] || echo ",$ONLY," | grep -q ",$1,"; }

install_peers() {
    log "installing peers into $PEERS (no services are started)"
    export DEBIAN_FRONTEND=noninteractive
    if ! dpkg -s dnsmasq-base atftp libwrap0 >/dev/null 2>&1; then
        # Binaries only: dnsmasq-base has no service, atftp is the client, libwrap0 a library.
        timeout 600 apt-get install -y --no-install-recommends dnsmasq-base atftp libwrap0 >&2 \
            || log "apt-get install failed; peers that need it are skipped"
    fi
    for pkg in tftpd-hpa atftpd; do
        if wanted "$pkg" && [ ! -d "$PEERS/$pkg" ]; then
            (cd "$PEERS" && rm -f "${pkg}"_*.deb && timeout 300 apt-get download "$pkg" >&2 \
                && dpkg-deb -x "${pkg}"_*.deb "$PEERS/$pkg") || log "$pkg: download failed, skipped"
        fi
    done
    if wanted rs-tftpd && [ ! -x "$PEERS/rs/bin/tftpd" ] && command -v cargo >/dev/null; then
        timeout 900 cargo install --quiet tftpd --root "$PEERS/rs" >&2 \
            || log "rs-tftpd: cargo install tftpd failed, skipped"
    fi
    if wanted async-tftp && [ ! -x "$PEERS/async-tftp/target/release/async-tftpd" ] \
        && command -v cargo >/dev/null; then
        # async-tftp's README server; its examples hard-code 0.0.0.0:6969 and trace logging.
        mkdir -p "$PEERS/async-tftp/src"
        cat > "$PEERS/async-tftp/Cargo.toml" <<'EOF'
[package]
name = "async-tftpd"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
async-tftp = "0.4"
futures-lite = "2"
[workspace]
EOF
        cat > "$PEERS/async-tftp/src/main.rs" <<'EOF'
// async-tftp's README example, with the directory and address from the command line.
use async_tftp::server::TftpServerBuilder;
fn main() -> async_tftp::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let addr = args.next().unwrap_or_else(|| "0.0.0.0:69".into());
    futures_lite::future::block_on(async {
        let tftpd = TftpServerBuilder::with_dir_ro(dir)?
            .bind(addr.parse().expect("ADDR:PORT"))
            .build()
            .await?;
        tftpd.serve().await
    })
}
EOF
        (cd "$PEERS/async-tftp" && CARGO_TARGET_DIR="$PEERS/async-tftp/target" \
            timeout 900 cargo build --quiet --release >&2) \
            || log "async-tftp: does not build here, skipped"
    fi
}

# ---------------------------------------------------------------- servers
# Each server listens on port 69 of every address of the server namespace.
server_cmd() {
    case "$1" in
        pocketpxe) echo "$PPX tftp --root $ROOT --listen 0.0.0.0:69 --max-transfers 12000 \
            --max-blksize 65464 --max-windowsize 64 -q" ;;
        pocketpxe-base) echo "$PPX_BASE tftp --root $ROOT --listen 0.0.0.0:69 \
            --max-transfers 12000 --max-blksize 65464 --max-windowsize 64 -q" ;;
        tftpd-hpa) echo "$PEERS/tftpd-hpa/usr/sbin/in.tftpd --listen --foreground \
            --address 0.0.0.0:69 --user nobody --secure $ROOT" ;;
        atftpd) echo "$PEERS/atftpd/usr/sbin/atftpd --daemon --no-fork --port 69 \
            --bind-address 0.0.0.0 --user nobody.nogroup --logfile /dev/null --verbose=1 \
            --maxthread 2000 $ROOT" ;;
        dnsmasq) echo "dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
            --enable-tftp --tftp-root=$ROOT --tftp-max=2000 --listen-address=127.0.0.1 \
            --listen-address=$SRV_IP --bind-interfaces --pid-file= --user=nobody \
            --log-facility=/dev/null" ;;
        rs-tftpd) echo "$PEERS/rs/bin/tftpd -i 0.0.0.0 -p 69 -d $ROOT -r -q" ;;
        async-tftp) echo "$PEERS/async-tftp/target/release/async-tftpd $ROOT 0.0.0.0:69" ;;
    esac
}

server_available() {
    case "$1" in
        pocketpxe) [ -x "$PPX" ] ;;
        pocketpxe-base) [ -n "${PPX_BASE:-}" ] && [ -x "$PPX_BASE" ] ;;
        tftpd-hpa) [ -x "$PEERS/tftpd-hpa/usr/sbin/in.tftpd" ] ;;
        atftpd) [ -x "$PEERS/atftpd/usr/sbin/atftpd" ] ;;
        dnsmasq) command -v dnsmasq >/dev/null ;;
        rs-tftpd) [ -x "$PEERS/rs/bin/tftpd" ] ;;
        async-tftp) [ -x "$PEERS/async-tftp/target/release/async-tftpd" ] ;;
    esac
}

start_server() {
    local name="$1"
    # shellcheck disable=SC2046
    ip netns exec "$NS_SRV" $(server_cmd "$name") >"$OUT/$name.log" 2>&1 &
    SERVER_PID=$!
    CG=""
    if [ -d "$CPUACCT" ] && mkdir -p "$CPUACCT/$TAG" 2>/dev/null \
        && echo "$SERVER_PID" > "$CPUACCT/$TAG/tasks" 2>/dev/null; then
        CG="$CPUACCT/$TAG"
        echo 0 > "$CG/cpuacct.usage" 2>/dev/null || true
    fi
    # Ready when something listens on UDP port 69 in the namespace (at most 5 s).
    for _ in $(seq 50); do
        if ip netns exec "$NS_SRV" grep -q ':0045 ' /proc/net/udp 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not start (see $OUT/$name.log)"
    stop_server
    return 1
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        [ -z "$CG" ] || rmdir "$CG" 2>/dev/null || true
        CG=""
    fi
}

# Server CPU time in seconds. tftpd-hpa forks a process per transfer, whose time reaches the
# parent's cutime/cstime late or never, so when a cgroup-v1 cpuacct hierarchy is writable the
# server runs in a group of its own and its usage (all descendants) is read there; otherwise
# utime+stime+cutime+cstime from /proc/PID/stat.
CPUACCT=/sys/fs/cgroup/cpuacct
CG=""
server_cpu() {
    if [ -n "$CG" ] && [ -r "$CG/cpuacct.usage" ]; then
        awk '{ printf "%.3f\n", $1 / 1e9 }' "$CG/cpuacct.usage"
    else
        awk -v tck="$TCK" '{ printf "%.3f\n", ($14 + $15 + $16 + $17) / tck }' \
            "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0
    fi
}
server_hwm_kib() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0
}

# Single-client loads run the server (every thread, and children it forks) and the client on
# CPU 0: in lock-step every block is a wake-up of the other side, and across CPUs of a VM
# that wake-up costs more than the block (single runs then swing between 3 and 40 MB/s).
# Loads with many clients get every CPU. Sets PIN, the client's command prefix.
PIN=""
pin_for() {
    case "$1" in
        512|1468|max|w16|curl-1468|atftp-w16)
            PIN="taskset -c 0"
            taskset -a -p -c 0 "$SERVER_PID" >/dev/null 2>&1 || true ;;
        *)
            PIN=""
            taskset -a -p -c "0-$(( $(nproc) - 1 ))" "$SERVER_PID" >/dev/null 2>&1 || true ;;
    esac
}

# ---------------------------------------------------------------- clients
# Prints "bytes ok failed corrupt wall_s client_cpu_s" for one scenario against HOST: the
# load tool's own CPU seconds (its --json cpu_s), or the real clients' (children's user+sys).
run_scenario() {
    local scenario="$1" host="$2" ns="$3"
    local bench=(timeout 300 ip netns exec "$ns" $PIN "$PPX" bench tftp --server "$host:69" --json)
    local json
    # Many clients: the load tool spreads them over CLIENT_THREADS event loops.
    case "$scenario" in c*|w16c*) bench+=(--threads "$CLIENT_THREADS") ;; esac
    case "$scenario" in
        512) json=$("${bench[@]}" --file big.bin --expect-sha256 "$SHA_BIG" 2>/dev/null) || true ;;
        1468) json=$("${bench[@]}" --file big.bin --blksize 1468 --expect-sha256 "$SHA_BIG" 2>/dev/null) || true ;;
        max) json=$("${bench[@]}" --file big.bin --blksize 65464 --expect-sha256 "$SHA_BIG" 2>/dev/null) || true ;;
        w16) json=$("${bench[@]}" --file big.bin --blksize 1468 --windowsize 16 --expect-sha256 "$SHA_BIG" 2>/dev/null) || true ;;
        c8|c64|c256) json=$("${bench[@]}" --file conc.bin --blksize 1468 --clients "${scenario#c}" \
            --expect-sha256 "$SHA_CONC" 2>/dev/null) || true ;;
        w16c64|w16c256) json=$("${bench[@]}" --file conc.bin --blksize 1468 --windowsize 16 \
            --clients "${scenario#w16c}" --expect-sha256 "$SHA_CONC" 2>/dev/null) || true ;;
        c1000) json=$("${bench[@]}" --file small.bin --blksize 1468 --clients 1000 \
            --expect-sha256 "$SHA_SMALL" 2>/dev/null) || true ;;
        c10000) json=$("${bench[@]}" --file tiny.bin --blksize 1468 --clients 10000 \
            --timeout-ms 2000 --expect-sha256 "$SHA_TINY" 2>/dev/null) || true ;;
        curl-1468) run_real 1 big.bin "$SHA_BIG" "$host" "$ns" curl; return ;;
        curl-c64) run_real 64 conc.bin "$SHA_CONC" "$host" "$ns" curl; return ;;
        atftp-w16) run_real 1 big.bin "$SHA_BIG" "$host" "$ns" atftp; return ;;
    esac
    python3 -c 'import json,sys
try:
    j = json.loads(sys.argv[1].strip().splitlines()[-1])
    print(j["bytes"], j["ok"], j["failed"], j["corrupt"], j["wall_s"], j["cpu_s"])
except Exception:
    print(0, 0, 1, 0, 0, 0)' "${json:-}"
}

# N real clients in parallel (curl, or atftp for windowsize), each output checked by sha256.
# Their CPU time is the difference of this shell's waited-for children's user+sys (cutime +
# cstime) across the downloads (it includes the `timeout` and `ip netns exec` wrappers, which
# cost little).
run_real() {
    local n="$1" file="$2" sha="$3" host="$4" ns="$5" client="$6"
    local dir="$OUT/dl" start end ok=0 failed=0 corrupt=0 size cpu0 cpu1 me="$BASHPID"
    rm -rf "$dir"; mkdir -p "$dir"
    size=$(stat -c %s "$ROOT/$file")
    cpu0=$(children_cpu "$me")
    start=$(date +%s.%N)
    for i in $(seq "$n"); do
        if [ "$client" = curl ]; then
            timeout 300 ip netns exec "$ns" $PIN curl -s --tftp-blksize 1468 -o "$dir/$i" \
                "tftp://$host/$file" &
        else
            timeout 300 ip netns exec "$ns" $PIN atftp --option "blksize 1468" \
                --option "windowsize 16" -g -r "$file" -l "$dir/$i" "$host" 69 >/dev/null 2>&1 &
        fi
    done
    wait
    end=$(date +%s.%N)
    cpu1=$(children_cpu "$me")
    for i in $(seq "$n"); do
        if [ ! -s "$dir/$i" ]; then failed=$((failed + 1))
        elif [ "$(sha256sum < "$dir/$i" | cut -d' ' -f1)" = "$sha" ]; then ok=$((ok + 1))
        else corrupt=$((corrupt + 1)); fi
    done
    rm -rf "$dir"
    echo "$((ok * size)) $ok $failed $corrupt $(python3 -c "print(round($end - $start, 3), round($cpu1 - $cpu0, 3))")"
}

# User+sys seconds of the waited-for children of shell PID $1 so far (cutime + cstime).
children_cpu() {
    awk -v tck="$TCK" '{ printf "%.3f\n", ($16 + $17) / tck }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# ---------------------------------------------------------------- setup
install_peers

build_pocketpxe "$REPO"
make_veth_pair "$NS_SRV" "$NS_CLI" "${TAG}s" "${TAG}c" "$SRV_IP/24" "$CLI_IP/24"

mkdir -p "$ROOT"
chmod 755 "$OUT" "$ROOT"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom > "$ROOT/big.bin"
head -c $((CONC_KIB * 1024)) /dev/urandom > "$ROOT/conc.bin"
head -c $((SMALL_KIB * 1024)) /dev/urandom > "$ROOT/small.bin"
head -c $((64 * 1024)) /dev/urandom > "$ROOT/tiny.bin"
chmod 644 "$ROOT"/*.bin
SHA_BIG=$(sha256sum < "$ROOT/big.bin" | cut -d' ' -f1)
SHA_CONC=$(sha256sum < "$ROOT/conc.bin" | cut -d' ' -f1)
SHA_SMALL=$(sha256sum < "$ROOT/small.bin" | cut -d' ' -f1)
SHA_TINY=$(sha256sum < "$ROOT/tiny.bin" | cut -d' ' -f1)

SERVERS=""
for s in pocketpxe pocketpxe-base tftpd-hpa atftpd dnsmasq rs-tftpd async-tftp; do
    wanted "$s" || continue
    if server_available "$s"; then SERVERS="$SERVERS $s"; else log "$s: not available, skipped"; fi
done
log "servers:$SERVERS; scenarios: $SCENARIOS; rounds: $ROUNDS; results in $RESULTS"

{
    echo "# machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r), $(date -u +%Y-%m-%d)"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# load tool: --threads $CLIENT_THREADS for many-client loads, one thread for single-client loads; single-client loads pin server and client to CPU 0"
} > "$OUT/machine.txt"

# ---------------------------------------------------------------- measure
for round in $(seq "$ROUNDS"); do
    for server in $SERVERS; do
        [ "$(date +%s)" -lt "$DEADLINE" ] || { log "time budget used up; stopping"; break 2; }
        start_server "$server" || continue
        for path in lo veth; do
            if [ "$path" = lo ]; then host=127.0.0.1; ns="$NS_SRV"; else host="$SRV_IP"; ns="$NS_CLI"; fi
            for scenario in $SCENARIOS; do
                [ "$(date +%s)" -lt "$DEADLINE" ] || break
                kill -0 "$SERVER_PID" 2>/dev/null || { log "$server died"; start_server "$server" || break 2; }
                t0=$(server_cpu)
                pin_for "$scenario"
                read -r bytes ok failed corrupt wall ccpu < <(run_scenario "$scenario" "$host" "$ns")
                t1=$(server_cpu)
                cpu=$(python3 -c "print(round($t1 - $t0, 3))")
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$server" "$path" \
                    "$scenario" "$bytes" "$ok" "$failed" "$corrupt" "$wall" "$cpu" "$ccpu" >> "$RESULTS"
                log "round $round $server $path $scenario: $bytes bytes in ${wall}s, ok $ok failed $failed corrupt $corrupt, server cpu ${cpu}s, client cpu ${ccpu}s"
            done
        done
        echo -e "$round\t$server\thwm\t$(server_hwm_kib)" >> "$OUT/hwm.tsv"
        stop_server
    done
done

# 10 000 concurrent transfers, pocketpxe only (a target of its own), with its own peak RSS.
if [ "$QUICK" = 0 ] && echo "$SERVERS" | grep -q pocketpxe; then
    server=pocketpxe
    for path in lo veth; do
        [ "$(date +%s)" -lt "$DEADLINE" ] || break
        if [ "$path" = lo ]; then host=127.0.0.1; ns="$NS_SRV"; else host="$SRV_IP"; ns="$NS_CLI"; fi
        start_server pocketpxe || break
        t0=$(server_cpu)
        pin_for c10000
        read -r bytes ok failed corrupt wall ccpu < <(run_scenario c10000 "$host" "$ns")
        t1=$(server_cpu)
        cpu=$(python3 -c "print(round($t1 - $t0, 3))")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' 1 pocketpxe "$path" c10000 \
            "$bytes" "$ok" "$failed" "$corrupt" "$wall" "$cpu" "$ccpu" >> "$RESULTS"
        echo -e "1\tpocketpxe-c10000-$path\thwm\t$(server_hwm_kib)" >> "$OUT/hwm.tsv"
        log "pocketpxe $path c10000: ok $ok failed $failed corrupt $corrupt in ${wall}s, VmHWM $(server_hwm_kib) KiB"
        stop_server
    done
fi

python3 "$HERE/compare_table.py" "$RESULTS" "$OUT/hwm.tsv" "$OUT/machine.txt" | tee "$OUT/table.md"
log "raw results: $RESULTS; table: $OUT/table.md"

#!/usr/bin/env bash
# benches/http_compare.sh: pocketpxe's HTTP server against nginx (Debian's package,
# `sendfile on`) serving the same large file to 64 concurrent clients on loopback:
# aggregate throughput and server CPU seconds per GB, alternating, several rounds, medians.
# See benches/README.md ("HTTP: pocketpxe vs nginx").
#
#   sudo benches/http_compare.sh [--rounds N] [--seconds S] [--connections C] [--mib M]
#                                [--nginx-workers W] [--bin PATH] [--out DIR]
#
# Load: wrk (Debian package) with C connections, each downloading the file again and again
# for S seconds; bytes counted by wrk's own summary. Server CPU: utime + stime of the server's
# processes (nginx: master and workers) from /proc, before and after each run.
#
# nginx is fetched with `apt-get download` and unpacked into a private directory, never
# installed: the package would start a system nginx on port 80. Both servers listen on
# 127.0.0.1 on free ports, are started by this script and stopped by the PID it got.

set -euo pipefail

ROUNDS=3
SECONDS_PER_RUN=10
CONNECTIONS=64
MIB=40
NGINX_WORKERS=1
BIN=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift ;;
        --seconds) SECONDS_PER_RUN="$2"; shift ;;
        --connections) CONNECTIONS="$2"; shift ;;
        --mib) MIB="$2"; shift ;;
        --nginx-workers) NGINX_WORKERS="$2"; shift ;;
        --bin) BIN="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "http_compare.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="${OUT:-$(mktemp -d /tmp/pocketpxe-http-compare.XXXXXX)}"
PEERS="${PEERS_DIR:-/var/tmp/pocketpxe-peers}/nginx"
mkdir -p "$OUT" "$PEERS"

# --- tools -----------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
NGINX="$PEERS/usr/sbin/nginx"
if [ ! -x "$NGINX" ]; then
    (cd "$PEERS" && apt-get download nginx >/dev/null && dpkg-deb -x nginx_*.deb . && rm -f nginx_*.deb)
fi
if [ -z "$BIN" ]; then
    (cd "$REPO" && cargo build --release -q -p pocketpxe --bin pocketpxe)
    BIN="$REPO/target/release/pocketpxe"
fi

# --- the file and the servers ----------------------------------------------------------------
ROOT="$OUT/root"
mkdir -p "$ROOT/debian-installer/amd64"
FILE="debian-installer/amd64/initrd.gz"
head -c "$((MIB << 20))" /dev/urandom >"$ROOT/$FILE"
SIZE=$(stat -c %s "$ROOT/$FILE")
cat "$ROOT/$FILE" >/dev/null   # in the page cache for both

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap stop_server EXIT INT TERM

wait_port() {
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "http_compare.sh: nothing answers on port $1" >&2
    return 1
}

start_pocketpxe() {
    "$BIN" http --root "$ROOT" --listen "127.0.0.1:$1" --grace 0 2>>"$OUT/pocketpxe.log" &
    SERVER_PID=$!
}

start_nginx() {
    local dir="$OUT/nginx"
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    default_type application/octet-stream;
    access_log $dir/access.log;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$1;
        root $ROOT;
        autoindex off;
    }
}
EOF
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    SERVER_PID=$!
}

# CPU ticks (utime + stime) of a process and its children (nginx's workers).
cpu_ticks() {
    local total=0 pid
    for pid in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
        if [ -r "/proc/$pid/stat" ]; then
            # Fields after the command name: utime is the 12th, stime the 13th.
            read -r ut st < <(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12, $13}')
            total=$((total + ut + st))
        fi
    done
    echo "$total"
}
HZ=$(getconf CLK_TCK)

SUMMARY="$OUT/wrk_done.lua"
cat >"$SUMMARY" <<'EOF'
done = function(summary, latency, requests)
    io.write(string.format("WRK bytes=%d us=%d requests=%d errors=%d\n", summary.bytes,
        summary.duration, summary.requests,
        summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.status + summary.errors.timeout))
end
EOF

RESULTS="$OUT/results.tsv"
printf 'round\tserver\tbytes\tseconds\tMiB_per_s\tcpu_s\tcpu_s_per_GB\terrors\n' >"$RESULTS"

measure() { # round server
    local port
    port=$(free_port)
    "start_$2" "$port"
    wait_port "$port"
    # Warm-up: one download, checked byte for byte.
    curl -s --max-time 30 "http://127.0.0.1:$port/$FILE" | cmp -s - "$ROOT/$FILE" \
        || { echo "http_compare.sh: $2 served wrong bytes" >&2; exit 1; }
    local before after line bytes us errors
    before=$(cpu_ticks "$SERVER_PID")
    line=$(timeout $((SECONDS_PER_RUN + 30)) wrk -t 2 -c "$CONNECTIONS" -d "${SECONDS_PER_RUN}s" \
        --timeout 30s -s "$SUMMARY" "http://127.0.0.1:$port/$FILE" | grep '^WRK ')
    after=$(cpu_ticks "$SERVER_PID")
    stop_server
    bytes=$(sed 's/.*bytes=\([0-9]*\).*/\1/' <<<"$line")
    us=$(sed 's/.*us=\([0-9]*\).*/\1/' <<<"$line")
    errors=$(sed 's/.*errors=\([0-9]*\).*/\1/' <<<"$line")
    python3 - "$1" "$2" "$bytes" "$us" "$before" "$after" "$HZ" "$errors" >>"$RESULTS" <<'EOF'
import sys
rnd, server, b, us, before, after, hz, errors = sys.argv[1:]
b, secs = int(b), int(us) / 1e6
cpu = (int(after) - int(before)) / int(hz)
print(f"{rnd}\t{server}\t{b}\t{secs:.2f}\t{b / secs / 2**20:.0f}\t{cpu:.2f}\t{cpu / (b / 1e9):.3f}\t{errors}")
EOF
    tail -1 "$RESULTS"
}

echo "http_compare: ${MIB} MiB file, $CONNECTIONS connections, ${SECONDS_PER_RUN}s per run," \
    "$ROUNDS rounds, nginx worker_processes $NGINX_WORKERS, $(nproc) CPUs; results in $OUT"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="pocketpxe nginx"; else order="nginx pocketpxe"; fi
    for server in $order; do
        measure "$round" "$server"
    done
done

python3 - "$RESULTS" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("\nmedians over rounds:")
print(f"{'server':<10} {'MiB/s':>8} {'CPU s/GB':>9} {'errors':>6}")
for server in ("pocketpxe", "nginx"):
    mine = [r for r in rows if r["server"] == server]
    mibs = statistics.median(float(r["MiB_per_s"]) for r in mine)
    cpu = statistics.median(float(r["cpu_s_per_GB"]) for r in mine)
    errors = sum(int(r["errors"]) for r in mine)
    print(f"{server:<10} {mibs:>8.0f} {cpu:>9.3f} {errors:>6}")
# Each round runs both servers back to back: their ratio is steadier than the medians when the
# machine's load drifts between rounds.
by = {(r["round"], r["server"]): r for r in rows}
rounds = sorted({r["round"] for r in rows})
tput = [float(by[(n, "pocketpxe")]["MiB_per_s"]) / float(by[(n, "nginx")]["MiB_per_s"]) for n in rounds]
cpu = [float(by[(n, "pocketpxe")]["cpu_s_per_GB"]) / float(by[(n, "nginx")]["cpu_s_per_GB"]) for n in rounds]
print(f"pocketpxe / nginx per round: throughput {' '.join(f'{x:.2f}' for x in tput)}"
      f" (median {statistics.median(tput):.2f}); CPU per GB {' '.join(f'{x:.2f}' for x in cpu)}"
      f" (median {statistics.median(cpu):.2f})")
EOF

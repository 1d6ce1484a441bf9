#!/usr/bin/env bash
# benches/dhcp_compare.sh: DHCP DORA/s of `pocketpxe serve`, Kea (kea-dhcp4, memfile) and
# dnsmasq (--no-ping), measured with ISC perfdhcp from a second network namespace over a veth
# pair, at the same offered rates, one server at a time. See benches/README.md.
#
#   sudo benches/dhcp_compare.sh [--quick] [--rates "1000 2000 ..."] [--seconds S] [--out DIR]
#   sudo benches/dhcp_compare.sh --scale [--clients "2000 50000"] [--rates "4000 8000"] ...
#   sudo benches/dhcp_compare.sh --servers "pocketpxe kea pocketpxe-pg kea-pg" [--rates ...]
#
# --servers picks the servers (default: pocketpxe kea dnsmasq). pocketpxe-pg and kea-pg keep
# their leases in PostgreSQL (pocketpxe `--leases postgresql://…`, Kea's postgresql lease
# database): one throwaway cluster (Debian's postgresql package, initdb in the output
# directory, a unix socket only, run as the postgres user, stopped by its PID at the end),
# each server's table emptied before each run. Their CPU is reported twice: the server's
# own, and the server's plus the database's (postmaster and backends).
#
# --scale is the lease-table case: a /16 pool (10.78.1.0-10.78.255.254, 65 278 addresses),
# perfdhcp simulating 2 000 and then 50 000 clients (-R), pocketpxe and Kea back to back at
# each rate; the table then has one row per (clients, offered rate). The default case is a
# 2 048-address pool, 2 000 clients and all three servers.
#
# Network safety: all DHCP traffic stays on a veth pair between two namespaces this script
# creates; servers are stopped by the PID it started; namespaces are deleted on exit.
# Packages (kea-admin for perfdhcp, kea-dhcp4-server, dnsmasq-base) are installed with
# apt-get when missing; Debian's policy-rc.d/invoke-rc.d rules apply, and the script never
# starts a service: it runs each server in the foreground inside its namespace.

set -euo pipefail

QUICK=0
RATES=""
SECONDS_PER_RUN=""
OUT=""
ROUNDS=1
SCALE=0
CLIENT_COUNTS=""
SERVERS_ARG=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --rates) RATES="$2"; shift ;;
        --seconds) SECONDS_PER_RUN="$2"; shift ;;
        --rounds) ROUNDS="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --scale) SCALE=1 ;;
        --clients) CLIENT_COUNTS="$2"; shift ;;
        --servers) SERVERS_ARG="$2"; shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "dhcp_compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$SCALE" = 1 ]; then
    RATES="${RATES:-4000 8000}"; SECONDS_PER_RUN="${SECONDS_PER_RUN:-8}"
    CLIENT_COUNTS="${CLIENT_COUNTS:-2000 50000}"
elif [ "$QUICK" = 1 ]; then
    RATES="${RATES:-1000 4000}"; SECONDS_PER_RUN="${SECONDS_PER_RUN:-4}"
else
    RATES="${RATES:-1000 2000 4000 8000 12000 16000}"; SECONDS_PER_RUN="${SECONDS_PER_RUN:-8}"
fi

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="${OUT:-$(mktemp -d /tmp/pocketpxe-dhcp.XXXXXX)}"
mkdir -p "$OUT"
TAG="ppxd$$"
NS_SRV="$TAG-srv"; NS_CLI="$TAG-cli"
IF_SRV="${TAG}s"; IF_CLI="${TAG}c"
SRV_IP=10.78.0.1; CLI_IP=10.78.0.2
if [ "$SCALE" = 1 ]; then
    POOL_START=10.78.1.0; POOL_END=10.78.255.254   # a /16 less 10.78.0.x: 65 278 addresses
    SERVERS="pocketpxe kea"
else
    POOL_START=10.78.1.0; POOL_END=10.78.8.255     # 2048 addresses
    SERVERS="pocketpxe kea dnsmasq"
fi
CLIENT_COUNTS="${CLIENT_COUNTS:-2000}"
SERVERS="${SERVERS_ARG:-$SERVERS}"
SERVER_PID=""
PG_PID=""; PG_DIR="$OUT/pg"; PG_PORT=5499""
RESULTS="$OUT/dhcp.tsv"
: > "$RESULTS"

log() { echo "dhcp_compare: $*" >&2; }
# shellcheck source=benches/netns_pair.sh
. "$HERE/netns_pair.sh"
die() { log "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces); nothing was changed"

cleanup() {
    set +e
    stop_server
    stop_postgres
    delete_namespaces "$NS_SRV" "$NS_CLI"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v perfdhcp >/dev/null || ! command -v kea-dhcp4 >/dev/null \
    || { [ "$SCALE" = 0 ] && ! command -v dnsmasq >/dev/null; }; then
    log "installing kea-admin (perfdhcp), kea-dhcp4-server, dnsmasq-base"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends \
        kea-admin kea-dhcp4-server dnsmasq-base >&2 || die "apt-get install failed"
fi
build_pocketpxe "$REPO"

uses_pg() { case " $SERVERS " in *-pg\ *) return 0 ;; esac; return 1; }
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
# psql as the cluster's superuser, on its socket.
pg_sql() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U pocketpxe "$@"; }
# A throwaway cluster: initdb in $PG_DIR, a unix socket there only (no TCP), as postgres.
start_postgres() {
    if [ -z "$PG_BIN" ] || ! command -v kea-admin >/dev/null; then
        log "installing postgresql, kea-admin"
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends \
            postgresql kea-admin >&2 || die "apt-get install failed"
        PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    fi
    log "starting PostgreSQL ($PG_BIN) in $PG_DIR"
    chmod 755 "$OUT"; rm -rf "$PG_DIR"; mkdir -p "$PG_DIR"; chown postgres: "$PG_DIR"
    setpriv --reuid=postgres --regid=postgres --init-groups env LC_ALL=C "$PG_BIN/initdb" \
        -A trust -U pocketpxe -E UTF8 -D "$PG_DIR/data" >"$OUT/initdb.log" 2>&1 \
        || die "initdb failed (see $OUT/initdb.log)"
    setpriv --reuid=postgres --regid=postgres --init-groups "$PG_BIN/postgres" -D "$PG_DIR/data" \
        -c listen_addresses= -c unix_socket_directories="$PG_DIR" -p "$PG_PORT" \
        >"$PG_DIR/postgres.log" 2>&1 &
    PG_PID=$!
    for _ in $(seq 100); do pg_sql -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
    pg_sql -d postgres -c 'CREATE DATABASE pocketpxe' -c 'CREATE DATABASE kea' \
        || die "PostgreSQL did not start (see $PG_DIR/postgres.log)"
    kea-admin db-init pgsql -h "$PG_DIR" -P "$PG_PORT" -u pocketpxe -n kea >"$OUT/kea-admin.log" 2>&1 \
        || die "kea-admin db-init pgsql failed (see $OUT/kea-admin.log)"
}
stop_postgres() {
    if [ -n "$PG_PID" ]; then
        kill -INT "$PG_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PG_PID" 2>/dev/null || true
        wait "$PG_PID" 2>/dev/null || true
        PG_PID=""
    fi
}
# CPU seconds of the cluster so far: the postmaster (with its reaped children) and the
# backends alive now (its children, by parent PID).
pg_cpu() {
    [ -n "$PG_PID" ] || { echo 0; return; }
    local pids
    pids="$PG_PID $(pgrep -P "$PG_PID" | tr '\n' ' ')"
    for pid in $pids; do cat "/proc/$pid/stat" 2>/dev/null; done \
        | awk -v tck="$(getconf CLK_TCK)" -v pm="$PG_PID" \
            '{ t += $14 + $15; if ($1 == pm) t += $16 + $17 } END { printf "%.2f\n", t / tck }'
}
if uses_pg; then start_postgres; fi
make_veth_pair "$NS_SRV" "$NS_CLI" "$IF_SRV" "$IF_CLI" "$SRV_IP/16" "$CLI_IP/16"
mkdir -p "$OUT/tftproot"

start_server() {
    local name="$1" dir="$OUT/$1"
    rm -rf "$dir"; mkdir -p "$dir"
    case "$name" in
        pocketpxe)
            ip netns exec "$NS_SRV" "$PPX" serve --interface "$IF_SRV" --root "$OUT/tftproot" \
                --mode dhcp --range "$POOL_START-$POOL_END" --leases "$dir/leases" --user root \
                --tftp-port 6969 -q >"$dir/log" 2>&1 & ;;
        pocketpxe-pg)
            pg_sql -d pocketpxe -c 'DROP TABLE IF EXISTS pocketpxe_leases, pocketpxe_schema'
            ip netns exec "$NS_SRV" "$PPX" serve --interface "$IF_SRV" --root "$OUT/tftproot" \
                --mode dhcp --range "$POOL_START-$POOL_END" --user root --tftp-port 6969 -q \
                --leases "postgresql:///pocketpxe?host=$PG_DIR&port=$PG_PORT&user=pocketpxe" \
                >"$dir/log" 2>&1 & ;;
        kea|kea-pg)
            local leasedb="{ \"type\": \"memfile\", \"persist\": true, \"name\": \"$dir/leases4.csv\", \"lfc-interval\": 0 }"
            if [ "$name" = kea-pg ]; then
                pg_sql -d kea -c 'TRUNCATE lease4'
                leasedb="{ \"type\": \"postgresql\", \"name\": \"kea\", \"user\": \"pocketpxe\", \"host\": \"$PG_DIR\", \"port\": $PG_PORT }"
            fi
            cat > "$dir/kea.json" <<EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "$IF_SRV" ] },
    "lease-database": $leasedb,
    "valid-lifetime": 3600,
    "subnet4": [ { "id": 1, "subnet": "10.78.0.0/16",
                   "pools": [ { "pool": "$POOL_START - $POOL_END" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "WARN",
                   "output_options": [ { "output": "$dir/kea.log" } ] } ] } }
EOF
            KEA_PIDFILE_DIR="$dir" KEA_LOCKFILE_DIR="$dir" \
                ip netns exec "$NS_SRV" kea-dhcp4 -c "$dir/kea.json" >"$dir/log" 2>&1 & ;;
        dnsmasq)
            ip netns exec "$NS_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
                --interface="$IF_SRV" --bind-interfaces --dhcp-authoritative --no-ping \
                --dhcp-range="$POOL_START,$POOL_END,1h" --dhcp-lease-max=5000 \
                --dhcp-leasefile="$dir/leases" --quiet-dhcp --pid-file= --user=root \
                --log-facility="$dir/log" >"$dir/out" 2>&1 & ;;
    esac
    SERVER_PID=$!
    sleep 1
    kill -0 "$SERVER_PID" 2>/dev/null || { log "$name did not start (see $dir)"; SERVER_PID=""; return 1; }
}

# UDP datagrams dropped because a socket's receive buffer was full, in namespace $1 (a
# kernel counter, /proc/net/snmp "Udp: ... RcvbufErrors"): tells whether requests were lost
# at the server or replies at perfdhcp.
rcvbuf_errors() {
    ip netns exec "$1" awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}

# The server's CPU seconds so far (utime + stime of its process, /proc/PID/stat).
server_cpu() {
    awk -v tck="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / tck }' \
        "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

echo "# $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r), $(date -u +%Y-%m-%d), load $(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT/machine.txt"
for round in $(seq "$ROUNDS"); do
  for clients in $CLIENT_COUNTS; do
    for rate in $RATES; do
        for server in $SERVERS; do
            start_server "$server" || continue
            read -r srv_err0 < <(rcvbuf_errors "$NS_SRV"); read -r cli_err0 < <(rcvbuf_errors "$NS_CLI")
            db_cpu0=$(pg_cpu)
            report=$(timeout $((SECONDS_PER_RUN + 30)) ip netns exec "$NS_CLI" perfdhcp -4 \
                -l "$IF_CLI" -r "$rate" -p "$SECONDS_PER_RUN" -R "$clients" 2>&1 || true)
            read -r srv_err1 < <(rcvbuf_errors "$NS_SRV"); read -r cli_err1 < <(rcvbuf_errors "$NS_CLI")
            cpu=$(server_cpu)
            db_cpu=$(awk -v a="$db_cpu0" -v b="$(pg_cpu)" 'BEGIN { printf "%.2f", b - a }')
            case "$server" in *-pg) ;; *) db_cpu=0 ;; esac
            stop_server
            echo "$report" > "$OUT/$server-$clients-$rate-$round.txt"
            # sent DISCOVERs, received ACKs.
            read -r discovers acks < <(echo "$report" | awk '
                /Statistics for: DISCOVER-OFFER/ { s = "do" } /Statistics for: REQUEST-ACK/ { s = "ra" }
                /^sent packets:/ && s == "do" { d = $3 } /^received packets:/ && s == "ra" { a = $3 }
                END { print d + 0, a + 0 }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$server" "$rate" "$discovers" \
                "$acks" "$SECONDS_PER_RUN" "$((srv_err1 - srv_err0))" "$((cli_err1 - cli_err0))" \
                "$cpu" "$clients" "$db_cpu" >> "$RESULTS"
            log "round $round clients $clients rate $rate $server: $discovers DISCOVERs, $acks ACKs in ${SECONDS_PER_RUN}s, ${cpu}s CPU (database ${db_cpu}s)"
        done
    done
  done
done

python3 - "$RESULTS" "$OUT/machine.txt" "$SERVERS" <<'EOF' | tee "$OUT/table.md"
import statistics, sys
from collections import defaultdict
# dhcp.tsv: round, server, offered rate, DISCOVERs sent, ACKs received, seconds, datagrams
# dropped at the server's / perfdhcp's socket, server CPU seconds, simulated clients, database
# CPU seconds (PostgreSQL back ends; 0 otherwise).
rows = defaultdict(list)
extra = defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    r, server, rate, d, a, secs = f[:6]
    d, a, secs = int(d), int(a), float(secs)
    clients = int(f[9]) if len(f) >= 10 else 2000
    key = (server, clients, int(rate))
    rows[key].append((a / secs, 100.0 * (d - a) / d if d else 100.0))
    if len(f) >= 9:
        # server-side and client-side receive-buffer drops, server CPU ms per DORA.
        cpu_ms = 1000.0 * float(f[8]) / a if a else float("nan")
        db_ms = 1000.0 * float(f[10]) / a if a and len(f) >= 11 else 0.0
        extra[key].append((int(f[6]), int(f[7]), cpu_ms, db_ms))
servers = sys.argv[3].split()
cases = sorted({k[1:] for k in rows})
print(open(sys.argv[2]).read().strip().lstrip("# "))
print()
print("| clients | offered DORA/s | " + " | ".join(f"{s} DORA/s (lost %)" for s in servers) + " |")
print("|---" * (len(servers) + 2) + "|")
best = {}
for clients, rate in cases:
    cells = []
    for s in servers:
        got = rows.get((s, clients, rate))
        if not got:
            cells.append("–"); continue
        done = statistics.median(g[0] for g in got)
        lost = statistics.median(g[1] for g in got)
        best[(s, clients)] = max(best.get((s, clients), (0, 0)), (done, rate))
        cells.append(f"{done:.0f} ({lost:.1f} %)")
    print(f"| {clients} | {rate} | " + " | ".join(cells) + " |")
print()
for (s, clients), (done, rate) in sorted(best.items()):
    print(f"- {s}, {clients} clients: at most {done:.0f} DORA/s (at {rate} offered)")
if extra:
    print()
    print("Where datagrams were dropped (kernel `RcvbufErrors`: server namespace / perfdhcp's "
          "namespace) and server CPU milliseconds per completed DORA (median of rounds):")
    print()
    print("| clients | offered DORA/s | " + " | ".join(f"{s}: dropped at server / at perfdhcp; CPU ms per DORA" for s in servers) + " |")
    print("|---" * (len(servers) + 2) + "|")
    for clients, rate in cases:
        cells = []
        for s in servers:
            got = extra.get((s, clients, rate))
            if not got:
                cells.append("–"); continue
            cell = (f"{statistics.median(g[0] for g in got):.0f} / "
                    f"{statistics.median(g[1] for g in got):.0f}; "
                    f"{statistics.median(g[2] for g in got):.3f}")
            if s.endswith("-pg"):
                cell += f" (+ database {statistics.median(g[3] for g in got):.3f})"
            cells.append(cell)
        print(f"| {clients} | {rate} | " + " | ".join(cells) + " |")
    print()
for ours, theirs in [("pocketpxe", "kea"), ("pocketpxe-pg", "kea-pg")]:
  for clients in sorted({c for _, c in best}):
    p, k = best.get((ours, clients)), best.get((theirs, clients))
    if p and k and k[0] > 0:
        lost = statistics.median(g[1] for g in rows.get((ours, clients, k[1]), [(0, 0)]))
        line = (f"- {clients} clients: {ours} ÷ {theirs}, best DORA/s: {p[0] / k[0]:.2f}×; "
                f"{ours} lost {lost:.1f} % at {theirs}'s best offered rate ({k[1]}/s)")
        pc = extra.get((ours, clients, k[1])); kc = extra.get((theirs, clients, k[1]))
        if pc and kc:
            pm, km = statistics.median(g[2] for g in pc), statistics.median(g[2] for g in kc)
            line += f"; server CPU per DORA there: {pm:.3f} vs {km:.3f} ms ({pm / km:.2f}×)"
            if ours.endswith("-pg"):
                pt = statistics.median(g[2] + g[3] for g in pc)
                kt = statistics.median(g[2] + g[3] for g in kc)
                line += f"; with the database's: {pt:.3f} vs {kt:.3f} ms ({pt / kt:.2f}×)"
        print(line)
EOF
log "raw: $RESULTS; perfdhcp reports: $OUT/*.txt"

#!/usr/bin/env bash
# benches/diskless_scale.sh: how many diskless clients one server carries, simulated:
#  * live image: N clients download the whole image from `pocketpxe http` at the same time
#    (curl, one process per client), as N machines booting a live image at once do;
#  * NFS root: N clients read the same files from NFS-Ganesha (NFSv4, libnfs's nfs-cat, one
#    process per client) at the same time, as N machines booting from one NFS root do.
# Per N: wall time until the last client is done, aggregate MiB/s, the slowest client, and the
# server's CPU seconds (utime + stime from /proc). See benches/README.md ("Diskless scale").
#
#   sudo benches/diskless_scale.sh [--clients "1 8 32 64"] [--image-mib M] [--nfs-mib M]
#                                  [--bin PATH] [--out DIR]
#
# Everything runs on loopback inside a network namespace this script creates (and deletes);
# both servers are started by this script (`ip netns exec` execs in place, so the PID is the
# server's) and stopped by that PID. Needs root (the namespace), curl, nfs-ganesha +
# nfs-ganesha-vfs and libnfs-utils (Debian packages).

set -euo pipefail

CLIENTS="1 8 32 64"
IMAGE_MIB=256
NFS_MIB=64
BIN=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --clients) CLIENTS="$2"; shift ;;
        --image-mib) IMAGE_MIB="$2"; shift ;;
        --nfs-mib) NFS_MIB="$2"; shift ;;
        --bin) BIN="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "diskless_scale.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="${OUT:-$(mktemp -d /tmp/pocketpxe-diskless-scale.XXXXXX)}"
mkdir -p "$OUT"
for tool in curl ganesha.nfsd nfs-cat ip; do
    command -v "$tool" >/dev/null || { echo "diskless_scale.sh: $tool missing" >&2; exit 1; }
done
if [ -n "$BIN" ]; then
    BIN="$(realpath "$BIN")"
else
    (cd "$REPO" && cargo build --release -p pocketpxe >/dev/null)
    BIN="$REPO/target/release/pocketpxe"
fi

NS="ppxe-dlscale-$$"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
inns() { ip netns exec "$NS" "$@"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

# --- the image and the NFS root ------------------------------------------------------------
ROOT="$OUT/root"
EXPORT="$OUT/nfsroot"
mkdir -p "$ROOT/live" "$EXPORT/usr/lib"
head -c "$((IMAGE_MIB << 20))" /dev/urandom >"$ROOT/live/filesystem.squashfs"
# What a client reads from an NFS root while booting: a few large files (libraries, the
# kernel's modules) and many small ones (configuration, scripts).
for i in $(seq 1 8); do
    head -c $((NFS_MIB << 17)) /dev/urandom >"$EXPORT/usr/lib/big$i"
done
mkdir -p "$EXPORT/etc"
for i in $(seq 1 32); do
    head -c 16384 /dev/urandom >"$EXPORT/etc/small$i"
done
FILES=$(cd "$EXPORT" && find . -type f | sed 's|^\./||' | sort)

# --- live image over HTTP ----------------------------------------------------------------------
PORT=8080
ip netns exec "$NS" "$BIN" http --root "$ROOT" --listen "127.0.0.1:$PORT" >"$OUT/http.log" 2>&1 &
HTTP_PID=$!
PIDS+=("$HTTP_PID")
for _ in $(seq 1 100); do
    grep -q "HTTP server ready" "$OUT/http.log" && break
    sleep 0.1
done
echo "## live image over HTTP: ${IMAGE_MIB} MiB, pocketpxe http"
echo "| clients | wall s | aggregate MiB/s | slowest client s | server CPU s |"
echo "|---|---|---|---|---|"
for n in $CLIENTS; do
    before=$(cpu_ticks "$HTTP_PID")
    start=$(date +%s.%N)
    for c in $(seq 1 "$n"); do
        inns curl -s -o /dev/null -w '%{time_total} %{size_download}\n' \
            "http://127.0.0.1:$PORT/live/filesystem.squashfs" >"$OUT/http-$n-$c.txt" &
    done
    wait $(jobs -p | grep -vx "$HTTP_PID") 2>/dev/null || true
    end=$(date +%s.%N)
    after=$(cpu_ticks "$HTTP_PID")
    cat "$OUT"/http-"$n"-*.txt | awk -v n="$n" -v mib="$IMAGE_MIB" -v s="$start" -v e="$end" \
        -v cpu="$(( after - before ))" -v hz="$TICKS" '
        { if ($2 != mib * 1048576) bad++; if ($1 > max) max = $1 }
        END {
            wall = e - s
            if (bad) printf "(%d short downloads) ", bad
            printf "| %d | %.1f | %.0f | %.1f | %.2f |\n", n, wall, n * mib / wall, max, cpu / hz
        }'
done
kill "$HTTP_PID"; wait "$HTTP_PID" 2>/dev/null || true

# --- NFS root over NFS-Ganesha -----------------------------------------------------------------
mkdir -p "$OUT/ganesha-recovery"
cat >"$OUT/ganesha.conf" <<EOF
NFS_CORE_PARAM { Protocols = 4; NFS_Port = 2049; Enable_NLM = false; Enable_RQUOTA = false; }
NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = "$OUT/ganesha-recovery"; }
EXPORT {
    Export_Id = 1; Path = "$EXPORT"; Pseudo = "/nfsroot"; Access_Type = RO;
    Squash = No_Root_Squash; SecType = sys; Protocols = 4; Transports = TCP;
    FSAL { Name = VFS; }
}
EOF
ip netns exec "$NS" ganesha.nfsd -F -L "$OUT/ganesha.log" -f "$OUT/ganesha.conf" -p "$OUT/ganesha.pid" \
    -N NIV_EVENT >"$OUT/ganesha.out" 2>&1 &
NFS_PID=$!
PIDS+=("$NFS_PID")
for _ in $(seq 1 300); do
    grep -q "NFS SERVER INITIALIZED" "$OUT/ganesha.log" 2>/dev/null && break
    sleep 0.1
done
echo
echo "## NFS root: ${NFS_MIB} MiB + 512 KiB in $(echo "$FILES" | wc -l) files per client, NFS-Ganesha (NFSv4, VFS)"
echo "| clients | wall s | aggregate MiB/s | slowest client s | server CPU s |"
echo "|---|---|---|---|---|"
NFS_BYTES=$(( (NFS_MIB << 20) + 32 * 16384 ))
read_all() {
    local t0 t1 bytes=0 b
    t0=$(date +%s.%N)
    for f in $FILES; do
        b=$(inns nfs-cat "nfs://127.0.0.1/nfsroot/$f?version=4" | wc -c)
        bytes=$((bytes + b))
    done
    t1=$(date +%s.%N)
    echo "$t0 $t1 $bytes" | awk '{print $2 - $1, $3}'
}
for n in $CLIENTS; do
    before=$(cpu_ticks "$NFS_PID")
    start=$(date +%s.%N)
    for c in $(seq 1 "$n"); do
        read_all >"$OUT/nfs-$n-$c.txt" &
    done
    wait $(jobs -p | grep -vx "$NFS_PID") 2>/dev/null || true
    end=$(date +%s.%N)
    after=$(cpu_ticks "$NFS_PID")
    cat "$OUT"/nfs-"$n"-*.txt | awk -v n="$n" -v mib="$NFS_MIB" -v s="$start" -v e="$end" \
        -v total="$NFS_BYTES" \
        -v cpu="$(( after - before ))" -v hz="$TICKS" '
        { if ($2 != total) bad++; if ($1 > max) max = $1 }
        END {
            wall = e - s
            if (bad) printf "(%d clients read short) ", bad
            printf "| %d | %.1f | %.0f | %.1f | %.2f |\n", n, wall, n * mib / wall, max, cpu / hz
        }'
done
echo
echo "logs and per-client times: $OUT"

#!/usr/bin/env python3
"""Medians of benches/compare.sh's results.tsv as Markdown tables (see benches/README.md).

results.tsv columns: round, server, path, scenario, bytes, ok, failed, corrupt, wall_s,
server_cpu_s and (since the client CPU was recorded) client_cpu_s. Files with the first ten
columns only are still read; they have no client-bound ceiling table.
"""
import re
import statistics
import sys
from collections import defaultdict

SCENARIOS = {
    "512": "1 client, blksize 512",
    "1468": "1 client, blksize 1468",
    "max": "1 client, blksize 65464",
    "w16": "1 client, 1468, windowsize 16",
    "c8": "8 clients, 1468",
    "c64": "64 clients, 1468",
    "c256": "256 clients, 1468",
    "c1000": "1000 clients, 1468",
    "c10000": "10000 clients, 1468",
    "w16c64": "64 clients, 1468, windowsize 16",
    "w16c256": "256 clients, 1468, windowsize 16",
    "curl-1468": "curl, 1 client, 1468",
    "curl-c64": "curl, 64 clients, 1468",
    "atftp-w16": "atftp, 1 client, 1468, windowsize 16",
}
# Loads that ask for windowsize (RFC 7440): their "÷ best peer" counts only peers that
# negotiate it.
WINDOWED = {"w16", "w16c64", "w16c256", "atftp-w16"}
# Peers that do not acknowledge windowsize in their OACK (they run those loads lock-step).
NO_WINDOWSIZE = {"tftpd-hpa", "dnsmasq"}
# Client processes/threads per load: curl and atftp are one process per download; the load
# tool is one thread for one client and `--threads N` (machine.txt says N) for many.
CLIENT_THREADS = {"curl-c64": 64}
MANY_CLIENT_LOADS = {"c8", "c64", "c256", "c1000", "c10000", "w16c64", "w16c256"}


def main():
    results, hwm_path, machine_path = sys.argv[1:4]
    machine = open(machine_path).read()
    found = re.search(r"(\d+) CPUs", machine)
    nproc = int(found.group(1)) if found else 1
    found = re.search(r"--threads (\d+)", machine)
    for scenario in MANY_CLIENT_LOADS:
        CLIENT_THREADS[scenario] = int(found.group(1)) if found else 1
    rows = defaultdict(list)  # (path, scenario, server) -> [(mbps, s_per_gb)]
    client = defaultdict(list)  # (path, scenario, server) -> [bytes per client CPU second]
    fails = defaultdict(lambda: [0, 0, 0])  # server -> [ok, failed, corrupt]
    servers = []
    with open(results) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) not in (10, 11):
                continue
            _, server, path, scenario, nbytes, ok, failed, corrupt, wall, cpu = parts[:10]
            if server not in servers:
                servers.append(server)
            nbytes, wall, cpu = int(nbytes), float(wall), float(cpu)
            mbps = nbytes / 1e6 / wall if wall > 0 else 0.0
            s_gb = cpu / (nbytes / 1e9) if nbytes > 0 else float("nan")
            rows[(path, scenario, server)].append((mbps, s_gb))
            client_cpu = float(parts[10] or 0) if len(parts) == 11 else 0.0
            if client_cpu > 0 and nbytes > 0:
                client[(path, scenario, server)].append(nbytes / client_cpu)
            key = f"{server} ({SCENARIOS.get(scenario, scenario)})" if scenario == "c10000" else server
            fails[key][0] += int(ok)
            fails[key][1] += int(failed)
            fails[key][2] += int(corrupt)
    # pocketpxe-base (PPX_BASE: an earlier build, for before/after) is not a peer.
    peers = [s for s in servers if not s.startswith("pocketpxe")]

    def peers_for(scenario):
        if scenario in WINDOWED:
            return [p for p in peers if p not in NO_WINDOWSIZE]
        return peers

    def medians(path, scenario, idx):
        values = {}
        for server in servers:
            got = [r[idx] for r in rows.get((path, scenario, server), [])]
            got = [g for g in got if g == g]  # drop NaN
            if got:
                values[server] = statistics.median(got)
        return values

    print(machine.strip().replace("# ", "").replace("\n", "; "))
    print()
    for title, idx, better in (
        ("Throughput, MB/s (median of rounds; higher is better)", 0, max),
        ("Server CPU seconds per GB served (median; lower is better)", 1, min),
    ):
        print(f"**{title}**\n")
        print("| path | load | " + " | ".join(servers) + " | pocketpxe ÷ best peer |")
        print("|---" * (len(servers) + 3) + "|")
        for path in ("lo", "veth"):
            for scenario, label in SCENARIOS.items():
                values = medians(path, scenario, idx)
                if not values:
                    continue
                cells = [f"{values[s]:.1f}" if s in values else "–" for s in servers]
                peer_values = [values[p] for p in peers_for(scenario) if p in values and values[p] > 0]
                ratio = "–"
                if "pocketpxe" in values and peer_values:
                    ratio = f"{values['pocketpxe'] / better(peer_values):.2f}×"
                print(f"| {path} | {label} | " + " | ".join(cells) + f" | {ratio} |")
        print()
    windowed_peers = [p for p in peers if p not in NO_WINDOWSIZE]
    if any(key[1] in WINDOWED for key in rows):
        print(
            "Rows with windowsize 16: \"÷ best peer\" counts only peers that negotiate "
            f"windowsize (RFC 7440): {', '.join(windowed_peers) or 'none here'}. "
            f"{' and '.join(sorted(NO_WINDOWSIZE))} do not acknowledge it in their OACK and "
            "serve those loads lock-step (their cells are shown but not compared).\n"
        )

    ceiling_rows = []
    for path in ("lo", "veth"):
        for scenario, label in SCENARIOS.items():
            per_server = {
                s: statistics.median(client[(path, scenario, s)])
                for s in servers
                if client.get((path, scenario, s))
            }
            if not per_server:
                continue
            top = max(per_server, key=per_server.get)
            ceiling = nproc * per_server[top] / 1e6
            threads = min(nproc, CLIENT_THREADS.get(scenario, 1))
            one = threads * per_server[top] / 1e6
            mbps = medians(path, scenario, 0)
            peer_values = {p: mbps[p] for p in peers_for(scenario) if p in mbps and mbps[p] > 0}
            best = max(peer_values, key=peer_values.get) if peer_values else None
            own = f"{mbps['pocketpxe']:.1f}" if "pocketpxe" in mbps else "–"
            best_cell = f"{peer_values[best]:.1f} ({best})" if best else "–"
            ratio = f"{peer_values[best] / ceiling:.2f}" if best else "–"
            ratio_one = f"{peer_values[best] / one:.2f}" if best else "–"
            ceiling_rows.append(
                f"| {path} | {label} | {ceiling:.1f} ({top}) | {one:.1f} | {own} | {best_cell} "
                f"| {ratio} | {ratio_one} |"
            )
    if ceiling_rows:
        print(f"**Client-bound ceiling, MB/s ({nproc} CPUs shared by client and server)**\n")
        print(
            "| path | load | ceiling: nproc × bytes ÷ client CPU s (max over servers) "
            "| client threads × bytes ÷ client CPU s | pocketpxe | best peer "
            "| best peer ÷ ceiling | best peer ÷ client-thread ceiling |"
        )
        print("|---" * 8 + "|")
        print("\n".join(ceiling_rows))
        print(
            "\nClient CPU is the load tool's own (`cpu_s` of `pocketpxe bench tftp --json`), or the "
            "real clients' processes for the curl and atftp rows. The ceiling is what any server "
            "could reach if it cost nothing; a target of k × the best peer needs k × (best peer "
            "÷ ceiling) ≤ 1. The load tool runs on one thread for one client and on `--threads N` "
            "for many, and each curl/atftp download is one process, so the client alone cannot "
            "use more than that many CPUs: the second ceiling. Median over rounds per server, then the server that let the client spend "
            "the least CPU per byte.\n"
        )

    hwm = defaultdict(int)
    try:
        with open(hwm_path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) == 4:
                    hwm[parts[1]] = max(hwm[parts[1]], int(parts[3] or 0))
    except FileNotFoundError:
        pass
    print("**Peak RSS (VmHWM of the server process, max over rounds) and outcomes (all rounds)**\n")
    print("| server | peak RSS MiB | downloads ok | failed | corrupt |")
    print("|---|---|---|---|---|")
    for key in list(fails) + [k for k in hwm if k not in fails]:
        ok, failed, corrupt = fails.get(key, [0, 0, 0])
        mem_key = key if key in hwm else key.split(" ")[0]
        if key.startswith("pocketpxe ("):
            mem = max((v for k, v in hwm.items() if k.startswith("pocketpxe-c10000")), default=0)
        else:
            mem = hwm.get(mem_key, 0)
        if key.startswith("pocketpxe-c10000"):
            continue
        print(f"| {key} | {mem / 1024:.1f} | {ok} | {failed} | {corrupt} |")


if __name__ == "__main__":
    main()

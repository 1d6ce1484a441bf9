#!/usr/bin/env python3
"""Medians of benches/compare.sh's results.tsv as Markdown tables (see benches/README.md)."""
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
    "curl-1468": "curl, 1 client, 1468",
    "curl-c64": "curl, 64 clients, 1468",
    "atftp-w16": "atftp, 1 client, 1468, windowsize 16",
}


def main():
    results, hwm_path, machine_path = sys.argv[1:4]
    rows = defaultdict(list)  # (path, scenario, server) -> [(mbps, s_per_gb)]
    fails = defaultdict(lambda: [0, 0, 0])  # server -> [ok, failed, corrupt]
    servers = []
    with open(results) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 10:
                continue
            _, server, path, scenario, nbytes, ok, failed, corrupt, wall, cpu = parts
            if server not in servers:
                servers.append(server)
            nbytes, wall, cpu = int(nbytes), float(wall), float(cpu)
            mbps = nbytes / 1e6 / wall if wall > 0 else 0.0
            s_gb = cpu / (nbytes / 1e9) if nbytes > 0 else float("nan")
            rows[(path, scenario, server)].append((mbps, s_gb))
            key = f"{server} ({SCENARIOS.get(scenario, scenario)})" if scenario == "c10000" else server
            fails[key][0] += int(ok)
            fails[key][1] += int(failed)
            fails[key][2] += int(corrupt)
    peers = [s for s in servers if s != "pocketpxe"]
    print(open(machine_path).read().strip().replace("# ", "").replace("\n", "; "))
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
                cells, values = [], {}
                for server in servers:
                    got = [r[idx] for r in rows.get((path, scenario, server), [])]
                    got = [g for g in got if g == g]  # drop NaN
                    if got:
                        values[server] = statistics.median(got)
                        cells.append(f"{values[server]:.1f}")
                    else:
                        cells.append("–")
                if not values:
                    continue
                peer_values = [values[p] for p in peers if p in values and values[p] > 0]
                ratio = "–"
                if "pocketpxe" in values and peer_values:
                    ratio = f"{values['pocketpxe'] / better(peer_values):.2f}×"
                print(f"| {path} | {label} | " + " | ".join(cells) + f" | {ratio} |")
        print()
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

#!/usr/bin/env python3
"""One node alone against three nodes behind HAProxy, side by side
(docs/cluster.md, "Figures: three nodes behind HAProxy").

Needs the cluster up (bench/scripts/cluster.sh up, same CLUSTER_DIR). Starts
one more switchd, a node alone (no cluster.urls), on the cluster's keys and
issuersim (terminal 127.0.0.1:8590, admin 8591, public 8592), then runs
ROUNDS rounds of bench, each round one closed-loop run against the node
alone and one through HAProxy, the order reversed every other round. For
every run it reads, before and after: each process's CPU seconds
(/proc/PID/stat), each NATS server's client connections of the switch
nodes (/connz: messages the nodes published, i.e. JetStream operations
sent) and the counter bucket's stream (/jsz: writes committed). It prints
one table row per run and leaves the node alone stopped. A third run per
round drives node-1 of the cluster directly (127.0.0.1:18583): the shared
counters' cost without the other nodes contending for the same token.

    CLUSTER_DIR=cluster-data ROUNDS=3 DUR=8s CONCURRENCY=64 bench/scripts/cluster-measure.py
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

DIR = os.environ.get("CLUSTER_DIR", "cluster-data")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DUR = os.environ.get("DUR", "8s")
CONCURRENCY = os.environ.get("CONCURRENCY", "64")
CONNECTIONS = os.environ.get("CONNECTIONS", "32")
TICK = os.sysconf("SC_CLK_TCK")
MONITORS = ["127.0.0.1:8222", "127.0.0.1:8223", "127.0.0.1:8224"]
SINGLE = {"listen": "127.0.0.1:8590", "admin": "127.0.0.1:8591", "public": "127.0.0.1:8592"}


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read()


def pid(name):
    with open(os.path.join(DIR, "pids", name + ".pid")) as f:
        return int(f.read())


def cpu_s(p):
    with open(f"/proc/{p}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def nats_ops():
    """Messages the switch nodes published to NATS, and the counter
    stream's last sequence (writes committed)."""
    published, last_seq = 0, 0
    for m in MONITORS:
        connz = json.loads(get(f"http://{m}/connz?limit=1024"))
        for c in connz.get("connections", []):
            if c.get("name", "").startswith("tapswitch"):
                published += c["in_msgs"]
        jsz = json.loads(get(f"http://{m}/jsz?streams=true"))
        for a in jsz.get("account_details", []):
            for s in a.get("stream_detail", []):
                if s["name"] == "KV_tapswitch_counters":
                    last_seq = max(last_seq, s["state"]["last_seq"])
    return published, last_seq


def start_single():
    data = os.path.join(DIR, "single")
    os.makedirs(data, exist_ok=True)
    for f in ("dev-vault.keys", "dev-acquirer.keys", "operator.keys"):
        with open(os.path.join(DIR, "keys", f), "rb") as src, open(os.path.join(data, f), "wb") as dst:
            dst.write(src.read())
        os.chmod(os.path.join(data, f), 0o600)
    wallet = os.path.join(data, "dev-wallet.json")
    if os.path.exists(wallet):
        os.remove(wallet)
    log = open(os.path.join(DIR, "logs", "single.log"), "w")
    p = subprocess.Popen([os.path.join(DIR, "bin", "switchd"), "-dev", "-dev-external-issuers", "-data", data,
                          "-listen", SINGLE["listen"], "-admin", SINGLE["admin"], "-public", SINGLE["public"],
                          "-log-level", "warn", "-log-format", "json", "-log-transactions=false"],
                         stdout=log, stderr=log)
    for _ in range(600):
        try:
            get(f"http://{SINGLE['admin']}/readyz")
            return p, wallet
        except Exception:
            time.sleep(0.1)
    sys.exit("the node alone did not come up: see " + log.name)


def run(target, wallet, procs):
    before = {n: cpu_s(p) for n, p in procs.items()}
    ops0 = nats_ops()
    out = subprocess.run([os.path.join(DIR, "bin", "bench"), "-switch", target, "-wallet", wallet,
                          "-duration", DUR, "-warmup", "0s", "-concurrency", CONCURRENCY,
                          "-connections", CONNECTIONS, "-mix", "purchase=90,decline=10",
                          "-json", "-quiet", "-out", ""], capture_output=True, text=True)
    after = {n: cpu_s(p) for n, p in procs.items()}
    ops1 = nats_ops()
    rep = json.loads(out.stdout)
    answered = max(rep["answered"], 1)
    cpu = {n: (after[n] - before[n]) for n in procs}
    return rep, answered, cpu, (ops1[0] - ops0[0]) / answered, (ops1[1] - ops0[1]) / answered


def main():
    single, single_wallet = start_single()
    try:
        cluster = {f"node-{k}": pid(f"node-{k}") for k in (1, 2, 3)}
        cluster.update({f"nats-{k}": pid(f"nats-{k}") for k in (1, 2, 3)})
        cluster["haproxy"] = pid("haproxy")
        cluster["issuersim"] = pid("issuersim")
        alone = {"node-0": single.pid, "issuersim": pid("issuersim")}
        # One cluster node driven directly: the cost of the shared counters
        # without other nodes contending for the token.
        direct = {"node-1": pid("node-1"), "issuersim": pid("issuersim")}
        direct.update({f"nats-{k}": pid(f"nats-{k}") for k in (1, 2, 3)})
        print("| round | setup | TPS | p50 ms | p99 ms | 91s | CPU µs/auth per node | NATS CPU µs/auth | HAProxy CPU µs/auth | issuersim CPU µs/auth | NATS msgs published/auth | swaps committed/auth |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in range(1, ROUNDS + 1):
            cluster_wallet = os.path.join(DIR, "node-1", "dev-wallet.json")
            order = [("alone", SINGLE["listen"], single_wallet, alone),
                     ("node-1 of the cluster, direct", "127.0.0.1:18583", cluster_wallet, direct),
                     ("3 nodes + HAProxy", "127.0.0.1:8583", cluster_wallet, cluster)]
            if r % 2 == 0:
                order.reverse()
            for name, target, wallet, procs in order:
                rep, n, cpu, published, swaps = run(target, wallet, procs)
                us = lambda s: round(s * 1e6 / n)
                nodes = [k for k in cpu if k.startswith("node-")]
                per_node = " · ".join(str(us(cpu[k])) for k in nodes)
                nats = sum(cpu[k] for k in cpu if k.startswith("nats-"))
                row = [r, name, round(rep["tps"]), round(rep["p50_us"] / 1000, 1), round(rep["p99_us"] / 1000, 1),
                       rep["codes"].get("91", 0), per_node + f" (sum {us(sum(cpu[k] for k in nodes))})",
                       us(nats) if "nats-1" in cpu else "–", us(cpu["haproxy"]) if "haproxy" in cpu else "–",
                       us(cpu["issuersim"]), round(published, 2) if "nats-1" in cpu else "–",
                       round(swaps, 2) if "nats-1" in cpu else "–"]
                print("| " + " | ".join(str(x) for x in row) + " |", flush=True)
    finally:
        single.send_signal(signal.SIGTERM)
        single.wait(timeout=60)


if __name__ == "__main__":
    main()

import json, sys, os, glob
# One line per run of compare.sh (and its relay baseline): TPS, latency, errors, CPU.
out = sys.argv[1]
def row(name, r):
    cpu = r.get('cpu_us_per_auth')
    print(f"{name:28s} {r['tps']:9.0f} TPS  p50 {r['p50_us']/1000:6.2f} ms  p99 {r['p99_us']/1000:6.2f} ms  p99.9 {r['p999_us']/1000:6.2f} ms  err {r['errors']}  cpu/auth {cpu if cpu is None else round(cpu,1)} µs  issuers {r.get('cpu_issuers_s')} s bench {r['cpu_bench_s']:.2f} s dur {r['duration_s']:.1f}")
for d in sorted(glob.glob(os.path.join(out, '*'))):
    if not os.path.isdir(d): continue
    p = os.path.join(d, 'latest.json')
    if not os.path.exists(p): print(os.path.basename(d), 'no report'); continue
    r = json.load(open(p))
    if r.get('baseline'): row(os.path.basename(d)+' [relay]', r['baseline'])
    row(os.path.basename(d), r)

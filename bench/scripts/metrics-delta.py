import re, sys
# mean of each histogram (sum/count) between two /metrics scrapes
def load(p):
    d = {}
    for line in open(p):
        m = re.match(r'^(tapswitch_\w+_(sum|count))(\{[^}]*\})? ([0-9.e+-]+)$', line)
        if m: d[(m.group(1), m.group(3) or '')] = float(m.group(4))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
for (k, lab), v in sorted(b.items()):
    if not k.endswith('_sum'): continue
    c = k[:-4] + '_count'
    n = b.get((c, lab), 0) - a.get((c, lab), 0)
    s = v - a.get((k, lab), 0)
    if n > 0: print(f"{k[:-4]}{lab} mean {s/n*1e6:.0f} µs over {n:.0f}")

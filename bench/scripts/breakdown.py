import re, sys
# Classify each CPU sample stack of `go tool pprof -traces` into one category
# (first rule that matches any frame, in order), print shares and µs per
# authorization (argv[2] = switch CPU µs per authorization in that run).
rules = [
 ("journal: WAL write and fdatasync (Pebble's log writer)", r"record\.\(\*LogWriter\)"),
 ("journal: compactions and memtable flushes (Pebble, background)", r"pebble/v2\.\(\*DB\)\.(compact|flush)|runCompaction|compact\.\(\*Runner\)"),
 ("journal: duplicate look-up (Find)", r"journal\.\(\*Journal\)\.Find"),
 ("journal: arm the reversal (Arm)", r"journal\.\(\*Journal\)\.Arm"),
 ("journal: append the outcome (AppendAbsent: encode, batch, commit wait)", r"journal\.\(\*Journal\)\.Append"),
 ("vault: detokenize (Pebble get, AES-GCM open) and seal the PAN for the journal", r"vault\.\(\*Vault\)\.Get|vault\.\(\*Keyring\)\.Seal|authorize\.JournalAAD"),
 ("cryptogram: token key, ARQC check", r"cryptogram\.|Keyring\)\.TokenKey"),
 ("issuer link: pack, write, read, match", r"router/link\.|authorize\.issuerRequest|authorize\.issuerAnswer|FrameWriter"),
 ("terminal: read and parse requests, MAC check", r"terminal\.\(\*session\)\.(readLoop|readRequest|run)$|FrameReader|acquirer\."),
 ("terminal: pack and write answers (MAC, coalesced writes)", r"terminal\.\(\*answerWriter\)|terminal\.\(\*session\)\.sendAnswer"),
 ("pipeline: decisions, locks, logging, metrics", r"authorize\.|metrics\.|zerolog"),
 ("garbage collection", r"runtime\.gcBgMarkWorker|runtime\.gcDrain|runtime\.bgsweep|runtime\.bgscavenge"),
 ("Go scheduler: park, wake, find work, netpoll", r"runtime\.(schedule|findRunnable|park_m|mcall|goready|ready|netpoll|wakep|startm|stopm)"),
]
text = open(sys.argv[1]).read()
per = float(sys.argv[2])
totals = {name: 0.0 for name, _ in rules}; other = 0.0; all_ = 0.0
for block in text.split('-----------+-------------------------------------------------------')[1:]:
    lines = [l for l in block.strip('\n').split('\n') if l.strip()]
    if not lines: continue
    m = None
    for l in lines:
        m = re.match(r'^\s*(?:[\w-]+:.*\n)?\s*([0-9.]+)(ms|s|us)\s', l)
        if m: break
    if not m: continue
    v = float(m.group(1)) * {'ms':1e-3,'s':1,'us':1e-6}[m.group(2)]
    all_ += v
    frames = '\n'.join(lines)
    for name, rx in rules:
        if re.search(rx, frames, re.M):
            totals[name] += v; break
    else:
        other += v
for name, _ in rules:
    print(f"| {totals[name]/all_*100:4.1f} % | {totals[name]/all_*per:5.1f} µs | {name} |")
print(f"| {other/all_*100:4.1f} % | {other/all_*per:5.1f} µs | other |")
print("total samples", round(all_,2))

#!/usr/bin/env bash
# Profile NEW_BIN/switchd under bench's closed loop: issuersim and switchd by
# hand (production logs), bench -switch, a CPU profile of PROF_SECS from the
# admin port's /debug/pprof, and /metrics scraped before and after it.
# Writes OUT/{bench.txt,switchd.prof,top.txt,metrics-0.txt,metrics-1.txt};
# extra arguments go to bench (-concurrency 4 -connections 4, ...).
#
#   NEW_BIN=$NEW OUT=$PROF bench/scripts/profile.sh
#   python3 bench/scripts/metrics-delta.py $PROF/metrics-0.txt $PROF/metrics-1.txt
#   go tool pprof -traces $NEW/switchd $PROF/switchd.prof > $PROF/traces.txt
#   python3 bench/scripts/breakdown.py $PROF/traces.txt <switch µs per authorization>
set -euo pipefail
NEW_BIN=${NEW_BIN:?}; OUT=${OUT:?}; DUR=${DUR:-12s}; PROF_SECS=${PROF_SECS:-8}
mkdir -p "$OUT"; d=$(mktemp -d)
"$NEW_BIN/issuersim" -log-level warn -cards 200 -admin "" >"$d/iss.log" 2>&1 & iss=$!
sleep 1
"$NEW_BIN/switchd" -dev -dev-external-issuers -data "$d/data" -listen 127.0.0.1:0 -public 127.0.0.1:0 \
  -admin 127.0.0.1:0 -log-level info -log-format json -log-transactions=false >"$d/sw.log" 2>&1 & sw=$!
for _ in $(seq 100); do [ -f "$d/data/dev-wallet.json" ] && break; sleep 0.1; done
sleep 2
admin=$(grep -o 'admin *http://127.0.0.1:[0-9]*' "$d/sw.log" | grep -o '127.0.0.1:[0-9]*' | head -1 || true)
echo "admin=$admin"
"$NEW_BIN/bench" -switch "$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["switch"])' "$d/data/dev-wallet.json")" \
  -wallet "$d/data/dev-wallet.json" -switch-pid $sw -issuers-pid $iss -duration "$DUR" -warmup 2s \
  -mix purchase=100 -quiet -out "$OUT/run" "$@" >"$OUT/bench.txt" 2>&1 & b=$!
sleep 4
curl -s -o "$OUT/metrics-0.txt" "http://$admin/metrics" || true
curl -s -o "$OUT/switchd.prof" "http://$admin/debug/pprof/profile?seconds=$PROF_SECS" || echo "no profile"
curl -s -o "$OUT/metrics-1.txt" "http://$admin/metrics" || true
wait $b || true
kill $sw; wait $sw || true; kill $iss; wait $iss || true
go tool pprof -top -nodecount 60 "$NEW_BIN/switchd" "$OUT/switchd.prof" > "$OUT/top.txt" 2>/dev/null || true
cat "$d/iss.log" | tail -3; rm -rf "$d"

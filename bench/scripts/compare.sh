#!/usr/bin/env bash
# One measurement session for docs/performance.md: the relay, tapswitch
# before (BEFORE_BIN/switchd) and after (NEW_BIN/switchd), with the same
# bench and issuersim, interleaved so that the machine's drift hits both.
#
#   go build -o "$NEW/" ./cmd/...                      # this tree
#   git worktree add "$OLD_TREE" <commit> && (cd "$OLD_TREE" && go build -o "$OLD/" ./cmd/switchd)
#   NEW_BIN=$NEW BEFORE_BIN=$OLD OUT=$RESULTS bench/scripts/compare.sh
#   python3 bench/scripts/summary.py "$RESULTS"
#
# DUR (15s), WARM (3s) and ROUNDS (3) set the closed-loop runs; each run's
# report is in OUT/<run>/latest.json.
set -euo pipefail
NEW_BIN=${NEW_BIN:?}
BEFORE_BIN=${BEFORE_BIN:?}
OUT=${OUT:?}
DUR=${DUR:-15s}
WARM=${WARM:-3s}
mkdir -p "$OUT"
B="$NEW_BIN/bench"

# run_old NAME ARGS...: bench against BEFORE_BIN/switchd started by hand
# beside NEW_BIN/issuersim, as the old bench started it.
run_old() {
  local name=$1; shift
  local d; d=$(mktemp -d)
  "$NEW_BIN/issuersim" -log-level warn -cards 200 -admin "" >"$d/iss.log" 2>&1 &
  local iss=$!
  sleep 1
  "$BEFORE_BIN/switchd" -dev -dev-external-issuers -data "$d/data" -listen 127.0.0.1:0 -public 127.0.0.1:0 \
    -admin 127.0.0.1:0 -log-level warn >"$d/sw.log" 2>&1 &
  local sw=$!
  for _ in $(seq 100); do [ -f "$d/data/dev-wallet.json" ] && break; sleep 0.1; done
  sleep 2
  "$B" -switch "$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["switch"])' "$d/data/dev-wallet.json")" \
    -wallet "$d/data/dev-wallet.json" -switch-pid $sw -issuers-pid $iss -duration "$DUR" -warmup "$WARM" \
    -mix purchase=100 -quiet -out "$OUT/$name" "$@" >"$OUT/$name.txt" 2>&1 || true
  kill $sw; wait $sw || true
  kill $iss; wait $iss || true
  rm -rf "$d"
}

run_new() {
  local name=$1; shift
  "$B" -bin "$NEW_BIN" -baseline relay -duration "$DUR" -warmup "$WARM" -mix purchase=100 -quiet \
    -out "$OUT/$name" "$@" >"$OUT/$name.txt" 2>&1 || true
}

ROUNDS=${ROUNDS:-3}
for round in $(seq "$ROUNDS"); do
  run_new "closed-new-$round"
  run_old "closed-old-$round"
done
for round in 1 2; do
  run_new "c4-new-$round" -concurrency 4 -connections 4
  run_old "c4-old-$round" -concurrency 4 -connections 4
done
run_new "open10k-new" -rate 10000
run_old "open10k-old" -rate 10000
run_new "open7k-new" -rate 7000
run_old "open7k-old" -rate 7000
echo done

#!/usr/bin/env bash
# A whole tapswitch cluster on loopback (docs/cluster.md, "Slice: three
# nodes behind HAProxy"): three NATS servers clustered with JetStream
# (cmd/natsd, the pinned nats-server module), the simulated issuers in
# their own process (issuersim), three switchd nodes sharing the counter
# windows through JetStream, and HAProxy (configs/haproxy.cfg) in front of
# their terminal ports.
#
#   bench/scripts/cluster.sh up       # build, start everything, wait until ready
#   bench/scripts/cluster.sh bench    # bench through HAProxy (DURATION, default 10s)
#   bench/scripts/cluster.sh status   # what runs, each node's /readyz
#   bench/scripts/cluster.sh down     # stop everything (SIGTERM), keep the data
#
# Everything lives under CLUSTER_DIR (default ./cluster-data): bin/, keys/,
# nats/nK (JetStream stores), node-K (each switchd's data: vault, journal,
# dev wallet), logs/, pids/, reports/. Remove it after `down` to start
# afresh.
#
# Ports (loopback): HAProxy 8583 (terminals); node K (1..3) terminal K8583,
# admin K8584, public K8585; NATS client 4222-4224, routes 6222-6224,
# monitoring 8222-8224; issuers as in configs/issuers.yaml, issuersim admin
# 9690.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${CLUSTER_DIR:-cluster-data}
DURATION=${DURATION:-10s}
NODES=(1 2 3)

pidfile() { echo "$DIR/pids/$1.pid"; }

# start NAME CMD...: runs CMD in the background, its output in logs/NAME.log.
start() {
  local name=$1; shift
  nohup "$@" >"$DIR/logs/$name.log" 2>&1 &
  last_pid=$!
  echo $last_pid >"$(pidfile "$name")"
}

# wait_for WHAT CMD...: polls CMD for up to 60 s; gives up at once when
# the process last started has exited.
wait_for() {
  local what=$1; shift
  for _ in $(seq 600); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$last_pid" 2>/dev/null; then
      echo "cluster: $what: its process exited (see $DIR/logs/)" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "cluster: $what not ready within 60s (see $DIR/logs/)" >&2
  exit 1
}

http_ok() { curl -sf -o /dev/null "$1"; }

build() {
  mkdir -p "$DIR/bin"
  echo "cluster: building natsd, issuersim, switchd, tapctl, bench into $DIR/bin"
  go build -o "$DIR/bin/" ./cmd/natsd ./cmd/issuersim ./cmd/switchd ./cmd/tapctl ./cmd/bench
}

# keys makes the one set of keys every node holds: the vault keyring
# (token master, PAN data keys, index key), the acquirers' keys (terminal
# MACs) and the transit operators' keys, copied into each node's data
# directory where switchd -dev looks for them, so a token issued on one
# node is opened, and its cryptograms checked, on every node.
keys() {
  local k=$DIR/keys
  if [ ! -f "$k/dev-vault.keys" ]; then
    mkdir -p "$k"
    "$DIR/bin/tapctl" keys init "$k/dev-vault.keys" >/dev/null
    "$DIR/bin/tapctl" keys init-acquirers "$k/dev-acquirer.keys" >/dev/null
    "$DIR/bin/tapctl" keys init-operators "$k/operator.keys" >/dev/null
  fi
  for n in "${NODES[@]}"; do
    mkdir -p "$DIR/node-$n"
    cp "$k/dev-vault.keys" "$k/dev-acquirer.keys" "$k/operator.keys" "$DIR/node-$n/"
  done
}

nats_up() {
  local routes=nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224
  for n in "${NODES[@]}"; do
    mkdir -p "$DIR/nats/n$n"
    start "nats-$n" "$DIR/bin/natsd" -name "n$n" -listen "127.0.0.1:422$((n + 1))" \
      -cluster "127.0.0.1:622$((n + 1))" -routes "$routes" -monitor "127.0.0.1:822$((n + 1))" -store "$DIR/nats/n$n"
  done
  for n in "${NODES[@]}"; do
    # /healthz answers 200 once this server's JetStream is current with the meta leader.
    wait_for "NATS server n$n" http_ok "http://127.0.0.1:822$((n + 1))/healthz"
  done
}

# node_config K: node K's configuration, over the built-in one.
node_config() {
  local n=$1
  cat >"$DIR/node-$n.yaml" <<EOF
node_id: node-$n
cluster:
  urls: [nats://127.0.0.1:4222, nats://127.0.0.1:4223, nats://127.0.0.1:4224]
  stan_block: $n
  connect_timeout: 15s
EOF
}

# node_up K: starts switchd node K.
node_up() {
  local n=$1
  node_config "$n"
  rm -f "$DIR/node-$n/dev-wallet.json"
  # -dev seeds the demo tokens on every node: the vault is replicated
  # through JetStream, so each node's seeding writes the same records
  # (token numbers derive from the demo labels, keys are shared) and the
  # ones already there are left as they are.
  start "node-$n" "$DIR/bin/switchd" -dev -dev-external-issuers -config "$DIR/node-$n.yaml" -data "$DIR/node-$n" \
    -listen "127.0.0.1:${n}8583" -admin "127.0.0.1:${n}8584" -public "127.0.0.1:${n}8585" \
    -log-level warn -log-format json -log-transactions=false
}

# node_ready K: starts node K and waits for its /readyz, starting it again
# (up to five times, 2 s apart) when it exits at once: its ports 38583-38585 lie in
# Linux's ephemeral port range, so an outgoing connection of any process
# may hold one for a moment.
node_ready() {
  local n=$1
  for attempt in 1 2 3 4 5; do
    node_up "$n"
    for _ in $(seq 600); do
      if http_ok "http://127.0.0.1:${n}8584/readyz"; then return 0; fi
      kill -0 "$last_pid" 2>/dev/null || break
      sleep 0.1
    done
    echo "cluster: node-$n did not come up (attempt $attempt): $(tail -n 1 "$DIR/logs/node-$n.log")" >&2
    kill "$last_pid" 2>/dev/null || true
    sleep 2
  done
  exit 1
}

# nodes_up starts node 1 alone (it creates the JetStream buckets), then
# the others.
nodes_up() {
  for n in "${NODES[@]}"; do node_ready "$n"; done
}

up() {
  mkdir -p "$DIR/logs" "$DIR/pids"
  for f in "$DIR"/pids/*.pid; do
    if [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
      echo "cluster: $(basename "$f" .pid) is running: $0 down first" >&2
      exit 1
    fi
  done
  build
  keys
  nats_up
  start issuersim "$DIR/bin/issuersim" -cards 200 -seed 1 -operator-keys "$DIR/keys/operator.keys" \
    -admin 127.0.0.1:9690 -log-level warn
  wait_for issuersim http_ok "http://127.0.0.1:9690/ledger?issuer=ICBC"
  nodes_up
  command -v haproxy >/dev/null || { echo "cluster: haproxy is not installed (apt-get install haproxy)" >&2; exit 1; }
  haproxy -c -q -f configs/haproxy.cfg
  # configs/haproxy.cfg's maxconn 20000 needs about 40,000 descriptors:
  # raise the limit where allowed, else lower maxconn to what fits (-n).
  ulimit -n 40100 2>/dev/null || true
  local fds; fds=$(ulimit -n)
  if [ "$fds" -ge 40100 ]; then
    start haproxy haproxy -db -f configs/haproxy.cfg
  else
    start haproxy haproxy -db -n $(((fds - 100) / 2)) -f configs/haproxy.cfg
  fi
  wait_for HAProxy bash -c 'exec 3<>/dev/tcp/127.0.0.1/8583'
  echo "cluster: up. Terminals: 127.0.0.1:8583 (HAProxy); nodes' admin 18584, 28584, 38584; data in $DIR"
  echo "cluster: bench with: bench/scripts/cluster.sh bench   (or $DIR/bin/bench -switch 127.0.0.1:8583 -wallet $DIR/node-1/dev-wallet.json)"
}

run_bench() {
  # The dev wallet of node 1 holds the demo tokens every node knows; bench
  # advances its counters (ATCs) after the run, so runs follow one another.
  "$DIR/bin/bench" -switch 127.0.0.1:8583 -wallet "$DIR/node-1/dev-wallet.json" \
    -duration "$DURATION" -warmup 2s -quiet -out "$DIR/reports" "$@"
}

status() {
  for f in "$DIR"/pids/*.pid; do
    [ -e "$f" ] || continue
    local name pid; name=$(basename "$f" .pid); pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
  done
  for n in "${NODES[@]}"; do
    echo "node-$n /readyz: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${n}8584/readyz" || true)"
  done
}

# down stops HAProxy, the nodes, issuersim and the NATS servers, in that
# order, each with SIGTERM (switchd drains its terminals and advices).
down() {
  for name in haproxy node-1 node-2 node-3 issuersim nats-1 nats-2 nats-3; do
    local f; f=$(pidfile "$name")
    [ -f "$f" ] || continue
    local pid; pid=$(cat "$f")
    if kill -TERM "$pid" 2>/dev/null; then
      for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$f"
  done
  echo "cluster: down (data kept in $DIR)"
}

case "${1:-}" in
up) up ;;
bench) shift; run_bench "$@" ;;
status) status ;;
down) down ;;
*) echo "usage: $0 up|bench|status|down" >&2; exit 2 ;;
esac

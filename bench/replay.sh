#!/usr/bin/env bash
# Replay engine benchmark, on loopback, against the testbed's cheap /health
# endpoint:
#   (1) `tapedeck replay --speed max` with 50 VUs vs `wrk -c50`: requests/s ratio
#   (2) 10,000 VUs with recorded think times: peak RSS and p99 scheduling
#       lateness (how late requests leave vs their due time)
#
# Usage: bench/replay.sh [SECONDS_PER_THROUGHPUT_RUN (default 10)]
# Needs: cargo, curl; installs wrk from Debian when missing.
set -euo pipefail

DUR="${1:-10}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  echo "installing wrk..." >&2
  apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

(cd "$ROOT" && cargo build --release --quiet)
BIN="$ROOT/target/release/tapedeck"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

TB_PORT=$(free_port)
"$BIN" testbed --listen "127.0.0.1:$TB_PORT" >"$WORK/testbed.log" 2>&1 &
PIDS+=($!)
wait_port "$TB_PORT"
TARGET="http://127.0.0.1:$TB_PORT"

# Record two sessions through the capture proxy: a burst of 20 requests
# (throughput run) and 6 requests one second apart (think-time run).
record() { # NAME COUNT SLEEP
  local port dir
  port=$(free_port)
  dir="$WORK/$1"
  "$BIN" capture --upstream "$TARGET" --listen "127.0.0.1:$port" --out "$dir" --flush-every 200ms >"$WORK/$1.log" 2>&1 &
  local pid=$!
  wait_port "$port"
  for _ in $(seq "$2"); do
    curl -s -o /dev/null -H "X-Bench: $1" "http://127.0.0.1:$port/health"
    sleep "$3"
  done
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}
record burst 20 0
record think 6 1

echo "machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/') (other work skews both figures)"
echo "== (1) --speed max, 50 VUs vs wrk -c50, ${DUR}s each, $TARGET/health"
wrk -t2 -c50 -d"${DUR}s" "$TARGET/health" >"$WORK/wrk.txt"
WRK_RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
"$BIN" replay "$WORK/burst" --target "$TARGET" --allow-recorded-host --session-key header:X-Bench \
  --multiply 50 --speed max --run-time "${DUR}s" --no-correlation --quiet --report "$WORK/max.json"
TD_RPS=$(python3 -c "
import json; r=json.load(open('$WORK/max.json'))
import datetime as d
n=sum(e['requests'] for e in r['endpoints'])
t=(d.datetime.fromisoformat(r['ended'].replace('Z','+00:00'))-d.datetime.fromisoformat(r['started'].replace('Z','+00:00'))).total_seconds()
print(f'{n/t:.0f}')")
echo "wrk:      $WRK_RPS req/s"
echo "tapedeck: $TD_RPS req/s"
python3 -c "print(f'ratio tapedeck/wrk: {$TD_RPS/$WRK_RPS:.2f}x')"

echo "== (2) 10,000 VUs, recorded think time 1 s stretched to 5 s (--speed 0.2), spawn 1000/s, 40 s"
/usr/bin/time -v "$BIN" replay "$WORK/think" --target "$TARGET" --allow-recorded-host --session-key header:X-Bench \
  --multiply 10000 --speed 0.2 --spawn-rate 1000/s --run-time 40s --no-correlation --quiet \
  --report "$WORK/vus.json" 2>"$WORK/vus.err" || true
grep -E "scheduling lateness" "$WORK/vus.err" || cat "$WORK/vus.err"
awk -F: '/Maximum resident set size/ {printf "peak RSS: %.1f MB\n", $2/1024}' "$WORK/vus.err"
python3 -c "
import json; r=json.load(open('$WORK/vus.json'))
n=sum(e['requests'] for e in r['endpoints']); f=sum(e['failures'] for e in r['endpoints'])
print(f'requests {n}, failures {f}, peak users', max(p['users'] for p in r['timeline']))"

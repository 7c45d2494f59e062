#!/usr/bin/env bash
# Soak of the capture proxy: steady paced load (wrk) through `tapedeck
# capture` in front of the release-built testbed for SOAK_SECONDS, sampling
# capture's resident memory (VmRSS in /proc/PID/status) and open file
# descriptors (/proc/PID/fd) every SOAK_INTERVAL seconds. Prints every
# sample, then the least-squares slope of each (per minute, over the samples
# after the first minute of warm-up when the run is long enough), the
# requests wrk completed and the exchanges the journals hold after a clean
# stop (verified with `tapedeck sessions verify`).
#
# The load is a logged-in student: Social Feed pages (~5 KB JSON) and User
# Profile, alternating, on SOAK_CONNS keep-alive connections that each wait
# SOAK_DELAY_MS after every response (16 x 32 ms: about 500 requests/s,
# well below saturation on a 2-core machine).
#
# Usage: [SOAK_SECONDS=600] [SOAK_INTERVAL=10] [SOAK_CONNS=16] [SOAK_DELAY_MS=32] bench/soak.sh
# Needs: cargo, curl, python3; installs wrk from Debian when missing.
set -euo pipefail

SECS="${SOAK_SECONDS:-600}"
EVERY="${SOAK_INTERVAL:-10}"
CONNS="${SOAK_CONNS:-16}"
DELAY="${SOAK_DELAY_MS:-32}"
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
  DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null 2>&1 \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null; }
fi

(cd "$ROOT" && cargo build --release --quiet -p tapedeck)
BIN="$ROOT/target/release/tapedeck"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

TB_PORT=$(free_port); CAP_PORT=$(free_port)
"$BIN" testbed --listen "127.0.0.1:$TB_PORT" >"$WORK/testbed.log" 2>&1 &
PIDS+=($!)
wait_port "$TB_PORT"
"$BIN" capture --upstream "http://127.0.0.1:$TB_PORT" --listen "127.0.0.1:$CAP_PORT" \
  --out "$WORK/journals" --flush-every 1s >"$WORK/capture.log" 2>&1 &
CAP_PID=$!
PIDS+=($CAP_PID)
wait_port "$CAP_PORT"

# One student, registered and logged in through the proxy.
API="http://127.0.0.1:$CAP_PORT/api/v1"
curl -fsS -o /dev/null -H 'Content-Type: application/json' \
  -d '{"username":"soak","email":"soak@example.test","password":"soak-password","role":"student"}' \
  "$API/auth/register"
TOKEN="$(curl -fsS -H 'Content-Type: application/json' \
  -d '{"username":"soak","password":"soak-password"}' "$API/auth/login" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

cat >"$WORK/soak.lua" <<LUA
-- Alternates Social Feed and User Profile; each connection waits after
-- every response so the rate stays steady.
local paths = {"/api/v1/social/feed?limit=20", "/api/v1/users/me"}
local n = 0
wrk.headers["Authorization"] = "Bearer $TOKEN"
function request()
  n = n + 1
  return wrk.format("GET", paths[n % 2 + 1])
end
function delay() return $DELAY end
LUA

# "T RSS_KIB FDS" of the capture process now.
sample() {
  local rss fds
  rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$CAP_PID/status")"
  fds="$(find "/proc/$CAP_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)"
  printf '%6s %10s %6s\n' "$1" "$rss" "$fds"
}

echo "soak: ${SECS}s, $CONNS connections x ${DELAY} ms delay, sampling every ${EVERY}s" >&2
printf '%6s %10s %6s\n' t_s rss_kib fds
wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s -s "$WORK/soak.lua" "http://127.0.0.1:$CAP_PORT" \
  >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
PIDS+=($WRK_PID)
START=$(date +%s)
T=0
# Samples only while wrk runs: the slopes describe the proxy under load.
while kill -0 "$WRK_PID" 2>/dev/null && kill -0 "$CAP_PID" 2>/dev/null && [ "$T" -le "$SECS" ]; do
  sample "$T" | tee -a "$WORK/samples"
  sleep "$EVERY"
  T=$(( $(date +%s) - START ))
done
wait "$WRK_PID" || true
kill -0 "$CAP_PID" 2>/dev/null || { echo "capture died during the soak" >&2; cat "$WORK/capture.log" >&2; exit 1; }
# Once the clients are gone, their connections' fds must be too.
sleep 1
echo "after the load: $(sample "$(( $(date +%s) - START ))" | awk '{print "t=" $1 "s rss " $2 " KiB, fds " $3}')"

kill -TERM "$CAP_PID"
wait "$CAP_PID" || true

python3 - "$WORK/samples" "$WORK/wrk.out" <<'PY'
import re, sys
rows = [tuple(int(x) for x in l.split()) for l in open(sys.argv[1]) if l.strip()]
warm = [r for r in rows if r[0] >= 60]
use = warm if len(warm) >= 3 else rows
def slope(xs, ys):
    n = len(xs); mx = sum(xs) / n; my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
ts = [r[0] / 60 for r in use]
rss = [r[1] for r in use]
fds = [r[2] for r in use]
print(f"samples: {len(rows)} ({len(use)} used for the slopes, from t={use[0][0]}s)")
print(f"RSS: first {rss[0]} KiB, last {rss[-1]} KiB, max {max(r[1] for r in rows)} KiB, "
      f"slope {slope(ts, rss):+.1f} KiB/min")
print(f"fds: first {fds[0]}, last {fds[-1]}, max {max(r[2] for r in rows)}, "
      f"slope {slope(ts, fds):+.3f} /min")
w = open(sys.argv[2]).read()
m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", w)
e = re.search(r"Socket errors:.*", w)
n = re.search(r"Non-2xx or 3xx responses: (\d+)", w)
if m:
    print(f"wrk: {m.group(1)} requests in {m.group(2)}{m.group(3)}, "
          f"{e.group(0) if e else 'no socket errors'}, non-2xx: {n.group(1) if n else 0}")
PY
"$BIN" sessions verify "$WORK/journals" | tail -3

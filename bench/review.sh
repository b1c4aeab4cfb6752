#!/bin/sh
# bench/review.sh - does a full review queue slow the proxy for everyone else?
#
#   sudo bench/review.sh [HELD] [REQUESTS]
#
# One run, side by side: the new-connection latency of small GET requests through the forward
# proxy from one sandbox (median and p99 over REQUESTS sequential requests), first with an
# empty review queue, then with HELD requests (DELETEs, held by the http-delete classifier)
# waiting in three other sandboxes, then again after they were all denied.
set -eu
cd "$(dirname "$0")/.."
HELD=${1:-300}
REQS=${2:-500}
BUILD=${SBX_BUILD:-$PWD/build}   # SBX_BUILD=DIR: binaries of another build directory
[ -x "$BUILD/bin/sbx" ] || make -s all
SBX=$BUILD/bin/sbx
export SBX_HOME=$(mktemp -d /tmp/sbxbench.XXXXXX)
WS=$(mktemp -d /tmp/sbxbench-ws.XXXXXX)
SRVPID=
HOLDERS=
cleanup() {
	for p in $HOLDERS; do kill "$p" 2>/dev/null || true; done
	[ -n "$SRVPID" ] && kill "$SRVPID" 2>/dev/null || true
	$SBX rm --all -f >/dev/null 2>&1 || true
	$SBX daemon stop >/dev/null 2>&1 || true
	rm -rf "$SBX_HOME" "$WS"
}
trap cleanup EXIT
chmod 755 "$WS"

cat >"$WS/origin.py" <<'PY'
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(1024)
print(s.getsockname()[1], flush=True)
def one(c):
    with c:
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d: return
            data += d
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
while True:
    c, _ = s.accept()
    threading.Thread(target=one, args=(c,), daemon=True).start()
PY
python3 "$WS/origin.py" >"$WS/port" &
SRVPID=$!
while [ ! -s "$WS/port" ]; do sleep 0.05; done
PORT=$(cat "$WS/port")

cat >"$WS/lat.py" <<'PY'
import socket, sys, time, statistics
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ts = []
for _ in range(n):
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(f"GET http://{host}:{port}/small HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    d = b""
    while True:
        c = s.recv(4096)
        if not c: break
        d += c
    s.close()
    assert d.endswith(b"ok"), d
    ts.append(time.perf_counter() - t)
ts.sort()
print(f"median {statistics.median(ts)*1e3:.3f} ms  p99 {ts[int(len(ts)*0.99)-1]*1e3:.3f} ms")
PY
cat >"$WS/hold.py" <<'PY'
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(f"DELETE http://{host}:{port}/x/{i} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    socks.append(s)
for s in socks:
    s.settimeout(600)
    try:
        while s.recv(65536): pass
    except OSError:
        pass
PY

mkdir -p "$SBX_HOME/config"
echo "{\"network\": {\"resolve\": [\"origin.bench:*:127.0.0.1\"]}}" >"$SBX_HOME/config/config.json"
$SBX policy init deny-all >/dev/null
$SBX policy allow network origin.bench >/dev/null
for n in bench h1 h2 h3; do
	$SBX create --name "$n" "$WS" >/dev/null
	$SBX start "$n" >/dev/null
done
pending() { $SBX review ls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["reviews"]))'; }

echo "== $REQS small requests through the forward proxy, a new connection each"
printf '  %-22s %s\n' "empty queue" "$($SBX exec bench python3 "$WS/lat.py" origin.bench "$PORT" "$REQS")"
PER=$(( (HELD + 2) / 3 ))
for n in h1 h2 h3; do
	$SBX exec "$n" python3 "$WS/hold.py" origin.bench "$PORT" "$PER" >/dev/null 2>&1 &
	HOLDERS="$HOLDERS $!"
done
while [ "$(pending)" -lt $((PER * 3)) ]; do sleep 0.2; done
printf '  %-22s %s\n' "$((PER * 3)) requests held" "$($SBX exec bench python3 "$WS/lat.py" origin.bench "$PORT" "$REQS")"
T0=$(date +%s.%N)
$SBX review ls --json | python3 -c 'import json,sys; [print(r["id"]) for r in json.load(sys.stdin)["reviews"]]' |
	while read -r id; do $SBX review deny "$id" >/dev/null; done
T1=$(date +%s.%N)
printf '  %-22s %s\n' "after denying them" "$($SBX exec bench python3 "$WS/lat.py" origin.bench "$PORT" "$REQS")"
echo "== denying $((PER * 3)) held requests, one CLI call each: $(python3 -c "print(f\"{$T1 - $T0:.1f}\")") s"

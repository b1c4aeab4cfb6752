#!/bin/sh
# bench/proxy.sh - the egress proxy side by side with the direct path, in one run.
#
#   sudo bench/proxy.sh [MiB] [REQUESTS]
#
# A local origin on the host's loopback serves a MiB-sized body (sendfile) and small answers.
# The same clients then run:
#   direct        curl / python on the host, straight to the origin
#   connect       inside a sandbox, through the forward proxy with CONNECT. With the review
#                 classifiers on (the default) the proxy parses the plain HTTP inside the tunnel
#                 (a DELETE must not hide there); with them off it is an opaque tunnel relayed
#                 with splice(2), the bytes never entering user space: both are measured
#   forward-http  inside a sandbox, plain HTTP through the forward proxy (parsed, one request
#                 per connection, copied through user space)
#   transparent   inside a sandbox, ignoring the proxy variables (captured by nftables, the
#                 first bytes peeked, then relayed as HTTP)
# Figures: bulk throughput (MiB/s, best of 3) and new-connection request latency (median and
# p99 over REQUESTS sequential requests, each on a new TCP connection).
set -eu
cd "$(dirname "$0")/.."
MIB=${1:-512}
REQS=${2:-500}
BUILD=${SBX_BUILD:-$PWD/build}   # SBX_BUILD=DIR: binaries of another build directory
[ -x "$BUILD/bin/sbx" ] || make -s all
SBX=$BUILD/bin/sbx
export SBX_HOME=$(mktemp -d /tmp/sbxbench.XXXXXX)
WS=$(mktemp -d /tmp/sbxbench-ws.XXXXXX)
SRVPID=
cleanup() {
	[ -n "$SRVPID" ] && kill "$SRVPID" 2>/dev/null || true
	$SBX rm --all -f >/dev/null 2>&1 || true
	$SBX daemon stop >/dev/null 2>&1 || true
	rm -rf "$SBX_HOME" "$WS"
}
trap cleanup EXIT
chmod 755 "$WS"
dd if=/dev/zero of="$WS/blob" bs=1M count="$MIB" status=none

cat >"$WS/origin.py" <<'PY'
import os, socket, sys, threading
blob = sys.argv[1]
size = os.path.getsize(blob)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(512)
print(s.getsockname()[1], flush=True)
def one(c):
    with c:
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d: return
            data += d
        if data.split(b" ")[1].endswith(b"/blob"):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
            with open(blob, "rb") as f: c.sendfile(f)
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
while True:
    c, _ = s.accept()
    threading.Thread(target=one, args=(c,), daemon=True).start()
PY
python3 "$WS/origin.py" "$WS/blob" >"$WS/port" &
SRVPID=$!
while [ ! -s "$WS/port" ]; do sleep 0.05; done
PORT=$(cat "$WS/port")

cat >"$WS/lat.py" <<'PY'
import socket, sys, time, statistics
host, port, n, via = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
req_host = f"{host}:{port}"
ts = []
for _ in range(n):
    t = time.perf_counter()
    if via == "proxy":
        s = socket.create_connection(("127.0.0.1", 3128))
        s.sendall(f"GET http://{req_host}/small HTTP/1.1\r\nHost: {req_host}\r\n\r\n".encode())
    else:
        s = socket.create_connection((host, port))
        s.sendall(f"GET /small HTTP/1.1\r\nHost: {req_host}\r\n\r\n".encode())
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

mkdir -p "$SBX_HOME/config"
echo "{\"network\": {\"resolve\": [\"origin.bench:*:127.0.0.1\"]}}" >"$SBX_HOME/config/config.json"
$SBX policy init deny-all >/dev/null
$SBX policy allow network origin.bench >/dev/null
$SBX create --name bench "$WS" >/dev/null
$SBX start bench >/dev/null

best() { # best of 3 throughput in MiB/s of a curl command line run by "$@"
	b=0
	for _ in 1 2 3; do
		v=$("$@" | cut -d. -f1)
		[ "$v" -gt "$b" ] && b=$v
	done
	echo $((b / 1048576))
}
URL="http://origin.bench:$PORT/blob"
echo "== bulk download of $MIB MiB (best of 3)"
printf '  %-14s %6s MiB/s\n' direct "$(best curl -s -o /dev/null -w '%{speed_download}' --resolve "origin.bench:$PORT:127.0.0.1" "$URL")"
printf '  %-14s %6s MiB/s\n' connect "$(best $SBX exec bench curl -s -o /dev/null -w '%{speed_download}' --proxytunnel "$URL")"
for c in aws-destructive http-delete git-force-push; do $SBX policy classifier off "$c" >/dev/null; done
printf '  %-14s %6s MiB/s\n' connect-splice "$(best $SBX exec bench curl -s -o /dev/null -w '%{speed_download}' --proxytunnel "$URL")"
for c in aws-destructive http-delete git-force-push; do $SBX policy classifier on "$c" >/dev/null; done
printf '  %-14s %6s MiB/s\n' forward-http "$(best $SBX exec bench curl -s -o /dev/null -w '%{speed_download}' "$URL")"
printf '  %-14s %6s MiB/s\n' transparent "$(best $SBX exec bench curl -s -o /dev/null -w '%{speed_download}' --noproxy '*' "$URL")"
echo "== $REQS small requests, a new connection each"
printf '  %-14s %s\n' direct "$(python3 "$WS/lat.py" 127.0.0.1 "$PORT" "$REQS" direct)"
printf '  %-14s %s\n' forward-http "$($SBX exec bench python3 "$WS/lat.py" origin.bench "$PORT" "$REQS" proxy)"
printf '  %-14s %s\n' transparent "$($SBX exec bench python3 "$WS/lat.py" origin.bench "$PORT" "$REQS" direct)"

#!/bin/sh
# bench/tls.sh - intercepted HTTPS with header injection: sbx's proxy vs mitmproxy vs direct TLS.
#
#   sudo bench/tls.sh [REQUESTS] [PARALLEL]
#
# An nginx on the host's loopback serves a small answer over TLS (a throwaway CA). The same
# client - one curl process fetching REQUESTS URLs over PARALLEL kept-alive connections - runs:
#   direct      on the host, straight to nginx
#   sbx         inside a sandbox, through its forward proxy: CONNECT, TLS interception with a
#               leaf minted by the sbx CA, a header (a custom secret) injected into every request,
#               a verified TLS connection to nginx per request
#   mitmproxy   on the host, through mitmdump with an addon that injects the same header
# and the requests per second of each are printed side by side. Installs nginx and mitmproxy
# from Debian on first use (as root).
set -eu
cd "$(dirname "$0")/.."
N=${1:-2000}
PAR=${2:-4}
need() { command -v "$1" >/dev/null 2>&1 || { [ "$(id -u)" -eq 0 ] && apt-get install -y -q --no-install-recommends "$2" >/dev/null; }; }
need nginx nginx
need mitmdump mitmproxy
[ -x build/bin/sbx ] || make -s all
SBX=$PWD/build/bin/sbx
export SBX_HOME=$(mktemp -d /tmp/sbxbench.XXXXXX)
W=$(mktemp -d /tmp/sbxbench-tls.XXXXXX)
chmod 755 "$W"
NGINX_PID= MITM_PID=
cleanup() {
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
	[ -n "$MITM_PID" ] && kill "$MITM_PID" 2>/dev/null || true
	$SBX rm --all -f >/dev/null 2>&1 || true
	$SBX daemon stop >/dev/null 2>&1 || true
	rm -rf "$SBX_HOME" "$W"
}
trap cleanup EXIT

# A CA and a certificate for the origin's name.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" -out "$W/ca.pem" \
	-days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/srv.key" -out "$W/srv.csr" \
	-subj "/CN=api.bench.test" 2>/dev/null
printf 'subjectAltName=DNS:api.bench.test,IP:127.0.0.1\n' >"$W/ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -out "$W/srv.pem" \
	-days 2 -extfile "$W/ext" 2>/dev/null
chmod 644 "$W"/*.pem "$W"/*.key

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$W/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$PORT ssl;
    ssl_certificate $W/srv.pem;
    ssl_certificate_key $W/srv.key;
    location / { return 200 "ok\n"; }
  }
}
EOF
nginx -c "$W/nginx.conf" &
NGINX_PID=$!

# The request list: N URLs for one curl (connections are kept alive between them).
python3 - "$N" "$W/urls" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    for i in range(n):
        f.write(f'url = "https://api.bench.test/r{i}"\noutput = "/dev/null"\n')
PY

run() { # label, then the command; prints requests/s
	label=$1
	shift
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>"$W/err" || { echo "  $label: failed: $(tail -1 "$W/err")"; return; }
	t1=$(date +%s.%N)
	python3 -c "import sys; n,a,b=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print(f'  {sys.argv[4]:10} {n/(b-a):8.0f} requests/s  ({b-a:.2f} s for {n})')" "$N" "$t0" "$t1" "$label"
}

# sbx: a custom secret for the origin makes the proxy intercept and inject.
mkdir -p "$SBX_HOME/config"
echo "{\"network\": {\"resolve\": [\"api.bench.test:443:127.0.0.1:$PORT\"], \"ca_bundle\": \"$W/ca.pem\"}}" \
	>"$SBX_HOME/config/config.json"
$SBX policy init deny-all >/dev/null
$SBX policy allow network api.bench.test >/dev/null
$SBX secret set-custom bench --host api.bench.test --header X-Api-Key -g -t benchsecret >/dev/null
$SBX create --name tls "$W" >/dev/null
$SBX start tls >/dev/null

# mitmproxy: the same injection in an addon, trusting the same origin CA.
cat >"$W/addon.py" <<'PY'
def request(flow):
    flow.request.headers["X-Api-Key"] = "benchsecret"
PY
MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOME=$W mitmdump -q --listen-host 127.0.0.1 -p "$MPORT" -s "$W/addon.py" \
	--set ssl_verify_upstream_trusted_ca="$W/ca.pem" --set confdir="$W/mitm" --set connection_strategy=lazy \
	--map-remote "|//api.bench.test|//127.0.0.1:$PORT|" >/dev/null 2>&1 &
MITM_PID=$!
for _ in $(seq 50); do [ -f "$W/mitm/mitmproxy-ca-cert.pem" ] && break; sleep 0.1; done
sleep 1

# Every client verifies against a full system store plus its CA (what the sandbox's curl does):
# loading a 140-certificate bundle per new connection is part of each client's cost.
cat /etc/ssl/certs/ca-certificates.crt "$W/ca.pem" >"$W/direct-bundle.pem"
cat /etc/ssl/certs/ca-certificates.crt "$W/mitm/mitmproxy-ca-cert.pem" >"$W/mitm-bundle.pem"
CURL="curl -sS --parallel --parallel-max $PAR -K $W/urls"
echo "== $N HTTPS requests, $PAR connections, a header injected (except direct)"
run direct $CURL --cacert "$W/direct-bundle.pem" --resolve "api.bench.test:443:127.0.0.1" --connect-to "api.bench.test:443:127.0.0.1:$PORT"
run sbx $SBX exec tls $CURL
run mitmproxy $CURL --cacert "$W/mitm-bundle.pem" -x "http://127.0.0.1:$MPORT"

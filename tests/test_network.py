"""The way out of a sandbox is the host proxy, and only it: real clients inside a sandbox (curl,
wget, git, Python, Node, npm) reach local servers by name through the proxy's address
overrides; allowed hosts work, denied ones get a teaching 403 or a prompt refusal, and every
attempt is in the log with the rule that decided it."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import IS_ROOT, Sbx
from netfix import ConnectProxy, GitServer, Origin, make_ca

ALLOWED = "api.allowed.test"
BLOCKED = "blocked.test"
GITHOST = "git.allowed.test"
CLASSIFIERS = ("aws-destructive", "http-delete", "git-force-push")


class Net:
    """One sbx instance with servers, overrides and a running sandbox, shared by this module."""

    def __init__(self, sbx, user_mode=False):
        self.sbx = sbx
        self.ws = sbx.workspace("netws")
        self.tmp = tempfile.mkdtemp(prefix="sbxnet")
        ca, cert, key = make_ca(self.tmp, [ALLOWED, BLOCKED, GITHOST, "*.allowed.test"])
        self.ca = os.path.join(self.ws, "ca.pem")
        shutil.copy(ca, self.ca)
        os.chmod(self.ca, 0o644)
        self.http = Origin()
        self.https = Origin(tls=(cert, key))
        self.gitroot = os.path.join(self.tmp, "git")
        os.makedirs(self.gitroot)
        subprocess.run(["git", "init", "-q", "--bare", os.path.join(self.gitroot, "repo.git")], check=True)
        subprocess.run(["git", "-C", os.path.join(self.gitroot, "repo.git"), "config", "http.receivepack", "true"],
                       check=True)
        self.git = GitServer(self.gitroot, (cert, key))
        cfg = os.path.join(sbx.home, "config")
        os.makedirs(cfg, exist_ok=True)
        with open(os.path.join(cfg, "config.json"), "w") as f:
            json.dump({"network": {"resolve": [f"{ALLOWED}:*:127.0.0.1", f"{BLOCKED}:*:127.0.0.1",
                                               f"{GITHOST}:*:127.0.0.1", f"sub.{ALLOWED}:*:127.0.0.1"],
                                   "ca_bundle": ca}}, f)
        if sbx.user:
            os.chown(cfg, sbx.pw.pw_uid, sbx.pw.pw_gid)
            os.chown(os.path.join(cfg, "config.json"), sbx.pw.pw_uid, sbx.pw.pw_gid)
            os.chown(self.ca, sbx.pw.pw_uid, sbx.pw.pw_gid)
        sbx.ok("policy", "init", "deny-all")
        sbx.ok("policy", "allow", "network", f"{ALLOWED},{GITHOST}")
        # These tests are about the paths out, opaque tunnels included: the review classifiers,
        # which open every TLS connection they could apply to, are off here (test_review.py and
        # the last tests below cover them).
        for c in CLASSIFIERS:
            sbx.ok("policy", "classifier", "off", c)
        sbx.ok("create", "--name", "net", self.ws)
        sbx.ok("start", "net")

    def sh(self, script, timeout=60, env=()):
        args = ["exec"]
        for e in env:
            args += ["-e", e]
        return self.sbx.run(*args, "net", "sh", "-c", script, timeout=timeout)

    def records(self, **match):
        """The raw log, oldest first, filtered by exact field values."""
        out = self.sbx.json("policy", "log", "--raw", "--json", "--limit", "2000")
        recs = out if isinstance(out, list) else out.get("records", [])
        recs = sorted(recs, key=lambda r: r.get("id", 0))
        return [r for r in recs if all(str(r.get(k)) == str(v) for k, v in match.items())]

    def wait_record(self, timeout=5, **match):
        end = time.time() + timeout
        while time.time() < end:
            recs = self.records(**match)
            if recs:
                return recs[-1]
            time.sleep(0.1)
        raise AssertionError(f"no log record matching {match}; log:\n" + json.dumps(self.records()[-20:], indent=1))

    def close(self):
        self.http.close()
        self.https.close()
        self.git.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def net():
    if not IS_ROOT:
        pytest.skip("needs root: the network tests create a test user and bind test servers")
    s = Sbx()
    n = Net(s)
    yield n
    n.close()
    with open("/tmp/sbx-net-last.log", "w") as f:  # for post-mortems
        f.write(s.log())
    left = s.cleanup()
    assert not left, f"processes left behind: {left}"


@pytest.fixture(autouse=True)
def _reset_rules(request):
    yield
    if "net" in request.fixturenames:
        n = request.getfixturevalue("net")
        n.sbx.run("policy", "init", "deny-all")
        n.sbx.run("policy", "allow", "network", f"{ALLOWED},{GITHOST}")


# ---- the forward proxy (HTTP_PROXY / HTTPS_PROXY) ------------------------------------------

def test_proxy_variables_point_at_the_proxy(net):
    env = net.sh("env | grep -i _proxy | sort").stdout
    assert "HTTP_PROXY=http://127.0.0.1:3128" in env
    assert "https_proxy=http://127.0.0.1:3128" in env
    assert "NO_PROXY=localhost,127.0.0.1,::1" in env


def test_curl_http_allowed_goes_through(net):
    p = net.sh(f"curl -sS http://{ALLOWED}:{net.http.port}/hello?x=1")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["path"] == "/hello?x=1" and got["host"] == f"{ALLOWED}:{net.http.port}"
    assert "Proxy-Connection" not in got["headers"]
    r = net.wait_record(host=ALLOWED, path="forward", url_path="/hello")
    assert r["decision"] == "allowed" and r["method"] == "GET" and r["status"] == 200
    assert "allow" in r["rule"] and ALLOWED in r["rule"]
    assert r["bytes_down"] > 0 and r["bytes_up"] > 0


def test_curl_http_denied_gets_a_teaching_403(net):
    before = len(net.http.requests)
    p = net.sh(f"curl -sS -w '%{{http_code}}' http://{BLOCKED}:{net.http.port}/secret")
    assert p.stdout.endswith("403"), p.stdout
    assert "blocked this request" in p.stdout
    assert f"sbx policy allow network {BLOCKED}" in p.stdout
    assert len(net.http.requests) == before  # never reached the server
    r = net.wait_record(host=BLOCKED, decision="denied")
    assert r["path"] == "forward" and r["url_path"] == "/secret"


def test_curl_https_connect_allowed_and_denied(net):
    p = net.sh(f"curl -sS --cacert {net.ca} https://{ALLOWED}:{net.https.port}/tls")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["path"] == "/tls"
    r = net.wait_record(host=ALLOWED, port=net.https.port, method="CONNECT")
    assert r["decision"] == "allowed" and r["bytes_down"] > 1000  # the TLS handshake went through
    t0 = time.time()
    p = net.sh(f"curl -sS --cacert {net.ca} https://{BLOCKED}:{net.https.port}/tls")
    assert p.returncode != 0 and "403" in p.stderr, p.stderr
    assert time.time() - t0 < 10
    net.wait_record(host=BLOCKED, port=net.https.port, decision="denied")


def test_policy_changes_apply_to_a_running_sandbox(net):
    url = f"http://{BLOCKED}:{net.http.port}/live"
    assert net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout == "403"
    net.sbx.ok("policy", "allow", "network", BLOCKED)
    assert net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout == "200"
    net.sbx.ok("policy", "deny", "network", f"**.test")
    # deny beats allow, whatever the specificity
    assert net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout == "403"
    r = net.wait_record(host=BLOCKED, url_path="/live", decision="denied")
    assert "deny **.test" in r["rule"]


def test_http_rules_on_plain_http(net):
    net.sbx.ok("policy", "allow", "network", BLOCKED, "--method", "GET", "--path", "/pub/**")
    ok = net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' http://{BLOCKED}:{net.http.port}/pub/a/b").stdout
    assert ok == "200"
    wrong_path = net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' http://{BLOCKED}:{net.http.port}/priv").stdout
    assert wrong_path == "403"
    wrong_method = net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' -X POST -d x "
                          f"http://{BLOCKED}:{net.http.port}/pub/a").stdout
    assert wrong_method == "403"
    # The same rules over HTTPS: the proxy opens the TLS and decides each request.
    ok = net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' https://{BLOCKED}:{net.https.port}/pub/x").stdout
    assert ok == "200"
    no = net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' https://{BLOCKED}:{net.https.port}/priv").stdout
    assert no == "403"


def raw_proxy_request(net, request):
    """Send bytes to the forward proxy from inside the sandbox; returns the whole answer."""
    code = (f"import socket\ns=socket.create_connection(('127.0.0.1',3128))\ns.sendall({request!r})\n"
            f"s.settimeout(20)\nd=b''\nwhile True:\n    c=s.recv(65536)\n    if not c: break\n    d+=c\n"
            f"import sys\nsys.stdout.write(d.decode('latin-1'))\n")
    path = os.path.join(net.ws, "rawreq.py")
    with open(path, "w") as f:
        f.write(code)
    return net.sh(f"python3 {path}").stdout


def test_https_requests_the_proxy_makes_itself_are_verified(net):
    """`GET https://...` in absolute form: the proxy speaks TLS to the origin and verifies it
    (system store plus the configured ca_bundle); a certificate that does not match is refused."""
    host = f"{ALLOWED}:{net.https.port}"
    out = raw_proxy_request(net, f"GET https://{host}/abs HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert out.startswith("HTTP/1.1 200"), out
    assert '"path": "/abs"' in out
    net.wait_record(host=ALLOWED, url_path="/abs", decision="allowed")
    net.sbx.ok("policy", "allow", "network", f"sub.{ALLOWED}")
    bad = f"sub.{ALLOWED}:{net.https.port}"  # the certificate covers *.allowed.test, not this name
    out = raw_proxy_request(net, f"GET https://{bad}/abs HTTP/1.1\r\nHost: {bad}\r\n\r\n".encode())
    assert out.startswith("HTTP/1.1 502"), out
    assert "certificate verification failed" in out, out
    before = len(net.https.requests)
    assert len(net.https.requests) == before


def test_connect_allowed_despite_http_allow_rules_and_opened_for_http_deny(net):
    net.sbx.ok("policy", "allow", "network", ALLOWED, "--method", "GET")  # redundant with the network allow
    p = net.sh(f"curl -sS --cacert {net.ca} https://{ALLOWED}:{net.https.port}/still")
    assert p.returncode == 0, p.stderr  # an opaque tunnel: the client sees the origin's own certificate
    net.sbx.ok("policy", "deny", "network", ALLOWED, "--method", "DELETE")
    # Now an HTTP rule could refuse a request: the proxy opens the TLS (the sandbox trusts the sbx
    # CA through its system store) and decides each request.
    p = net.sh(f"curl -sS https://{ALLOWED}:{net.https.port}/opened")
    assert p.returncode == 0 and '"path": "/opened"' in p.stdout, p.stdout + p.stderr
    n = len(net.https.requests)
    p = net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' -X DELETE https://{ALLOWED}:{net.https.port}/gone")
    assert p.stdout == "403", p.stdout
    assert len(net.https.requests) == n
    r = net.wait_record(host=ALLOWED, url_path="/gone", decision="denied")
    assert r["method"] == "DELETE" and "deny" in r["rule"]


# ---- transparent capture (clients that ignore the proxy variables) ---------------------------

def test_curl_noproxy_is_captured_transparently(net):
    p = net.sh(f"curl -sS --noproxy '*' http://{ALLOWED}:{net.http.port}/direct")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["path"] == "/direct"
    r = net.wait_record(host=ALLOWED, url_path="/direct")
    assert r["path"] == "transparent" and r["decision"] == "allowed"
    p = net.sh(f"curl -sS --noproxy '*' --cacert {net.ca} https://{ALLOWED}:{net.https.port}/direct-tls")
    assert p.returncode == 0, p.stderr
    net.wait_record(host=ALLOWED, port=net.https.port, path="transparent")


def test_denied_names_do_not_resolve_and_are_logged(net):
    p = net.sh(f"curl -sS --noproxy '*' http://{BLOCKED}:{net.http.port}/")
    assert p.returncode == 6, p.stderr  # could not resolve host
    r = net.wait_record(host=BLOCKED, path="dns")
    assert r["decision"] == "denied"
    # Allowed names resolve to the sandbox's private range, never to real addresses.
    out = net.sh(f"getent ahostsv4 {ALLOWED} | head -1").stdout
    assert out.startswith("198.18.") or out.startswith("198.19."), out


def test_direct_connection_to_an_address_is_refused_promptly(net):
    code = ("import socket,time\n"
            "t=time.time()\n"
            "s=socket.socket()\n"
            "s.settimeout(20)\n"
            "try:\n"
            "    s.connect(('203.0.113.7', 443)); s.sendall(b'x'); d=s.recv(10); print('recv', d)\n"
            "except Exception as e: print('refused', type(e).__name__)\n"
            "print('secs', round(time.time()-t,2))\n")
    p = net.sh(f"python3 -c \"{code}\"")
    assert "refused" in p.stdout or "recv b''" in p.stdout, p.stdout + p.stderr
    assert float(p.stdout.split("secs")[1]) < 5
    net.wait_record(host="203.0.113.7", port=443, decision="denied")


def test_wget_python_and_node(net):
    url = f"http://{ALLOWED}:{net.http.port}"
    p = net.sh(f"wget -q -O - {url}/wget")
    assert p.returncode == 0 and json.loads(p.stdout)["path"] == "/wget", p.stderr
    p = net.sh(f"wget -q -O - {url.replace(ALLOWED, BLOCKED)}/wget")
    assert p.returncode != 0
    py = (f"import urllib.request,ssl;"
          f"c=ssl.create_default_context(cafile='{net.ca}');"
          f"print(urllib.request.urlopen('https://{ALLOWED}:{net.https.port}/py',context=c).read().decode())")
    p = net.sh(f"python3 -c \"{py}\"")
    assert p.returncode == 0 and json.loads(p.stdout)["path"] == "/py", p.stderr
    if not shutil.which("node"):
        pytest.skip("node is not installed on this host")
    js = (f"fetch('https://{ALLOWED}:{net.https.port}/node').then(r=>r.json()).then(j=>console.log(j.path))"
          f".catch(e=>{{console.log('ERR',e.cause&&e.cause.code);process.exit(3)}})")
    p = net.sh(f"node -e \"{js}\"", env=[f"NODE_EXTRA_CA_CERTS={net.ca}"])
    assert p.returncode == 0 and p.stdout.strip() == "/node", p.stdout + p.stderr
    js_blocked = js.replace(ALLOWED, BLOCKED)
    p = net.sh(f"node -e \"{js_blocked}\"", env=[f"NODE_EXTRA_CA_CERTS={net.ca}"])
    assert p.returncode == 3, p.stdout + p.stderr


def test_git_over_https(net):
    repo = os.path.join(net.ws, "clone")
    env = [f"GIT_SSL_CAINFO={net.ca}", "GIT_TERMINAL_PROMPT=0"]
    script = (f"set -e; cd {net.ws}; rm -rf clone; git clone -q https://{GITHOST}:{net.git.port}/repo.git clone; "
              f"cd clone; git -c user.email=a@b -c user.name=a commit -q --allow-empty -m one; "
              f"git push -q origin HEAD:main; git ls-remote origin")
    p = net.sh(script, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "refs/heads/main" in p.stdout
    assert any(path.startswith("/repo.git/git-receive-pack") for _, path in net.git.seen)
    net.wait_record(host=GITHOST, decision="allowed")
    shutil.rmtree(repo, ignore_errors=True)


# ---- host services and odd requests --------------------------------------------------------

def test_host_services_need_an_explicit_rule(net):
    url = f"http://host.sbx.internal:{net.http.port}/host-svc"
    assert net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout == "403"
    net.sbx.ok("policy", "allow", "network", "**")
    assert net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout == "403"
    net.sbx.ok("policy", "allow", "network", f"host.sbx.internal:{net.http.port}")
    p = net.sh(f"curl -sS {url}")
    assert p.returncode == 0 and json.loads(p.stdout)["path"] == "/host-svc", p.stdout + p.stderr


def test_loopback_and_metadata_addresses_are_not_reachable_through_allow_all(net):
    net.sbx.ok("policy", "allow", "network", "**")
    for target in (f"http://127.0.0.1:{net.http.port}/", f"http://169.254.169.254/latest/meta-data/",
                   f"http://localhost.{ALLOWED}:{net.http.port}/"):
        code = net.sh(f"curl -s --noproxy '' -x http://127.0.0.1:3128 -o /dev/null -w '%{{http_code}}' "
                      f"--max-time 20 {target}").stdout
        assert code in ("403", "502"), (target, code)


SMUGGLING = [
    b"POST / HTTP/1.1\r\nHost: H\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: H\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    b"POST / HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: H\r\nX-A: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: H\rX-A: b\r\n\r\n",
    b"GET / HTTP/1.1\nHost: H\n\n",
    b"POST / HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: H\r\nHost: H\r\n\r\n",
]


def test_smuggling_shaped_requests_are_refused_and_never_forwarded(net):
    before = len(net.http.requests)
    host = f"{ALLOWED}:{net.http.port}"
    script = "import socket,sys\nres=[]\n"
    for i, raw in enumerate(SMUGGLING):
        raw = raw.replace(b"GET / ", f"GET http://{host}/s{i} ".encode()).replace(
            b"POST / ", f"POST http://{host}/s{i} ".encode()).replace(b"Host: H", f"Host: {host}".encode())
        script += (f"s=socket.create_connection(('127.0.0.1',3128));s.sendall({raw!r});s.settimeout(10)\n"
                   f"d=b''\n"
                   f"while True:\n"
                   f"    c=s.recv(4096)\n"
                   f"    if not c: break\n"
                   f"    d+=c\n"
                   f"res.append(d.split(b' ')[1].decode() if d else 'closed')\n")
    script += "print(' '.join(res))\n"
    path = os.path.join(net.ws, "smuggle.py")
    with open(path, "w") as f:
        f.write(script)
    p = net.sh(f"python3 {path}")
    codes = p.stdout.split()
    assert len(codes) == len(SMUGGLING), p.stdout + p.stderr
    assert all(c.startswith("4") for c in codes), codes
    assert len(net.http.requests) == before


CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unit", "smuggling")


def test_the_smuggling_corpus_through_the_transparent_path(net):
    """Every request in the parser's smuggling corpus, sent by a client that ignores the proxy
    variables: refused (4xx/5xx or closed), and nothing reaches the origin - except the valid
    first request of a pipelined pair, whose second never does."""
    reqs = sorted(f for f in os.listdir(CORPUS) if f.endswith(".req"))
    assert len(reqs) > 40
    corpus = os.path.join(net.ws, "corpus")
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.copytree(CORPUS, corpus)
    script = os.path.join(net.ws, "corpus.py")
    with open(script, "w") as f:
        f.write(f"""import os, socket, sys
for name in sys.argv[1:]:
    data = open(os.path.join({corpus!r}, name), 'rb').read()
    s = socket.create_connection(({ALLOWED!r}, {net.http.port}))
    s.settimeout(10)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b''
        while True:
            c = s.recv(65536)
            if not c: break
            out += c
    except OSError as e:
        out = b''
    first = out.split(b'\\r\\n', 1)[0].decode('latin-1')
    print(name, first.split(' ')[1] if first.startswith('HTTP/') else 'closed', out.count(b'HTTP/1.'), flush=True)
""")
    for name in reqs:
        before = len(net.http.requests)
        p = net.sh(f"python3 {script} {name}")
        got = p.stdout.split()
        assert len(got) == 3, (name, p.stdout, p.stderr)
        seen = len(net.http.requests) - before
        if name.startswith("pipelined-"):
            assert seen <= 1 and int(got[2]) <= 1, (name, got, net.http.requests[before:])
        else:
            assert got[1] == "closed" or int(got[1]) >= 400, (name, got)
            assert seen == 0, (name, net.http.requests[before:])


def test_smuggling_shaped_responses_never_reach_the_client(net):
    """An origin answering with an ambiguous response (CL+TE, duplicate Content-Length, bad
    chunking): the client gets a 502 or a cut-off body, never the smuggled second message."""
    resps = sorted(f for f in os.listdir(CORPUS) if f.endswith(".resp"))
    assert resps
    for name in resps:
        data = open(os.path.join(CORPUS, name), "rb").read()
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        port = srv.getsockname()[1]

        def serve(srv=srv, data=data):
            try:
                c, _ = srv.accept()
                c.recv(65536)
                c.sendall(data)
                c.close()
            except OSError:
                pass

        import threading
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        p = net.sh(f"curl -s -i --max-time 10 http://{ALLOWED}:{port}/r")
        srv.close()
        t.join(5)
        out = p.stdout
        assert sum(line.startswith("HTTP/1.") for line in out.splitlines()) <= 1, (name, out)
        assert out.startswith("HTTP/1.1 502") or p.returncode != 0, (name, p.returncode, out)


def test_upstream_proxy_chaining():
    """With an upstream proxy configured, the sandbox's connections leave through it (a
    corporate proxy that knows where `chained.test` lives)."""
    if not IS_ROOT:
        pytest.skip("needs root")
    origin = Origin()
    up = ConnectProxy(route=lambda host, port: ("127.0.0.1", origin.port))
    s = Sbx()
    try:
        ws = s.workspace("chain")
        cfg = os.path.join(s.home, "config")
        os.makedirs(cfg)
        with open(os.path.join(cfg, "config.json"), "w") as f:
            json.dump({"network": {"upstream_proxy": f"http://127.0.0.1:{up.port}"}}, f)
        s.ok("policy", "init", "deny-all")
        s.ok("policy", "allow", "network", "chained.test")
        p = s.run("run", "--rm", "shell", ws, "--", "sh", "-c",
                  "curl -sS --noproxy '*' http://chained.test/t && curl -sS https://chained.test:8443/x -k; "
                  "curl -s -o /dev/null -w '%{http_code}' http://other.test/")
        assert p.stdout.startswith('{"method": "GET", "path": "/t"'), p.stdout + p.stderr
        # plain HTTP goes as an absolute-form request, anything else through CONNECT
        assert up.requests == ["GET http://chained.test/t"], up.requests
        assert up.tunnels == ["chained.test:8443"], up.tunnels
        assert p.stdout.endswith("403")
    finally:
        up.close()
        origin.close()
        left = s.cleanup()
        assert not left


def test_nothing_leaves_while_the_daemon_is_gone_and_a_new_one_takes_over(net):
    import signal as sig
    url = f"http://{ALLOWED}:{net.http.port}/again"
    pid = net.sbx.daemon_pid()
    os.kill(pid, sig.SIGKILL)
    # The listeners belong to the sandbox; with nobody serving them nothing gets out.
    # (The CLI would start a new daemon: talk to the sandbox's init-held sockets via nsenter.)
    init = net.sbx.sandbox_inits()[0]
    p = subprocess.run(["nsenter", "-t", str(init), "-n", "curl", "-s", "--max-time", "3", "-x",
                        "http://127.0.0.1:3128", url], capture_output=True, text=True)
    assert p.returncode == 28, (p.returncode, p.stdout, p.stderr)  # timed out: queued, never served
    # A new daemon re-adopts the sandbox and serves its proxy again.
    assert net.sh(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout == "200"


# ---- npm against the real registry -------------------------------------------------------

def _registry_reachable():
    try:
        socket.create_connection(("registry.npmjs.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def test_npm_install_from_the_registry(net):
    if not shutil.which("npm"):
        pytest.skip("npm is not installed on this host")
    if not _registry_reachable():
        pytest.skip("registry.npmjs.org is not reachable from this host")
    proj = os.path.join(net.ws, "npmproj")
    os.makedirs(proj, exist_ok=True)
    script = f"cd {proj} && npm install --no-audit --no-fund --cache /tmp/npmcache is-number@7.0.0 2>&1"
    p = net.sh(script, timeout=180)
    assert p.returncode != 0, p.stdout  # registry.npmjs.org is not allowed yet
    net.wait_record(host="registry.npmjs.org", decision="denied")
    net.sbx.ok("policy", "allow", "network", "registry.npmjs.org")
    p = net.sh(script, timeout=180)
    assert p.returncode == 0, p.stdout
    assert os.path.exists(os.path.join(proj, "node_modules", "is-number", "package.json"))
    net.wait_record(host="registry.npmjs.org", decision="allowed")
    shutil.rmtree(proj, ignore_errors=True)


# ---- rootless ---------------------------------------------------------------------------------

def test_the_proxy_path_works_rootless(sbx_user):
    origin = Origin()
    try:
        ws = sbx_user.workspace("rl")
        cfg = os.path.join(sbx_user.home, "config")
        os.makedirs(cfg, exist_ok=True)
        with open(os.path.join(cfg, "config.json"), "w") as f:
            json.dump({"network": {"resolve": [f"{ALLOWED}:*:127.0.0.1"]}}, f)
        if sbx_user.user:
            os.chown(cfg, sbx_user.pw.pw_uid, sbx_user.pw.pw_gid)
            os.chown(os.path.join(cfg, "config.json"), sbx_user.pw.pw_uid, sbx_user.pw.pw_gid)
        sbx_user.ok("policy", "init", "deny-all")
        sbx_user.ok("policy", "allow", "network", ALLOWED)
        p = sbx_user.run("run", "--rm", "shell", ws, "--", "sh", "-c",
                         f"curl -sS http://{ALLOWED}:{origin.port}/a && "
                         f"curl -sS --noproxy '*' http://{ALLOWED}:{origin.port}/b && "
                         f"curl -s -o /dev/null -w '%{{http_code}}' http://{BLOCKED}:{origin.port}/c")
        assert p.returncode == 0, p.stdout + p.stderr
        assert [r["path"] for r in origin.requests] == ["/a", "/b"]
        assert p.stdout.endswith("403")
        # Without a ca_bundle, a server signed by an unknown CA is refused by the proxy's own TLS.
        tmp = tempfile.mkdtemp(prefix="sbxca")
        _, cert, key = make_ca(tmp, [ALLOWED])
        tls = Origin(tls=(cert, key))
        try:
            host = f"{ALLOWED}:{tls.port}"
            code = (f"import socket;s=socket.create_connection(('127.0.0.1',3128));"
                    f"s.sendall(b'GET https://{host}/v HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n');"
                    f"print(s.recv(4096).decode())")
            p = sbx_user.run("run", "--rm", "shell", ws, "--", "python3", "-c", code)
            assert p.stdout.startswith("HTTP/1.1 502") and "certificate verification failed" in p.stdout, p.stdout
            assert tls.requests == []
        finally:
            tls.close()
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        origin.close()


def test_paths_that_servers_read_differently_are_refused_where_http_rules_apply(net):
    net.sbx.ok("policy", "allow", "network", BLOCKED, "--method", "GET", "--path", "/pub/**")
    n = len(net.http.requests)
    for path in ("/pub/../priv", "/pub/%2e%2e/priv", "/pub//x", "/pub/%2Fpriv"):
        code = net.sh(f"curl -s --path-as-is -o /dev/null -w '%{{http_code}}' "
                      f"'http://{BLOCKED}:{net.http.port}{path}'").stdout
        assert code in ("400", "403"), (path, code)
    assert len(net.http.requests) == n
    # a broad address rule does not open the host's loopback or the metadata service
    net.sbx.ok("policy", "allow", "network", "0.0.0.0/0")
    for target in (f"127.0.0.1:{net.http.port}", "169.254.169.254:80"):
        code = net.sh(f"curl -s --noproxy '' -p -x http://127.0.0.1:3128 -o /dev/null -w '%{{http_connect}}' -m 10 "
                      f"http://{target}/").stdout
        assert code == "403", (target, code)


def test_classifiers_read_https_and_tunnelled_http(net):
    """With the review classifiers on, a DELETE cannot hide in TLS (CONNECT or transparent) or in
    a CONNECT tunnel carrying plain HTTP: each is held, and refused here."""
    for c in CLASSIFIERS:
        net.sbx.ok("policy", "classifier", "on", c)
    try:
        cases = [("connect-tls", f"curl -sS -m 60 -X DELETE https://{ALLOWED}:{net.https.port}/tls"),
                 ("transparent-tls", f"curl -sS -m 60 --noproxy '*' -X DELETE https://{ALLOWED}:{net.https.port}/tt"),
                 ("connect-http", f"curl -sS -m 60 -p -X DELETE http://{ALLOWED}:{net.http.port}/tunnelled")]
        for name, cmd in cases:
            proc = net.sbx.popen("exec", "net", "sh", "-c", cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
            end = time.time() + 30
            held = []
            while time.time() < end and not held:
                held = net.sbx.json("review", "ls", "--json")["reviews"]
                time.sleep(0.1)
            assert held, (name, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
            assert held[0]["method"] == "DELETE" and held[0]["classifier"] == "http-delete", (name, held)
            net.sbx.ok("review", "deny", held[0]["id"])
            out, err = proc.communicate(timeout=60)
            assert "refused" in out, (name, out, err)
        # the sandbox's default trust includes the sbx CA: an intercepted GET works unchanged
        p = net.sh(f"curl -sS -m 20 https://{ALLOWED}:{net.https.port}/plain")
        assert p.returncode == 0 and json.loads(p.stdout)["path"] == "/plain", p.stderr
    finally:
        for c in CLASSIFIERS:
            net.sbx.ok("policy", "classifier", "off", c)


BYPASS = r"""
import socket, ssl, sys, time
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def connect():
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    return s
try:
    if kind == "lower":
        s = connect()
        s.sendall(f"delete /bypass-lower HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    elif kind == "crlf":
        s = socket.create_connection((host, port))  # transparent
        s.sendall(f"\r\nDELETE /bypass-crlf HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    else:  # slow: TLS only after the peek window
        s = connect()
        time.sleep(1.0)
        ctx = ssl.create_default_context(cafile=sys.argv[4])
        s = ctx.wrap_socket(s, server_hostname=host)
        s.sendall(f"DELETE /bypass-slow HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    s.settimeout(60)
    print(s.recv(4096).decode(errors="replace").split("\r\n")[0], flush=True)
except Exception as e:
    print("ERR", type(e).__name__, e, flush=True)
"""


def test_requests_cannot_hide_from_the_classifiers(net):
    """Lower-case methods, leading empty lines and TLS started after the peek window: none of them
    gets a DELETE past the review queue."""
    script = os.path.join(net.ws, "bypass.py")
    with open(script, "w") as f:
        f.write(BYPASS)
    for c in CLASSIFIERS:
        net.sbx.ok("policy", "classifier", "on", c)
    try:
        for kind, port in (("lower", net.http.port), ("crlf", net.http.port), ("slow", net.https.port)):
            proc = net.sbx.popen("exec", "net", "python3", script, kind, ALLOWED, str(port), net.ca,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            end = time.time() + 10
            while time.time() < end and proc.poll() is None:
                for r in net.sbx.json("review", "ls", "--json")["reviews"]:
                    net.sbx.ok("review", "deny", r["id"])
                time.sleep(0.2)
            out, err = proc.communicate(timeout=60)
            assert not [r for r in net.http.requests + net.https.requests if r["path"].startswith("/bypass")], \
                (kind, out, err)
            assert "200" not in out, (kind, out, err)
            # held and denied (403), refused by the strict parser (400), or reset (the slow TLS)
            assert ("403" in out or "400" in out) if kind != "slow" else out.startswith("ERR"), (kind, out, err)
    finally:
        for c in CLASSIFIERS:
            net.sbx.ok("policy", "classifier", "off", c)

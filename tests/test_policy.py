"""`sbx policy`: presets, allow/deny rules, per-sandbox scope, HTTP rules, `check`, `reset` and the
log, as a user sees them: exit codes, messages that name the problem and the fix, --json that
parses. The decisions themselves are observed through `sbx policy check` (the proxy's own tests
show the same rules at work on real connections).

Exit codes: 0 ok; `check`: 0 allowed, 1 blocked, 2 held for review; 64 usage; 65 invalid value;
67 nothing matched."""
import json
import os
import pty
import select
import signal
import socket
import subprocess
import time

import pytest


def run(sbx, *args):
    """A non-interactive run: stdin is not a terminal, as in a script."""
    return sbx.run("policy", *args, input="")


def ok(sbx, *args):
    p = run(sbx, *args)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p


def rules(sbx, *args):
    return json.loads(ok(sbx, "ls", "--json", *args).stdout)["rules"]


def user_rules(sbx, *args):
    return [r for r in rules(sbx, *args) if r["source"] == "user"]


def check(sbx, *args):
    """(exit code, stdout + stderr) of `sbx policy check network ...`."""
    p = run(sbx, "check", "network", *args)
    assert p.returncode in (0, 1, 2), (args, p.returncode, p.stderr)
    return p.returncode, p.stdout + p.stderr


def allowed(sbx, *args):
    return check(sbx, *args)[0] == 0


def fails(sbx, code, *args):
    p = run(sbx, *args)
    assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    assert p.stderr.startswith("sbx: error: "), p.stderr
    return p.stderr


def api(sbx, method, path, body=None):
    """One raw request to the daemon's API (for what the CLI never sends)."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(sbx.home, "run", "sbxd.sock"))
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: sbxd\r\nConnection: close\r\n"
              f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    resp = b""
    while chunk := s.recv(65536):
        resp += chunk
    s.close()
    head, _, payload = resp.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload) if payload.strip() else None


# -- presets -------------------------------------------------------------------------------------

def test_presets(sbx):
    p = ok(sbx, "ls")
    assert "not chosen yet" in p.stdout and "sbx policy init" in p.stdout
    assert rules(sbx) == []

    p = ok(sbx, "init", "balanced")
    assert p.stdout.startswith("Network policy: balanced (")
    n = int(p.stdout.split("(")[1].split()[0])
    listed = rules(sbx)
    assert n == len(listed) > 10
    assert all(r["source"].startswith("preset") and r["sandbox"] == "" for r in listed)
    # Everyday services are in, the rest of the Internet is not.
    assert allowed(sbx, "api.anthropic.com")
    assert allowed(sbx, "https://registry.npmjs.org/react")
    code, out = check(sbx, "example.org")
    assert code == 1
    assert "blocked: no rule allows example.org:443; allow it with: sbx policy allow network example.org" in out

    ok(sbx, "init", "allow-all")
    assert allowed(sbx, "example.org") and allowed(sbx, "1.2.3.4:22")
    ok(sbx, "init", "deny-all")
    assert not allowed(sbx, "api.anthropic.com") and not allowed(sbx, "example.org")
    text = ok(sbx, "ls").stdout
    assert "deny-all" in text


def test_init_replaces_global_rules_only(sbx_user):
    sbx = sbx_user
    ok(sbx, "init", "deny-all")
    ok(sbx, "allow", "network", "mine.example.com")
    ok(sbx, "allow", "network", "box.example.com", "--sandbox", "box")
    p = ok(sbx, "init", "balanced")
    assert "Replaced 1 global rule" in p.stdout and "Kept 1 rule for single sandboxes" in p.stdout
    assert [r["resource"] for r in user_rules(sbx)] == ["box.example.com"]


def test_bad_preset(sbx_user):
    err = fails(sbx_user, 65, "init", "paranoid")
    assert "unknown network policy preset 'paranoid'" in err and "balanced" in err
    fails(sbx_user, 64, "init")
    fails(sbx_user, 64, "init", "balanced", "deny-all")


# -- first use -----------------------------------------------------------------------------------

def test_first_use_without_terminal_applies_balanced(sbx):
    ws = sbx.workspace()
    assert rules(sbx) == []
    p = sbx.run("create", "--name", "first", ws, input="")
    assert p.returncode == 0, p.stderr
    assert "Network policy" not in p.stderr  # nobody to ask, nothing to say
    listed = rules(sbx)
    assert listed and all(r["source"] == "preset:balanced" for r in listed)
    assert allowed(sbx, "api.anthropic.com")


class Term:
    """sbx with its stdin, stdout and stderr on a terminal."""

    def __init__(self, sbx, *args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(sbx.workspaces[0] if sbx.workspaces else sbx.home)
            argv = sbx.cmd(*args)
            os.execvpe(argv[0], argv, sbx.env({"TERM": "xterm"}))
        self.buf = b""

    def expect(self, needle, timeout=30):
        end = time.time() + timeout
        while needle.encode() not in self.buf:
            assert time.time() < end, f"timed out waiting for {needle!r}; got {self.buf!r}"
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                assert chunk, f"terminal closed while waiting for {needle!r}; got {self.buf!r}"
                self.buf += chunk
        return self.buf.decode(errors="replace")

    def send(self, data):
        os.write(self.fd, data)

    def wait(self, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.buf += os.read(self.fd, 65536)
                except OSError:
                    pass
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(st)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"sbx did not exit; terminal shows {self.buf!r}")


@pytest.mark.parametrize("answer,preset", [(b"\r", "balanced"), (b"3\r", "deny-all"),
                                           (b"what\rallow-all\r", "allow-all")])
def test_first_use_on_a_terminal_asks(sbx_user, answer, preset):
    sbx = sbx_user
    ws = sbx.workspace()
    t = Term(sbx, "create", "--name", "asked", ws)
    t.expect("Network policy [1]: ")
    t.send(answer)
    assert t.wait() == 0, t.buf
    out = t.buf.decode(errors="replace")
    assert f"Network policy: {preset} (" in out
    if answer.startswith(b"what"):
        assert "Please answer 1, 2 or 3" in out
    assert all(r["source"] == f"preset:{preset}" for r in rules(sbx))
    # Asked once: the next sandbox goes straight on.
    t = Term(sbx, "create", "--name", "second", ws)
    assert t.wait() == 0 and b"Network policy" not in t.buf


# -- rules ---------------------------------------------------------------------------------------

def test_allow_deny_ls_rm_round_trip(sbx):
    ok(sbx, "init", "deny-all")
    p = ok(sbx, "allow", "network", "api.example.com,*.npmjs.org")
    assert "Allowed network access to api.example.com, *.npmjs.org" in p.stdout
    p = ok(sbx, "allow", "network", "api.example.com", "**.pkg.dev")
    assert "Allowed network access to **.pkg.dev" in p.stdout and "Already allowed: api.example.com" in p.stdout

    mine = user_rules(sbx)
    assert sorted(r["resource"] for r in mine) == ["**.pkg.dev", "*.npmjs.org", "api.example.com"]
    assert all(r["kind"] == "allow" and r["sandbox"] == "" and r["id"] > 0 for r in mine)
    table = ok(sbx, "ls").stdout
    assert "ID" in table and "KIND" in table and "RESOURCE" in table and "SOURCE" in table
    assert "api.example.com" in table and "(global)" in table

    code, out = check(sbx, "api.example.com")
    assert code == 0 and "allowed by rule: allow api.example.com" in out
    # Wildcards: '*' is exactly one label, '**' any depth; neither covers the apex.
    assert allowed(sbx, "registry.npmjs.org")
    assert not allowed(sbx, "a.registry.npmjs.org")
    assert not allowed(sbx, "npmjs.org")
    assert allowed(sbx, "a.b.c.pkg.dev") and not allowed(sbx, "pkg.dev")
    assert allowed(sbx, "API.Example.COM.")  # case and a trailing dot do not matter

    # Deny beats allow, whatever the specificity.
    p = ok(sbx, "deny", "network", "**.npmjs.org")
    assert "Denied network access to **.npmjs.org" in p.stdout
    code, out = check(sbx, "registry.npmjs.org")
    assert code == 1 and "blocked by rule: deny **.npmjs.org" in out and "sbx policy rm --id" in out
    p = ok(sbx, "deny", "network", "api.example.com")
    p = ok(sbx, "allow", "network", "api.example.com")
    assert "Already allowed" in p.stdout and "deny api.example.com" in p.stderr and "wins" in p.stderr
    assert not allowed(sbx, "api.example.com")

    # rm takes the resource's rules of every kind in the scope, and says what went.
    p = ok(sbx, "rm", "network", "api.example.com")
    assert "allow api.example.com" in p.stdout and "deny api.example.com" in p.stdout
    assert p.stdout.count("Removed rule") == 2
    err = fails(sbx, 67, "rm", "network", "api.example.com")
    assert "no rule matches api.example.com" in err and "sbx policy ls" in err

    by_id = {r["resource"]: r["id"] for r in user_rules(sbx)}
    p = ok(sbx, "rm", "--id", str(by_id["*.npmjs.org"]))
    assert f"Removed rule {by_id['*.npmjs.org']}: allow *.npmjs.org" in p.stdout
    err = fails(sbx, 67, "rm", "--id", str(by_id["*.npmjs.org"]))
    assert f"no rule with id {by_id['*.npmjs.org']}" in err and "sbx policy ls" in err
    assert sorted(r["resource"] for r in user_rules(sbx)) == ["**.npmjs.org", "**.pkg.dev"]


def test_rm_partly_matching_list(sbx_user):
    sbx = sbx_user
    ok(sbx, "init", "deny-all")
    ok(sbx, "allow", "network", "a.example.com")
    p = run(sbx, "rm", "network", "a.example.com,b.example.com")
    assert p.returncode == 67
    assert "Removed rule" in p.stdout and "allow a.example.com" in p.stdout
    assert "no global rule matches b.example.com" in p.stderr
    assert user_rules(sbx) == []


def test_sandbox_scope(sbx):
    ok(sbx, "init", "deny-all")
    p = ok(sbx, "allow", "network", "example.org", "--sandbox", "box1")
    assert "Allowed network access to example.org for sandbox box1" in p.stdout
    assert "no sandbox named 'box1' exists yet" in p.stderr

    assert not allowed(sbx, "example.org")
    assert allowed(sbx, "example.org", "--sandbox", "box1")
    assert not allowed(sbx, "example.org", "--sandbox", "box2")
    assert [r["sandbox"] for r in user_rules(sbx, "--sandbox", "box1")] == ["box1"]
    assert user_rules(sbx, "--sandbox", "box2") == []
    assert "box1" in ok(sbx, "ls").stdout

    # A global deny wins in every sandbox.
    ok(sbx, "deny", "network", "example.org")
    code, out = check(sbx, "example.org", "--sandbox", "box1")
    assert code == 1 and "deny example.org" in out

    # rm works in one scope at a time.
    p = ok(sbx, "rm", "network", "example.org")
    assert "deny example.org" in p.stdout and "box1" not in p.stdout
    assert allowed(sbx, "example.org", "--sandbox", "box1")
    err = fails(sbx, 67, "rm", "network", "example.org", "--sandbox", "box2")
    assert "sandbox box2" in err
    p = ok(sbx, "rm", "network", "example.org", "--sandbox", "box1")
    assert p.stdout.count("Removed rule") == 1 and "box1" in p.stdout
    assert user_rules(sbx) == []

    # Rules for an existing sandbox: no note.
    ws = sbx.workspace()
    sbx.ok("create", "--name", "real", ws, input="")
    p = ok(sbx, "allow", "network", "example.org", "--sandbox", "real")
    assert "exists yet" not in p.stderr


def test_http_rules(sbx):
    ok(sbx, "init", "deny-all")
    p = ok(sbx, "allow", "network", "api.example.com", "--method", "get", "--path", "/v1/**")
    assert "Allowed network access to api.example.com (GET /v1/**)" in p.stdout
    [rule] = user_rules(sbx)
    assert rule["method"] == "GET" and rule["path"] == "/v1/**"

    assert allowed(sbx, "https://api.example.com/v1/items/7")
    assert allowed(sbx, "https://api.example.com/v1/items?x=1")  # the query is not part of the path
    assert not allowed(sbx, "https://api.example.com/v2/items")
    assert not allowed(sbx, "https://api.example.com/v1/items", "--method", "POST")
    assert allowed(sbx, "api.example.com", "--path", "/v1/x")
    # At the connection level the host is reachable; the request then decides.
    code, out = check(sbx, "api.example.com")
    assert code == 0 and "HTTP rules apply to this host" in out
    data = json.loads(run(sbx, "check", "network", "api.example.com", "--json").stdout)
    assert data["decision"] == "allowed" and data["http_rules"] is True and data["level"] == "connection"

    # A network-level deny cannot be reopened by an HTTP-level allow.
    ok(sbx, "deny", "network", "api.example.com")
    assert not allowed(sbx, "https://api.example.com/v1/items")

    # An HTTP deny narrows a network allow.
    ok(sbx, "rm", "network", "api.example.com")
    ok(sbx, "allow", "network", "files.example.com")
    ok(sbx, "deny", "network", "files.example.com", "--method", "DELETE")
    assert allowed(sbx, "https://files.example.com/a", "--method", "GET")
    assert not allowed(sbx, "https://files.example.com/a", "--method", "DELETE")
    # rm with --method takes just that rule.
    p = ok(sbx, "rm", "network", "files.example.com", "--method", "DELETE")
    assert p.stdout.count("Removed rule") == 1 and "deny files.example.com" in p.stdout


def test_addresses_ports_and_urls(sbx_user):
    sbx = sbx_user
    ok(sbx, "init", "deny-all")
    ok(sbx, "allow", "network", "10.0.0.0/8,192.168.1.5:8080,[2001:db8::1]:443,example.com:8443,fd00::/8")

    assert allowed(sbx, "10.1.2.3") and allowed(sbx, "10.255.0.1:22")
    code, out = check(sbx, "11.0.0.1")
    assert code == 1 and "sbx policy allow network 11.0.0.1" in out
    assert allowed(sbx, "192.168.1.5:8080") and not allowed(sbx, "192.168.1.5:8081")
    assert not allowed(sbx, "192.168.1.5")  # port 443
    assert allowed(sbx, "http://192.168.1.5:8080/status")
    assert allowed(sbx, "[2001:db8::1]:443") and allowed(sbx, "2001:db8::1")
    assert not allowed(sbx, "[2001:db8::1]:80") and not allowed(sbx, "http://[2001:db8::1]/")
    assert allowed(sbx, "[fd00::5]:8080") and not allowed(sbx, "fe80::1")
    assert allowed(sbx, "example.com:8443") and allowed(sbx, "https://example.com:8443/x")
    assert not allowed(sbx, "example.com") and not allowed(sbx, "http://example.com/")
    assert allowed(sbx, "https://user:secret@example.com:8443/")

    data = json.loads(run(sbx, "check", "network", "http://example.com/a/b?c", "--json").stdout)
    assert data["port"] == 80 and data["host"] == "example.com" and data["path"] == "/a/b"
    assert data["method"] == "GET" and data["decision"] == "blocked" and data["level"] == "request"
    assert data["fix"] == "sbx policy allow network example.com"
    data = json.loads(run(sbx, "check", "network", "10.9.9.9", "--json").stdout)
    assert data["address"] == "10.9.9.9" and data["host"] is None and data["port"] == 443
    assert data["decision"] == "allowed" and data["rule"]["resource"] == "10.0.0.0/8"


def test_host_services_need_an_explicit_rule(sbx_user):
    sbx = sbx_user
    ok(sbx, "init", "allow-all")
    code, out = check(sbx, "host.sbx.internal:8080")
    assert code == 1 and "sbx policy allow network host.sbx.internal:8080" in out
    ok(sbx, "allow", "network", "host.sbx.internal:8080")
    assert allowed(sbx, "host.sbx.internal:8080")
    assert not allowed(sbx, "host.sbx.internal:9090")


def test_reset(sbx_user):
    sbx = sbx_user
    p = ok(sbx, "init", "balanced")
    n = len(rules(sbx))
    ok(sbx, "allow", "network", "a.example.com")
    ok(sbx, "allow", "network", "b.example.com", "--sandbox", "s1")
    ok(sbx, "deny", "network", "c.example.com")
    ok(sbx, "allow", "network", "d.example.com", "--sandbox", "s2")

    p = ok(sbx, "reset", "--sandbox", "s1")  # no terminal: no question
    assert "Removed 1 rule of sandbox s1" in p.stdout
    assert sorted(r["resource"] for r in user_rules(sbx)) == ["a.example.com", "c.example.com", "d.example.com"]
    p = ok(sbx, "reset", "--sandbox", "s1", "-y")
    assert "Removed 0 rules of sandbox s1" in p.stdout

    p = ok(sbx, "reset")
    assert f"Network policy reset to balanced ({n} rules); removed 3 rules you had added" in p.stdout
    assert user_rules(sbx) == [] and len(rules(sbx)) == n

    ok(sbx, "init", "deny-all")
    ok(sbx, "allow", "network", "a.example.com")
    p = ok(sbx, "reset", "-y")
    assert "reset to deny-all" in p.stdout and user_rules(sbx) == []


def test_reset_asks_on_a_terminal(sbx_user):
    sbx = sbx_user
    ok(sbx, "init", "deny-all")
    ok(sbx, "allow", "network", "a.example.com")
    t = Term(sbx, "policy", "reset")
    t.expect("[y/N] ")
    t.send(b"\r")
    assert t.wait() == 1 and b"Nothing changed" in t.buf
    assert len(user_rules(sbx)) == 1
    t = Term(sbx, "policy", "reset")
    t.expect("[y/N] ")
    t.send(b"y\r")
    assert t.wait() == 0
    assert user_rules(sbx) == []


# -- bad input -----------------------------------------------------------------------------------

def test_bad_input(sbx):
    ok(sbx, "init", "deny-all")
    cases = [
        (("allow", "network", "exa mple.com"), "exa mple.com"),
        (("allow", "network", "good.example.com,bad..example.com"), "bad..example.com"),
        (("allow", "network", "example.com:99999"), "99999"),
        (("allow", "network", "10.0.0.0/33"), "10.0.0.0/33"),
        (("allow", "network", "ex*ample.com"), "ex*ample.com"),
        (("allow", "network", "api.example.com", "--method", "G ET"), "G ET"),
        (("allow", "network", "api.example.com", "--path", "v1/items"), "v1/items"),
        (("allow", "network", "10.0.0.1", "--method", "GET"), "apply to host names"),
        (("deny", "network", "fd00::/8", "--path", "/x"), "apply to host names"),
        (("allow", "network", "example.com", "--sandbox", "bad/name"), "invalid sandbox name 'bad/name'"),
        (("rm", "--id", "abc"), "invalid rule id 'abc'"),
        (("check", "network", "ftp://example.com"), "unsupported URL scheme 'ftp'"),
        (("check", "network", "exa mple.com"), "invalid host"),
        (("check", "network", "example.com:0"), "invalid port '0'"),
        (("check", "network", "example.com:http"), "invalid port 'http'"),
        (("check", "network", "*.example.com"), "pattern"),
        (("check", "network", "[2001:db8::1"), "[2001:db8::1]:443"),
        (("check", "network", "example.com/path"), "not a destination"),
        (("check", "network", "example.com", "--method", "G:T"), "invalid HTTP method 'G:T'"),
        (("check", "network", "example.com", "--path", "nope"), "invalid path 'nope'"),
        (("log", "bad/name"), "invalid sandbox name 'bad/name'"),
        # Bytes that are not UTF-8 never reach the daemon (a --method cannot silently fall away).
        (("allow", "network", "api.example.com", "--method", "G\udcffT"), "method 'G\\xffT' is not valid UTF-8"),
        (("allow", "network", "a\udcff.example.com"), "argument 'a\\xff.example.com' is not valid UTF-8"),
    ]
    for args, msg in cases:
        err = fails(sbx, 65, *args)
        assert msg in err, (args, err)
    # Nothing of a rejected list was stored.
    assert user_rules(sbx) == []

    fails(sbx, 67, "rm", "network", "never.example.com")
    fails(sbx, 67, "rm", "--id", "424242")


def test_usage_errors(sbx_user):
    for args in (("policy",), ("policy", "frobnicate"), ("policy", "allow"), ("policy", "allow", "network"),
                 ("policy", "allow", "web", "example.com"), ("policy", "review", "network"),
                 ("policy", "allow", "network", "x.com", "--approvals", "2"), ("policy", "classifier", "on"),
                 ("policy", "deny", "network", "x.com", "--id", "3"), ("policy", "ls", "extra"),
                 ("policy", "ls", "--bogus"), ("policy", "rm"), ("policy", "rm", "--id", "3", "network", "x.com"),
                 ("policy", "check"), ("policy", "check", "network"), ("policy", "check", "network", "a", "b"),
                 ("policy", "reset", "now"), ("policy", "log", "a", "b"), ("policy", "log", "--limit", "0"),
                 ("policy", "allow", "network", "x.com", "--method")):
        p = sbx_user.run(*args, input="")
        assert p.returncode == 64, (args, p.returncode, p.stderr)
        assert "usage:" in p.stderr, (args, p.stderr)
    p = sbx_user.run("policy", "--help")
    assert p.returncode == 0 and "sbx policy allow network" in p.stdout and "0 allowed, 1 blocked" in p.stdout


# -- the API -------------------------------------------------------------------------------------

def test_api_validates_every_field(sbx_user):
    sbx = sbx_user
    ok(sbx, "init", "deny-all")
    cases = [
        ("POST", "/v1/policy/rules", {"kind": "allow", "resources": ["a.com"], "sandbx": "x"}, "unknown field 'sandbx'"),
        ("POST", "/v1/policy/rules", {"kind": "permit", "resources": ["a.com"]}, "unknown rule kind 'permit'"),
        ("POST", "/v1/policy/rules", {"resources": ["a.com"]}, "'kind' is required"),
        ("POST", "/v1/policy/rules", {"kind": "allow"}, "name at least one resource"),
        ("POST", "/v1/policy/rules", {"kind": "allow", "resources": 7}, "'resources' must be"),
        ("POST", "/v1/policy/rules", {"kind": "allow", "resources": [7]}, "'resources' must be"),
        ("POST", "/v1/policy/rules", {"kind": "allow", "resources": ["a.com"] * 65}, "too many resources"),
        ("POST", "/v1/policy/rules", {"kind": "allow", "resources": "a.com", "method": 1}, "'method' must be a string"),
        ("POST", "/v1/policy/rules", {"kind": "allow", "resources": "a.com", "method": "X" * 40}, "'method' is too long"),
        ("POST", "/v1/policy/rules", {"kind": "allow", "resources": "a.com", "path": "/\u0007"}, "control characters"),
        ("POST", "/v1/policy/rules", {"kind": "allow", "resources": "a.com", "approvals": 2}, "review rules"),
        ("POST", "/v1/policy/rules", {"kind": "review", "resources": "a.com", "approvals": 3}, "'approvals' must be"),
        ("POST", "/v1/policy/init", {"preset": None}, "name a preset"),
        ("POST", "/v1/policy/init", {"preset": "balanced", "only_if_unset": "yes"}, "true or false"),
        ("POST", "/v1/policy/check", {}, "'target' is required"),
        ("POST", "/v1/policy/check", {"target": "a.com", "sandbox": "-x"}, "invalid sandbox name"),
        ("GET", "/v1/policy?sandbox=a%2Fb", None, "invalid sandbox name"),
        ("GET", "/v1/policy?colour=red", None, "unknown query parameter 'colour'"),
        ("GET", "/v1/policy/log?limit=0", None, "limit must be"),
        ("GET", "/v1/policy/log?decision=maybe", None, "unknown decision 'maybe'"),
        ("GET", "/v1/policy/log?after_id=5", None, "raw=1"),
        ("POST", "/v1/policy/reset?sandbox=x", {}, "no query parameters"),
    ]
    for method, path, body, msg in cases:
        status, res = api(sbx, method, path, body)
        assert status == 400, (method, path, body, status, res)
        assert res["error"]["code"] == "invalid" and msg in res["error"]["message"], (path, body, res)
    status, res = api(sbx, "PATCH", "/v1/policy/rules", {})
    assert status == 404 and "no API endpoint" in res["error"]["message"]
    status, res = api(sbx, "DELETE", "/v1/policy/rules/0", None)
    assert status == 404
    # The API is generic over kinds: a review rule with its approvals.
    status, res = api(sbx, "POST", "/v1/policy/rules",
                      {"kind": "review", "resources": ["api.example.com"], "method": "DELETE", "approvals": 2})
    assert status == 201, res
    [r] = res["added"]
    assert r["kind"] == "review" and r["approvals"] == 2 and r["method"] == "DELETE"
    code, out = check(sbx, "https://api.example.com/x", "--method", "DELETE")
    assert code != 0
    assert user_rules(sbx) == [r]


# -- the log -------------------------------------------------------------------------------------

def test_log_on_an_empty_log(sbx):
    p = ok(sbx, "log")
    assert "Blocked requests" in p.stdout and "Allowed requests" in p.stdout and "(none)" in p.stdout
    assert json.loads(ok(sbx, "log", "--json").stdout) == []
    assert json.loads(ok(sbx, "log", "--raw", "--json").stdout) == []
    assert "No requests logged yet" in ok(sbx, "log", "--raw").stdout
    assert json.loads(ok(sbx, "log", "box", "--json", "--limit", "5").stdout) == []
    assert json.loads(ok(sbx, "log", "--sandbox", "box", "--raw", "--json", "--host", "a.com",
                         "--blocked").stdout) == []


def test_log_follow_ends_cleanly(sbx_user):
    sbx = sbx_user
    ok(sbx, "log")  # the daemon is up, so the follower starts at once
    p = sbx.popen("policy", "log", "--follow", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    time.sleep(1)
    assert p.poll() is None
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=5)
    assert p.returncode == 0, err

    # A reader that goes away (like `| head`) ends it too, without a broken-pipe death.
    r, w = os.pipe()
    p = sbx.popen("policy", "log", "--follow", "--json", stdin=subprocess.DEVNULL, stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    time.sleep(0.5)
    os.close(r)
    _, err = p.communicate(timeout=5)
    assert p.returncode == 0, err


AUDIT_COLUMNS = ("ts", "sandbox", "path", "host", "port", "method", "url_path", "decision", "rule", "reason",
                 "bytes_up", "bytes_down", "duration_ms", "status")


def add_log_records(sbx, records):
    """Puts records in the audit table the way the proxy's log writer commits them (the proxy's
    own tests produce real ones), as the instance's user so that the database stays theirs."""
    script = ("import json, sqlite3, sys\n"
              "db = sqlite3.connect(sys.argv[1], timeout=10)\n"
              f"db.executemany('INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES "
              f"({', '.join('?' * len(AUDIT_COLUMNS))})', json.loads(sys.stdin.read()))\n"
              "db.commit()\n")
    argv = ["/usr/bin/python3", "-c", script, os.path.join(sbx.state_dir, "sbx.db")]
    if sbx.user:
        argv = ["setpriv", f"--reuid={sbx.pw.pw_uid}", f"--regid={sbx.pw.pw_gid}", "--init-groups"] + argv
    rows = [[r[c] for c in AUDIT_COLUMNS] for r in records]
    subprocess.run(argv, input=json.dumps(rows), text=True, check=True, timeout=30)


def record(**kw):
    r = dict(ts=int(time.time() * 1000), sandbox="box", path="forward", host="", port=443, method="", url_path="",
             decision="allowed", rule="", reason="", bytes_up=0, bytes_down=0, duration_ms=0, status=0)
    r.update(kw)
    return r


def test_log_shows_records(sbx):
    ok(sbx, "log")  # the daemon has created the database
    now = int(time.time() * 1000)
    add_log_records(sbx, [
        record(ts=now - 5000, host="registry.npmjs.org", method="GET", url_path="/react", rule="allow **.npmjs.org",
               bytes_up=120, bytes_down=4096, duration_ms=35, status=200),
        record(ts=now - 4000, path="transparent", host="evil.example", decision="denied",
               reason="no rule allows evil.example:443"),
        record(ts=now - 3000, path="transparent", host="evil.example", decision="denied",
               reason="no rule allows evil.example:443"),
        record(ts=now - 2000, path="dns", host="evil.example", port=0, decision="denied",
               reason="no rule allows evil.example"),
        record(ts=now - 1000, sandbox="other", host="x\x1b[2Jy.example", url_path="/\x07", decision="denied",
               reason="bad\x1b]0;title\x07"),
    ])

    out = ok(sbx, "log").stdout
    blocked, allowed_part = out.split("Allowed requests")
    assert "Blocked requests" in blocked
    assert "SANDBOX" in blocked and "LAST-SEEN" in blocked and "COUNT" in blocked
    line = next(l for l in blocked.splitlines() if "evil.example:443" in l)
    assert "transparent" in line and "no rule allows evil.example:443" in line and line.split()[-1] == "2"
    assert "ago" in line
    line = next(l for l in blocked.splitlines() if " dns " in l)
    assert "evil.example " in line and line.split()[-1] == "1"
    assert "registry.npmjs.org:443" in allowed_part and "allow **.npmjs.org" in allowed_part
    # Whatever a sandbox put in a host name or path cannot steer the terminal.
    assert "y.example:443" in out and "\x1b" not in out and "\x07" not in out

    groups = json.loads(ok(sbx, "log", "--json").stdout)
    evil = [g for g in groups if g["host"] == "evil.example" and g["path"] == "transparent"]
    assert len(evil) == 1 and evil[0]["count"] == 2 and evil[0]["blocked"] is True and evil[0]["port"] == 443

    raw = ok(sbx, "log", "--raw").stdout.splitlines()
    assert len(raw) == 5 and "registry.npmjs.org:443 GET /react allowed" in raw[0]  # oldest first
    assert 'rule="allow **.npmjs.org"' in raw[0] and "up=120 down=4096 dur=35ms status=200" in raw[0]
    assert "other" in raw[-1] and "\x1b" not in "".join(raw)
    last2 = ok(sbx, "log", "--raw", "--limit", "2").stdout.splitlines()
    assert last2 == raw[-2:]

    recs = json.loads(ok(sbx, "log", "box", "--raw", "--json").stdout)
    assert [r["host"] for r in recs] == ["registry.npmjs.org", "evil.example", "evil.example", "evil.example"]
    assert recs[0]["status"] == 200 and recs[0]["method"] == "GET" and recs[0]["bytes_down"] == 4096
    recs = json.loads(ok(sbx, "log", "--raw", "--json", "--blocked").stdout)
    assert len(recs) == 4 and all(r["decision"] == "denied" for r in recs)
    recs = json.loads(ok(sbx, "log", "--raw", "--json", "--host", "EVIL.example").stdout)
    assert len(recs) == 3
    assert json.loads(ok(sbx, "log", "nobody", "--json").stdout) == []

    # --follow shows a little history, then what arrives.
    p = sbx.popen("policy", "log", "--follow", "--json", "--limit", "1", stdin=subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf = b""

    def next_line(timeout=10):
        nonlocal buf
        end = time.time() + timeout
        while b"\n" not in buf:
            assert time.time() < end, f"no line from `sbx policy log --follow` (got {buf!r})"
            if select.select([p.stdout], [], [], 0.2)[0]:
                chunk = os.read(p.stdout.fileno(), 65536)
                assert chunk, f"`sbx policy log --follow` ended: {p.stderr.read()!r}"
                buf += chunk
        line, _, buf = buf.partition(b"\n")
        return json.loads(line)

    try:
        assert next_line()["sandbox"] == "other"
        add_log_records(sbx, [record(host="late.example", decision="denied", reason="late")])
        assert next_line()["host"] == "late.example"
    finally:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=5)
    assert p.returncode == 0, err

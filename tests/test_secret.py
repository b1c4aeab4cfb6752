"""`sbx secret`: storing, listing and removing credentials as a user does it - piped in, typed at a
prompt that must not echo, or given with -t - and where a secret must never show up: the
daemon's log, listings (text and --json), error messages, other processes' command lines, a
file others can read. What the proxy does with a stored secret is tests/test_credentials.py's.

Exit codes: 0 ok; 64 usage; 65 invalid value; 67 nothing to remove."""
import json
import os
import pty
import select
import shlex
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import BIN

ELLIPSIS = "\u2026"
ANTHROPIC = "sk-ant-api03-TESTSECRET-" + "q7w8e9r0" * 4 + "3f9c"
OPENAI = "sk-proj-TESTSECRET-" + "z1x2c3v4" * 4 + "9a8b"
CUSTOM = "cust-TESTSECRET-" + "m5n6b7v8" * 3 + "c0de"
AWS = "AKIAABCDEFGHIJKLMNOP:wJalrXUtnFEMI/K7MDENG+TESTSECRETbPxRfiCY"


def run(sbx, *args, input=""):
    """A non-interactive run: stdin is a pipe (empty unless given), as in a script."""
    return sbx.run("secret", *args, input=input)


def ok(sbx, *args, input=""):
    p = run(sbx, *args, input=input)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p


def fails(sbx, code, *args, input=""):
    p = run(sbx, *args, input=input)
    assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    assert p.stderr.startswith("sbx: error: ") or "\nsbx: error: " in p.stderr, p.stderr
    return p.stderr


def listed(sbx):
    return json.loads(ok(sbx, "ls", "--json").stdout)


def masked(value):
    return value[:4] + ELLIPSIS + value[-4:]


def api(sbx, method, path, body=None, raw=None):
    """One raw request to the daemon's API (for what the CLI never sends)."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(sbx.home, "run", "sbxd.sock"))
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: sbxd\r\nConnection: close\r\n"
              f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    resp = b""
    while chunk := s.recv(65536):
        resp += chunk
    s.close()
    head, _, payload = resp.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload) if payload.strip() else None


class Term:
    """A command with its stdin, stdout and stderr on a terminal (argv given in full)."""

    def __init__(self, sbx, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(sbx.home)
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
                # What was still on its way from the terminal.
                while select.select([self.fd], [], [], 0.1)[0]:
                    try:
                        chunk = os.read(self.fd, 65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    self.buf += chunk
                os.close(self.fd)
                return os.waitstatus_to_exitcode(st)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"command did not exit; terminal shows {self.buf!r}")

    @property
    def text(self):
        return self.buf.decode(errors="replace")


def term(sbx, *args):
    return Term(sbx, sbx.cmd("secret", *args))


def cmdlines():
    """Every process's command line, as `ps` would see it."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out[int(pid)] = f.read()
        except OSError:
            pass
    return out


# -- storing -------------------------------------------------------------------------------------

def test_set_from_stdin_and_with_token(sbx):
    p = ok(sbx, "set", "-g", "anthropic", input=ANTHROPIC + "\n")
    assert p.stdout == f"Stored the anthropic secret (global): {masked(ANTHROPIC)}\n"
    assert ANTHROPIC not in p.stdout + p.stderr
    # -t, and the service after the options or before them.
    p = ok(sbx, "set", "openai", "-t", OPENAI, "-g")
    assert p.stdout == f"Stored the openai secret (global): {masked(OPENAI)}\n"
    # One trailing newline goes (a CRLF one too); the value keeps the rest.
    ok(sbx, "set", "-g", "groq", input="gsk_abcdefgh12345678wxyz\r\n")
    [groq] = [s for s in listed(sbx) if s["service"] == "groq"]
    assert groq["masked"] == "gsk_" + ELLIPSIS + "wxyz"
    err = fails(sbx, 65, "set", "-g", "groq", input="gsk_abcdefgh12345678wxyz\n\n")
    assert "line break" in err
    # No scope given: global, and it says so.
    p = ok(sbx, "set", "xai", input="xai-abcdefghijklmnop1234\n")
    assert "no scope given" in p.stderr and "global" in p.stderr
    assert "Stored the xai secret (global)" in p.stdout

    rows = {(s["service"], s["sandbox"]): s for s in listed(sbx)}
    assert set(rows) == {("anthropic", ""), ("openai", ""), ("groq", ""), ("xai", "")}
    a = rows[("anthropic", "")]
    assert a["masked"] == masked(ANTHROPIC) and a["scope"] == "global" and not a["custom"]
    assert a["hosts"] == ["api.anthropic.com"] and a["header"] == "x-api-key" and a["updated_at"] > 0
    assert "value" not in a

    # Replacing keeps one row.
    ok(sbx, "set", "-g", "anthropic", input="sk-ant-api03-second-value-0000\n")
    assert [s["masked"] for s in listed(sbx) if s["service"] == "anthropic"] == ["sk-a" + ELLIPSIS + "0000"]


def test_ls(sbx):
    p = ok(sbx, "ls")
    assert "No secrets stored" in p.stdout and "sbx secret set -g" in p.stdout
    assert listed(sbx) == []
    ok(sbx, "set", "-g", "anthropic", input=ANTHROPIC)
    ok(sbx, "set", "anthropic", "--sandbox", "box", input=OPENAI.replace("sk-proj", "sk-ant"))
    ok(sbx, "set-custom", "myapi", "--host", "api.example.com", "--host", "*.example.org", "-g", input=CUSTOM)
    ok(sbx, "set", "-g", "aws", input=AWS)
    lines = ok(sbx, "ls").stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "SCOPE", "HOSTS", "VALUE", "UPDATED"]
    body = "\n".join(lines[1:])
    assert len(lines) == 5
    assert masked(ANTHROPIC) in body and masked(CUSTOM) in body and masked(AWS) in body
    assert "sandbox box" in body and "global" in body and "myapi (custom)" in body
    assert "api.example.com, *.example.org" in body and "**.amazonaws.com" in body
    # The columns line up (the ellipsis is one column wide).
    col = lines[0].index("VALUE")
    assert all(line[col - 2:col] == "  " for line in lines[1:]), lines
    for value in (ANTHROPIC, CUSTOM, AWS, "TESTSECRET"):
        assert value not in body
    text = ok(sbx, "ls", "--json").stdout
    assert "TESTSECRET" not in text
    assert {(s["service"], s["scope"]) for s in json.loads(text)} == {
        ("anthropic", "global"), ("anthropic", "sandbox"), ("myapi", "global"), ("aws", "global")}


def test_set_custom(sbx):
    p = ok(sbx, "set-custom", "myapi", "--host", "API.Example.com", "--host", "*.example.org,**.example.net",
           "--header", "X-Api-Key", "--format", "token %s", "-g", input=CUSTOM + "\n")
    assert p.stdout.startswith(f"Stored the myapi secret (global): {masked(CUSTOM)}\n")
    assert "It goes to api.example.com, *.example.org, **.example.net as 'X-Api-Key: token <secret>'" in p.stdout
    [s] = listed(sbx)
    assert s["custom"] and s["hosts"] == ["api.example.com", "*.example.org", "**.example.net"]
    assert s["header"] == "X-Api-Key" and s["format"] == "token %s"
    # Defaults: Authorization: Bearer %s.
    ok(sbx, "set-custom", "other", "--host", "api.other.test", "-g", input="other-secret-123456")
    [o] = [x for x in listed(sbx) if x["service"] == "other"]
    assert o["header"] == "Authorization" and o["format"] == "Bearer %s"


def test_scope_precedence_and_rm(sbx):
    ok(sbx, "set", "-g", "openai", input=OPENAI)
    ok(sbx, "set", "openai", "--sandbox", "box", input="sk-proj-for-box-only-7777")
    p = ok(sbx, "set", "openai", "--sandbox", "box", input="sk-proj-for-box-only-8888")
    assert "Stored the openai secret (sandbox box)" in p.stdout
    assert "no sandbox named 'box' exists yet" in p.stderr
    scopes = sorted((s["scope"], s["sandbox"], s["masked"]) for s in listed(sbx) if s["service"] == "openai")
    assert scopes == [("global", "", masked(OPENAI)), ("sandbox", "box", "sk-p" + ELLIPSIS + "8888")]

    # Precedence seen from outside: a new value for a custom service takes the definition that
    # applies to the sandbox - its own if it has one, else the global one.
    ok(sbx, "set-custom", "myapi", "--host", "global.example.com", "-g", input=CUSTOM)
    ok(sbx, "set-custom", "myapi", "--host", "box.example.com", "--header", "X-Box", "--sandbox", "box",
       input=CUSTOM)
    ok(sbx, "set", "myapi", "--sandbox", "box", input="new-box-value-12345")
    ok(sbx, "set", "myapi", "--sandbox", "other", input="new-other-value-12345")
    rows = {s["sandbox"]: s for s in listed(sbx) if s["service"] == "myapi"}
    assert rows["box"]["hosts"] == ["box.example.com"] and rows["box"]["header"] == "X-Box"
    assert rows["other"]["hosts"] == ["global.example.com"] and rows["other"]["header"] == "Authorization"
    assert rows["box"]["masked"].endswith("2345") and rows[""]["masked"] == masked(CUSTOM)

    p = ok(sbx, "rm", "openai", "--sandbox", "box")
    assert p.stdout == "Removed the openai secret (sandbox box)\n"
    err = fails(sbx, 67, "rm", "openai", "--sandbox", "box")
    assert "no openai secret is stored for sandbox box" in err and "sbx secret ls" in err
    ok(sbx, "rm", "-g", "openai")
    ok(sbx, "set", "openai", "--sandbox", "box", input=OPENAI)
    p = run(sbx, "rm", "openai")
    assert p.returncode == 67
    assert "no scope given" in p.stderr and "one is stored for sandbox box: add --sandbox box" in p.stderr
    fails(sbx, 67, "rm", "-g", "never")


# -- terminals -----------------------------------------------------------------------------------

def test_prompt_does_not_echo(sbx):
    t = term(sbx, "set", "-g", "anthropic")
    t.expect("Secret for anthropic (typing is not shown): ")
    t.send(ANTHROPIC.encode() + b"\r")
    assert t.wait() == 0, t.text
    assert ANTHROPIC not in t.text and ANTHROPIC[:12] not in t.text, t.text
    assert f"Stored the anthropic secret (global): {masked(ANTHROPIC)}" in t.text
    assert [s["masked"] for s in listed(sbx)] == [masked(ANTHROPIC)]


def test_prompt_asks_for_the_service(sbx):
    t = term(sbx, "set", "-g")
    t.expect("Service [1-9 or a name]: ")
    assert "anthropic" in t.text and "Anthropic (Claude)" in t.text and "**.amazonaws.com" in t.text
    t.send(b"12\r")
    t.expect("Please answer with a number from 1 to 9")
    t.send(b"2\r")
    t.expect("Secret for openai")
    t.send(OPENAI.encode() + b"\r")
    assert t.wait() == 0, t.text
    assert OPENAI not in t.text and "Stored the openai secret (global)" in t.text
    # A name works as well, and an empty line at the prompt is an empty secret.
    t = term(sbx, "set", "-g")
    t.expect("Service [1-9 or a name]: ")
    t.send(b"groq\r")
    t.expect("Secret for groq")
    t.send(b"\r")
    assert t.wait() == 65 and "the secret is empty" in t.text


def test_prompt_checks_before_asking(sbx):
    # Mistakes are reported before anyone types a secret.
    t = term(sbx, "set", "-g", "nosuch")
    assert t.wait() == 65
    assert "unknown service 'nosuch'" in t.text and "Secret for" not in t.text
    t = term(sbx, "set-custom", "bad", "--host", "**", "-g")
    assert t.wait() == 65
    assert "every host" in t.text and "Secret for" not in t.text


def test_interrupted_prompt_restores_the_terminal(sbx):
    # The shell ignores SIGINT so that it survives to report the terminal's state; sbx sets its
    # own handler, restores echo and dies of the signal.
    cmd = shlex.join(sbx.cmd("secret", "set", "-g", "anthropic"))
    t = Term(sbx, ["sh", "-c", f"trap '' INT; {cmd}; echo \"status=$?\"; stty -a"])
    t.expect("Secret for anthropic")
    t.send(b"partial")
    t.send(b"\x03")
    assert t.wait() == 0, t.text
    out = t.text
    assert "status=130" in out, out
    modes = out.split("status=130", 1)[1].split()
    assert "echo" in modes and "-echo" not in modes, out
    assert "partial" not in out
    assert listed(sbx) == []


def test_token_is_wiped_from_the_command_line(sbx):
    # -t with no service on a terminal: sbx waits at the service prompt, long after reading -t.
    secret = "sk-proj-WIPEME-" + "k3j4h5g6" * 4
    t = term(sbx, "set", "-g", "-t", secret)
    t.expect("Service [1-9 or a name]: ")
    seen = [pid for pid, line in cmdlines().items() if secret.encode() in line]
    t.send(b"openai\r")
    assert t.wait() == 0, t.text
    assert seen == [], f"the -t value is still in the command line of {seen}"
    assert "Stored the openai secret (global)" in t.text and secret not in t.text


def test_stdin_leaves_no_trace_in_process_lists(sbx):
    ok(sbx, "ls")  # the daemon is up: it is not started by the command below
    p = sbx.popen("secret", "set", "-g", "openai", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    try:
        p.stdin.write(OPENAI.encode())
        p.stdin.flush()
        time.sleep(0.5)  # sbx has read what there is and waits for the end of input
        assert p.poll() is None
        seen = [pid for pid, line in cmdlines().items() if b"TESTSECRET" in line]
        assert seen == [], f"the secret is in the command line of {seen}"
        out, err = p.communicate(timeout=60)  # closes stdin: the end of the secret
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert f"Stored the openai secret (global): {masked(OPENAI)}" in out.decode()


# -- where a secret must not be ------------------------------------------------------------------

def start_debug_daemon(sbx):
    """sbxd in debug mode (the most it ever logs), as the CLI would start it otherwise."""
    os.makedirs(sbx.state_dir, mode=0o700, exist_ok=True)
    if sbx.user:
        os.chown(sbx.state_dir, sbx.pw.pw_uid, sbx.pw.pw_gid)
    log = os.open(os.path.join(sbx.state_dir, "sbxd.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    if sbx.user:
        os.fchown(log, sbx.pw.pw_uid, sbx.pw.pw_gid)
    argv = [os.path.join(BIN, "sbxd"), "--debug"]
    if sbx.user:
        argv = ["setpriv", f"--reuid={sbx.pw.pw_uid}", f"--regid={sbx.pw.pw_gid}", "--init-groups"] + argv
    p = subprocess.Popen(argv, env=sbx.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                         start_new_session=True)
    os.close(log)
    end = time.time() + 30
    while not os.path.exists(os.path.join(sbx.home, "run", "sbxd.sock")):
        assert p.poll() is None and time.time() < end, sbx.log()
        time.sleep(0.05)
    return p


def test_secrets_never_leak(sbx):
    daemon = start_debug_daemon(sbx)
    ok(sbx, "set", "-g", "anthropic", input=ANTHROPIC)
    ok(sbx, "set", "openai", "--sandbox", "box", input=OPENAI)
    ok(sbx, "set-custom", "myapi", "--host", "api.example.com", "-g", input=CUSTOM)
    ok(sbx, "set", "-g", "aws", input=AWS)
    # Refused values, too, stay out of messages.
    outputs = []
    for service, value in (("anthropic", ANTHROPIC + "\nTESTSECRET-line2"), ("aws", "AKIA:TESTSECRET-aws"),
                           ("aws", "ASIAABCDEFGHIJKLMNOP:TESTSECRETwJalr"), ("openai", " TESTSECRET-space"),
                           ("openai", "TESTSECRET\ttab"), ("nosuch", "TESTSECRET-unknown")):
        p = run(sbx, "set", "-g", service, input=value)
        assert p.returncode == 65, (service, p.stderr)
        outputs.append(p.stdout + p.stderr)
    p = run(sbx, "set-custom", "bad", "--host", "**", "-g", input="TESTSECRET-badhost")
    assert p.returncode == 65
    outputs.append(p.stdout + p.stderr)
    outputs += [ok(sbx, "ls").stdout, ok(sbx, "ls", "--json").stdout]
    status, res = api(sbx, "GET", "/v1/secrets")
    outputs.append(json.dumps(res))
    for out in outputs:
        assert "TESTSECRET" not in out, out

    # Not in the daemon's log (this one runs with --debug).
    sbx.ok("daemon", "stop")
    assert daemon.wait(timeout=30) == 0
    log = sbx.log()
    assert "TESTSECRET" not in log
    for value in (ANTHROPIC, OPENAI, CUSTOM, AWS):
        assert value not in log and value[-12:] not in log

    # The database, its journal files and their directory are the user's alone.
    st = sbx.state_dir
    assert stat.S_IMODE(os.stat(st).st_mode) == 0o700
    for name in ("sbx.db", "sbx.db-wal", "sbx.db-shm"):
        path = os.path.join(st, name)
        if os.path.exists(path):
            info = os.stat(path)
            assert stat.S_IMODE(info.st_mode) == 0o600, (name, oct(info.st_mode))
            assert info.st_uid == sbx.pw.pw_uid, name
    assert os.path.exists(os.path.join(st, "sbx.db"))


# -- bad input -----------------------------------------------------------------------------------

def test_bad_input(sbx):
    ok(sbx, "set-custom", "mine", "--host", "api.example.com", "-g", input=CUSTOM)
    cases = [
        (("set", "-g", "nosuch"), "x-value-123", "unknown service 'nosuch'"),
        (("set", "-g", "nosuch"), "x-value-123", "sbx secret set-custom nosuch --host HOST"),
        (("set", "-g", "nosuch"), "x-value-123", "stored custom services: mine"),
        (("set", "-g", "Anthropic"), "x-value-123", "unknown service 'Anthropic'"),
        (("set", "-g", "anthropic"), "", "the secret is empty"),
        (("set", "-g", "anthropic"), "\n", "the secret is empty"),
        (("set", "-g", "anthropic"), "sk-ant-a\nb", "line break"),
        (("set", "-g", "anthropic"), "sk-ant-\x01b", "control or non-ASCII"),
        (("set", "-g", "anthropic"), "sk-ant-\u00e9b", "control or non-ASCII"),
        (("set", "-g", "anthropic"), "x" * 16385, "longer than 16384 bytes"),
        (("set", "-g", "aws"), "AKIAABCDEFGHIJKLMNOP", "ACCESS_KEY_ID:SECRET_ACCESS_KEY"),
        (("set", "-g", "aws"), "AKIA1:secret", "16 to 128 uppercase"),
        (("set", "-g", "aws"), "ASIAABCDEFGHIJKLMNOP:wJalrXUtn", "session token"),
        (("set", "anthropic", "--sandbox", "bad/name"), "x", "invalid sandbox name 'bad/name'"),
        (("set-custom", "openai", "--host", "api.openai.com", "-g"), "x", "'openai' is a built-in service"),
        (("set-custom", "My Api", "--host", "a.example.com", "-g"), "x", "invalid service name 'My Api'"),
        (("set-custom", "x", "--host", "**", "-g"), "x", "would send the secret to every host"),
        (("set-custom", "x", "--host", "10.0.0.1", "-g"), "x", "is an address"),
        (("set-custom", "x", "--host", "10.0.0.0/8", "-g"), "x", "is an address"),
        (("set-custom", "x", "--host", "*.com", "-g"), "x", "whole top-level domain"),
        (("set-custom", "x", "--host", "api.example.com:8443", "-g"), "x", "has a port"),
        (("set-custom", "x", "--host", "exa mple.com", "-g"), "x", "exa mple.com"),
        (("set-custom", "x", "--host", "a.example.com,,b.example.com", "-g"), "x", "an empty host"),
        (("set-custom", "x", "--host", ",".join(f"h{i}.example.com" for i in range(17)), "-g"), "x",
         "at most 16"),
        (("set-custom", "x", "--host", "a.example.com", "--header", "Host", "-g"), "x", "cannot carry a secret"),
        (("set-custom", "x", "--host", "a.example.com", "--header", "X Api", "-g"), "x", "invalid header name"),
        (("set-custom", "x", "--host", "a.example.com", "--format", "Bearer", "-g"), "x", "exactly one %s"),
        (("set-custom", "x", "--host", "a.example.com", "--format", "%s:%s", "-g"), "x", "exactly one %s"),
        (("set-custom", "x", "--host", "a.example.com", "--format", "Bearer %d", "-g"), "x", "only as the %s"),
        (("set-custom", "x", "--host", "a.example.com", "--format", "Bearer %s\r\nX-Evil: 1", "-g"), "x",
         "line break"),
        (("set-custom", "x", "--host", "a.example.com", "--format", "F" * 64 + "%s", "-g"), "x", "too long"),
        (("set", "-g", "anthropic", "-t", "sk-ant-\udcffbad"), "", "the secret is not valid UTF-8"),
    ]
    for args, value, msg in cases:
        err = fails(sbx, 65, *args, input=value)
        assert msg in err, (args, err)
    # Bytes that are not UTF-8, and NUL bytes, on standard input.
    for raw, msg in ((b"sk-ant-\xff\xfe", "not valid UTF-8"), (b"sk-ant-\x00abc", "NUL byte")):
        p = subprocess.run(sbx.cmd("secret", "set", "-g", "anthropic"), input=raw, capture_output=True,
                           env=sbx.env(), cwd=sbx.home)
        assert p.returncode == 65 and msg in p.stderr.decode(), p.stderr
    # Nothing of a refused secret was stored.
    assert [s["service"] for s in listed(sbx)] == ["mine"]
    fails(sbx, 67, "rm", "-g", "never")


def test_usage_errors(sbx_user):
    for args in (("secret",), ("secret", "frobnicate"), ("secret", "set", "-g"),
                 ("secret", "set", "-g", "--sandbox", "box", "anthropic"), ("secret", "set", "a", "b"),
                 ("secret", "set", "anthropic", "--host", "x.com"), ("secret", "set", "anthropic", "--json"),
                 ("secret", "set-custom", "--host", "x.example.com"), ("secret", "set-custom", "x"),
                 ("secret", "set-custom", "x", "y", "--host", "a.example.com"), ("secret", "ls", "extra"),
                 ("secret", "ls", "-g"), ("secret", "rm"), ("secret", "rm", "a", "b"),
                 ("secret", "rm", "-t", "zzz", "a"), ("secret", "set", "anthropic", "--bogus")):
        p = sbx_user.run(*args, input="value-1234")
        assert p.returncode == 64, (args, p.returncode, p.stderr)
        assert "usage:" in p.stderr, (args, p.stderr)
        assert "value-1234" not in p.stderr and "zzz" not in p.stderr
    p = sbx_user.run("secret", "--help")
    assert p.returncode == 0 and "sbx secret set-custom NAME --host HOST" in p.stdout
    assert "prefer" in p.stdout and "shell history" in p.stdout
    # The help names every built-in service the daemon has.
    ok(sbx_user, "ls")
    status, res = api(sbx_user, "GET", "/v1/secrets/services")
    assert status == 200
    names = [s["name"] for s in res["services"]]
    assert names == ["anthropic", "openai", "google", "github", "aws", "groq", "mistral", "openrouter", "xai"]
    assert ", ".join(names) in p.stdout


# -- the API -------------------------------------------------------------------------------------

def test_api(sbx_user):
    sbx = sbx_user
    ok(sbx, "ls")
    status, res = api(sbx, "GET", "/v1/secrets/services")
    by = {s["name"]: s for s in res["services"]}
    assert by["anthropic"]["header"] == "x-api-key" and by["anthropic"]["host_env"] == ["ANTHROPIC_API_KEY"]
    assert by["github"]["kind"] == "git" and by["github"]["sandbox_env"] == ["GITHUB_TOKEN", "GH_TOKEN"]
    assert by["aws"]["kind"] == "sigv4" and by["aws"]["host_env"] == [
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
    assert by["mistral"]["placeholder"] == "proxy-managed" and by["openai"]["placeholder_prefix"] == "sk-proj-"

    cases = [
        ("POST", "/v1/secrets", {"service": "openai", "value": "v-1234567", "sandbx": "x"}, "unknown field 'sandbx'"),
        ("POST", "/v1/secrets", {"value": "v-1234567"}, "'service' is required"),
        ("POST", "/v1/secrets", {"service": "openai"}, "'value' is required"),
        ("POST", "/v1/secrets", {"service": "openai", "value": 7}, "'value' must be a string"),
        ("POST", "/v1/secrets", {"service": 7, "value": "v-1234567"}, "'service' must be a string"),
        ("POST", "/v1/secrets", {"service": "x" * 64, "value": "v-1234567"}, "'service' is too long"),
        ("POST", "/v1/secrets", {"service": "openai", "value": "v" * 16385}, "longer than 16384"),
        ("POST", "/v1/secrets", {"service": "openai", "value": "TESTSECRET\u0000x"}, "not a JSON object"),
        ("POST", "/v1/secrets", {"service": "openai", "value": "TESTSECRET\u001bx"}, "control or non-ASCII"),
        ("POST", "/v1/secrets", {"service": "openai", "value": "v-1234567", "custom": "yes"}, "true or false"),
        ("POST", "/v1/secrets", {"service": "openai", "value": "v-1234567", "sandbox": "a/b"},
         "invalid sandbox name"),
        ("POST", "/v1/secrets", {"service": "openai", "value": "v-1234567", "hosts": ["evil.example.com"]},
         "fixed hosts"),
        ("POST", "/v1/secrets", {"service": "c", "custom": True, "value": "v-1234567", "hosts": 7},
         "'hosts' must be"),
        ("POST", "/v1/secrets", {"service": "c", "custom": True, "value": "v-1234567", "hosts": [7]},
         "'hosts' must be"),
        ("POST", "/v1/secrets", {"service": "c", "custom": True, "value": "v-1234567",
                                 "hosts": [f"h{i}.example.com" for i in range(17)]}, "at most 16"),
        ("POST", "/v1/secrets", {"service": "c", "custom": True, "value": "v-1234567", "hosts": "a.example.com",
                                 "header": "Content-Length"}, "cannot carry a secret"),
        ("POST", "/v1/secrets", {"service": "c", "custom": True, "value": "v-1234567", "hosts": "a.example.com",
                                 "header": "X-\u0007"}, "control characters"),
        ("POST", "/v1/secrets", {"service": "c", "value": "v-1234567", "hosts": "a.example.com"},
         "unknown service 'c'"),
        ("POST", "/v1/secrets", {"service": "openai", "value": "v-1234567", "dry_run": 1}, "true or false"),
        ("DELETE", "/v1/secrets", {}, "'service' is required"),
        ("DELETE", "/v1/secrets", {"service": "openai", "value": "x"}, "unknown field 'value'"),
        ("GET", "/v1/secrets?sandbox=x", None, "takes no query parameters"),
    ]
    for method, path, body, msg in cases:
        status, res = api(sbx, method, path, body)
        assert status == 400, (method, path, body, status, res)
        assert res["error"]["code"] == "invalid" and msg in res["error"]["message"], (body, res)
        assert "TESTSECRET" not in json.dumps(res)
    status, res = api(sbx, "PATCH", "/v1/secrets", {})
    assert status == 404 and "no API endpoint" in res["error"]["message"]
    status, res = api(sbx, "GET", "/v1/secretsx")
    assert status == 404
    status, res = api(sbx, "DELETE", "/v1/secrets", {"service": "openai"})
    assert status == 404 and res["error"]["code"] == "not_found"

    # A dry run checks and normalises without storing, with or without a value.
    status, res = api(sbx, "POST", "/v1/secrets", {"service": "c", "custom": True, "hosts": "A.example.com, b.example.com",
                                                   "dry_run": True})
    assert status == 200 and res["valid"] and res["secret"]["hosts"] == ["a.example.com", "b.example.com"]
    assert listed(sbx) == []
    # Stored: 201, replaced: 200; the answer has the masked value only.
    body = {"service": "openai", "value": OPENAI, "sandbox": "box"}
    status, res = api(sbx, "POST", "/v1/secrets", body)
    assert status == 201 and res["replaced"] is False and res["sandbox_exists"] is False
    assert res["secret"]["masked"] == masked(OPENAI) and OPENAI not in json.dumps(res)
    status, res = api(sbx, "POST", "/v1/secrets", body)
    assert status == 200 and res["replaced"] is True
    status, res = api(sbx, "DELETE", "/v1/secrets", {"service": "openai", "sandbox": "box"})
    assert status == 200 and res["removed"] == {"service": "openai", "sandbox": "box", "scope": "sandbox"}

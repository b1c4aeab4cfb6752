"""Shared fixtures for the sbx test suite.

Every test talks to sbx the way a user does: it runs the real `sbx` binary with an isolated
SBX_HOME (so parallel instances never meet), as root or as an unprivileged user, and checks
what is observable from outside (exit codes, output, files, processes) or from inside (a probe
run in the sandbox). Every instance is torn down completely: sandboxes removed, the daemon
stopped, and the test fails if any process it started is still alive.
"""
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("SBX_BUILD", os.path.join(ROOT, "build"))
BIN = os.path.join(BUILD, "bin")
SBX = os.path.join(BIN, "sbx")
PROBE = os.path.join(BIN, "sbx-probe")
TEST_USER = "sbx-tester"
IS_ROOT = os.geteuid() == 0


def ensure_test_user():
    """An unprivileged account with subordinate ids, as `useradd` makes on Debian."""
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", TEST_USER], check=True)
    pw = pwd.getpwnam(TEST_USER)
    with open("/etc/subuid") as f:
        has_sub = any(line.startswith(TEST_USER + ":") for line in f)
    if not has_sub:
        base = 300000 + (pw.pw_uid % 1000) * 65536
        subprocess.run(["usermod", "--add-subuids", f"{base}-{base + 65535}",
                        "--add-subgids", f"{base}-{base + 65535}", TEST_USER], check=True)
    return pw


def proc_environ_has(pid, needle):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return needle in f.read()
    except OSError:
        return False


class Sbx:
    """One isolated sbx installation: its own SBX_HOME, run as `user` (None = ourselves)."""

    def __init__(self, user=None):
        self.user = user
        self.pw = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
        # Short paths: unix socket paths are limited to 107 bytes.
        self.home = tempfile.mkdtemp(prefix="sbxt", dir="/tmp")
        os.chmod(self.home, 0o700)
        if user:
            os.chown(self.home, self.pw.pw_uid, self.pw.pw_gid)
        self.workspaces = []

    # -- running the CLI -------------------------------------------------------------------
    def cmd(self, *args):
        argv = [SBX, *map(str, args)]
        if self.user:
            # setpriv execs sbx directly (no intermediate process), so signals reach it as they
            # would from the user's own shell.
            argv = ["setpriv", f"--reuid={self.pw.pw_uid}", f"--regid={self.pw.pw_gid}", "--init-groups"] + argv
        return argv

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SBX_")}
        env["SBX_HOME"] = self.home
        env.pop("XDG_RUNTIME_DIR", None)
        if self.user:
            env.update(HOME=self.pw.pw_dir, USER=self.user, LOGNAME=self.user, PATH="/usr/local/bin:/usr/bin:/bin")
        if extra:
            env.update(extra)
        return env

    def run(self, *args, input=None, timeout=120, cwd=None, env=None, check=False):
        p = subprocess.run(self.cmd(*args), input=input, capture_output=True, timeout=timeout,
                           cwd=cwd or (self.workspaces[0] if self.workspaces else self.home),
                           env=self.env(env), text=isinstance(input, str) or input is None)
        if check and p.returncode != 0:
            raise AssertionError(f"sbx {' '.join(map(str, args))} failed ({p.returncode}):\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def ok(self, *args, **kw):
        return self.run(*args, check=True, **kw)

    def json(self, *args):
        return json.loads(self.ok(*args).stdout)

    def popen(self, *args, cwd=None, **kw):
        return subprocess.Popen(self.cmd(*args), cwd=cwd or (self.workspaces[0] if self.workspaces else self.home),
                                env=self.env(), **kw)

    # -- places --------------------------------------------------------------------------------
    def workspace(self, name="proj"):
        d = tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp")
        path = os.path.join(d, name)
        os.mkdir(path)
        if self.user:
            os.chown(d, self.pw.pw_uid, self.pw.pw_gid)
            os.chown(path, self.pw.pw_uid, self.pw.pw_gid)
        self.workspaces.append(path)
        return path

    @property
    def state_dir(self):
        return os.path.join(self.home, "state")

    def daemon_pid(self):
        try:
            with open(os.path.join(self.home, "run", "sbxd.lock")):
                pass
        except OSError:
            return None
        out = subprocess.run(["pgrep", "-x", "sbxd"], capture_output=True, text=True).stdout.split()
        for pid in map(int, out):
            if proc_environ_has(pid, f"SBX_HOME={self.home}".encode()):
                return pid
        return None

    def log(self):
        try:
            with open(os.path.join(self.state_dir, "sbxd.log")) as f:
                return f.read()
        except OSError:
            return ""

    # -- teardown ------------------------------------------------------------------------------
    def processes(self):
        """Every process this instance owns: the daemon and the sandboxes' inits (and their trees)."""
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm == "sbxd" and proc_environ_has(pid, f"SBX_HOME={self.home}".encode()):
                pids.append(int(pid))
        return pids

    def sandbox_inits(self):
        """Inits of this instance's sandboxes ("sbx-init"; spares prepared ahead are "sbx-spare").

        A spare that the daemon is starting carries the binary's name "sbx-init" from execve
        until its first instruction renames it (longer under ASan), so a candidate counts only
        if it still has that name a moment later."""
        found = self.all_inits(names=("sbx-init",))
        if not found:
            return found
        time.sleep(0.3)
        return [p for p in found if _comm(p) == "sbx-init"]

    def all_inits(self, names=("sbx-init", "sbx-spare")):
        """Every init of this instance (found through its re-adoption socket), spares included."""
        sockdir = os.path.join(self.home, "run", "sandboxes")
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() not in names:
                        continue
            except OSError:
                continue
            found.append(int(pid))
        return [p for p in found if self._init_of_ours(p, sockdir)]

    def _init_of_ours(self, pid, sockdir):
        try:
            with open("/proc/net/unix") as f:
                ours = {line.split()[6] for line in f.readlines()[1:]
                        if len(line.split()) >= 8 and line.split()[7].startswith(sockdir)}
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in ours:
                    return True
        except OSError:
            pass
        return False

    def cleanup(self):
        leftovers = []
        if os.path.exists(os.path.join(self.home, "run", "sbxd.sock")):
            self.run("rm", "--all", "-f", timeout=60, cwd=self.home)
            self.run("daemon", "stop", timeout=60, cwd=self.home)
        deadline = time.time() + 10
        while time.time() < deadline and (self.processes() or self.all_inits()):
            time.sleep(0.1)
        for pid in self.processes() + self.all_inits():
            leftovers.append(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        # Sanitizer builds: any report in the daemon's log is a failure.
        log = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                i = log.index(marker)
                raise AssertionError(f"sanitizer report in the daemon log:\n{log[max(0, i - 200):i + 4000]}")
        if IS_ROOT:
            shutil.rmtree(self.home, ignore_errors=True)
            for w in self.workspaces:
                shutil.rmtree(os.path.dirname(w), ignore_errors=True)
        return leftovers


@pytest.fixture
def sbx_root():
    if not IS_ROOT:
        pytest.skip("needs root: this test runs sbx as root")
    s = Sbx()
    yield s
    left = s.cleanup()
    assert not left, f"processes left behind: {left}"


@pytest.fixture
def sbx_user():
    if IS_ROOT:
        ensure_test_user()
        s = Sbx(TEST_USER)
    else:
        s = Sbx()
    yield s
    left = s.cleanup()
    assert not left, f"processes left behind: {left}"


@pytest.fixture(params=["root", "user"])
def sbx(request):
    """The same test as root and as an unprivileged user."""
    if request.param == "root":
        if not IS_ROOT:
            pytest.skip("needs root: this variant runs sbx as root")
        s = Sbx()
    else:
        if IS_ROOT:
            ensure_test_user()
            s = Sbx(TEST_USER)
        else:
            s = Sbx()
    s.mode = request.param
    yield s
    left = s.cleanup()
    assert not left, f"processes left behind: {left}"


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None

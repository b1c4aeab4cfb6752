"""Resource limits (--cpus, --memory, a pids limit) on cgroup v1 and v2, as root and with a
delegated subtree; refused clearly when they cannot be enforced."""
import os
import shutil

import pytest

from conftest import IS_ROOT, TEST_USER, ensure_test_user


def cgroup_file(init_pid, controller, name):
    """Path of a cgroup file of the process, on v1 (per controller) or v2 (unified)."""
    with open(f"/proc/{init_pid}/cgroup") as f:
        lines = [line.strip().split(":", 2) for line in f]
    for hid, ctrls, path in lines:
        if controller in ctrls.split(","):
            mount = f"/sys/fs/cgroup/{controller}" if os.path.isdir(f"/sys/fs/cgroup/{controller}") else \
                f"/sys/fs/cgroup/{ctrls}"
            return os.path.join(mount + path, name)
    for hid, ctrls, path in lines:
        if hid == "0":
            return os.path.join("/sys/fs/cgroup" + path, name)
    raise AssertionError(f"no cgroup for {controller}")


FORK_BOMB = """
import os, signal, time
kids = []
while len(kids) < 6000:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
print(len(kids), flush=True)
for k in kids:
    os.kill(k, signal.SIGKILL)
for k in kids:
    os.waitpid(k, 0)
"""


def read(path):
    with open(path) as f:
        return f.read().strip()


def limits_of(sbx):
    pid = sbx.sandbox_inits()[0]
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    if v2:
        return {"memory": read(cgroup_file(pid, "memory", "memory.max")),
                "cpu": read(cgroup_file(pid, "cpu", "cpu.max")).split()[0],
                "pids": read(cgroup_file(pid, "pids", "pids.max"))}
    return {"memory": read(cgroup_file(pid, "memory", "memory.limit_in_bytes")),
            "cpu": read(cgroup_file(pid, "cpu", "cpu.cfs_quota_us")),
            "pids": read(cgroup_file(pid, "pids", "pids.max"))}


def test_limits_are_applied_as_root(sbx_root):
    sbx = sbx_root
    ws = sbx.workspace()
    sbx.ok("create", "--name", "lim", "-m", "96m", "--cpus", "0.5", ws)
    sbx.ok("start", "lim")
    assert limits_of(sbx) == {"memory": str(96 << 20), "cpu": "50000", "pids": "4096"}
    # A process that wants more memory than allowed is killed; the sandbox lives on.
    p = sbx.run("exec", "lim", "python3", "-c", "x = bytearray(256 << 20); print('survived')")
    assert p.returncode == 137 and "survived" not in p.stdout
    assert sbx.ok("exec", "lim", "echo", "alive").stdout == "alive\n"
    sbx.ok("stop", "-t", "0", "lim")
    # The pids limit (4096 by default) holds a fork bomb.
    sbx.ok("create", "--name", "forks", ws)
    sbx.ok("start", "forks")
    p = sbx.run("exec", "forks", "python3", "-c", FORK_BOMB)
    assert p.returncode == 0, p.stderr
    assert 3000 < int(p.stdout) < 4096


def test_unprivileged_without_delegation_refuses_limits(sbx_user):
    if IS_ROOT and os.path.exists(f"/sys/fs/cgroup/memory/sbx-{sbx_user.pw.pw_uid}"):
        pytest.skip("a delegated cgroup exists for the test user")
    ws = sbx_user.workspace()
    d = sbx_user.json("diagnose", "--json")
    if d["cgroup_version"] != "none":
        pytest.skip("this user has a delegated cgroup subtree")
    sbx_user.ok("create", "--name", "l", "-m", "64m", ws)
    p = sbx_user.run("start", "l")
    assert p.returncode == 69
    assert "cannot enforce --memory/--cpus" in p.stderr and "delegat" in p.stderr
    # Without explicit limits it starts, with the process limit enforced through RLIMIT_NPROC.
    sbx_user.ok("create", "--name", "nolimit", ws)
    sbx_user.ok("start", "nolimit")
    assert sbx_user.ok("exec", "nolimit", "bash", "-c", "ulimit -u").stdout.strip() == "4096"


def test_unprivileged_with_a_delegated_cgroup(sbx_user):
    if not IS_ROOT:
        pytest.skip("needs root to delegate a cgroup subtree to the test user")
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("cgroup v2 delegation is done by systemd (Delegate=yes), not by this test")
    uid, gid = sbx_user.pw.pw_uid, sbx_user.pw.pw_gid
    made = []
    try:
        for ctrl in ("memory", "cpu", "pids", "freezer"):
            base = f"/sys/fs/cgroup/{ctrl}"
            if not os.path.isdir(base):
                continue
            d = f"{base}/sbx-{uid}"
            os.makedirs(d, exist_ok=True)
            made.append(d)
            for root, dirs, files in os.walk(d):
                os.chown(root, uid, gid)
                for f in files:
                    os.chown(os.path.join(root, f), uid, gid)
        ws = sbx_user.workspace()
        sbx_user.ok("create", "--name", "dl", "-m", "80m", "--cpus", "1.5", ws)
        sbx_user.ok("start", "dl")
        assert limits_of(sbx_user) == {"memory": str(80 << 20), "cpu": "150000", "pids": "4096"}
        sbx_user.ok("rm", "-f", "dl")
    finally:
        sbx_user.cleanup()
        for d in made:
            for sub in sorted((os.path.join(d, x) for x in os.listdir(d) if os.path.isdir(os.path.join(d, x))),
                              reverse=True):
                os.rmdir(sub)
            os.rmdir(d)

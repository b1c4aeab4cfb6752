"""The sandbox lifecycle as a user drives it: run, create, ls, exec, stop, start, rm, prune -
as root and as an unprivileged user."""
import json
import os
import signal
import subprocess
import time

import pytest


def test_run_rm_returns_the_exit_code_and_leaves_nothing(sbx):
    ws = sbx.workspace()
    p = sbx.run("run", "--rm", "shell", "--", "sh", "-c", "echo hello from $(hostname); exit 3", cwd=ws)
    assert p.returncode == 3, p.stderr
    assert "hello from shell-proj" in p.stdout
    assert sbx.json("ls", "--json") == []
    assert os.listdir(os.path.join(sbx.state_dir, "sandboxes")) == []


def test_default_name_ls_and_json(sbx):
    ws = sbx.workspace("My Project")
    sbx.ok("create", "shell", cwd=ws)
    sbx.ok("create", "claude", ws, "--name", "second")
    listing = sbx.json("ls", "--json")
    names = [s["name"] for s in listing]
    assert names == ["shell-my-project", "second"]
    first = listing[0]
    assert first["agent"] == "shell" and first["state"] == "created" and first["isolation"] == "ns"
    assert first["workspaces"] == [{"path": ws, "ro": False}]
    assert listing[1]["agent"] == "claude"
    assert sbx.ok("ls", "-q").stdout.split() == names
    table = sbx.ok("ls").stdout.splitlines()
    assert table[0].split()[:4] == ["SANDBOX", "AGENT", "STATUS", "ISOLATION"]
    assert "shell-my-project" in table[1] and ws in table[1]


def test_exec_streams_stdout_and_stderr_separately_and_feeds_stdin(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "s1", ws)
    sbx.ok("start", "s1")
    p = sbx.run("exec", "s1", "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (p.returncode, p.stdout, p.stderr) == (5, "out\n", "err\n")
    p = sbx.run("exec", "-i", "s1", "sh", "-c", "tr a-z A-Z; echo done", input="piped data\n")
    assert p.returncode == 0 and p.stdout == "PIPED DATA\ndone\n"
    # Without -i the process gets no stdin (EOF at once), like docker exec.
    p = sbx.run("exec", "s1", "cat", input="ignored")
    assert p.returncode == 0 and p.stdout == ""
    big = "x" * (4 << 20)
    p = sbx.run("exec", "-i", "s1", "wc", "-c", input=big)
    assert p.stdout.strip() == str(len(big))


def test_workspace_at_same_path_owned_by_invoking_user(sbx):
    ws = sbx.workspace()
    with open(os.path.join(ws, "from-host.txt"), "w") as f:
        f.write("host data\n")
    if sbx.user:
        os.chown(os.path.join(ws, "from-host.txt"), sbx.pw.pw_uid, sbx.pw.pw_gid)
    p = sbx.run("run", "--rm", "shell", ws, "--", "sh", "-c",
                "pwd; cat from-host.txt; echo agent > made-inside.txt; mkdir sub; id -un; stat -c %U from-host.txt")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [ws, "host data", "agent", "agent"]
    st = os.stat(os.path.join(ws, "made-inside.txt"))
    assert (st.st_uid, st.st_gid) == (sbx.pw.pw_uid, sbx.pw.pw_gid)
    assert os.stat(os.path.join(ws, "sub")).st_uid == sbx.pw.pw_uid


def test_read_only_and_multiple_workspaces(sbx):
    rw = sbx.workspace("rw")
    ro = sbx.workspace("ro")
    with open(os.path.join(ro, "data"), "w") as f:
        f.write("ro data")
    p = sbx.run("run", "--rm", "shell", rw, ro + ":ro", "--", "sh", "-c",
                f"cat {ro}/data; touch {ro}/x 2>&1; echo ok > {rw}/y && echo wrote")
    assert p.returncode == 0, p.stderr
    assert "ro data" in p.stdout and "Read-only file system" in p.stdout and "wrote" in p.stdout
    assert not os.path.exists(os.path.join(ro, "x"))


def test_state_persists_across_stop_and_start(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "keep", ws)
    sbx.ok("start", "keep")
    sbx.ok("exec", "keep", "sh", "-c", "echo remember-me > ~/note; mkdir -p ~/.cache/x")
    if sbx.mode == "root" or sbx.user or True:
        r = sbx.run("exec", "-u", "root", "keep", "sh", "-c",
                    "mkdir -p /usr/local/share/sbxtest && echo installed > /usr/local/share/sbxtest/f && "
                    "echo etc > /etc/sbxtest.conf && echo opt > /opt/tool")
        assert r.returncode == 0, r.stderr
    sbx.ok("stop", "keep")
    assert sbx.json("ls", "--json")[0]["state"] == "stopped"
    sbx.ok("start", "keep")
    p = sbx.ok("exec", "keep", "sh", "-c",
               "cat ~/note /usr/local/share/sbxtest/f /etc/sbxtest.conf /opt/tool; ls -d ~/.cache/x")
    assert p.stdout.split() == ["remember-me", "installed", "etc", "opt", "/home/agent/.cache/x"]
    # Nothing of it reached the host.
    assert not os.path.exists("/usr/local/share/sbxtest") and not os.path.exists("/etc/sbxtest.conf")


def test_stop_ends_every_process(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "busy", ws)
    sbx.ok("start", "busy")
    sbx.ok("exec", "-d", "busy", "sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000")
    sbx.ok("exec", "-d", "busy", "sleep", "1001")
    inits = sbx.sandbox_inits()
    assert len(inits) == 1
    out = sbx.ok("exec", "busy", "ps", "-eo", "args").stdout
    assert len([line for line in out.splitlines() if line.startswith("sleep 100")]) == 3
    t0 = time.time()
    sbx.ok("stop", "-t", "1", "busy")
    assert time.time() - t0 < 8
    assert sbx.sandbox_inits() == []
    for pid in inits:
        assert not os.path.exists(f"/proc/{pid}")
    assert sbx.json("ls", "--json")[0]["state"] == "stopped"


def test_sandboxes_outlive_the_cli(sbx):
    ws = sbx.workspace()
    p = sbx.run("run", "-d", "--name", "bg", "shell", ws, "--", "sh", "-c", "echo started > /tmp/marker; sleep 1000")
    assert p.returncode == 0, p.stderr
    time.sleep(0.3)
    q = sbx.ok("exec", "bg", "sh", "-c", "cat /tmp/marker; pgrep -x sleep >/dev/null && echo sleeping")
    assert q.stdout.split() == ["started", "sleeping"]
    assert sbx.json("ls", "--json")[0]["state"] == "running"


def test_rm_removes_every_trace(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "gone", ws)
    sbx.ok("start", "gone")
    sbx.ok("exec", "-u", "root", "gone", "sh", "-c", "echo x > /usr/local/bin/tool; echo y > /etc/z; apt-get --version >/dev/null || true")
    sbx.ok("exec", "gone", "sh", "-c", "mkdir -p ~/deep/a/b && echo z > ~/deep/a/b/c")
    sid = sbx.json("ls", "--json")[0]["id"]
    assert sbx.run("rm", "gone").returncode == 73  # running: needs -f
    sbx.ok("rm", "-f", "gone")
    assert sbx.json("ls", "--json") == []
    assert not os.path.exists(os.path.join(sbx.state_dir, "sandboxes", sid))
    assert not os.path.exists(os.path.join(sbx.home, "run", "sandboxes", sid + ".sock"))
    for ctrl in ("memory", "pids", "cpu"):
        assert not os.path.exists(f"/sys/fs/cgroup/{ctrl}/sbx/{sid}")
    assert os.path.isdir(ws)  # the workspace is the user's, never removed


def test_prune_removes_only_stopped(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "a", ws)
    sbx.ok("create", "--name", "b", ws)
    sbx.ok("start", "b")
    assert sbx.ok("prune").stdout.split() == ["a"]
    assert [s["name"] for s in sbx.json("ls", "--json")] == ["b"]


def test_env_options(sbx):
    ws = sbx.workspace()
    envfile = os.path.join(ws, "vars.env")
    with open(envfile, "w") as f:
        f.write("# comment\nFROM_FILE=file value\n\nexport EXPORTED=yes\n")
    p = sbx.run("run", "--rm", "-e", "ONE=1", "-e", "TWO=2=two", "--env-file", envfile, "shell", ws, "--", "sh", "-c",
                "echo $ONE $TWO $FROM_FILE $EXPORTED $HOME $USER $SBX_SANDBOX")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1 2=two file value yes /home/agent agent shell-proj"
    sbx.ok("create", "--name", "e", "-e", "A=from-create", ws)
    sbx.ok("start", "e")
    assert sbx.ok("exec", "e", "sh", "-c", "echo $A").stdout == "from-create\n"
    assert sbx.ok("exec", "-e", "A=override", "e", "sh", "-c", "echo $A").stdout == "override\n"
    assert sbx.ok("exec", "-w", "/tmp", "e", "pwd").stdout == "/tmp\n"


def test_exec_as_root_is_not_host_root(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "r", ws)
    sbx.ok("start", "r")
    p = sbx.ok("exec", "-d", "-u", "root", "r", "sleep", "1000")
    time.sleep(0.3)
    assert sbx.ok("exec", "-u", "root", "r", "id", "-u").stdout == "0\n"
    # Find the sleeping process on the host and look at its real credentials there.
    host_uids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() != b"sleep\x001000\x00":
                    continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        host_uids.append([int(x) for x in line.split()[1:]])
        except OSError:
            pass
    assert host_uids, "the sandboxed process was not found on the host"
    for uids in host_uids:
        assert 0 not in uids, f"root inside the sandbox is root on the host: {uids}"
        if not sbx.user:
            assert uids[0] >= 65536


def test_agent_not_installed_explains_how(sbx):
    ws = sbx.workspace()
    p = sbx.run("run", "--rm", "claude", ws)
    assert p.returncode == 127
    assert "claude" in p.stderr and "not installed" in p.stderr
    assert "npm install -g @anthropic-ai/claude-code" in p.stderr


def test_signals_are_forwarded_without_a_terminal(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "sig", ws)
    sbx.ok("start", "sig")
    proc = sbx.popen("exec", "sig", "sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; sleep 1000 & wait",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 42, err
    assert "got-term" in out


def test_version_and_diagnose(sbx):
    assert sbx.ok("version").stdout.startswith("sbx ")
    d = sbx.json("diagnose", "--json")
    ns = [b for b in d["backends"] if b["name"] == "ns"][0]
    assert ns["works"] is True
    assert d["landlock_abi"] >= 1
    assert d["idmap"] in ("root", "subuid", "single")

"""Bad input and faults: each gets a clear message naming the problem and the fix, and a distinct
exit code (documented in the README):
    64 usage   65 invalid value   66 missing input   67 no such sandbox   69 unsupported here
    73 conflict (exists / wrong state)   75 daemon unreachable   77 permission   126/127 command"""
import os

import pytest


def test_unknown_sandbox(sbx):
    for args in (("exec", "nope", "true"), ("stop", "nope"), ("start", "nope"), ("rm", "nope")):
        p = sbx.run(*args)
        assert p.returncode == 67, (args, p.stderr)
        assert "no sandbox named 'nope'" in p.stderr and "sbx ls" in p.stderr


def test_duplicate_name(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "dup", ws)
    p = sbx.run("create", "--name", "dup", ws)
    assert p.returncode == 73 and "already exists" in p.stderr and "sbx rm dup" in p.stderr


def test_workspace_missing_or_a_file(sbx):
    ws = sbx.workspace()
    p = sbx.run("create", os.path.join(ws, "missing"))
    assert p.returncode == 66 and "does not exist" in p.stderr
    f = os.path.join(ws, "file")
    open(f, "w").close()
    p = sbx.run("create", f)
    assert p.returncode == 66 and "not a directory" in p.stderr


def test_system_directory_is_not_a_workspace(sbx):
    p = sbx.run("create", "/etc")
    assert p.returncode == 65 and "system directory" in p.stderr
    p = sbx.run("create", "/proc/self")
    assert p.returncode in (65, 66)


def test_bad_values(sbx):
    ws = sbx.workspace()
    cases = [
        (("create", "-m", "lots", ws), "invalid size 'lots'"),
        (("create", "-m", "1k", ws), "too small"),
        (("create", "--cpus", "-1", ws), "invalid CPU count"),
        (("create", "--cpus", "0", ws), "invalid CPU count"),
        (("create", "--name", "bad/name", ws), "invalid sandbox name"),
        (("create", "-e", "=x", ws), "KEY=VALUE"),
        (("run", "frobnicator"), "unknown agent 'frobnicator'"),
    ]
    for args, msg in cases:
        p = sbx.run(*args)
        assert p.returncode == 65, (args, p.returncode, p.stderr)
        assert msg in p.stderr, (args, p.stderr)
    assert sbx.json("ls", "--json") == []  # nothing half-created


def test_usage_errors(sbx):
    for args in (("exec",), ("exec", "only-sandbox"), ("stop",), ("rm",), ("frobnicate",), ("ls", "--bogus"),
                 ("create", "--rm")):
        p = sbx.run(*args)
        assert p.returncode == 64, (args, p.stderr)
        assert "usage" in p.stderr or "unknown command" in p.stderr


def test_wrong_state(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "s", ws)
    p = sbx.run("exec", "s", "true")
    assert p.returncode == 73 and "not running" in p.stderr and "sbx start s" in p.stderr


def test_command_not_found_and_not_executable(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "c", ws)
    sbx.ok("start", "c")
    p = sbx.run("exec", "c", "no-such-command")
    assert p.returncode == 127 and "command not found" in p.stderr
    open(os.path.join(ws, "notexec"), "w").close()
    if sbx.user:
        os.chown(os.path.join(ws, "notexec"), sbx.pw.pw_uid, sbx.pw.pw_gid)
    p = sbx.run("exec", "c", "./notexec")
    assert p.returncode == 126, p.stderr
    p = sbx.run("exec", "-w", "/nonexistent", "c", "true")
    assert p.returncode != 0 and "/nonexistent" in p.stderr


def test_workspace_removed_after_create(sbx):
    ws = sbx.workspace()
    sbx.ok("create", "--name", "w", ws)
    os.rmdir(ws)
    p = sbx.run("start", "w", cwd=sbx.home)
    assert p.returncode == 66 and "is gone" in p.stderr


def test_daemon_unreachable_without_autostart(sbx):
    p = sbx.run("daemon", "status")
    assert p.returncode == 3 and "not running" in p.stdout

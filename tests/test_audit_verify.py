"""`sbx audit verify`: the audit log's hash chain, end to end. Real records from a sandbox's DNS
lookups pass; a row edited or removed behind the daemon's back (with the daemon stopped, as
someone with access to the state directory would) is reported, naming the row."""
import json
import os
import subprocess
import time

SCRIPT = ("import json, sqlite3, sys\n"
          "db = sqlite3.connect(sys.argv[1], timeout=10)\n"
          "out = [list(r) for r in db.execute(sys.argv[2], json.loads(sys.argv[3]))]\n"
          "db.commit()\n"
          "print(json.dumps(out))\n")


def db_sql(sbx, sql, params=()):
    """Runs one statement on the instance's database as its user (so the files stay theirs)."""
    argv = ["/usr/bin/python3", "-c", SCRIPT, os.path.join(sbx.state_dir, "sbx.db"), sql, json.dumps(list(params))]
    if sbx.user:
        argv = ["setpriv", f"--reuid={sbx.pw.pw_uid}", f"--regid={sbx.pw.pw_gid}", "--init-groups"] + argv
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return json.loads(p.stdout)


def verify(sbx):
    p = sbx.run("audit", "verify")
    return p.returncode, p.stdout + p.stderr


def test_audit_verify(sbx):
    ws = sbx.workspace()
    sbx.ok("policy", "init", "deny-all")
    sbx.ok("create", "--name", "aud", ws)
    sbx.ok("start", "aud")
    # Each lookup goes to the proxy's DNS and is logged (denied: the policy allows nothing).
    sbx.run("exec", "aud", "sh", "-c",
            "for h in one.example two.example three.example four.example; do getent hosts $h; done; true",
            timeout=60)
    end = time.time() + 10
    while True:
        recs = sbx.json("policy", "log", "--raw", "--json", "--limit", "2000")
        recs = recs if isinstance(recs, list) else recs.get("records", [])
        if len(recs) >= 3 or time.time() > end:
            break
        time.sleep(0.2)
    assert len(recs) >= 3, f"expected DNS records in the log, got {recs}"

    rc, out = verify(sbx)
    assert rc == 0, out
    assert out.startswith("Audit log intact: ") and "hash-chained" in out, out
    res = sbx.json("audit", "verify", "--json")
    assert res["intact"] is True and res["chained"] >= 3 and res["bad_id"] is None, res
    assert len(res["last_hash"]) == 64, res

    sbx.ok("stop", "aud")
    sbx.ok("daemon", "stop")
    ids = [r[0] for r in db_sql(sbx, "SELECT id FROM audit ORDER BY id")]
    assert len(ids) >= 3, ids
    target = ids[1]
    (host, decision), = db_sql(sbx, "SELECT host, decision FROM audit WHERE id = ?", [target])

    # An edited row: a denial made to look like something else.
    db_sql(sbx, "UPDATE audit SET host = ?, decision = ? WHERE id = ?",
           ["harmless.example", "approved" if decision == "denied" else "denied", target])
    rc, out = verify(sbx)
    assert rc == 1, out
    assert out.startswith("Audit log TAMPERED: ") and f"row {target} was changed" in out, out

    # Put back exactly as it was: intact again (the hash is over the content, nothing else).
    sbx.ok("daemon", "stop")
    db_sql(sbx, "UPDATE audit SET host = ?, decision = ? WHERE id = ?", [host, decision, target])
    rc, out = verify(sbx)
    assert rc == 0, out

    # A removed row: the one after it says where.
    sbx.ok("daemon", "stop")
    db_sql(sbx, "DELETE FROM audit WHERE id = ?", [target])
    rc, out = verify(sbx)
    assert rc == 1, out
    assert f"a row between {ids[0]} and {ids[2]} was removed" in out, out
    res = json.loads(sbx.run("audit", "verify", "--json").stdout)  # exit code 1: not sbx.json
    assert res["intact"] is False and res["bad_id"] == ids[2], res


def test_audit_verify_usage(sbx):
    p = sbx.run("audit", "verify", "extra")
    assert p.returncode == 64 and "unexpected argument" in p.stderr, p.stderr
    p = sbx.run("audit")
    assert p.returncode == 64, p.stderr
    p = sbx.run("audit", "verify", "--help")
    assert p.returncode == 0 and "Exit codes" in p.stdout, p.stdout

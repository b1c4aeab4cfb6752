"""AWS without keys in the sandbox: the AWS CLI inside holds dummy keys (sbx's placeholders); the
proxy re-signs each request to *.amazonaws.com with the real keys. A local mock AWS endpoint
verifies every signature with botocore's own signer and the real keys, and refuses anything
signed otherwise."""
import json
import os
import shutil
import tempfile

import pytest

from conftest import IS_ROOT, Sbx

REAL_AKID = "AKIAREALKEY000000001"
REAL_SECRET = "realSecretKey/0123456789abcdefghijklmnopqrs"
REAL_TOKEN = "FwoGZXIvYXdzEREAL//token+with/slashes=="
HOSTS = ["ce.us-east-1.amazonaws.com", "cloudformation.eu-west-1.amazonaws.com"]


def _botocore():
    try:
        import botocore  # noqa: F401
        return True
    except ImportError:
        return False


class Aws:
    def __init__(self, token):
        from netfix import AwsMock, make_ca
        self.sbx = Sbx()
        self.tmp = tempfile.mkdtemp(prefix="sbxaws")
        ca, cert, key = make_ca(self.tmp, HOSTS)
        self.mock = AwsMock((cert, key), REAL_AKID, REAL_SECRET, token)
        self.ws = self.sbx.workspace("awsws")
        self.test_ca = os.path.join(self.ws, "test-ca.pem")  # for the opaque tunnel without a secret
        shutil.copy(ca, self.test_ca)
        os.chmod(self.test_ca, 0o644)
        cfg = os.path.join(self.sbx.home, "config")
        os.makedirs(cfg)
        with open(os.path.join(cfg, "config.json"), "w") as f:
            json.dump({"network": {"resolve": [f"{h}:443:127.0.0.1:{self.mock.port}" for h in HOSTS],
                                   "ca_bundle": ca}}, f)
        self.sbx.ok("policy", "init", "deny-all")
        self.sbx.ok("policy", "allow", "network", ",".join(HOSTS))
        self.value = f"{REAL_AKID}:{REAL_SECRET}" + (f":{token}" if token else "")
        self.sbx.ok("secret", "set", "aws", "-g", input=self.value + "\n")
        self.sbx.ok("create", "--name", "aws", self.ws)
        self.sbx.ok("start", "aws")

    def aws(self, *args, env=()):
        extra = []
        for e in env:
            extra += ["-e", e]
        return self.sbx.run("exec", "-e", "AWS_PAGER=", "-e", "AWS_DEFAULT_REGION=us-east-1", *extra, "aws", "aws",
                            *args, timeout=120)

    def close(self):
        self.mock.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        assert not self.sbx.cleanup()


@pytest.fixture(scope="module", params=["keys", "session-token"])
def env(request):
    if not IS_ROOT:
        pytest.skip("needs root: binds test servers")
    if not shutil.which("aws", path="/usr/bin:/bin"):
        pytest.skip("the AWS CLI (Debian awscli) is not installed")
    if not _botocore():
        pytest.skip("botocore (Debian python3-botocore) is not installed for the mock's signature checks")
    a = Aws(REAL_TOKEN if request.param == "session-token" else None)
    yield a
    a.close()


def test_the_sandbox_has_only_dummy_keys(env):
    out = env.sbx.ok("exec", "aws", "env").stdout
    assert REAL_SECRET not in out and REAL_AKID not in out
    akid = [l.split("=", 1)[1] for l in out.splitlines() if l.startswith("AWS_ACCESS_KEY_ID=")]
    assert akid and akid[0].startswith("AKIA") and akid[0] != REAL_AKID


def test_cost_explorer_call_is_resigned(env):
    p = env.aws("ce", "get-cost-and-usage", "--time-period", "Start=2026-10-01,End=2026-11-01",
                "--granularity", "MONTHLY", "--metrics", "BlendedCost")
    assert p.returncode == 0, p.stdout + p.stderr
    assert env.mock.refused == [], env.mock.refused
    got = env.mock.requests[-1]
    assert got["headers"]["X-Amz-Target"].endswith("GetCostAndUsage")
    assert REAL_AKID in got["headers"]["Authorization"]


def test_cloudformation_query_protocol_in_another_region(env):
    p = env.aws("cloudformation", "describe-stacks", "--region", "eu-west-1")
    assert p.returncode == 0, p.stdout + p.stderr
    got = env.mock.requests[-1]
    assert "Action=DescribeStacks" in got["body"]
    assert "/eu-west-1/cloudformation/" in got["headers"]["Authorization"]


def test_the_log_records_each_call(env):
    recs = env.sbx.json("policy", "log", "--raw", "--json", "--limit", "2000")
    recs = recs if isinstance(recs, list) else recs.get("records", [])
    ce = [r for r in recs if r["host"] == HOSTS[0] and r["method"] == "POST"]
    assert ce and ce[-1]["decision"] == "allowed" and ce[-1]["status"] == 200


def test_without_the_secret_the_mock_refuses(env):
    env.sbx.ok("secret", "rm", "aws", "-g")
    try:
        n = len(env.mock.refused)
        # No secret: nothing is re-signed (the TLS is opened only for the review classifiers),
        # and an agent with keys of its own making reaches the endpoint with them as they are -
        # and is refused.
        p = env.aws("ce", "get-cost-and-usage", "--time-period", "Start=2026-10-01,End=2026-11-01",
                    "--granularity", "MONTHLY", "--metrics", "BlendedCost",
                    env=["AWS_ACCESS_KEY_ID=AKIAAGENTMADEUP00000", "AWS_SECRET_ACCESS_KEY=madeup"])
        assert p.returncode != 0
        assert len(env.mock.refused) > n
    finally:
        env.sbx.ok("secret", "set", "aws", "-g", input=env.value + "\n")

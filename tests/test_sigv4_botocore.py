"""SigV4 re-signing (src/daemon/sigv4.c) checked against botocore, the AWS SDK for Python.

Each case plays the proxy's part: botocore signs a request with dummy keys, as the agent's SDK
would; the C signer (build/tests/test_sigv4 --sign) reads that Authorization header for its scope
and signed headers and signs the request the agent sent again with the real keys. The result
must be exactly what botocore writes when it signs the same request with the real keys itself.
Session tokens are crossed both ways (the agent has one and the real keys do not, and the
reverse). Needs botocore for /usr/bin/python3 (Debian: python3-botocore); skipped without it.
"""
import datetime
import hashlib
import os
import subprocess
from unittest import mock
from urllib.parse import urlsplit

import pytest

from conftest import BUILD

pytest.importorskip("botocore", reason="botocore is not installed (apt-get install python3-botocore)")

from botocore.auth import S3SigV4Auth, SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.compat import HTTPHeaders  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.utils import percent_encode_sequence  # noqa: E402

SIGNER = os.path.join(BUILD, "tests", "test_sigv4")
WHEN = datetime.datetime(2024, 2, 29, 23, 59, 58)

AGENT = Credentials("AKIAPROXYMANAGEDXXXX", "proxy-managed")
AGENT_TOKEN = Credentials("ASIAPROXYMANAGEDXXXX", "proxy-managed", "proxy-managed-session-token")
REAL = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
REAL_TOKEN = Credentials("ASIAIOSFODNN7EXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
                         "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+Token/Value==")

JSON = "application/x-amz-json-1.1"
FORM = "application/x-www-form-urlencoded; charset=utf-8"

# name: (method, url, headers, body, params, service, region, s3)
CASES = {
    "ce-get-cost-and-usage": (
        "POST", "https://ce.us-east-1.amazonaws.com/",
        [("Content-Type", JSON), ("X-Amz-Target", "AWSInsightsIndexService.GetCostAndUsage"),
         ("User-Agent", "aws-cli/2 (unsigned)")],
        b'{"TimePeriod":{"Start":"2024-01-01","End":"2024-02-01"},"Granularity":"MONTHLY","Metrics":["UnblendedCost"]}',
        None, "ce", "us-east-1", False),
    "sts-get-caller-identity": (
        "POST", "https://sts.amazonaws.com/", [("Content-Type", FORM)],
        b"Action=GetCallerIdentity&Version=2011-06-15", None, "sts", "us-east-1", False),
    "cloudformation-query-encoding": (
        "GET", "https://cloudformation.eu-west-1.amazonaws.com/", [],
        b"", [("Action", "DescribeStacks"), ("Version", "2010-05-15"),
              ("StackName", "arn:aws:cloudformation:eu-west-1:123456789012:stack/my-stack/*"),
              ("NextToken", "a~b/c+d=e&f"), ("Filter", "\u00fcber"), ("Empty", "")],
        "cloudformation", "eu-west-1", False),
    "execute-api-path-normalised": (
        "GET", "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/a/./b/../c//d%20e/%7Euser",
        [("Accept", "application/json")], b"", None, "execute-api", "eu-west-1", False),
    "headers-whitespace-and-repeats": (
        "POST", "https://dynamodb.eu-central-1.amazonaws.com/",
        [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "DynamoDB_20120810.ListTables"),
         ("X-Custom", "  a   b\t\tc  "), ("X-Repeat", "one"), ("X-Repeat", " two ")],
        b"{}", None, "dynamodb", "eu-central-1", False),
    "s3-get-object-key-as-sent": (
        "GET", "https://bucket.s3.eu-west-1.amazonaws.com/dir/my%20key%2Bplus~%24%28x%29.txt?versionId=3%2F4",
        [("Range", "bytes=0-99")], b"", None, "s3", "eu-west-1", True),
    "s3-list-path-style": (
        "GET", "https://s3.us-west-2.amazonaws.com/bucket",
        [], b"", [("list-type", "2"), ("prefix", "a/b c"), ("delimiter", "/"), ("encoding-type", "url")],
        "s3", "us-west-2", True),
    "s3-put-dot-segments-kept": (
        "PUT", "https://s3.amazonaws.com/bucket/a/../b/./c//d",
        [("Content-Type", "text/plain")], b"hello", None, "s3", "us-east-1", True),
}

TOKENS = {
    "no-tokens": (AGENT, REAL),
    "real-token-added": (AGENT, REAL_TOKEN),
    "agent-token-replaced": (AGENT_TOKEN, REAL_TOKEN),
    "agent-token-dropped": (AGENT_TOKEN, REAL),
}


def botocore_sign(case, creds):
    method, url, headers, body, params, service, region, s3 = case
    h = HTTPHeaders()
    for k, v in headers:
        h[k] = v
    req = AWSRequest(method=method, url=url, data=body, headers=h, params=params or {})
    auth = (S3SigV4Auth if s3 else SigV4Auth)(creds, service, region)
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = WHEN
        auth.add_auth(req)
    return req, auth


def c_sign(agent_req, agent_auth_value, real, s3):
    """The proxy's part: re-sign the request as the agent sent it."""
    prepared = agent_req.prepare()  # for the body
    parts = urlsplit(agent_req.url)
    # The query as botocore's serialisers put it on the wire (percent_encode_sequence: a space is
    # %20). AWSRequest.prepare() would use urlencode, which writes '+', a form botocore never sends.
    query = percent_encode_sequence(agent_req.params) if agent_req.params else parts.query
    # the request's own headers: prepare() folds repeated ones into one
    headers = [(k, v) for k, v in agent_req.headers.items() if k.lower() != "authorization"]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.append(("Host", parts.netloc))
    payload = dict((k.lower(), v) for k, v in headers).get("x-amz-content-sha256") \
        or hashlib.sha256(prepared.body or b"").hexdigest()
    lines = [f"authorization {agent_auth_value}", f"method {prepared.method}", f"path {parts.path or '/'}"]
    if query:
        lines.append(f"query {query}")
    lines += [f"header {k}:{v}" for k, v in headers]
    lines += [f"payload {payload}", f"access_key {real.access_key}", f"secret_key {real.secret_key}",
              f"amz_date {WHEN.strftime('%Y%m%dT%H%M%SZ')}", f"s3 {1 if s3 else 0}"]
    if real.token:
        lines.append(f"session_token {real.token}")
    p = subprocess.run([SIGNER, "--sign"], input="\n".join(lines) + "\n", capture_output=True, text=True,
                       timeout=60)
    return p


def test_signer_was_built():
    assert os.access(SIGNER, os.X_OK), f"{SIGNER} is missing: run `make` first"


@pytest.mark.parametrize("tokens", sorted(TOKENS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_resign_matches_botocore(name, tokens):
    case = CASES[name]
    agent_creds, real_creds = TOKENS[tokens]
    agent_req, _ = botocore_sign(case, agent_creds)
    real_req, real_auth = botocore_sign(case, real_creds)
    want = real_req.headers["Authorization"]

    p = c_sign(agent_req, agent_req.headers["Authorization"], real_creds, case[7])
    assert p.returncode == 0, f"the C signer refused: {p.stderr}"
    got, _, c_canonical = p.stdout.partition("\n")
    del real_req.headers["Authorization"]  # botocore would sign it too when asked again
    assert got == want, (
        f"C signer:  {got}\nbotocore:  {want}\n"
        f"--- botocore canonical request:\n{real_auth.canonical_request(real_req)}\n"
        f"--- C canonical request:\n{c_canonical}")
    assert real_creds.secret_key not in p.stdout + p.stderr


def test_refusal_is_reported():
    """A signed header that the request does not carry: exit 1 and a message, no header."""
    agent_req, _ = botocore_sign(CASES["sts-get-caller-identity"], AGENT)
    auth = agent_req.headers["Authorization"].replace("SignedHeaders=", "SignedHeaders=accept;")
    p = c_sign(agent_req, auth, REAL, False)
    assert p.returncode == 1 and not p.stdout
    assert "signed header accept is not in the request" in p.stderr

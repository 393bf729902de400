"""No secret in logs: everything eks-reaper writes (stdout, stderr, the Lambda response and
the emulator's capture of the function's output), at RUST_LOG=debug and trace, in text and
JSON, on success and on failure paths, must contain neither the AWS secret key nor the EKS
bearer token.

The token is `k8s-aws-v1.` + base64url of a presigned URL whose secret part is its SigV4
signature. Besides the prefix and the URL's markers, the test computes the signature the
reaper would have produced for every second of each run (SigV4 by hand, checked against
the product's golden vector and against the live apiserver) and looks for each.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
from urllib.parse import quote

import requests

from . import faultlib as fl

PREFIX = "k8s-aws-v1."


# ---- the token, computed independently -----------------------------------------------------

def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def presigned_query(access_key: str, secret_key: str, region: str, cluster: str,
                    when: dt.datetime) -> tuple[str, str]:
    """(canonical query string, signature) of the presigned STS GetCallerIdentity URL an
    EKS token carries: X-Amz-Expires=60, signed headers host;x-k8s-aws-id, payload hash of
    the empty body."""
    amz_date = when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{region}/sts/aws4_request"
    host = f"sts.{region}.amazonaws.com"
    params = {"Action": "GetCallerIdentity", "Version": "2011-06-15",
              "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
              "X-Amz-Credential": f"{access_key}/{scope}", "X-Amz-Date": amz_date,
              "X-Amz-Expires": "60", "X-Amz-SignedHeaders": "host;x-k8s-aws-id"}
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                     for k, v in sorted(params.items()))
    canonical = "\n".join(["GET", "/", query, f"host:{host}", f"x-k8s-aws-id:{cluster}", "",
                           "host;x-k8s-aws-id", hashlib.sha256(b"").hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret_key).encode(), amz_date[:8])
    for part in (region, "sts", "aws4_request"):
        key = _hmac(key, part)
    return query, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def token(access_key, secret_key, region, cluster, when) -> tuple[str, str]:
    query, sig = presigned_query(access_key, secret_key, region, cluster, when)
    url = f"https://sts.{region}.amazonaws.com/?{query}&X-Amz-Signature={sig}"
    return PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("="), sig


def test_signature_matches_the_products_golden_vector():
    # The vector in src/eks/token.rs (computed there independently as well).
    _, sig = presigned_query("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                             "eu-west-1", "etl",
                             dt.datetime(2026, 11, 28, 21, 0, 0, tzinfo=dt.timezone.utc))
    assert sig == "1e007ceb2db55a18c5f9e716fd7ba59644fc96773921ba4522cf95e5163e9694"


def test_computed_token_is_accepted_by_the_cluster(env, namespace):
    """So the signatures searched for below are real tokens, not look-alikes."""
    tok, _ = token(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_REGION"],
                   env["TESTBED_CLUSTER"], dt.datetime.now(dt.timezone.utc))
    r = requests.get(f"{env['TESTBED_APISERVER']}/apis/batch/v1/namespaces/{namespace}/jobs",
                     headers={"Authorization": f"Bearer {tok}"}, verify=env["TESTBED_CA_FILE"],
                     timeout=10)
    assert r.status_code == 200, r.text


# ---- the runs --------------------------------------------------------------------------------

class Capture:
    """All text the runs produced, and the signatures of every token they could have made."""

    def __init__(self, env):
        self.env = env
        self.texts: list[tuple[str, str]] = []
        self.signatures: dict[str, str] = {}

    def window(self, label: str, creds: dict[str, str], t0: float, t1: float) -> None:
        for second in range(int(t0) - 2, int(t1) + 3):
            when = dt.datetime.fromtimestamp(second, dt.timezone.utc)
            _, sig = presigned_query(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"],
                                     self.env["AWS_REGION"], self.env["TESTBED_CLUSTER"], when)
            self.signatures[sig] = f"{label} token signed at {when:%H:%M:%S}"

    def cli(self, label: str, args: list[str], extra: dict[str, str], creds: dict[str, str],
            json_logs: bool) -> fl.Run:
        t0 = time.time()
        run = fl.run_cli(self.env, args, {**extra, **creds}, json_logs=json_logs)
        self.window(label, creds, t0, time.time())
        self.texts += [(f"{label}: stdout", run.stdout), (f"{label}: stderr", run.stderr)]
        return run


def test_no_secret_key_or_token_in_any_output(env, kube, namespace):
    # GIVEN due objects, so deletions (and their log lines) happen
    s = fl.seed(kube, namespace, due_jobs=10, due_pods=2)
    reaper = {"AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
              "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]}
    norbac = {"AWS_ACCESS_KEY_ID": env["TESTBED_NORBAC_ACCESS_KEY_ID"],
              "AWS_SECRET_ACCESS_KEY": env["TESTBED_NORBAC_SECRET_ACCESS_KEY"]}
    cap = Capture(env)
    cluster = env["TESTBED_CLUSTER"]
    # WHEN the reaper runs at trace and debug, text and JSON, on every path we can reach:
    # a full run with deletions, a run refused by RBAC, an unknown cluster
    full = cap.cli("cli trace text", fl.cli_args(cluster, namespace), {"RUST_LOG": "trace"},
                   reaper, json_logs=False)
    fl.require(full.rc == 0 and full.cluster["jobs"]["deleted"] == len(s.due_jobs),
               f"the traced run did not prune:\n{full.describe()}")
    cap.cli("cli trace json forbidden", fl.cli_args(cluster, namespace),
            {"RUST_LOG": "trace"}, norbac, json_logs=True)
    cap.cli("cli debug json", fl.cli_args(cluster, namespace), {"RUST_LOG": "debug"}, reaper,
            json_logs=True)
    cap.cli("cli trace unknown cluster", fl.cli_args("no-such-cluster", namespace),
            {"RUST_LOG": "trace"}, reaper, json_logs=True)
    # ... and as a Lambda function at trace: a good invocation, then a failing one
    t0 = time.time()
    with fl.LambdaRie(env, {"REAPER_CLUSTERS": cluster, "REAPER_NAMESPACES": namespace,
                            "RUST_LOG": "trace"}) as fn:
        ok = fn.invoke({})
        bad = fn.invoke({"clusters": ["no-such-cluster"]})
        output = fn.output()
    cap.window("lambda", reaper, t0, time.time())
    fl.require(not ok.failed and bad.failed, f"{ok.body[:500]}\n{bad.body[:500]}")
    cap.texts += [("lambda responses", ok.body + bad.body), ("lambda output", output)]
    fl.require(sum(len(t) for _, t in cap.texts) > 100_000, "trace output is suspiciously small")

    # THEN no output contains the secret keys, a token, or any token's signature
    needles = {
        env["AWS_SECRET_ACCESS_KEY"]: "the reaper's AWS secret access key",
        env["TESTBED_NORBAC_SECRET_ACCESS_KEY"]: "the norbac AWS secret access key",
        PREFIX: "an EKS token (k8s-aws-v1. prefix)",
        "aHR0cHM6Ly9zdHMu": "a base64url presigned STS URL (https://sts.)",
        "X-Amz-Signature=": "a presigned URL's signature",
        "Bearer ": "an Authorization header value",
        **cap.signatures,
    }
    leaks = [f"{what} in {label}" for label, text in cap.texts
             for needle, what in needles.items() if needle in text]
    assert not leaks, "\n".join(leaks)

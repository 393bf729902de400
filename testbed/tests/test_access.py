"""EKS-style authentication (token webhook) and least-privilege RBAC, through the real apiserver."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from pathlib import Path

import pytest

from testbed.tokens import make_token, presign_url, token_for, wrap

JOBS = "/apis/batch/v1/jobs"


def distinct_token(env, n: int = 0, identity: str = "reaper") -> str:
    """A never-used token signed `n` s ago. The apiserver caches successful
    authentications per token string for 10 s, and tokens signed in the same second are
    identical, so vary the (signed, otherwise ignored) X-Amz-Expires."""
    return token_for(env, identity, when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=n),
                     expires=60 + secrets.randbelow(840))


def test_reaper_token_lists_jobs_and_pods(as_identity, api):
    s = as_identity("reaper")
    assert s.get(f"{api}{JOBS}?limit=5", timeout=10).status_code == 200
    assert s.get(f"{api}/api/v1/pods?limit=5", timeout=10).status_code == 200
    r = s.get(f"{api}/apis/batch/v1/namespaces/default/jobs", timeout=10)
    assert r.status_code == 200 and r.json()["kind"] == "JobList"


def test_reaper_is_mapped_to_its_username_and_group(as_identity, api, env):
    r = as_identity("reaper").post(
        f"{api}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, timeout=10)
    assert r.status_code == 201, r.text
    user = r.json()["status"]["userInfo"]
    assert user["username"] == env["TESTBED_REAPER_USERNAME"]
    assert "eks-reaper" in user["groups"] and "system:authenticated" in user["groups"]
    assert "system:masters" not in user["groups"]
    assert user["uid"].startswith(f"aws-iam-authenticator:{env['TESTBED_ACCOUNT_ID']}:")
    assert user["extra"]["arn"] == [env["TESTBED_REAPER_ARN"]]


def test_reaper_is_forbidden_everything_else(as_identity, api):
    s = as_identity("reaper")
    assert s.get(f"{api}/api/v1/secrets", timeout=10).status_code == 403
    assert s.get(f"{api}/api/v1/nodes", timeout=10).status_code == 403
    assert s.get(f"{api}/apis/batch/v1/namespaces/default/jobs/x", timeout=10).status_code == 403
    assert s.get(f"{api}{JOBS}?watch=1", timeout=10).status_code == 403


def test_authenticated_identity_without_rbac_gets_403(as_identity, api):
    r = as_identity("norbac").get(f"{api}{JOBS}", timeout=10)
    assert r.status_code == 403
    assert "eks-reaper-norbac" in r.json()["message"]


@pytest.mark.parametrize("case", ["wrong_cluster", "old_date", "bad_signature", "garbage",
                                  "non_sts_host", "extra_param", "wrong_secret"])
def test_bad_tokens_get_401(as_identity, api, env, case):
    ak, sk, cluster = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["TESTBED_CLUSTER"]
    now = dt.datetime.now(dt.timezone.utc)
    if case == "wrong_cluster":
        tok = make_token(ak, sk, "not-" + cluster)
    elif case == "old_date":
        tok = make_token(ak, sk, cluster, when=now - dt.timedelta(minutes=16))
    elif case == "bad_signature":
        url = presign_url(ak, sk, cluster)
        tok = wrap(url[:-4] + ("0000" if not url.endswith("0000") else "1111"))
    elif case == "garbage":
        tok = "k8s-aws-v1.bm90IGEgdXJs"
    elif case == "non_sts_host":
        tok = make_token(ak, sk, cluster, host="sts.example.com")
    elif case == "extra_param":
        tok = make_token(ak, sk, cluster, extra_query="&X-Foo=1")
    else:
        tok = make_token(ak, "wrong-secret", cluster)
    r = as_identity(token=tok).get(f"{api}{JOBS}", timeout=10)
    assert r.status_code == 401, (case, r.status_code, r.text)


def test_each_decision_is_logged_with_a_reason(as_identity, api, env):
    log = Path(env["TESTBED_AUTHENTICATOR_LOG"])
    before = log.read_text()
    as_identity(token=make_token(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                                 "other")).get(f"{api}{JOBS}", timeout=10)
    as_identity(token=distinct_token(env, 7)).get(f"{api}{JOBS}", timeout=10)
    new = log.read_text()[len(before):]
    assert "decision=reject reason=signature mismatch" in new
    assert f"decision=accept arn={env['TESTBED_REAPER_ARN']} username=eks-reaper" in new
    assert env["AWS_SECRET_ACCESS_KEY"] not in log.read_text()


@pytest.fixture
def access_entries(env):
    """The live access-entries table; restored after the test."""
    path = Path(env["TESTBED_ACCESS_ENTRIES"])
    original = path.read_text()
    yield path, json.loads(original)
    path.write_text(original)


def test_access_entry_changes_apply_to_the_next_new_token(as_identity, api, env, access_entries):
    path, table = access_entries
    assert as_identity(token=distinct_token(env, 1)).get(f"{api}{JOBS}", timeout=10).status_code == 200
    arn = env["TESTBED_REAPER_ARN"]
    table["accessEntries"][arn]["groups"] = []
    path.write_text(json.dumps(table))
    assert as_identity(token=distinct_token(env, 2)).get(f"{api}{JOBS}", timeout=10).status_code == 403
    del table["accessEntries"][arn]
    path.write_text(json.dumps(table))
    assert as_identity(token=distinct_token(env, 3)).get(f"{api}{JOBS}", timeout=10).status_code == 401


def test_token_age_limit_can_be_shortened(as_identity, api, env, access_entries):
    path, table = access_entries
    assert as_identity(token=distinct_token(env, 20)).get(f"{api}{JOBS}", timeout=10).status_code == 200
    table["maxTokenAgeSeconds"] = 10
    path.write_text(json.dumps(table))
    assert as_identity(token=distinct_token(env, 21)).get(f"{api}{JOBS}", timeout=10).status_code == 401
    assert as_identity(token=distinct_token(env, 5)).get(f"{api}{JOBS}", timeout=10).status_code == 200


def test_apiserver_caches_a_successful_token_for_10s(as_identity, api, env, access_entries):
    """Real kube-apiserver behaviour (TokenSuccessCacheTTL, not a flag): a token that
    succeeded keeps working for up to 10 s even if the webhook would now reject it, while
    failures are never cached. Integration tests of token expiry must allow for it."""
    path, table = access_entries
    tok = distinct_token(env, 30)
    s = as_identity(token=tok)
    assert s.get(f"{api}{JOBS}", timeout=10).status_code == 200
    table["maxTokenAgeSeconds"] = 10
    path.write_text(json.dumps(table))
    assert s.get(f"{api}{JOBS}", timeout=10).status_code == 200  # cached success
    deadline = time.monotonic() + 20
    while s.get(f"{api}{JOBS}", timeout=10).status_code != 401:
        assert time.monotonic() < deadline, "cached token still accepted after 20 s"
        time.sleep(0.5)

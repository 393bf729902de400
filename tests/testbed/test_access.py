"""EKS-style authentication (token webhook) and least-privilege RBAC, through the real apiserver."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from testbed.tokens import make_token, presign_url, token_for, wrap

JOBS = "/apis/batch/v1/jobs"


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
    as_identity("reaper").get(f"{api}{JOBS}", timeout=10)
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


def test_access_entry_changes_apply_on_the_next_request(as_identity, api, access_entries):
    path, table = access_entries
    s = as_identity("reaper")
    assert s.get(f"{api}{JOBS}", timeout=10).status_code == 200
    arn = next(iter(a for a, e in table["accessEntries"].items() if "eks-reaper" in e["groups"]))
    table["accessEntries"][arn]["groups"] = []
    path.write_text(json.dumps(table))
    assert s.get(f"{api}{JOBS}", timeout=10).status_code == 403
    del table["accessEntries"][arn]
    path.write_text(json.dumps(table))
    assert s.get(f"{api}{JOBS}", timeout=10).status_code == 401


def test_token_age_limit_can_be_shortened(as_identity, api, env, access_entries):
    path, table = access_entries
    tok = token_for(env, "reaper", when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=20))
    assert as_identity(token=tok).get(f"{api}{JOBS}", timeout=10).status_code == 200
    table["maxTokenAgeSeconds"] = 10
    path.write_text(json.dumps(table))
    assert as_identity(token=tok).get(f"{api}{JOBS}", timeout=10).status_code == 401

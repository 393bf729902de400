"""The assumed-role path through the real apiserver: temporary credentials from moto's STS
`AssumeRole`, an EKS token signed with them (session token in the URL), verified by the
authenticator against moto's record of the session and mapped through the role's access
entry, as EKS does."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from pathlib import Path

import boto3
import botocore.config

from testbed.tokens import make_token

JOBS = "/apis/batch/v1/jobs"


def assume(env, role_arn: str, *, external_id: str | None = None, duration: int | None = None,
           session: str | None = None) -> dict:
    """`sts:AssumeRole` at moto as the reaper identity; returns the Credentials."""
    # moto accepts any duration; botocore's own check (900 s at least, as STS) is off so a
    # test can have credentials expire in seconds.
    sts = boto3.client(
        "sts", region_name=env["AWS_REGION"], endpoint_url=env["TESTBED_MOTO_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(parameter_validation=False),
    )
    kw = {"RoleArn": role_arn, "RoleSessionName": session or f"it-{secrets.token_hex(4)}"}
    if external_id is not None:
        kw["ExternalId"] = external_id
    if duration is not None:
        kw["DurationSeconds"] = duration
    return sts.assume_role(**kw)["Credentials"]


def session_token(env, creds: dict, *, session_token: str | None = None) -> str:
    """An EKS token signed with the temporary credentials (a distinct string per call: the
    apiserver caches successful tokens for 10 s)."""
    return make_token(
        creds["AccessKeyId"], creds["SecretAccessKey"], env["TESTBED_CLUSTER"], env["AWS_REGION"],
        session_token=session_token or creds["SessionToken"], expires=60 + secrets.randbelow(840),
    )


def decisions_since(env, offset: int) -> str:
    with open(env["TESTBED_AUTHENTICATOR_LOG"], "rb") as f:
        f.seek(offset)
        return f.read().decode()


def log_size(env) -> int:
    return Path(env["TESTBED_AUTHENTICATOR_LOG"]).stat().st_size


def test_assumed_role_token_is_accepted_and_mapped_to_the_role(as_identity, api, env):
    # GIVEN a session of the cross role, issued by moto's STS
    creds = assume(env, env["TESTBED_CROSS_ROLE_ARN"], session="eks-reaper")
    assert creds["AccessKeyId"].startswith("ASIA")
    offset = log_size(env)

    # WHEN it calls the apiserver with a token signed by those credentials
    s = as_identity(token=session_token(env, creds))
    r = s.post(f"{api}/apis/authentication.k8s.io/v1/selfsubjectreviews",
               json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
               timeout=10)

    # THEN it is the role's access entry: its username, the reaper's group and RBAC
    assert r.status_code == 201, r.text
    user = r.json()["status"]["userInfo"]
    account = env["TESTBED_ACCOUNT_ID"]
    session_arn = f"arn:aws:sts::{account}:assumed-role/eks-reaper-cross/eks-reaper"
    assert user["username"] == env["TESTBED_CROSS_USERNAME"]
    assert "eks-reaper" in user["groups"]
    assert user["extra"]["arn"] == [session_arn]
    assert user["extra"]["canonicalArn"] == [env["TESTBED_CROSS_ROLE_ARN"]]
    assert user["extra"]["sessionName"] == ["eks-reaper"]
    assert user["uid"].startswith(f"aws-iam-authenticator:{account}:AROA")
    assert s.get(f"{api}{JOBS}?limit=5", timeout=10).status_code == 200
    assert s.get(f"{api}/api/v1/secrets", timeout=10).status_code == 403
    new = decisions_since(env, offset)
    assert (f"decision=accept arn={session_arn} username={env['TESTBED_CROSS_USERNAME']} "
            f"groups=eks-reaper canonicalArn={env['TESTBED_CROSS_ROLE_ARN']}") in new
    assert creds["SecretAccessKey"] not in new and creds["SessionToken"] not in new


def test_moto_sessions_are_mirrored_with_the_external_id(env):
    creds = assume(env, env["TESTBED_CROSS_ROLE_ARN"], external_id="it-external-id")
    sessions = json.loads(Path(env["TESTBED_STS_SESSIONS"]).read_text())
    got = sessions[creds["AccessKeyId"]]
    assert got["secretAccessKey"] == creds["SecretAccessKey"]
    assert got["sessionToken"] == creds["SessionToken"]
    assert got["roleArn"] == env["TESTBED_CROSS_ROLE_ARN"]
    assert got["externalId"] == "it-external-id"
    assert dt.datetime.fromisoformat(got["expiration"]) == creds["Expiration"]


def test_wrong_session_token_gets_401(as_identity, api, env):
    creds = assume(env, env["TESTBED_CROSS_ROLE_ARN"])
    offset = log_size(env)
    tok = session_token(env, creds, session_token=creds["SessionToken"][:-4] + "AAAA")
    r = as_identity(token=tok).get(f"{api}{JOBS}", timeout=10)
    assert r.status_code == 401, r.text
    assert "decision=reject reason=session token does not match" in decisions_since(env, offset)


def test_session_token_of_another_session_gets_401(as_identity, api, env):
    ours = assume(env, env["TESTBED_CROSS_ROLE_ARN"])
    other = assume(env, env["TESTBED_CROSS_ROLE_ARN"])
    r = as_identity(token=session_token(env, ours, session_token=other["SessionToken"])).get(
        f"{api}{JOBS}", timeout=10)
    assert r.status_code == 401, r.text


def test_role_without_access_entry_gets_401(as_identity, api, env):
    creds = assume(env, env["TESTBED_NOENTRY_ROLE_ARN"], session="eks-reaper")
    offset = log_size(env)
    r = as_identity(token=session_token(env, creds)).get(f"{api}{JOBS}", timeout=10)
    assert r.status_code == 401, r.text
    assert (f"decision=reject reason=no access entry for {env['TESTBED_NOENTRY_ROLE_ARN']} "
            f"(from arn:aws:sts::{env['TESTBED_ACCOUNT_ID']}:assumed-role/eks-reaper-noentry/"
            "eks-reaper)") in decisions_since(env, offset)


def test_expired_session_gets_401(as_identity, api, env):
    # GIVEN credentials that expire 2 s after they are issued (moto honours any duration)
    creds = assume(env, env["TESTBED_CROSS_ROLE_ARN"], duration=2)
    s = as_identity(token=session_token(env, creds))
    assert s.get(f"{api}{JOBS}?limit=1", timeout=10).status_code == 200
    # WHEN a fresh token is signed with them after they expired
    time.sleep(max(0.0, (creds["Expiration"] - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 1)
    offset = log_size(env)
    r = as_identity(token=session_token(env, creds)).get(f"{api}{JOBS}", timeout=10)
    # THEN the token is refused although it is seconds old
    assert r.status_code == 401, r.text
    assert f"reason=credentials of {creds['AccessKeyId']!r} expired at" in decisions_since(env, offset)

"""Unit tests of the token verifier, with tokens minted by botocore's presigner.

No running testbed needed: these call `authenticator.verify` / `review` directly.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from urllib.parse import unquote

import pytest

from testbed import authenticator as au
from testbed.tokens import make_token, presign_url, wrap

AK, SK = "AKIAEKSREAPERTEST001", "s3cr3t/with+chars=" + "x" * 22
ARN = "arn:aws:iam::123456789012:role/eks-reaper"
TABLE = {
    "maxTokenAgeSeconds": 900,
    "identities": {
        AK: {"secretAccessKey": SK, "arn": ARN, "userId": "AROAEKSREAPER"},
        "AKIANOENTRY000000001": {"secretAccessKey": "nope", "arn": "arn:aws:iam::123456789012:role/x"},
    },
    "accessEntries": {ARN: {"username": "eks-reaper", "groups": ["eks-reaper"]}},
}
NOW = dt.datetime.now(dt.timezone.utc)


def ok(token, cluster="etl", table=TABLE, now=NOW):
    return au.verify(token, cluster, table, now)


def rejected(token, match, cluster="etl", table=TABLE, now=NOW):
    with pytest.raises(au.Rejected, match=match):
        au.verify(token, cluster, table, now)


def test_botocore_token_is_accepted_and_mapped():
    caller = ok(make_token(AK, SK, "etl"))
    assert caller.arn == ARN
    assert caller.username == "eks-reaper"
    assert caller.groups == ["eks-reaper"]
    assert caller.uid == "aws-iam-authenticator:123456789012:AROAEKSREAPER"


def test_global_sts_host_is_accepted():
    ok(make_token(AK, SK, "etl", host="sts.amazonaws.com"))


def test_other_region_with_matching_host_is_accepted():
    ok(make_token(AK, SK, "etl", region="eu-west-1"))


def test_session_token_is_part_of_the_signature():
    tok = make_token(AK, SK, "etl", session_token="FwoGZXIvYXdzEXAMPLE")
    ok(tok)
    url = presign_url(AK, SK, "etl", session_token="FwoGZXIvYXdzEXAMPLE")
    rejected(wrap(url.replace("FwoGZXIvYXdzEXAMPLE", "FwoGZXIvYXdzTAMPERED")), "signature mismatch")


def test_token_valid_for_fifteen_minutes_whatever_expires_says():
    ok(make_token(AK, SK, "etl", when=NOW - dt.timedelta(minutes=14), expires=60))


def test_empty_body_payload_hash_is_accepted_too():
    # Go SDK v1 style presigning hashes the empty body instead of UNSIGNED-PAYLOAD: re-sign
    # botocore's URL that way with our SigV4 (whose UNSIGNED-PAYLOAD variant botocore
    # itself validates in the other tests).
    base = presign_url(AK, SK, "etl").split("&X-Amz-Signature=")[0]
    params = [tuple(unquote(x) for x in p.split("=", 1)) for p in base.split("?", 1)[1].split("&")]
    q = dict(params)
    scope = "/".join(q["X-Amz-Credential"].split("/")[1:])
    sig = au.sigv4_query_signature(SK, params, "sts.us-east-1.amazonaws.com", "etl",
                                   q["X-Amz-Date"], scope, au.EMPTY_SHA256)
    ok(wrap(f"{base}&X-Amz-Signature={sig}"))
    # ...and a signature over a different payload hash is not.
    bad = au.sigv4_query_signature(SK, params, "sts.us-east-1.amazonaws.com", "etl",
                                   q["X-Amz-Date"], scope, "0" * 64)
    rejected(wrap(f"{base}&X-Amz-Signature={bad}"), "signature mismatch")


def test_wrong_cluster_is_rejected():
    rejected(make_token(AK, SK, "other-cluster"), "signature mismatch")


def test_old_date_is_rejected():
    rejected(make_token(AK, SK, "etl", when=NOW - dt.timedelta(minutes=16)), "expired")


def test_shorter_max_age_from_table_is_honoured():
    table = dict(TABLE, maxTokenAgeSeconds=30)
    rejected(make_token(AK, SK, "etl", when=NOW - dt.timedelta(seconds=45)), "expired", table=table)


def test_future_date_is_rejected():
    rejected(make_token(AK, SK, "etl", when=NOW + dt.timedelta(minutes=10)), "future")


def test_bad_signature_is_rejected():
    url = presign_url(AK, SK, "etl")
    sig = url.rsplit("=", 1)[1]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    rejected(wrap(url[: -len(sig)] + flipped), "signature mismatch")


def test_wrong_secret_is_rejected():
    rejected(make_token(AK, "not-the-secret", "etl"), "signature mismatch")


def test_non_sts_host_is_rejected():
    rejected(make_token(AK, SK, "etl", host="sts.evil.example.com"), "not an STS endpoint")
    rejected(make_token(AK, SK, "etl", host="s3.us-east-1.amazonaws.com"), "not an STS endpoint")


def test_http_scheme_is_rejected():
    rejected(wrap(presign_url(AK, SK, "etl").replace("https://", "http://", 1)), "not https")


def test_extra_query_parameter_is_rejected():
    rejected(make_token(AK, SK, "etl", extra_query="&Foo=bar"), "non-standard query parameter")


def test_other_action_is_rejected():
    url = presign_url(AK, SK, "etl").replace("Action=GetCallerIdentity", "Action=AssumeRole")
    rejected(wrap(url), "not GetCallerIdentity")


def test_unknown_access_key_is_rejected():
    rejected(make_token("AKIAUNKNOWN000000001", SK, "etl"), "unknown access key")


def test_identity_without_access_entry_is_rejected():
    rejected(make_token("AKIANOENTRY000000001", "nope", "etl"), "no access entry")


@pytest.mark.parametrize(
    "token,match",
    [
        ("", "does not start"),
        ("garbage", "does not start"),
        ("k8s-aws-v1.", "not base64url"),
        ("k8s-aws-v1.!!!!", "not base64url"),
        ("k8s-aws-v1." + base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="), "UTF-8"),
        (wrap("https://sts.amazonaws.com/"), "missing query parameters"),
        (wrap("not a url at all"), "not https"),
    ],
)
def test_garbage_is_rejected(token, match):
    rejected(token, match)


def test_review_answers_tokenreview_v1(tmp_path):
    table = tmp_path / "entries.json"
    table.write_text(json.dumps(TABLE))
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": make_token(AK, SK, "etl")}}
    out = au.review(body, "etl", table)
    assert out["apiVersion"] == "authentication.k8s.io/v1"
    assert out["status"]["authenticated"] is True
    assert out["status"]["user"]["username"] == "eks-reaper"
    assert out["status"]["user"]["groups"] == ["eks-reaper"]
    body["spec"]["token"] = "garbage"
    out = au.review(body, "etl", table)
    assert out["status"]["authenticated"] is False
    assert out["status"]["error"]


def test_signature_of_the_products_golden_token_verifies():
    # The signature src/eks/token.rs pins in its unit test (aws-sigv4, empty-body payload
    # hash, eu-west-1, cluster etl, 2026-11-28T21:00:00Z): the verifier must accept what the
    # product's signer produces.
    url = (
        "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
        "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE%2F20261128%2Feu-west-1%2Fsts%2Faws4_request"
        "&X-Amz-Date=20261128T210000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"
        "&X-Amz-Signature=1e007ceb2db55a18c5f9e716fd7ba59644fc96773921ba4522cf95e5163e9694"
    )
    table = {"identities": {"AKIDEXAMPLE": {
        "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "arn": ARN}},
        "accessEntries": {ARN: {"username": "eks-reaper", "groups": ["eks-reaper"]}}}
    signed_at = dt.datetime(2026, 11, 28, 21, 0, tzinfo=dt.timezone.utc)
    assert ok(wrap(url), table=table, now=signed_at + dt.timedelta(minutes=14)).arn == ARN
    rejected(wrap(url), "expired", table=table, now=signed_at + dt.timedelta(minutes=16))
    rejected(wrap(url), "signature mismatch", cluster="web", table=table,
             now=signed_at + dt.timedelta(minutes=1))


# --- temporary credentials (sts:AssumeRole sessions, looked up in the sessions file)

TMP_AK, TMP_SK, TMP_ST = "ASIAEKSREAPERCROSS01", "tmp/secret+" + "y" * 29, "FQoGZXIvYXdzSESSION"
ROLE_ARN = "arn:aws:iam::123456789012:role/eks-reaper-cross"
SESSION_ARN = "arn:aws:sts::123456789012:assumed-role/eks-reaper-cross/eks-reaper"
SESSIONS = {
    TMP_AK: {"secretAccessKey": TMP_SK, "sessionToken": TMP_ST, "arn": SESSION_ARN,
             "userId": "AROAEKSREAPERCROSS01:eks-reaper", "roleArn": ROLE_ARN,
             "sessionName": "eks-reaper",
             "expiration": (NOW + dt.timedelta(hours=1)).isoformat(), "externalId": None},
}
ROLE_TABLE = dict(TABLE, accessEntries=dict(
    TABLE["accessEntries"], **{ROLE_ARN: {"username": "eks-reaper-cross", "groups": ["eks-reaper"]}}))


def test_assumed_role_arns_are_mapped_to_their_role():
    assert au.canonical_arn(SESSION_ARN) == ROLE_ARN
    assert au.canonical_arn("arn:aws-cn:sts::123456789012:assumed-role/r/s@x") == (
        "arn:aws-cn:iam::123456789012:role/r")
    assert au.canonical_arn(ARN) == ARN
    assert au.canonical_arn("arn:aws:iam::123456789012:user/u") == "arn:aws:iam::123456789012:user/u"


def test_session_token_is_accepted_and_mapped_through_the_role_access_entry():
    caller = au.verify(make_token(TMP_AK, TMP_SK, "etl", session_token=TMP_ST),
                       "etl", ROLE_TABLE, NOW, SESSIONS)
    assert (caller.arn, caller.canonical_arn) == (SESSION_ARN, ROLE_ARN)
    assert caller.username == "eks-reaper-cross"
    assert caller.groups == ["eks-reaper"]
    assert caller.uid == "aws-iam-authenticator:123456789012:AROAEKSREAPERCROSS01"
    assert caller.extra["arn"] == [SESSION_ARN]
    assert caller.extra["canonicalArn"] == [ROLE_ARN]
    assert caller.extra["sessionName"] == ["eks-reaper"]


def test_session_with_another_session_token_is_rejected():
    tok = make_token(TMP_AK, TMP_SK, "etl", session_token="FQoGZXIvYXdzOTHER")
    with pytest.raises(au.Rejected, match="session token does not match"):
        au.verify(tok, "etl", ROLE_TABLE, NOW, SESSIONS)


def test_session_without_its_session_token_is_rejected():
    with pytest.raises(au.Rejected, match="no session token"):
        au.verify(make_token(TMP_AK, TMP_SK, "etl"), "etl", ROLE_TABLE, NOW, SESSIONS)


def test_session_signed_with_another_secret_is_rejected():
    tok = make_token(TMP_AK, "not-the-secret", "etl", session_token=TMP_ST)
    with pytest.raises(au.Rejected, match="signature mismatch"):
        au.verify(tok, "etl", ROLE_TABLE, NOW, SESSIONS)


def test_session_of_a_role_without_access_entry_is_rejected():
    with pytest.raises(au.Rejected, match=f"no access entry for {ROLE_ARN} \\(from {SESSION_ARN}\\)"):
        au.verify(make_token(TMP_AK, TMP_SK, "etl", session_token=TMP_ST),
                  "etl", TABLE, NOW, SESSIONS)


def test_expired_session_is_rejected_even_with_a_fresh_token():
    expires = NOW + dt.timedelta(hours=1)
    later = expires + dt.timedelta(seconds=30)
    tok = make_token(TMP_AK, TMP_SK, "etl", session_token=TMP_ST,
                     when=later - dt.timedelta(seconds=5))
    with pytest.raises(au.Rejected, match="expired at"):
        au.verify(tok, "etl", ROLE_TABLE, later, SESSIONS)
    # ...and the same credentials are fine a second before they expire.
    tok = make_token(TMP_AK, TMP_SK, "etl", session_token=TMP_ST,
                     when=expires - dt.timedelta(seconds=5))
    au.verify(tok, "etl", ROLE_TABLE, expires - dt.timedelta(seconds=1), SESSIONS)


def test_review_reads_the_sessions_file(tmp_path):
    table, sessions = tmp_path / "entries.json", tmp_path / "sts-sessions.json"
    table.write_text(json.dumps(ROLE_TABLE))
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": make_token(TMP_AK, TMP_SK, "etl", session_token=TMP_ST)}}
    # No sessions file yet (no session issued): an unknown key, not an internal error.
    out = au.review(body, "etl", table, sessions_path=sessions)
    assert out["status"] == {"authenticated": False, "error": f"unknown access key {TMP_AK!r}"}
    sessions.write_text(json.dumps(SESSIONS))
    out = au.review(body, "etl", table, sessions_path=sessions)
    assert out["status"]["authenticated"] is True
    assert out["status"]["user"]["username"] == "eks-reaper-cross"

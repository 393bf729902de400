"""EKS bearer tokens made with botocore's own SigV4 presigner (not our verifier's code).

`make_token` is what `aws eks get-token` does: presign STS GetCallerIdentity with the
extra signed header `x-k8s-aws-id: <cluster>` and wrap the URL as
`k8s-aws-v1.` + base64url(no padding). Tests use it to talk to the apiserver as an IAM
identity, and to produce deliberately broken tokens (other cluster, old date, wrong key).
"""

from __future__ import annotations

import base64
import datetime as dt
from unittest import mock

import botocore.auth
import botocore.credentials
from botocore.awsrequest import AWSRequest

TOKEN_PREFIX = "k8s-aws-v1."


def presign_url(
    access_key: str,
    secret_key: str,
    cluster: str,
    region: str = "us-east-1",
    *,
    session_token: str | None = None,
    host: str | None = None,
    when: dt.datetime | None = None,
    expires: int = 60,
    extra_query: str = "",
) -> str:
    """Presigned `GetCallerIdentity` URL signed by botocore's `SigV4QueryAuth`."""
    host = host or f"sts.{region}.amazonaws.com"
    url = f"https://{host}/?Action=GetCallerIdentity&Version=2011-06-15{extra_query}"
    req = AWSRequest(method="GET", url=url, headers={"x-k8s-aws-id": cluster})
    creds = botocore.credentials.Credentials(access_key, secret_key, session_token)
    signer = botocore.auth.SigV4QueryAuth(creds, "sts", region, expires=expires)
    if when is None:
        signer.add_auth(req)
    else:
        naive = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
        with mock.patch.object(botocore.auth, "get_current_datetime", lambda: naive):
            signer.add_auth(req)
    return req.url


def wrap(url: str) -> str:
    """`k8s-aws-v1.` + base64url(url) without padding."""
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def make_token(access_key: str, secret_key: str, cluster: str, region: str = "us-east-1", **kw) -> str:
    """An EKS bearer token, as `aws eks get-token` would print it. See `presign_url`."""
    return wrap(presign_url(access_key, secret_key, cluster, region, **kw))


def token_for(env: dict, identity: str = "reaper", **kw) -> str:
    """Token for a testbed identity (`reaper` or `norbac`) using the keys in env.json."""
    if identity == "reaper":
        ak, sk = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    elif identity == "norbac":
        ak, sk = env["TESTBED_NORBAC_ACCESS_KEY_ID"], env["TESTBED_NORBAC_SECRET_ACCESS_KEY"]
    else:
        raise ValueError(f"unknown testbed identity {identity!r}")
    return make_token(ak, sk, env["TESTBED_CLUSTER"], env.get("AWS_REGION", "us-east-1"), **kw)

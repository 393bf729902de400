"""moto with IAM enforcement on, in this process, and principals holding a given policy.

What moto 5.2.5's access control checks, and how we make it usable (verified by
test_iam_policy.py):

- Actions: yes, once `/moto-api/reset-auth` sets the no-auth budget to 0. Every request is
  SigV4-verified and its action matched against the caller's policies.
- The IAM action prefix is the SigV4 signing name: CloudWatch requests are checked as
  `monitoring:PutMetricData`, so `cloudwatch:` actions are renamed for moto.
- Resources: no. EKS, EC2 and CloudWatch requests are all evaluated against resource
  "*", so a statement scoped to a cluster ARN never matches (moto denies the right
  cluster too). Resources are widened to "*" for moto; the scoping itself is asserted
  statically from template.yaml and the CDK tests.
- Conditions: no. A condition key with no request value (cloudwatch:namespace is never
  supplied) is treated as satisfied. The namespace condition is asserted statically.
- Signature bug: for body-less REST calls (every EKS call eks-reaper makes is a GET)
  moto signs its parsed header dict as the payload, so the signature never matches
  (`SignatureDoesNotMatch`). `_patch_signature_payload` makes moto hash the empty body as
  AWS does. This is a fix to the emulator, applied in the test process only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import requests

from testbed.aws import client, start_moto


def _patch_signature_payload() -> None:
    import moto.iam.access_control as ac

    if getattr(ac.IAMRequestBase, "_eks_reaper_patched", False):
        return
    original = ac.IAMRequestBase._create_aws_request

    def create_aws_request(self):  # type: ignore[no-untyped-def]
        request = original(self)
        if not self._body and self._method in ("GET", "HEAD", "DELETE"):
            request.data = b""
        return request

    ac.IAMRequestBase._create_aws_request = create_aws_request
    ac.IAMRequestBase._eks_reaper_patched = True


#: Actions moto authorized or denied since the last `enforce`, as IAM actions
#: (`monitoring:` renamed back to `cloudwatch:`), in call order.
CHECKED_ACTIONS: list[str] = []


def _record_checked_actions() -> None:
    import moto.iam.access_control as ac

    if getattr(ac.IAMRequestBase, "_eks_reaper_recording", False):
        return
    original = ac.IAMRequestBase.check_action_permitted

    def check_action_permitted(self, resource):  # type: ignore[no-untyped-def]
        CHECKED_ACTIONS.append(self._action.replace("monitoring:", "cloudwatch:", 1))
        return original(self, resource)

    ac.IAMRequestBase.check_action_permitted = check_action_permitted
    ac.IAMRequestBase._eks_reaper_recording = True


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """An in-process moto server (auth off until `enforce`); yields its URL."""
    _patch_signature_payload()
    _record_checked_actions()
    srv = start_moto(0)
    host, port = srv.get_host_and_port()
    url = f"http://{host}:{port}"
    # Backends are per process, not per server: start from nothing.
    requests.post(f"{url}/moto-api/reset", timeout=5).raise_for_status()
    try:
        yield url
    finally:
        requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=5)
        srv.stop()


def enforce(url: str) -> None:
    """From the next request on, every call is authenticated and authorized."""
    requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=5).raise_for_status()
    CHECKED_ACTIONS.clear()


def for_moto(statements: list[dict]) -> list[dict]:
    """The statements as moto can evaluate them (see the module doc)."""
    out = []
    for s in statements:
        s = dict(s)
        acts = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        s["Action"] = [a.replace("cloudwatch:", "monitoring:", 1) for a in acts]
        s["Resource"] = "*"
        out.append(s)
    return out


def user_with_policy(url: str, region: str, name: str, statements: list[dict]) -> dict[str, str]:
    """Creates an IAM user holding exactly `statements`; returns its access key."""
    iam = client("iam", url, region=region)
    iam.create_user(UserName=name)
    doc = {"Version": "2012-10-17", "Statement": statements or [
        {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName="eks-reaper", PolicyDocument=json.dumps(doc))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

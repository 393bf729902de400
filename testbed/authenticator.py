"""EKS-style token authenticator: the apiserver's TokenReview v1 webhook.

AWS runs this for EKS (aws-iam-authenticator / the EKS access-entry authenticator); here it
is a small loopback HTTPS server so the real kube-apiserver can authenticate IAM callers.
It does locally what EKS does by forwarding the presigned URL to STS: it re-computes the
SigV4 query signature with the secret of the access key found in the access-entries table.

Accepted token: `k8s-aws-v1.` + base64url(no padding) of
`https://sts[.<region>].amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-...`
- scheme https, host `sts.amazonaws.com` or `sts.<region>.amazonaws.com`, no port or
  userinfo, path `/`, no fragment;
- only the standard parameters (Action, Version, X-Amz-Algorithm, X-Amz-Credential,
  X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature, optional
  X-Amz-Security-Token), each once;
- signed headers exactly `host;x-k8s-aws-id`; the x-k8s-aws-id value is not in the URL, so
  the signature is computed with the cluster name this webhook serves: a token minted for
  another cluster fails the signature check, exactly as it fails at STS on EKS;
- credential scope `<key>/<yyyymmdd>/<region>/sts/aws4_request`, region matching the host
  (global host: us-east-1), date matching X-Amz-Date;
- X-Amz-Date not older than `maxTokenAgeSeconds` (default 900, like EKS, whatever
  X-Amz-Expires says) and not more than 5 minutes in the future;
- payload hash: presigners differ (botocore: `UNSIGNED-PAYLOAD`; Go SDK v1 and some others
  hash the empty body); STS accepts both for a body-less GET, so both are tried.

The table (JSON, re-read on every request so tests can rewrite it):

    {"maxTokenAgeSeconds": 900,
     "identities": {"<access key id>": {"secretAccessKey": "...", "arn": "arn:aws:iam::...",
                                        "userId": "AROA...", "sessionToken": null}},
     "accessEntries": {"<arn>": {"username": "eks-reaper", "groups": ["eks-reaper"]}}}

Temporary credentials (an `sts:AssumeRole` session) are looked up in the sessions file
(`--sessions`, moto's record mirrored by `sts_sessions.py`, also re-read on every request)
when the access key is not in `identities`. As at STS, such a token must carry the
session's `X-Amz-Security-Token`, and the credentials must not have expired. The caller's
ARN is then `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`; like EKS, the access entry is
looked up by its canonical form `arn:aws:iam::ACCOUNT:role/ROLE` (the role's path is not
in the assumed-role ARN, so it is not in the canonical one either).

An identity without an access entry is not authenticated (EKS answers 401 too). One log
line per decision, never the token or a secret.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import ssl
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

log = logging.getLogger("authenticator")

TOKEN_PREFIX = "k8s-aws-v1."
DEFAULT_MAX_AGE = 900
FUTURE_SKEW = dt.timedelta(minutes=5)
ALLOWED_PARAMS = {
    "action", "version", "x-amz-algorithm", "x-amz-credential", "x-amz-date",
    "x-amz-expires", "x-amz-signedheaders", "x-amz-signature", "x-amz-security-token",
}
REQUIRED_PARAMS = ALLOWED_PARAMS - {"x-amz-security-token"}
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
PAYLOAD_HASHES = ("UNSIGNED-PAYLOAD", EMPTY_SHA256)


class Rejected(Exception):
    """The token is not acceptable; the message is the reason (safe to log)."""


ASSUMED_ROLE_RE = re.compile(
    r"^arn:(?P<partition>[a-z-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/(?P<session>.+)$"
)


def canonical_arn(arn: str) -> str:
    """The ARN access entries are keyed by: an assumed-role session's role
    (`arn:aws:iam::ACCOUNT:role/ROLE`), any other ARN as it is (aws-iam-authenticator's
    `arn.Canonicalize`)."""
    m = ASSUMED_ROLE_RE.match(arn)
    if not m:
        return arn
    return f"arn:{m['partition']}:iam::{m['account']}:role/{m['role']}"


@dataclass
class Caller:
    """An authenticated IAM principal and its Kubernetes identity."""

    arn: str
    canonical_arn: str
    access_key: str
    username: str
    uid: str
    groups: list[str] = field(default_factory=list)
    extra: dict[str, list[str]] = field(default_factory=dict)


def _uri_encode(s: str) -> str:
    return quote(s, safe="-_.~")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_query_signature(
    secret: str, params: list[tuple[str, str]], host: str, cluster: str, amz_date: str,
    scope: str, payload_hash: str,
) -> str:
    """SigV4 (AWS General Reference, "Create a signed AWS API request") for a presigned GET /.

    `params` are the decoded query parameters without X-Amz-Signature.
    """
    canonical_query = "&".join(
        f"{k}={v}" for k, v in sorted((_uri_encode(k), _uri_encode(v)) for k, v in params)
    )
    canonical_request = "\n".join(
        [
            "GET",
            "/",
            canonical_query,
            f"host:{host}\nx-k8s-aws-id:{cluster}\n",
            "host;x-k8s-aws-id",
            payload_hash,
        ]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    date, region, service, _ = scope.split("/")
    key = _hmac(("AWS4" + secret).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    key = _hmac(key, "aws4_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def decode_token(token: str) -> str:
    """The presigned URL inside a `k8s-aws-v1.` token."""
    if not token.startswith(TOKEN_PREFIX):
        raise Rejected("token does not start with k8s-aws-v1.")
    body = token[len(TOKEN_PREFIX):]
    if not body or not re.fullmatch(r"[A-Za-z0-9_-]+", body):
        raise Rejected("token body is not base64url without padding")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Rejected("token body does not decode to a UTF-8 URL") from None


def verify(
    token: str, cluster: str, table: dict, now: dt.datetime, sessions: dict | None = None,
) -> Caller:
    """Checks an EKS token as EKS would; returns the mapped caller or raises `Rejected`.

    `table` is the access-entries table; `sessions` the STS sessions (see the module doc)."""
    url = decode_token(token)
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise Rejected(f"scheme {parts.scheme!r} is not https")
    if parts.username is not None or parts.password is not None or parts.port is not None:
        raise Rejected("URL has userinfo or a port")
    host = (parts.hostname or "").lower()
    if parts.netloc.lower() != host:
        raise Rejected("URL authority is not a plain host name")
    if host == "sts.amazonaws.com":
        host_region = "us-east-1"
    else:
        m = re.fullmatch(r"sts\.([a-z0-9-]+)\.amazonaws\.com", host)
        if not m or not REGION_RE.match(m.group(1)):
            raise Rejected(f"host {host!r} is not an STS endpoint")
        host_region = m.group(1)
    if parts.path != "/":
        raise Rejected(f"path {parts.path!r} is not /")
    if parts.fragment:
        raise Rejected("URL has a fragment")

    params: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for pair in parts.query.split("&") if parts.query else []:
        if "=" not in pair:
            raise Rejected("query parameter without a value")
        k, v = (unquote(x) for x in pair.split("=", 1))
        lk = k.lower()
        if lk not in ALLOWED_PARAMS:
            raise Rejected(f"non-standard query parameter {k!r}")
        if lk in seen:
            raise Rejected(f"duplicate query parameter {k!r}")
        seen[lk] = v
        params.append((k, v))
    missing = REQUIRED_PARAMS - seen.keys()
    if missing:
        raise Rejected(f"missing query parameters {sorted(missing)}")
    if seen["action"] != "GetCallerIdentity":
        raise Rejected(f"Action {seen['action']!r} is not GetCallerIdentity")
    if seen["version"] != "2011-06-15":
        raise Rejected(f"Version {seen['version']!r} is not 2011-06-15")
    if seen["x-amz-algorithm"] != "AWS4-HMAC-SHA256":
        raise Rejected(f"X-Amz-Algorithm {seen['x-amz-algorithm']!r} is not AWS4-HMAC-SHA256")
    signed = seen["x-amz-signedheaders"].split(";")
    if sorted(signed) != signed or set(signed) != {"host", "x-k8s-aws-id"}:
        raise Rejected(f"X-Amz-SignedHeaders {seen['x-amz-signedheaders']!r} is not host;x-k8s-aws-id")
    if not re.fullmatch(r"\d+", seen["x-amz-expires"]) or not 1 <= int(seen["x-amz-expires"]) <= 604800:
        raise Rejected(f"X-Amz-Expires {seen['x-amz-expires']!r} is not 1..604800")

    amz_date = seen["x-amz-date"]
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise Rejected(f"X-Amz-Date {amz_date!r} is not yyyymmddThhmmssZ") from None
    max_age = int(table.get("maxTokenAgeSeconds", DEFAULT_MAX_AGE))
    age = (now - signed_at).total_seconds()
    if age > max_age:
        raise Rejected(f"token expired: X-Amz-Date is {int(age)}s old, limit {max_age}s")
    if signed_at - now > FUTURE_SKEW:
        raise Rejected(f"X-Amz-Date is {int(-age)}s in the future")

    cred = seen["x-amz-credential"].split("/")
    if len(cred) != 5 or cred[3] != "sts" or cred[4] != "aws4_request":
        raise Rejected("X-Amz-Credential is not <key>/<date>/<region>/sts/aws4_request")
    access_key, scope_date, scope_region = cred[0], cred[1], cred[2]
    if scope_date != amz_date[:8]:
        raise Rejected("credential scope date differs from X-Amz-Date")
    if scope_region != host_region:
        raise Rejected(f"credential scope region {scope_region!r} does not match host {host!r}")

    identity = table.get("identities", {}).get(access_key)
    if identity is None:
        identity = (sessions or {}).get(access_key)
        if identity is None:
            raise Rejected(f"unknown access key {access_key!r}")
        # Temporary credentials: STS refuses them without their session token.
        if "x-amz-security-token" not in seen:
            raise Rejected(f"no session token for the temporary access key {access_key!r}")
        expiration = dt.datetime.fromisoformat(identity["expiration"])
        if now >= expiration:
            raise Rejected(
                f"credentials of {access_key!r} expired at {expiration.isoformat()}"
            )
    want_session = identity.get("sessionToken")
    if want_session is not None and seen.get("x-amz-security-token") != want_session:
        raise Rejected("session token does not match the access key")

    given = seen["x-amz-signature"].lower()
    unsigned = [(k, v) for k, v in params if k.lower() != "x-amz-signature"]
    scope = "/".join(cred[1:])
    ok = any(
        hmac.compare_digest(
            sigv4_query_signature(
                identity["secretAccessKey"], unsigned, host, cluster, amz_date, scope, ph
            ),
            given,
        )
        for ph in PAYLOAD_HASHES
    )
    if not ok:
        raise Rejected(
            f"signature mismatch for {access_key!r} (bad signature, other secret, "
            f"or signed for a cluster other than {cluster!r})"
        )

    arn = identity["arn"]
    canonical = canonical_arn(arn)
    entry = table.get("accessEntries", {}).get(canonical)
    if entry is None:
        mapped = f" (from {arn})" if canonical != arn else ""
        raise Rejected(f"no access entry for {canonical}{mapped}")
    account = arn.split(":")[4] if arn.count(":") >= 5 else "000000000000"
    # STS's UserId is `AROA...:SESSION` for a session; aws-iam-authenticator splits it.
    user_id, _, session_name = (identity.get("userId") or access_key).partition(":")
    extra = {
        "arn": [arn],
        "canonicalArn": [canonical],
        "accessKeyId": [access_key],
        "principalId": [user_id],
    }
    if session_name:
        extra["sessionName"] = [session_name]
    return Caller(
        arn=arn,
        canonical_arn=canonical,
        access_key=access_key,
        username=entry.get("username") or arn,
        uid=f"aws-iam-authenticator:{account}:{user_id}",
        groups=list(entry.get("groups", [])),
        extra=extra,
    )


def read_sessions(path: Path | None) -> dict:
    """The sessions file, or none: it may not exist yet (no session issued)."""
    if path is None:
        return {}
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def review(
    body: dict, cluster: str, table_path: Path, now: dt.datetime | None = None,
    sessions_path: Path | None = None,
) -> dict:
    """Answers a TokenReview (authentication.k8s.io/v1) request body."""
    now = now or dt.datetime.now(dt.timezone.utc)
    api_version = body.get("apiVersion") or "authentication.k8s.io/v1"
    token = ((body.get("spec") or {}).get("token")) or ""
    out = {"apiVersion": api_version, "kind": "TokenReview", "status": {"authenticated": False}}
    try:
        table = json.loads(table_path.read_text())
        caller = verify(token, cluster, table, now, read_sessions(sessions_path))
    except Rejected as e:
        log.info("decision=reject reason=%s", e)
        out["status"]["error"] = str(e)
        return out
    except Exception as e:  # a broken table must not crash the webhook
        log.warning("decision=reject reason=internal error %s: %s", type(e).__name__, e)
        out["status"]["error"] = "internal error"
        return out
    log.info(
        "decision=accept arn=%s username=%s groups=%s canonicalArn=%s",
        caller.arn, caller.username, ",".join(caller.groups), caller.canonical_arn,
    )
    out["status"] = {
        "authenticated": True,
        "user": {
            "username": caller.username,
            "uid": caller.uid,
            "groups": caller.groups,
            "extra": caller.extra,
        },
        "audiences": (body.get("spec") or {}).get("audiences") or [],
    }
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def serve(
    host: str, port: int, cluster: str, table_path: Path,
    cert: Path | None = None, key: Path | None = None, sessions_path: Path | None = None,
) -> _Server:
    """Starts the webhook in a background thread; returns the server (call .shutdown())."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server API)
            try:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
            except ValueError:
                self.send_error(400, "body is not JSON")
                return
            data = json.dumps(
                review(body, cluster, table_path, sessions_path=sessions_path)
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):  # decisions are logged in review()
            pass

    srv = _Server((host, port), Handler)
    if cert and key:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, name="authenticator", daemon=True).start()
    return srv


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--table", type=Path, required=True)
    ap.add_argument("--sessions", type=Path, help="STS sessions file (sts_sessions.py)")
    ap.add_argument("--tls-cert", type=Path)
    ap.add_argument("--tls-key", type=Path)
    a = ap.parse_args(argv)
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    srv = serve(a.host, a.port, a.cluster, a.table, a.tls_cert, a.tls_key, a.sessions)
    log.info("listening on %s:%d for cluster %s", a.host, a.port, a.cluster)
    serve_until_stopped(srv)


def serve_until_stopped(srv) -> None:
    """Blocks until SIGTERM or SIGINT, then shuts `srv` (a server serving in a thread) down."""
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    srv.shutdown()


if __name__ == "__main__":
    main()

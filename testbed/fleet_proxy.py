"""The fleet proxy: many EKS clusters' API endpoints in front of the testbed's one apiserver.

A fleet of hundreds of EKS clusters has hundreds of control planes; this machine runs one.
The proxy lets each registered fleet cluster (`testbed/fleet.py`) have an endpoint of its
own, `https://127.0.0.1:PORT/fleet/<account>/<region>/<name>`, served with a certificate of
the testbed CA, and behaves towards the product as that cluster's apiserver would, within
what eks-reaper uses:

- **authentication as on EKS**: the bearer token is checked by `authenticator.verify` for
  the cluster *name* of the path (a token signed for another cluster fails the signature,
  as at STS), with the access-entries table and the STS sessions file the fleet uses; a
  rejected token is 401, as EKS answers;
- **authorization by the real apiserver**: the request is forwarded with the testbed's
  admin client certificate and `Impersonate-User`/`Impersonate-Group`/`Impersonate-Uid` of
  the identity `verify` returned, so the apiserver's RBAC, admission policy and APF decide
  as they do for a direct caller;
- **one cluster's objects only**: every fleet object carries the label
  `fleet.testbed.eks-reaper/cluster=<cluster_key(account, region, name)>`; every GET of a
  collection of Jobs or Pods (any namespace, metadata-only lists included) gets that term
  ANDed into its `labelSelector`, so a cluster lists only its own objects;
- **a record of every DELETE**: one JSON line per DELETE in the deletions log (cluster key,
  account/region/name, path, status, the uid of what was deleted), so a check can trace
  each deletion to the cluster whose endpoint sent it: a watch of the fleet's objects sees
  each deleted object's uid and label (`e2e/faults/test_fleet.py`).

It does not stop a DELETE by name of another cluster's object: the record lets an
independent watch catch such a deletion instead of hiding it. Other requests (`/version`,
namespaces, Events) pass through unchanged: clusters share them. Answers are read whole
before they are sent on, so a watch would only be answered when it ends: eks-reaper does
not watch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import re
import ssl
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import urllib3

from testbed import authenticator

log = logging.getLogger("fleet_proxy")

CLUSTER_LABEL = "fleet.testbed.eks-reaper/cluster"
PREFIX = "/fleet/"
#: Collections whose lists are narrowed to one cluster: Jobs and Pods, cluster-wide or in
#: one namespace.
COLLECTION_RE = re.compile(
    r"^/(api/v1|apis/batch/v1)(/namespaces/[^/]+)?/(pods|jobs)$")
#: Headers of the caller that would let it choose its own identity at the apiserver.
DROPPED = {"authorization", "host", "connection", "content-length", "transfer-encoding",
           "keep-alive", "te", "upgrade", "proxy-connection"}


def cluster_key(account: str, region: str, name: str) -> str:
    """The label value of one fleet cluster: a short hash of account/region/name (label
    values are at most 63 characters; ARNs are longer)."""
    return hashlib.sha256(f"{account}/{region}/{name}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Route:
    """One request's fleet cluster and its path at the apiserver."""

    account: str
    region: str
    name: str
    path: str
    query: str

    @property
    def key(self) -> str:
        return cluster_key(self.account, self.region, self.name)


def route(raw_path: str) -> Route | None:
    """`/fleet/<account>/<region>/<name>/<api path>?query`, or None for anything else."""
    parts = urlsplit(raw_path)
    if not parts.path.startswith(PREFIX):
        return None
    segments = parts.path[len(PREFIX):].split("/", 3)
    if len(segments) < 3 or not all(segments[:3]):
        return None
    rest = "/" + segments[3] if len(segments) == 4 else "/"
    return Route(segments[0], segments[1], segments[2], rest, parts.query)


def narrowed_query(r: Route, method: str) -> str:
    """The query sent on: a GET of a Job or Pod collection gets the cluster's label ANDed
    into its labelSelector; anything else is left as it came."""
    if method != "GET" or not COLLECTION_RE.match(r.path):
        return r.query
    pairs = parse_qsl(r.query, keep_blank_values=True)
    term = f"{CLUSTER_LABEL}={r.key}"
    selectors = [v for k, v in pairs if k == "labelSelector" and v]
    pairs = [(k, v) for k, v in pairs if k != "labelSelector"]
    pairs.append(("labelSelector", ",".join(selectors + [term])))
    return urlencode(pairs)


class Sessions:
    """The STS sessions file, re-read only when it changed (it grows with every
    AssumeRole; reading it per request would cost more than the request)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._mtime: float | None = None
        self._data: dict = {}
        self._lock = threading.Lock()

    def get(self) -> dict:
        if self.path is None:
            return {}
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime_ns
            except FileNotFoundError:
                return {}
            if mtime != self._mtime:
                self._data = authenticator.read_sessions(self.path)
                self._mtime = mtime
            return self._data


@dataclass
class Upstream:
    """The real apiserver and the admin credentials the proxy forwards with."""

    url: str
    ca: str
    cert: str
    key: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def serve(port: int, upstream: Upstream, table: Path, sessions: Path | None,
          deletions: Path, cert: Path, key: Path, host: str = "127.0.0.1") -> _Server:
    """Starts the proxy in a background thread; returns the server (`.server_address`,
    `.shutdown()`)."""
    pool = urllib3.PoolManager(maxsize=64, cert_reqs="CERT_REQUIRED", ca_certs=upstream.ca,
                               cert_file=upstream.cert, key_file=upstream.key, retries=False,
                               timeout=urllib3.Timeout(connect=10, read=120))
    sessions_file = Sessions(sessions)
    write_lock = threading.Lock()

    def record(entry: dict) -> None:
        line = json.dumps(entry, sort_keys=True) + "\n"
        with write_lock, deletions.open("a") as f:
            f.write(line)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # one line per DELETE is in the deletions log
            pass

        def answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def status(self, code: int, reason: str, message: str) -> None:
            body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "reason": reason, "message": message, "code": code}).encode()
            self.answer(code, body, "application/json")

        def handle_any(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            r = route(self.path)
            if r is None:
                self.status(404, "NotFound",
                            "not a fleet cluster path: /fleet/<account>/<region>/<name>/...")
                return
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
            try:
                entries = json.loads(table.read_text())
                caller = authenticator.verify(token, r.name, entries,
                                              dt.datetime.now(dt.timezone.utc),
                                              sessions_file.get())
            except authenticator.Rejected as e:
                log.info("decision=reject cluster=%s/%s/%s reason=%s",
                         r.account, r.region, r.name, e)
                self.status(401, "Unauthorized", "Unauthorized")
                return
            headers = urllib3.HTTPHeaderDict(
                {k: v for k, v in self.headers.items() if k.lower() not in DROPPED})
            headers["Impersonate-User"] = caller.username
            headers["Impersonate-Uid"] = caller.uid
            for group in caller.groups:  # one header per group, as the apiserver reads them
                headers.add("Impersonate-Group", group)
            query = narrowed_query(r, self.command)
            url = upstream.url + r.path + (f"?{query}" if query else "")
            try:
                resp = pool.request(self.command, url, body=body, headers=headers,
                                    redirect=False)
            except urllib3.exceptions.HTTPError as e:
                self.status(502, "BadGateway", f"apiserver: {type(e).__name__}")
                return
            if self.command == "DELETE":
                record(_deletion(r, resp.status, resp.data))
            self.answer(resp.status, resp.data,
                        resp.headers.get("Content-Type", "application/json"))

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any  # noqa: N815

    srv = _Server((host, port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, name="fleet-proxy", daemon=True).start()
    return srv


def _deletion(r: Route, status: int, data: bytes) -> dict:
    """One deletions-log line: who deleted, what, the answer, and the uid of what was
    deleted. A DELETE answers with the object (when it waits for finalizers, as a pod does)
    or with a Status whose `details.uid` names it (a Job deleted at once); the object's
    cluster label is logged when the answer carries it."""
    uid = label = None
    try:
        obj = json.loads(data)
        meta = obj.get("metadata") or {}
        uid = meta.get("uid") or (obj.get("details") or {}).get("uid")
        label = (meta.get("labels") or {}).get(CLUSTER_LABEL)
    except (ValueError, AttributeError):
        pass
    return {"key": r.key, "account": r.account, "region": r.region, "name": r.name,
            "path": r.path, "status": status, "uid": uid, "objectLabel": label}


def read_deletions(path: Path) -> list[dict]:
    """The deletions log, parsed (empty when nothing was deleted yet)."""
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line]
    except FileNotFoundError:
        return []


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--apiserver", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--admin-cert", required=True)
    ap.add_argument("--admin-key", required=True)
    ap.add_argument("--table", type=Path, required=True)
    ap.add_argument("--sessions", type=Path)
    ap.add_argument("--deletions", type=Path, required=True)
    ap.add_argument("--tls-cert", type=Path, required=True)
    ap.add_argument("--tls-key", type=Path, required=True)
    a = ap.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    srv = serve(a.port, Upstream(a.apiserver, a.ca, a.admin_cert, a.admin_key), a.table,
                a.sessions, a.deletions, a.tls_cert, a.tls_key)
    log.info("listening on 127.0.0.1:%d", srv.server_address[1])
    authenticator.serve_until_stopped(srv)


if __name__ == "__main__":
    main()

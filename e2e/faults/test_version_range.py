"""The supported Kubernetes range (src/eks/version.rs): the binary reads `GET /version` once
per cluster when connecting. Below the oldest supported minor the cluster fails
(`UnsupportedVersion`) before anything is listed; above the newest tested it is pruned
with a warning in the log and the report.

The testbed's apiserver runs one release, so the run goes through a loopback proxy that
answers `/version` with the release under test and forwards every other request, with the
reaper's own EKS token, to the real apiserver (RBAC and the admission policy as usual). The
CLI reaches the proxy through a kubeconfig context (`--kubeconfig`).
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import requests

from testbed.tokens import token_for

from . import faultlib as fl
from .faultlib import assert_nothing_deleted, assert_nothing_wrong_deleted


class VersionProxy:
    """`/version` says `git_version`; everything else goes to the apiserver."""

    def __init__(self, env: dict, git_version: str):
        self.seen: collections.Counter[str] = collections.Counter()
        upstream = requests.Session()
        upstream.trust_env = False
        upstream.verify = env["TESTBED_CA_FILE"]
        api, proxy = env["TESTBED_APISERVER"], self
        minor = git_version.lstrip("v").split(".")[1]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                proxy.seen[f"{self.command} {self.path.split('?')[0]}"] += 1
                if self.path.split("?")[0] == "/version":
                    status, ctype, body = 200, "application/json", json.dumps({
                        "major": "1", "minor": f"{minor}+", "gitVersion": git_version,
                        "gitTreeState": "clean", "platform": "linux/amd64"}).encode()
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() in ("authorization", "content-type", "accept")}
                    r = upstream.request(self.command, api + self.path, headers=headers,
                                         data=self.rfile.read(length) if length else None,
                                         timeout=30)
                    status, ctype, body = (r.status_code,
                                           r.headers.get("Content-Type", "application/json"),
                                           r.content)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextlib.contextmanager
def proxied(env: dict, git_version: str, tmp_path: Path) -> Iterator[tuple[VersionProxy, Path]]:
    """The proxy, running, and a kubeconfig whose context reaches it with a reaper token."""
    proxy = VersionProxy(env, git_version)
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig.json"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "old",
        "clusters": [{"name": "c", "cluster": {"server": proxy.url}}],
        "users": [{"name": "reaper", "user": {"token": token_for(env, "reaper")}}],
        "contexts": [{"name": "old", "context": {"cluster": "c", "user": "reaper"}}],
    }))
    try:
        yield proxy, kubeconfig
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()


def run_through(env: dict, kubeconfig: Path, namespace: str) -> fl.Run:
    return fl.run_cli(env, ["run", "--kubeconfig", str(kubeconfig), "--namespaces", namespace,
                            "--output", "json", "--metrics-sink", "none"], timeout=120)


def test_cluster_older_than_supported_fails_before_listing(env, kube, namespace, tmp_path):
    # GIVEN due objects on a cluster whose /version says 1.31 (EKS's extended support of
    # 1.31 ended on 2026-11-26)
    s = fl.seed(kube, namespace, due_jobs=3, due_pods=1)
    with proxied(env, "v1.31.14-eks-0a1b2c3", tmp_path) as (proxy, kubeconfig):
        # WHEN the reaper runs against it
        run = run_through(env, kubeconfig, namespace)
    # THEN the cluster failed with UnsupportedVersion, naming the version and the range
    c = run.cluster
    assert run.rc == 1 and c["status"] == "failed", run.describe()
    assert c["errorKind"] == "UnsupportedVersion", c
    assert c["error"] == ("the API server runs Kubernetes v1.31.14-eks-0a1b2c3, older than "
                          "eks-reaper supports (1.32 to 1.37); upgrade the cluster to 1.32 "
                          "or later"), c["error"]
    # and nothing was listed or deleted: /version was its only request
    assert set(proxy.seen) == {"GET /version"}, proxy.seen
    assert_nothing_deleted(kube, s)


def test_cluster_newer_than_tested_is_pruned_with_a_warning(env, kube, namespace, tmp_path):
    # GIVEN due objects on a cluster whose /version says 1.38 (newer than tested)
    s = fl.seed(kube, namespace, due_jobs=3, due_pods=1)
    with proxied(env, "v1.38.0", tmp_path) as (proxy, kubeconfig):
        # WHEN the reaper runs against it
        run = run_through(env, kubeconfig, namespace)
    # THEN it pruned as usual, and said the version is newer than tested, in the report and
    # in one WARN log line
    c = run.cluster
    assert run.rc == 0 and c["status"] == "ok", run.describe()
    assert c["kubernetesVersion"] == "v1.38.0", c
    assert "v1.38.0" in c["versionWarning"] and "1.32 to 1.37" in c["versionWarning"], c
    assert fl.find_logs(run.logs, "newer than eks-reaper was tested on", "WARN"), run.tail()
    assert proxy.seen["GET /version"] == 1, proxy.seen
    o = assert_nothing_wrong_deleted(kube, s)
    assert o.due_jobs_deleted == 3 and o.due_pods_deleted == 1, c


def test_the_testbed_release_is_reported_without_warning(env, kube, namespace):
    # GIVEN the testbed's own apiserver (a supported release)
    fl.seed(kube, namespace, due_jobs=1, due_pods=0, keep=False)
    # WHEN the reaper runs against it as on EKS (DescribeCluster, token)
    run = fl.run_cli(env, fl.cli_args(env["TESTBED_CLUSTER"], namespace,
                                      "--metrics-sink", "none"))
    # THEN the report names the release and has no warning
    c = run.cluster
    assert run.rc == 0 and c["status"] == "ok", run.describe()
    assert c["kubernetesVersion"] == env["TESTBED_KUBE_VERSION"], c
    assert "versionWarning" not in c, c

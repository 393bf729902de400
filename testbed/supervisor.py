"""The testbed supervisor: one detached process owning every component.

`scripts/testbed up` starts `python -m testbed run ...` (PYTHONPATH=the repository root).
This process:

1. picks free loopback ports, writes a CA + certs + SA key (pki.py) into the state dir;
2. starts the token authenticator (child process), etcd, kube-apiserver and
   kube-controller-manager (children; each gets SIGKILL via PR_SET_PDEATHSIG should this
   supervisor die, so nothing outlives it), waits for /readyz, applies the RBAC manifest
   and the admission policy (and waits until the apiserver enforces it);
3. starts moto in-process and creates the VPC, subnets, cluster and Fargate profile, with
   the cluster's endpoint and CA set to the real apiserver's (aws.py);
   moto's STS sessions are mirrored into `sts-sessions.json` for the authenticator
   (sts_sessions.py), and two roles the reaper may assume are created in moto's IAM;
4. starts the CloudWatch CBOR bridge (cbor_bridge.py) and the Fargate stand-in (fargate/);
5. writes env.sh / env.json, then the `ready` marker, and serves control requests
   (`control/restart-apiserver`) until SIGTERM, when it stops everything in reverse order.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import logging
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import yaml

from testbed import admission, aws, cbor_bridge, flowcontrol, pki, sts_sessions, workload
from testbed.fargate import kubelet, nodes
from testbed.fargate.standin import FargateStandIn
from testbed.ports import free_ports
from testbed.tokens import make_token

log = logging.getLogger("testbed.supervisor")

REAPER_ARN = f"arn:aws:iam::{aws.ACCOUNT}:role/eks-reaper"
NORBAC_ARN = f"arn:aws:iam::{aws.ACCOUNT}:role/eks-reaper-norbac"
CROSS_ROLE_ARN = aws.role_arn(aws.CROSS_ROLE)
NOENTRY_ROLE_ARN = aws.role_arn(aws.NOENTRY_ROLE)
REAPER_KEY = "AKIAEKSREAPER0000001"
NORBAC_KEY = "AKIAEKSNORBAC0000001"

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. Popen is only ever called from the main
    # thread (PDEATHSIG fires when the *thread* that forked exits).
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "").strip()
    return int(v) if v else default


class Proc:
    """A child process with a fixed command line, restartable in place."""

    def __init__(self, name: str, argv: list[str], logs: Path, env: dict | None = None):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = logs / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.expected_exit = False

    def start(self) -> None:
        assert threading.current_thread() is threading.main_thread()
        logf = open(self.log_path, "ab")
        logf.write(f"\n=== {dt.datetime.now().isoformat()} start: {shlex.join(self.argv)}\n".encode())
        logf.flush()
        self.popen = subprocess.Popen(
            self.argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent, env=self.env,
        )
        logf.close()
        self.expected_exit = False
        log.info("started %s pid=%d", self.name, self.popen.pid)

    def stop(self, timeout: float = 15, kill: bool = False) -> None:
        p = self.popen
        if p is None or p.poll() is not None:
            return
        self.expected_exit = True
        if kill:
            p.kill()
        else:
            p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            log.info("%s did not stop in %ss, killing", self.name, timeout)
            p.kill()
            p.wait()
        log.info("stopped %s rc=%s", self.name, p.returncode)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def died(self) -> bool:
        return self.popen is not None and self.popen.poll() is not None and not self.expected_exit


class Supervisor:
    def __init__(self, state: Path, bin_dir: Path, root: Path):
        self.state, self.bin_dir, self.root = state, bin_dir, root
        self.logs = state / "logs"
        self.control = state / "control"
        self.procs: dict[str, Proc] = {}
        self.stop_event = threading.Event()
        self.moto = None
        self.bridge = None
        self.fargate = None
        self.fargate_thread: threading.Thread | None = None
        self.apiserver_restarts = 0

    # ---------------------------------------------------------------- setup
    def prepare(self) -> None:
        self.control.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.state / "etcd").mkdir(exist_ok=True)
        p = self.ports = dict(
            zip(["etcd", "etcd_peer", "apiserver", "authn", "moto", "bridge"], free_ports(6))
        )
        self.apiserver_url = f"https://127.0.0.1:{p['apiserver']}"
        self.moto_url = f"http://127.0.0.1:{p['moto']}"
        self.pki = pki.make_pki(self.state / "pki")
        self.kubeconfig = self.state / "admin.kubeconfig"
        self._write_kubeconfig(
            self.kubeconfig, self.apiserver_url,
            {"client-certificate": str(self.pki["admin_cert"]),
             "client-key": str(self.pki["admin_key"])},
            "testbed-admin",
        )
        self.webhook_kubeconfig = self.state / "authn-webhook.kubeconfig"
        self._write_kubeconfig(
            self.webhook_kubeconfig, f"https://127.0.0.1:{p['authn']}/authenticate", {}, "apiserver"
        )
        self.reaper_secret = secrets.token_urlsafe(30)[:40]
        self.norbac_secret = secrets.token_urlsafe(30)[:40]
        self.access_entries = self.state / "access-entries.json"
        self.sts_sessions = self.state / "sts-sessions.json"
        self.access_entries.write_text(json.dumps({
            "maxTokenAgeSeconds": 900,
            "identities": {
                REAPER_KEY: {"secretAccessKey": self.reaper_secret, "arn": REAPER_ARN,
                             "userId": "AROAEKSREAPER0000001"},
                NORBAC_KEY: {"secretAccessKey": self.norbac_secret, "arn": NORBAC_ARN,
                             "userId": "AROAEKSNORBAC0000001"},
            },
            "accessEntries": {
                REAPER_ARN: {"username": "eks-reaper", "groups": ["eks-reaper"]},
                NORBAC_ARN: {"username": "eks-reaper-norbac", "groups": []},
                # Sessions of this role (assumed-role ARNs) are mapped through it.
                CROSS_ROLE_ARN: {"username": "eks-reaper-cross", "groups": ["eks-reaper"]},
            },
        }, indent=2) + "\n")

    def _write_kubeconfig(self, path: Path, server: str, user: dict, name: str) -> None:
        cfg = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "testbed", "cluster": {
                "server": server, "certificate-authority": str(self.pki["ca"])}}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": name}}],
            "current-context": "testbed",
        }
        path.write_text(yaml.safe_dump(cfg))
        path.chmod(0o600)

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def build_procs(self) -> None:
        p, k, st = self.ports, self.pki, self.state
        py = sys.executable
        self.procs["authenticator"] = Proc("authenticator", [
            py, "-m", "testbed.authenticator", "--port", str(p["authn"]),
            "--cluster", aws.CLUSTER, "--table", str(self.access_entries),
            "--sessions", str(self.sts_sessions),
            "--tls-cert", str(k["serving_cert"]), "--tls-key", str(k["serving_key"]),
        ], self.logs, env=os.environ.copy())
        etcd_url = f"http://127.0.0.1:{p['etcd']}"
        peer_url = f"http://127.0.0.1:{p['etcd_peer']}"
        self.etcd_url = etcd_url
        self.procs["etcd"] = Proc("etcd", [
            self._bin("etcd"), "--name=n0", f"--data-dir={st / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=n0={peer_url}", "--unsafe-no-fsync",
            "--quota-backend-bytes=8589934592", "--log-level=warn",
        ], self.logs)
        inflight = env_int("EKS_REAPER_TESTBED_MAX_REQUESTS_INFLIGHT", 400)
        mutating = env_int("EKS_REAPER_TESTBED_MAX_MUTATING_REQUESTS_INFLIGHT", 200)
        self.limits = (inflight, mutating)
        extra = shlex.split(os.environ.get("EKS_REAPER_TESTBED_APISERVER_ARGS", ""))
        self.procs["kube-apiserver"] = Proc("kube-apiserver", [
            self._bin("kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            # The `kubernetes` Service endpoint cannot be a loopback address; nothing in
            # the testbed runs in-cluster, so do not reconcile it.
            "--endpoint-reconciler-type=none",
            f"--secure-port={p['apiserver']}",
            f"--cert-dir={st / 'apiserver-certs'}",
            f"--tls-cert-file={k['serving_cert']}", f"--tls-private-key-file={k['serving_key']}",
            f"--client-ca-file={k['ca']}",
            "--authorization-mode=RBAC",
            f"--authentication-token-webhook-config-file={self.webhook_kubeconfig}",
            "--authentication-token-webhook-version=v1",
            "--authentication-token-webhook-cache-ttl=0s",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-signing-key-file={k['sa_key']}",
            f"--service-account-key-file={k['sa_pub']}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--enable-priority-and-fairness=true",
            f"--max-requests-inflight={inflight}",
            f"--max-mutating-requests-inflight={mutating}",
            "--profiling=false",
            "--v=1",
            *extra,
        ], self.logs)
        controllers = "job,garbagecollector,podgc,namespace,serviceaccount"
        if os.environ.get("EKS_REAPER_TESTBED_TTL_CONTROLLER") == "1":
            controllers += ",ttl-after-finished"
        self.controllers = controllers
        self.procs["kube-controller-manager"] = Proc("kube-controller-manager", [
            self._bin("kube-controller-manager"),
            f"--kubeconfig={self.kubeconfig}",
            f"--controllers={controllers}",
            "--leader-elect=false",
            "--secure-port=0",
            "--use-service-account-credentials=false",
            "--terminated-pod-gc-threshold=200000",
            "--kube-api-qps=500", "--kube-api-burst=1000",
            "--concurrent-job-syncs=20", "--concurrent-gc-syncs=40",
            f"--service-account-private-key-file={k['sa_key']}",
            f"--root-ca-file={k['ca']}",
            "--v=1",
        ], self.logs)

    # ---------------------------------------------------------------- health
    def _admin_session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override .verify
        s.verify = str(self.pki["ca"])
        s.cert = (str(self.pki["admin_cert"]), str(self.pki["admin_key"]))
        return s

    def _wait(self, what: str, check, timeout: float, proc: Proc | None = None) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.stop_event.is_set():
                raise RuntimeError(f"{what}: stopped while waiting")
            if proc is not None and proc.popen.poll() is not None:
                raise RuntimeError(f"{what}: process exited rc={proc.popen.returncode}, see {proc.log_path}")
            try:
                if check():
                    log.info("%s ready", what)
                    return
            except Exception as e:  # noqa: BLE001 - keep polling
                last = e
            time.sleep(0.2)
        raise RuntimeError(f"{what} not ready after {timeout}s: {last}")

    def wait_etcd(self) -> None:
        self._wait("etcd", lambda: requests.get(f"{self.etcd_url}/health", timeout=2).ok,
                   60, self.procs["etcd"])

    def wait_apiserver(self) -> None:
        s = self._admin_session()
        self._wait("kube-apiserver",
                   lambda: s.get(f"{self.apiserver_url}/readyz", timeout=5).status_code == 200,
                   180, self.procs["kube-apiserver"])

    def wait_authenticator(self) -> None:
        url = f"https://127.0.0.1:{self.ports['authn']}/authenticate"
        self._wait("authenticator", lambda: requests.post(
            url, json={"spec": {"token": "probe"}}, verify=str(self.pki["ca"]), timeout=2).ok,
            30, self.procs["authenticator"])

    def wait_controller_manager(self) -> None:
        # Ready when the serviceaccount controller has made `default` in `default`.
        s = self._admin_session()
        self._wait("kube-controller-manager", lambda: s.get(
            f"{self.apiserver_url}/api/v1/namespaces/default/serviceaccounts/default",
            timeout=5).status_code == 200, 120, self.procs["kube-controller-manager"])

    def kubectl(self, *args: str) -> None:
        out = subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True, text=True, timeout=60,
        )
        log.info("kubectl %s -> rc=%d %s%s", " ".join(args), out.returncode,
                 out.stdout.strip(), out.stderr.strip())
        if out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {out.stderr}")

    def _reaper_session(self) -> requests.Session:
        reaper = requests.Session()
        reaper.trust_env = False
        reaper.verify = str(self.pki["ca"])
        reaper.headers["Authorization"] = "Bearer " + make_token(
            REAPER_KEY, self.reaper_secret, aws.CLUSTER, aws.REGION)
        return reaper

    def wait_flowcontrol(self) -> None:
        """Waits until the apiserver puts the reaper's requests in its own priority level."""
        waited = flowcontrol.wait_classified(
            self._admin_session(), self._reaper_session(), self.apiserver_url)
        log.info("reaper priority level in force after %.1fs", waited)

    def wait_admission_policy(self) -> None:
        """Waits until the apiserver enforces the eks-reaper ValidatingAdmissionPolicy
        (admission.py: a dry-run delete of a Pending probe pod in `default` by the reaper
        identity, until the policy refuses it). The probe pod is deleted afterwards."""
        admin = self._admin_session()
        reaper = self._reaper_session()
        pod = admission.create_probe_pod(admin, self.apiserver_url, "default")
        try:
            waited, seen = admission.wait_enforced(reaper, pod, enforced=True, timeout=60)
            log.info("admission policy in force after %.1fs (probe statuses %s)", waited, seen)
        finally:
            admission.delete_probe_pod(admin, pod)

    # ---------------------------------------------------------------- AWS's side
    def start_bridge(self) -> str:
        self.bridge = cbor_bridge.start_bridge(self.moto_url, "127.0.0.1", self.ports["bridge"])
        url = f"http://127.0.0.1:{self.ports['bridge']}"
        log.info("CBOR bridge on %s -> %s", url, self.moto_url)
        return url

    def start_fargate(self, env: dict) -> None:
        standin = FargateStandIn.from_env(env)
        self.fargate = standin

        def run():
            try:
                standin.run(self.stop_event)
            except Exception:  # noqa: BLE001 - log, keep the rest of the testbed up
                log.exception("Fargate stand-in crashed")

        self.fargate_thread = threading.Thread(target=run, name="fargate", daemon=True)
        self.fargate_thread.start()
        # `synced` is set once its webhook is registered and it has listed pods: only then
        # is a pod created in the Fargate namespace treated as a Fargate pod.
        if not standin.synced.wait(60):
            raise RuntimeError("Fargate stand-in did not sync within 60s (see logs/fargate.log)")
        log.info("Fargate stand-in started")

    # ---------------------------------------------------------------- env
    def env(self, cloudwatch_url: str, res: dict) -> dict:
        st = self.state
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "TESTBED_DIR": str(st),
            "TESTBED_LOGS": str(self.logs),
            "TESTBED_APISERVER": self.apiserver_url,
            "TESTBED_CA_FILE": str(self.pki["ca"]),
            "TESTBED_ADMIN_CERT": str(self.pki["admin_cert"]),
            "TESTBED_ADMIN_KEY": str(self.pki["admin_key"]),
            "TESTBED_KUBE_VERSION": os.environ.get("TESTBED_KUBE_VERSION", ""),
            "TESTBED_BIN_DIR": str(self.bin_dir),
            "TESTBED_ETCD": self.etcd_url,
            "TESTBED_MOTO_URL": self.moto_url,
            "TESTBED_ACCOUNT_ID": aws.ACCOUNT,
            "TESTBED_CLUSTER": aws.CLUSTER,
            "TESTBED_FARGATE_PROFILE": aws.FARGATE_PROFILE,
            "TESTBED_FARGATE_NAMESPACE": aws.FARGATE_NAMESPACE,
            "TESTBED_VPC": res["vpc"],
            "TESTBED_SUBNETS": ",".join(res["subnets"]),
            "TESTBED_FARGATE_SUBNETS": ",".join(res["fargate_subnets"]),
            "TESTBED_SUBNET_LAYOUT": json.dumps(res["described"]),
            "AWS_REGION": aws.REGION,
            "AWS_DEFAULT_REGION": aws.REGION,
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ENDPOINT_URL_CLOUDWATCH": cloudwatch_url,
            "AWS_ACCESS_KEY_ID": REAPER_KEY,
            "AWS_SECRET_ACCESS_KEY": self.reaper_secret,
            "TESTBED_REAPER_ARN": REAPER_ARN,
            "TESTBED_REAPER_USERNAME": "eks-reaper",
            "TESTBED_REAPER_GROUP": "eks-reaper",
            "TESTBED_NORBAC_ARN": NORBAC_ARN,
            "TESTBED_NORBAC_USERNAME": "eks-reaper-norbac",
            "TESTBED_NORBAC_ACCESS_KEY_ID": NORBAC_KEY,
            "TESTBED_NORBAC_SECRET_ACCESS_KEY": self.norbac_secret,
            "TESTBED_ACCESS_ENTRIES": str(self.access_entries),
            "TESTBED_STS_SESSIONS": str(self.sts_sessions),
            "TESTBED_CROSS_ROLE_ARN": CROSS_ROLE_ARN,
            "TESTBED_CROSS_USERNAME": "eks-reaper-cross",
            "TESTBED_NOENTRY_ROLE_ARN": NOENTRY_ROLE_ARN,
            "TESTBED_AUTHENTICATOR_LOG": str(self.logs / "authenticator.log"),
            "TESTBED_MAX_REQUESTS_INFLIGHT": str(self.limits[0]),
            "TESTBED_MAX_MUTATING_REQUESTS_INFLIGHT": str(self.limits[1]),
            "TESTBED_CONTROLLERS": self.controllers,
            "TESTBED_CONTROL_DIR": str(self.control),
            # The stand-ins' protocol, for tests in any language.
            "TESTBED_EC2_NODE": nodes.EC2_NODE,
            "TESTBED_RUN_SECONDS_ANNOTATION": kubelet.RUN_SECONDS,
            "TESTBED_EXIT_CODE_ANNOTATION": kubelet.EXIT_CODE,
            "TESTBED_KUBELET_ANNOTATION": kubelet.KUBELET,
            "TESTBED_BULK_MANAGER": workload.BULK_MANAGER,
            "TESTBED_WORKLOAD_RUN_LABEL": workload.RUN_LABEL,
            "TESTBED_SUPERVISOR_PID": str(os.getpid()),
        }

    def write_env(self, env: dict) -> None:
        tmp = self.state / "env.json.tmp"
        tmp.write_text(json.dumps(env, indent=2) + "\n")
        tmp.replace(self.state / "env.json")
        lines = ["# eks-reaper testbed: source this file"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
        (self.state / "env.sh").write_text("\n".join(lines) + "\n")

    # ---------------------------------------------------------------- lifecycle
    def up(self) -> None:
        t0 = time.monotonic()
        self.prepare()
        self.build_procs()
        self.procs["authenticator"].start()
        self.procs["etcd"].start()
        self.wait_authenticator()
        self.wait_etcd()
        self.procs["kube-apiserver"].start()
        self.wait_apiserver()
        self.procs["kube-controller-manager"].start()
        self.kubectl("apply", "-f", str(self.root / "infra/rbac/eks-reaper-rbac.yaml"))
        self.kubectl("apply", "-f", str(self.root / admission.POLICY_FILE))
        self.kubectl("apply", "-f", str(self.root / flowcontrol.FLOWCONTROL_FILE))
        self.kubectl("create", "namespace", aws.FARGATE_NAMESPACE)
        sts_sessions.install(self.sts_sessions)
        self.moto = aws.start_moto(self.ports["moto"])
        self._wait("moto", lambda: requests.get(f"{self.moto_url}/moto-api/", timeout=2).ok, 30)
        aws.create_assumable_roles(self.moto_url, REAPER_ARN)
        res = aws.create_resources(
            self.moto_url, self.apiserver_url, self.pki["ca"].read_bytes(),
            env_int("EKS_REAPER_TESTBED_FARGATE_PREFIX", 28),
            env_int("EKS_REAPER_TESTBED_FARGATE_SUBNETS", 2),
        )
        self.wait_controller_manager()
        self.wait_admission_policy()
        self.wait_flowcontrol()
        cw = self.start_bridge()
        env = self.env(cw, res)
        self.start_fargate(env)
        self.write_env(env)
        (self.state / "ready").write_text(f"{time.monotonic() - t0:.1f}\n")
        log.info("testbed ready in %.1fs", time.monotonic() - t0)

    def restart_apiserver(self, down_seconds: float) -> None:
        ap = self.procs["kube-apiserver"]
        log.info("restart-apiserver: stopping (down for %.1fs)", down_seconds)
        (self.control / "apiserver-down").write_text("1\n")
        # SIGKILL: the fault tests want a crash (connections reset, watches cut), and a
        # graceful stop waits up to a minute for open long-running requests anyway.
        ap.stop(kill=True)
        time.sleep(down_seconds)
        ap.start()
        self.wait_apiserver()
        (self.control / "apiserver-down").unlink(missing_ok=True)
        self.apiserver_restarts += 1
        (self.state / "apiserver-restarts").write_text(f"{self.apiserver_restarts}\n")
        log.info("restart-apiserver: done (%d)", self.apiserver_restarts)

    def serve(self) -> None:
        req = self.control / "restart-apiserver"
        reported: set[str] = set()
        while not self.stop_event.is_set():
            if req.exists():
                try:
                    down = float(req.read_text().strip() or 0)
                except ValueError:
                    down = 0.0
                req.unlink(missing_ok=True)
                try:
                    self.restart_apiserver(down)
                except Exception:  # noqa: BLE001
                    log.exception("restart-apiserver failed")
            for name, p in self.procs.items():
                if p.died() and name not in reported:
                    reported.add(name)
                    log.error("%s exited unexpectedly rc=%s, see %s",
                              name, p.popen.returncode, p.log_path)
                    (self.state / "degraded").write_text(f"{name} exited rc={p.popen.returncode}\n")
            self.stop_event.wait(0.2)

    def shutdown(self) -> None:
        log.info("shutting down")
        self.stop_event.set()
        if self.fargate_thread is not None:
            self.fargate_thread.join(15)
        if self.bridge is not None:
            try:
                self.bridge.shutdown()
            except Exception:  # noqa: BLE001
                log.exception("bridge shutdown")
        if self.moto is not None:
            try:
                self.moto.stop()
            except Exception:  # noqa: BLE001
                log.exception("moto stop")
        # The apiserver stops listening at once on SIGTERM but then waits up to 60 s for
        # open long-running requests (watches) before exiting; 5 s is plenty for a testbed.
        grace = {"kube-apiserver": 5}
        for name in ["kube-controller-manager", "kube-apiserver", "etcd", "authenticator"]:
            if name in self.procs:
                self.procs[name].stop(timeout=grace.get(name, 15))
        for f in ("ready", "supervisor.pid"):
            (self.state / f).unlink(missing_ok=True)
        log.info("all stopped")


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed run")
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--bin-dir", type=Path, required=True)
    ap.add_argument("--root", type=Path, required=True)
    a = ap.parse_args(argv)
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a Session's `verify`;
    # everything here talks to loopback services signed by the testbed CA.
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(var, None)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    a.state.mkdir(parents=True, exist_ok=True)
    (a.state / "logs").mkdir(exist_ok=True)
    # moto's request log (one line per AWS call, e.g. the product's) in its own file.
    moto_log = logging.FileHandler(a.state / "logs" / "moto.log")
    moto_log.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.setLevel(logging.INFO)
    werkzeug.propagate = False
    werkzeug.addHandler(moto_log)
    (a.state / "supervisor.pid").write_text(f"{os.getpid()}\n")
    sup = Supervisor(a.state.resolve(), a.bin_dir.resolve(), a.root.resolve())

    def on_term(signum, _frame):
        log.info("got signal %d", signum)
        sup.stop_event.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    rc = 0
    try:
        sup.up()
        sup.serve()
    except Exception:  # noqa: BLE001
        log.exception("testbed failed")
        (a.state / "failed").write_text("see logs/supervisor.log\n")
        rc = 1
    finally:
        sup.shutdown()
    return rc

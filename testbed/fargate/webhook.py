"""EKS's Fargate pod mutation: a real MutatingWebhookConfiguration, served here.

EKS marks Fargate pods through the admission webhook
`0500-amazon-eks-fargate-mutation.amazonaws.com`. This one is served over HTTPS on
127.0.0.1 (its own throw-away CA, passed as `caBundle`) and registered for pod CREATE in
the profile namespaces. A pod that matches a profile selector and asks for the default
scheduler gets `schedulerName: fargate-scheduler` and the label
`eks.amazonaws.com/fargate-profile: <profile>` from the apiserver, as on EKS.
`failurePolicy: Fail`, as a missing Fargate webhook on EKS would otherwise silently put
pods on EC2 nodes.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import ipaddress
import json
import os
import ssl
import tempfile
import threading
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..kube import Kube
from .nodes import STANDIN_LABEL
from .profiles import FARGATE_SCHEDULER, PROFILE_LABEL, match_profile, profile_named

JSON = dict[str, Any]

WEBHOOK_NAME = "0500-amazon-eks-fargate-mutation.amazonaws.com"
API = "admissionregistration.k8s.io/v1"


class MutatingWebhook:
    def __init__(self, kube: Kube, profiles: list[JSON], *, host: str, state_dir: str | None,
                 log: Callable[[str], None]):
        """`state_dir` keeps the serving certificate (a temp dir when None)."""
        self.kube = kube
        self.profiles = profiles
        self.host = host
        self.state_dir = state_dir
        self.log = log
        self.httpd: http.server.ThreadingHTTPServer | None = None

    def mutate(self, review: JSON) -> JSON:
        """AdmissionReview v1 request -> response: the EKS Fargate pod mutation."""
        req = review.get("request") or {}
        resp: JSON = {"uid": req.get("uid", ""), "allowed": True}
        pod = req.get("object") or {}
        md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        ns = req.get("namespace") or md.get("namespace") or ""
        labels = md.get("labels") or {}
        wanted = labels.get(PROFILE_LABEL)
        prof = (profile_named(self.profiles, wanted) if wanted
                else match_profile(self.profiles, ns, labels))
        # A pod bound at creation (spec.nodeName) skips scheduling, so it is left alone.
        if prof and not spec.get("nodeName") and spec.get("schedulerName", "default-scheduler") \
                in ("", "default-scheduler"):
            ops: list[JSON] = []
            if "labels" not in md:
                ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
            ops.append({"op": "add", "path": "/metadata/labels/" + PROFILE_LABEL.replace(
                "~", "~0").replace("/", "~1"), "value": prof["name"]})
            ops.append({"op": "add", "path": "/spec/schedulerName", "value": FARGATE_SCHEDULER})
            resp["patchType"] = "JSONPatch"
            resp["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
            self.log(f"pod mutated namespace={ns} name={md.get('name') or md.get('generateName')}"
                     f" profile={prof['name']}")
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": resp}

    def start(self) -> None:
        """Serves the webhook over HTTPS and registers (or replaces) its configuration."""
        d = self.state_dir or tempfile.mkdtemp(prefix="fargate-webhook-")
        os.makedirs(d, exist_ok=True)
        ca_pem, cert_path, key_path = _webhook_pki(d, self.host)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        webhook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                try:
                    n = int(self.headers.get("Content-Length", "0"))
                    out = json.dumps(webhook.mutate(json.loads(self.rfile.read(n)))).encode()
                    self.send_response(200)
                except Exception as e:  # answer something the apiserver can log
                    out = json.dumps({"error": str(e)}).encode()
                    self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        httpd.daemon_threads = True
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self.httpd = httpd
        threading.Thread(target=httpd.serve_forever, name="fargate-webhook", daemon=True).start()
        port = httpd.server_address[1]
        namespaces = sorted({s["namespace"] for p in self.profiles for s in p["selectors"]})
        hook: JSON = {
            "name": WEBHOOK_NAME,
            "clientConfig": {"url": f"https://{self.host}:{port}/mutate-pods",
                             "caBundle": base64.b64encode(ca_pem).decode()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "failurePolicy": "Fail", "sideEffects": "None", "timeoutSeconds": 5,
            "admissionReviewVersions": ["v1"], "reinvocationPolicy": "Never",
        }
        if not any(any(ch in ns for ch in "*?") for ns in namespaces):
            hook["namespaceSelector"] = {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}
        body = {"apiVersion": API, "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": WEBHOOK_NAME, "labels": {STANDIN_LABEL: "fargate"}},
                "webhooks": [hook]}
        cur = self.kube.get_or_none(API, "mutatingwebhookconfigurations", WEBHOOK_NAME)
        if cur:
            body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            self.kube.replace(API, "mutatingwebhookconfigurations", WEBHOOK_NAME, body)
        else:
            self.kube.create(API, "mutatingwebhookconfigurations", body)
        self.log(f"webhook registered name={WEBHOOK_NAME} url={hook['clientConfig']['url']} "
                 f"namespaces={namespaces}")

    def stop(self) -> None:
        """Removes the configuration (the apiserver may be gone already) and stops serving."""
        if not self.httpd:
            return
        try:
            self.kube.delete(API, "mutatingwebhookconfigurations", WEBHOOK_NAME, missing_ok=True)
        except Exception as e:  # apiserver may already be gone at shutdown
            self.log(f"stand-in: webhook config not removed: {e}")
        self.httpd.shutdown()


def _webhook_pki(directory: str, host: str) -> tuple[bytes, str, str]:
    """A throw-away CA and a serving cert for `host`; returns (ca_pem, cert_path, key_path)."""
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "testbed-fargate-webhook-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        san: Any = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fargate-webhook")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(later)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    cert_path = os.path.join(directory, "fargate-webhook.crt")
    key_path = os.path.join(directory, "fargate-webhook.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return ca.public_bytes(pem), cert_path, key_path

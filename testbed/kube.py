"""A small admin REST client for the testbed's kube-apiserver.

Plain `requests` over one pooled `Session`, authenticated with a client certificate (the
admin identity from the admin kubeconfig) or a bearer token. It speaks the REST paths
directly, so a test can see exactly what goes over the wire:

    kube = Kube.from_kubeconfig("/tmp/eks-reaper-testbed/admin.kubeconfig")
    job = kube.create("batch/v1", "jobs", body, namespace="etl")
    for item in kube.list("v1", "pods", namespace="etl", label_selector="job-name=x"):
        ...
    kube.delete("batch/v1", "jobs", "x", namespace="etl",
                propagation_policy="Background", uid=job["metadata"]["uid"])

Resources are addressed by (api_version, plural): "v1" is the core group (`/api/v1`),
anything else is a group version (`/apis/batch/v1`). Every call raises `ApiError`
(with `.status`, `.reason`, `.body`) on a non-2xx answer.

`watch()` is a reconnecting watch; `informer()` is list-then-watch that survives watch
expiry (410 Gone) by re-listing and synthesising DELETED events for what disappeared.
`bulk()` runs a function over many items on a thread pool sharing the session's
connection pool, which is what makes seeding tens of thousands of objects quick.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import tempfile
import threading
import time
from typing import Any, Callable, Iterable, Iterator

import requests
import requests.adapters
import yaml

JSON = dict[str, Any]

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ApiError(Exception):
    """A non-2xx answer from the apiserver (or a watch ERROR event)."""

    def __init__(self, status: int, reason: str, message: str, body: Any = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body

    @classmethod
    def from_response(cls, resp: requests.Response) -> "ApiError":
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        if isinstance(body, dict):
            return cls(resp.status_code, body.get("reason", ""), body.get("message", ""), body)
        return cls(resp.status_code, resp.reason or "", str(body)[:500], body)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410


def resource_path(api_version: str, plural: str, namespace: str | None = None,
                  name: str | None = None, subresource: str | None = None) -> str:
    """REST path of a collection or object: ("batch/v1", "jobs", "ns", "x", "status")."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [base]
    if namespace is not None:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name is not None:
        parts.append(name)
    if subresource is not None:
        parts.append(subresource)
    return "/".join(parts)


class Kube:
    """Admin client for one apiserver. Thread-safe: share one instance between threads."""

    def __init__(self, server: str, *, cert: str | None = None, key: str | None = None,
                 ca: str | None = None, token: str | None = None, pool_size: int = 64,
                 timeout: float = 30.0, retries_429: int = 8):
        """`server` is the https URL; `cert`/`key`/`ca` are PEM file paths."""
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.retries_429 = retries_429
        self.session = requests.Session()
        # REQUESTS_CA_BUNDLE / proxies from the environment would override `verify` below.
        self.session.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        if cert:
            self.session.cert = (cert, key) if key else cert
        self.session.verify = ca if ca else True
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "eks-reaper-testbed/kube.py"
        self._tmpdir: tempfile.TemporaryDirectory | None = None

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(cls, path: str, context: str | None = None, **kw: Any) -> "Kube":
        """Client from a kubeconfig (file paths or inline *-data fields both work)."""
        with open(path) as f:
            cfg = yaml.safe_load(f)
        ctx_name = context or cfg.get("current-context") or cfg["contexts"][0]["name"]
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next((u["user"] for u in cfg.get("users", []) if u["name"] == ctx.get("user")), {})
        base = os.path.dirname(os.path.abspath(path))
        tmp = tempfile.TemporaryDirectory(prefix="kubepy-")

        def material(field: str) -> str | None:
            src = cluster if field.startswith("certificate-authority") else user
            if src.get(f"{field}-data"):
                out = os.path.join(tmp.name, field)
                with open(out, "wb") as fh:
                    fh.write(base64.b64decode(src[f"{field}-data"]))
                return out
            if src.get(field):
                return os.path.join(base, src[field])
            return None

        kube = cls(cluster["server"], cert=material("client-certificate"),
                   key=material("client-key"), ca=material("certificate-authority"),
                   token=user.get("token"), **kw)
        kube._tmpdir = tmp  # keeps the decoded files alive as long as the client
        return kube

    # ---- plumbing ----------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict | None = None,
                body: Any = None, content_type: str = "application/json",
                stream: bool = False, timeout: float | None = None) -> requests.Response:
        """One request; retries 429 honouring Retry-After, raises ApiError otherwise."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        for attempt in range(self.retries_429 + 1):
            resp = self.session.request(method, self.server + path, params=params, data=data,
                                        headers=headers, stream=stream,
                                        timeout=timeout or self.timeout)
            if resp.status_code == 429 and attempt < self.retries_429:
                wait = float(resp.headers.get("Retry-After", "1") or 1)
                resp.close()
                time.sleep(min(wait, 5.0))
                continue
            if resp.status_code >= 400:
                err = ApiError.from_response(resp)
                resp.close()
                raise err
            return resp
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, **kw: Any) -> JSON:
        return self.request(method, path, **kw).json()

    # ---- verbs -------------------------------------------------------------------------

    def get(self, api_version: str, plural: str, name: str, namespace: str | None = None,
            subresource: str | None = None) -> JSON:
        return self._json("GET", resource_path(api_version, plural, namespace, name, subresource))

    def get_or_none(self, api_version: str, plural: str, name: str,
                    namespace: str | None = None) -> JSON | None:
        try:
            return self.get(api_version, plural, name, namespace)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    def list_page(self, api_version: str, plural: str, namespace: str | None = None, *,
                  label_selector: str | None = None, field_selector: str | None = None,
                  limit: int | None = None, continue_: str | None = None,
                  resource_version: str | None = None) -> JSON:
        """One page: the raw List object (items, metadata.continue, metadata.resourceVersion)."""
        params: dict[str, Any] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if limit:
            params["limit"] = limit
        if continue_:
            params["continue"] = continue_
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        return self._json("GET", resource_path(api_version, plural, namespace), params=params,
                          timeout=max(self.timeout, 120))

    def list_all(self, api_version: str, plural: str, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 limit: int = 500) -> tuple[list[JSON], str]:
        """Every item, paged; returns (items, resourceVersion of the first page) for watching."""
        items: list[JSON] = []
        cont = None
        rv = ""
        while True:
            page = self.list_page(api_version, plural, namespace, label_selector=label_selector,
                                  field_selector=field_selector, limit=limit, continue_=cont)
            rv = rv or page["metadata"].get("resourceVersion", "")
            items.extend(page.get("items") or [])
            cont = page["metadata"].get("continue")
            if not cont:
                return items, rv

    def list(self, api_version: str, plural: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None,
             limit: int = 500) -> Iterator[JSON]:
        """Iterate items page by page (`limit` + `continue`)."""
        cont = None
        while True:
            page = self.list_page(api_version, plural, namespace, label_selector=label_selector,
                                  field_selector=field_selector, limit=limit, continue_=cont)
            yield from page.get("items") or []
            cont = page["metadata"].get("continue")
            if not cont:
                return

    def create(self, api_version: str, plural: str, body: JSON,
               namespace: str | None = None, subresource: str | None = None,
               name: str | None = None) -> JSON:
        """POST to the collection (or to an object's subresource, e.g. pods/binding)."""
        return self._json("POST", resource_path(api_version, plural, namespace, name, subresource),
                          body=body)

    def replace(self, api_version: str, plural: str, name: str, body: JSON,
                namespace: str | None = None, subresource: str | None = None) -> JSON:
        """PUT (optimistic concurrency through body.metadata.resourceVersion, if set)."""
        return self._json("PUT", resource_path(api_version, plural, namespace, name, subresource),
                          body=body)

    def patch(self, api_version: str, plural: str, name: str, patch: Any,
              namespace: str | None = None, subresource: str | None = None,
              patch_type: str = MERGE) -> JSON:
        """PATCH; `patch_type` is MERGE (default), STRATEGIC (built-in types) or JSON_PATCH."""
        return self._json("PATCH", resource_path(api_version, plural, namespace, name, subresource),
                          body=patch, content_type=patch_type)

    def patch_status(self, api_version: str, plural: str, name: str, patch: Any,
                     namespace: str | None = None, patch_type: str = MERGE) -> JSON:
        return self.patch(api_version, plural, name, patch, namespace, "status", patch_type)

    def replace_status(self, api_version: str, plural: str, obj: JSON) -> JSON:
        md = obj["metadata"]
        return self.replace(api_version, plural, md["name"], obj, md.get("namespace"), "status")

    def delete(self, api_version: str, plural: str, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = None, uid: str | None = None,
               resource_version: str | None = None,
               grace_period_seconds: int | None = None, missing_ok: bool = False) -> JSON | None:
        """DELETE with DeleteOptions. No propagation_policy means the resource's default
        (orphan, for batch/v1 Jobs). `uid`/`resource_version` become preconditions."""
        opts: JSON = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        pre = {}
        if uid:
            pre["uid"] = uid
        if resource_version:
            pre["resourceVersion"] = resource_version
        if pre:
            opts["preconditions"] = pre
        try:
            return self._json("DELETE", resource_path(api_version, plural, namespace, name),
                              body=opts)
        except ApiError as e:
            if missing_ok and e.not_found:
                return None
            raise

    def delete_collection(self, api_version: str, plural: str, namespace: str, *,
                          label_selector: str | None = None,
                          propagation_policy: str | None = None) -> JSON:
        params = {"labelSelector": label_selector} if label_selector else None
        opts: JSON = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        return self._json("DELETE", resource_path(api_version, plural, namespace), params=params,
                          body=opts, timeout=max(self.timeout, 120))

    # ---- namespaces --------------------------------------------------------------------

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None) -> JSON:
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": labels or {}}}
        try:
            return self.create("v1", "namespaces", body)
        except ApiError as e:
            if e.conflict:
                return self.get("v1", "namespaces", name)
            raise

    def wait_for_pod_admission(self, namespace: str, timeout: float = 120) -> None:
        """Blocks until pods can be created in `namespace`: the ServiceAccount admission
        plugin refuses them until the serviceaccount controller has made `default`, which
        in a namespace created a moment ago may take a while. Up to about a minute after
        the apiserver was SIGKILLed several times in a row (the fault tests do): the
        controller-manager's watches back off exponentially, up to 30 s plus as much jitter
        (measured after each of six restarts 2 s apart: v1.32.13 1, 2, 3, 10, 46, 52 s;
        v1.37.2 2, 0.1, 31, 43, 49, 0.3 s; 0.2 s on a fresh testbed)."""
        deadline = time.monotonic() + timeout
        while self.get_or_none("v1", "serviceaccounts", "default", namespace) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no service account default in {namespace} after {timeout}s")
            time.sleep(0.1)

    # ---- watching ----------------------------------------------------------------------

    def watch(self, api_version: str, plural: str, namespace: str | None = None, *,
              resource_version: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, timeout_seconds: int = 300,
              stop: threading.Event | None = None) -> Iterator[tuple[str, JSON]]:
        """Yield (type, object) forever, reconnecting from the last resourceVersion seen.

        BOOKMARK events are consumed to advance the resourceVersion, not yielded.
        Raises ApiError(410) when the resourceVersion has expired: re-list then (or use
        `informer`, which does it for you). Stops when `stop` is set (checked per event
        and at least every `timeout_seconds`).
        """
        rv = resource_version
        path = resource_path(api_version, plural, namespace)
        while not (stop and stop.is_set()):
            params: dict[str, Any] = {"watch": "1", "allowWatchBookmarks": "true",
                                      "timeoutSeconds": timeout_seconds}
            if rv:
                params["resourceVersion"] = rv
            if label_selector:
                params["labelSelector"] = label_selector
            if field_selector:
                params["fieldSelector"] = field_selector
            try:
                resp = self.request("GET", path, params=params, stream=True,
                                    timeout=(10, timeout_seconds + 30))
            except requests.RequestException:
                time.sleep(1)
                continue
            try:
                for line in resp.iter_lines(chunk_size=None):
                    if not line:
                        continue
                    ev = json.loads(line)
                    typ, obj = ev.get("type"), ev.get("object") or {}
                    if typ == "ERROR":
                        code = int(obj.get("code", 500))
                        raise ApiError(code, obj.get("reason", ""), obj.get("message", ""), obj)
                    new_rv = obj.get("metadata", {}).get("resourceVersion")
                    if new_rv:
                        rv = new_rv
                    if typ == "BOOKMARK":
                        continue
                    yield typ, obj
                    if stop and stop.is_set():
                        return
            except (requests.RequestException, ValueError):
                time.sleep(0.2)  # connection dropped mid-stream: resume from rv
            finally:
                resp.close()

    def informer(self, api_version: str, plural: str, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 stop: threading.Event | None = None,
                 timeout_seconds: int = 300) -> Iterator[tuple[str, JSON]]:
        """List, then watch; on 410 Gone re-list and reconcile.

        Yields ("SYNCED", {"items": [...]}) after every (re-)list, with every item also
        yielded as ADDED/MODIFIED before it, and a DELETED for each object known before
        the re-list but absent from it. Then watch events as they come. Such a synthesised
        DELETED carries only a skeleton (apiVersion, kind, name, namespace, uid, labels,
        spec.nodeName): only that much is remembered per object, so 100,000 pods stay cheap.
        """
        known: dict[str, JSON] = {}
        while not (stop and stop.is_set()):
            try:
                items, rv = self.list_all(api_version, plural, namespace,
                                          label_selector=label_selector,
                                          field_selector=field_selector)
            except (ApiError, requests.RequestException):
                time.sleep(1)
                continue
            fresh = {o["metadata"]["uid"]: o for o in items}
            for uid, obj in list(known.items()):
                if uid not in fresh:
                    del known[uid]
                    yield "DELETED", obj
            for uid, obj in fresh.items():
                typ = "MODIFIED" if uid in known else "ADDED"
                known[uid] = _skeleton(obj)
                yield typ, obj
            yield "SYNCED", {"items": items}
            try:
                for typ, obj in self.watch(api_version, plural, namespace, resource_version=rv,
                                           label_selector=label_selector,
                                           field_selector=field_selector, stop=stop,
                                           timeout_seconds=timeout_seconds):
                    uid = obj.get("metadata", {}).get("uid")
                    if typ == "DELETED":
                        known.pop(uid, None)
                    elif uid:
                        known[uid] = _skeleton(obj)
                    yield typ, obj
            except ApiError as e:
                if not e.gone:
                    time.sleep(1)
                # 410: fall through and re-list

    # ---- bulk --------------------------------------------------------------------------

    def bulk(self, fn: Callable[[Any], Any], items: Iterable[Any], workers: int = 32,
             on_result: Callable[[Any, Any, BaseException | None], None] | None = None
             ) -> tuple[int, list[tuple[Any, BaseException]]]:
        """Run `fn(item)` for every item on `workers` threads sharing this client.

        Returns (ok_count, [(item, exception), ...]). Items are consumed lazily with a
        bounded number in flight, so a generator of 100,000 bodies is fine.
        """
        ok = 0
        errors: list[tuple[Any, BaseException]] = []
        it = iter(items)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            inflight: dict[concurrent.futures.Future, Any] = {}
            for item in it:
                inflight[pool.submit(fn, item)] = item
                if len(inflight) >= workers * 4:
                    done, _ = concurrent.futures.wait(
                        inflight, return_when=concurrent.futures.FIRST_COMPLETED)
                    for fut in done:
                        ok += self._collect(fut, inflight.pop(fut), errors, on_result)
            for fut in concurrent.futures.as_completed(list(inflight)):
                ok += self._collect(fut, inflight.pop(fut), errors, on_result)
        return ok, errors

    @staticmethod
    def _collect(fut, item, errors, on_result) -> int:
        exc = fut.exception()
        if on_result:
            on_result(item, None if exc else fut.result(), exc)
        if exc:
            errors.append((item, exc))
            return 0
        return 1

    def close(self) -> None:
        self.session.close()
        if self._tmpdir:
            self._tmpdir.cleanup()


def _skeleton(obj: JSON) -> JSON:
    md = obj.get("metadata") or {}
    out: JSON = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                 "metadata": {k: md[k] for k in ("name", "namespace", "uid", "labels")
                              if k in md}}
    node = (obj.get("spec") or {}).get("nodeName")
    if node:
        out["spec"] = {"nodeName": node}
    return out


def now_rfc3339(offset_seconds: float = 0.0) -> str:
    """UTC timestamp in the apiserver's format (second precision), offset from now."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_seconds))


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch for an apiserver timestamp (second or micro precision)."""
    import calendar
    main = value.rstrip("Z").split(".")[0]
    return calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))

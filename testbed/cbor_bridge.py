"""CloudWatch rpc-v2-cbor -> JSON bridge in front of moto.

Why: aws-sdk-cloudwatch >= 1.100 (and botocore >= 1.42) speak Smithy's rpc-v2-cbor protocol
to CloudWatch. moto 5.2.5 parses CloudWatch requests in the query and JSON protocols only
(getmoto/moto#9195). Downgrading the SDK would test a different client than the one we ship,
so the testbed puts this bridge between the product and moto:

    eks-reaper --rpc-v2-cbor--> bridge --awsJson1_0--> moto
    eks-reaper <--rpc-v2-cbor-- bridge <--awsJson1_0-- moto

Point the product at it with ``AWS_ENDPOINT_URL_CLOUDWATCH=http://HOST:PORT``.

What is translated
------------------
* Requests: ``POST /service/GraniteServiceVersion20100801/operation/<Op>`` with
  ``smithy-protocol: rpc-v2-cbor``. The body may be gzip-compressed (the SDK compresses
  PutMetricData bodies from 10 KiB on, ``Content-Encoding: gzip``); an empty body means
  an empty input. It is forwarded to moto as ``POST /`` with
  ``Content-Type: application/x-amz-json-1.0`` and
  ``X-Amz-Target: GraniteServiceVersion20100801.<Op>``.
* Both protocols use the model's member names unchanged (neither honours ``jsonName``),
  so field names pass through as they are - Namespace, MetricData, MetricName,
  Dimensions[{Name, Value}], Value, Values, Counts, StatisticValues, Unit,
  StorageResolution, Timestamp, StartTime, EndTime, Period, Statistics, ... Types are
  converted by walking botocore's CloudWatch service model (the same model moto uses):
  CBOR timestamps (tag 1, epoch seconds, int or float) become JSON epoch seconds with
  their fraction; blobs become base64; non-finite doubles become "NaN"/"Infinity".
* Responses: moto's JSON output is re-encoded to CBOR along the operation's output
  shape: timestamps as tag 1 epoch seconds, doubles as CBOR floats (the Rust decoder
  rejects an integer where a double is modelled), integers/longs as CBOR integers,
  blobs as byte strings. Operations whose model has no output get an empty body, as the
  rpc-v2-cbor specification requires. Headers: ``smithy-protocol: rpc-v2-cbor``,
  ``Content-Type: application/cbor``, moto's ``x-amzn-requestid``.
* Errors: moto's JSON error (``__type``, ``message``) becomes a CBOR map with ``__type``
  (moto's value, e.g. ``GraniteServiceVersion20100801#InvalidParameterValueException``)
  and ``message``, same HTTP status. moto's ``x-amzn-query-error`` header
  (``InvalidParameterValue;Sender``) is passed through: CloudWatch is
  ``awsQueryCompatible`` and the SDKs take the error code from that header.
* Bridge's own failures, in the same error shape: undecodable body -> 400
  ``SerializationException``; path that is not an rpc-v2-cbor operation or an operation
  the model does not know -> 404 ``UnknownOperationException``; moto unreachable -> 503
  ``ServiceUnavailable`` (the SDK treats it as transient and retries).
* ``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token`` and ``User-Agent`` are
  forwarded: moto routes the request to CloudWatch and picks region and account from the
  credential scope. An unsigned request gets a placeholder scope for ``default_region``.

Tested (test_cbor_bridge.py, with the bytes the Rust SDK sends): PutMetricData (Value,
Values/Counts, StatisticValues, Unit, StorageResolution, Dimensions, Timestamp, gzip),
GetMetricData, GetMetricStatistics, ListMetrics, and an error. Any other CloudWatch
operation in the model is forwarded the same way but is not tested here.

What is not translated
----------------------
* Signatures are not checked by the bridge; the forwarded request carries the original
  Authorization header, whose signature no longer matches the body (moto does not check
  it unless IAM enforcement is on). With ``credentials`` the bridge re-signs instead.
* No event streams, no ``Accept`` negotiation, no CBOR indefinite-length output, no
  request-size limit (CloudWatch's 1 MB limit is the product's job and is unit-tested
  there). Whatever moto does not implement (e.g. throttling, ``StrictEntityValidation``,
  ``EntityMetricData`` semantics) is not emulated here either.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gzip
import hashlib
import json
import math
import os
import re
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.session
import cbor2

SERVICE_TARGET = "GraniteServiceVersion20100801"
PATH_PREFIX = f"/service/{SERVICE_TARGET}/operation/"
_FORWARDED_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "User-Agent")
_MODEL = botocore.session.get_session().get_service_model("cloudwatch")


class BridgeError(Exception):
    """A failure the bridge answers itself, in the rpc-v2-cbor error shape."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


# --- shape-driven conversion -------------------------------------------------------------


def _epoch_seconds(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    return value


def _untyped_to_json(value: Any) -> Any:
    """Members the model does not describe: keep the data, make it JSON-safe."""
    if isinstance(value, dict):
        return {str(k): _untyped_to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untyped_to_json(v) for v in value]
    if isinstance(value, dt.datetime):
        return _epoch_seconds(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return value


def cbor_to_json(value: Any, shape: Any) -> Any:
    """Converts a decoded CBOR value of ``shape`` into its awsJson1_0 form."""
    if shape is None:
        return _untyped_to_json(value)
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {
            k: cbor_to_json(v, shape.members.get(k))
            for k, v in value.items()
            if v is not None  # rpc-v2-cbor allows null for absent members; JSON omits them
        }
    if kind == "list" and isinstance(value, list):
        return [cbor_to_json(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {str(k): cbor_to_json(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        return _epoch_seconds(value)
    if kind == "blob" and isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if kind in ("double", "float") and isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return _untyped_to_json(value)


def _to_datetime(value: Any) -> Any:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    if isinstance(value, str):
        try:
            return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
        except ValueError:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    return value


def json_to_cbor(value: Any, shape: Any) -> Any:
    """Converts moto's awsJson1_0 output of ``shape`` into values cbor2 encodes as modelled."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: json_to_cbor(v, shape.members.get(k)) for k, v in value.items() if v is not None}
    if kind == "list" and isinstance(value, list):
        return [json_to_cbor(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: json_to_cbor(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        return _to_datetime(value)
    if kind in ("double", "float"):
        return float(value)  # also parses "NaN" / "Infinity"
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    if kind == "boolean":
        return bool(value)
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def encode_cbor(value: Any) -> bytes:
    return cbor2.dumps(value, datetime_as_timestamp=True, timezone=dt.timezone.utc)


# --- HTTP ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: "_BridgeServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            super().log_message(format, *args)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        try:
            status, headers, body = self._bridge()
        except BridgeError as err:
            status, headers = err.status, {}
            body = encode_cbor({"__type": err.error_type, "message": err.message})
        self.send_response(status)
        self.send_header("smithy-protocol", "rpc-v2-cbor")
        self.send_header("Content-Type", "application/cbor")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(length) if length else b""
        raw = self._raw_body
        if "gzip" in (self.headers.get("Content-Encoding") or "").lower():
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as err:
                raise BridgeError(400, "SerializationException", f"bad gzip body: {err}") from err
        return raw

    def _record(self, operation_name: str, body: bytes) -> None:
        """Saves the request as received (test fixtures); credentials are not saved."""
        directory = self.server.record_dir
        if not directory:
            return
        digest = hashlib.sha256(self._raw_body).hexdigest()[:10]
        stem = os.path.join(directory, f"rust-sdk-{operation_name}-{digest}")
        keep = ("Content-Type", "Content-Encoding", "smithy-protocol", "Accept", "X-Amz-Date", "User-Agent")
        meta = {
            "path": self.path,
            "headers": {k: self.headers[k] for k in keep if self.headers.get(k)},
            "decodedLength": len(body),
        }
        with open(stem + ".cbor", "wb") as f:
            f.write(self._raw_body)
        with open(stem + ".json", "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")

    def _bridge(self) -> tuple[int, dict[str, str], bytes]:
        path = self.path.split("?", 1)[0]
        if not path.startswith(PATH_PREFIX):
            raise BridgeError(404, "UnknownOperationException", f"not an rpc-v2-cbor path: {path}")
        operation_name = path[len(PATH_PREFIX) :]
        try:
            operation = _MODEL.operation_model(operation_name)
        except Exception as err:  # botocore raises OperationNotFoundError
            raise BridgeError(404, "UnknownOperationException", operation_name) from err

        raw = self._read_body()
        self._record(operation_name, raw)
        try:
            decoded = cbor2.loads(raw) if raw else {}
        except Exception as err:  # cbor2 raises several decoder error types
            raise BridgeError(400, "SerializationException", f"bad CBOR body: {err}") from err
        if not isinstance(decoded, dict):
            raise BridgeError(400, "SerializationException", "CBOR body is not a map")
        payload = json.dumps(cbor_to_json(decoded, operation.input_shape)).encode()

        status, moto_headers, moto_body = self._forward(operation_name, payload)
        headers = {}
        for name in ("x-amzn-requestid", "x-amzn-query-error"):
            if moto_headers.get(name):
                headers[name] = moto_headers[name]
        try:
            parsed = json.loads(moto_body) if moto_body.strip() else {}
        except ValueError:
            parsed = {"__type": "InternalFailure", "message": moto_body.decode(errors="replace")}
        if status >= 300:
            message = parsed.get("message") or parsed.get("Message") or ""
            error_type = parsed.get("__type") or moto_headers.get("x-amzn-errortype") or "InternalFailure"
            return status, headers, encode_cbor({"__type": error_type, "message": message})
        if operation.output_shape is None:
            return status, headers, b""
        return status, headers, encode_cbor(json_to_cbor(parsed, operation.output_shape))

    def _resign(self, payload: bytes, headers: dict[str, str]) -> dict[str, str]:
        """Signs the translated request again (SigV4, service ``monitoring``) with the
        bridge's credentials, in the region of the original credential scope, so a moto with
        IAM enforcement on checks the caller's permission instead of rejecting a signature
        made over the CBOR body."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", headers.get("Authorization", ""))
        region = scope.group(1) if scope else self.server.default_region
        request = AWSRequest(method="POST", url=self.server.moto_url + "/", data=payload,
                             headers={k: v for k, v in headers.items() if k not in ("Authorization", "X-Amz-Date")})
        SigV4Auth(Credentials(*self.server.credentials), "monitoring", region).add_auth(request)
        return {"Authorization": request.headers["Authorization"], "X-Amz-Date": request.headers["X-Amz-Date"]}

    def _forward(self, operation_name: str, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"{SERVICE_TARGET}.{operation_name}",
        }
        for name in _FORWARDED_HEADERS:
            if self.headers.get(name):
                headers[name] = self.headers[name]
        if self.server.credentials is not None:
            headers.update(self._resign(payload, headers))
        elif "Authorization" not in headers:
            headers["Authorization"] = (
                "AWS4-HMAC-SHA256 Credential=bridge/19700101/"
                f"{self.server.default_region}/monitoring/aws4_request, "
                "SignedHeaders=host, Signature=unsigned"
            )
        request = urllib.request.Request(self.server.moto_url + "/", data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()
        except (urllib.error.URLError, OSError) as err:
            raise BridgeError(503, "ServiceUnavailable", f"moto unreachable: {err}") from err


class _BridgeServer(ThreadingHTTPServer):
    daemon_threads = True
    moto_url: str
    default_region: str
    verbose: bool
    record_dir: str | None
    credentials: tuple[str, str] | None


class Bridge:
    """A running bridge: ``url`` to point the SDK at, ``shutdown()`` to stop it."""

    def __init__(self, server: _BridgeServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}"

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_bridge(
    moto_url: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    default_region: str = "us-east-1",
    verbose: bool = False,
    record_dir: str | None = None,
    credentials: tuple[str, str] | None = None,
) -> Bridge:
    """Serves the bridge on ``host:port`` (0 = any free port) in a daemon thread.

    ``record_dir``: save every request as received (``rust-sdk-<Op>-<sha256>.cbor`` + ``.json``);
    that is how ``fixtures/`` was made. ``credentials`` (access key, secret): re-sign every
    forwarded request with them, for a moto that enforces IAM (e2e/deploy).
    """
    server = _BridgeServer((host, port), _Handler)
    server.moto_url = moto_url.rstrip("/")
    server.default_region = default_region
    server.verbose = verbose
    server.record_dir = record_dir
    server.credentials = credentials
    thread = threading.Thread(target=server.serve_forever, name="cbor-bridge", daemon=True)
    thread.start()
    return Bridge(server, thread)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moto-url", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--record-dir", help="save each request received (fixtures)")
    args = parser.parse_args()
    bridge = start_bridge(
        args.moto_url,
        args.host,
        args.port,
        default_region=args.region,
        verbose=args.verbose,
        record_dir=args.record_dir,
    )
    print(bridge.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        bridge.shutdown()


if __name__ == "__main__":
    main()

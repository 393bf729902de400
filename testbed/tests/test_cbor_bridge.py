"""Tests for cbor_bridge: rpc-v2-cbor requests in, moto behind, CBOR answers out.

The fixtures under ``testbed/fixtures/`` are requests recorded from aws-sdk-cloudwatch
itself (see ``testbed/fixtures/README.md``); the other requests are encoded here the way
that SDK encodes them (indefinite-length maps, tag-1 float timestamps, CBOR doubles).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import struct
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import cbor2
import pytest
from moto.server import ThreadedMotoServer

from testbed import cbor_bridge
from testbed.cbor_bridge import PATH_PREFIX, start_bridge
from testbed.ports import free_port

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"  # testbed/fixtures
AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDTESTBED/20261128/eu-west-1/monitoring/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0000"
)


@pytest.fixture(scope="module")
def moto_url():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def bridge(moto_url):
    b = start_bridge(moto_url, "127.0.0.1", 0)
    yield b
    b.shutdown()


@pytest.fixture
def namespace() -> str:
    return f"Test/{uuid.uuid4().hex[:8]}"


def encode(obj) -> bytes:
    """CBOR the way aws-smithy-cbor writes it: indefinite maps, tag 1 + float64 timestamps."""
    return cbor2.dumps(obj, datetime_as_timestamp=True, indefinite_containers=True)


def post(bridge, operation: str, body: bytes, headers: dict | None = None):
    request = urllib.request.Request(
        bridge.url + PATH_PREFIX + operation,
        data=body,
        method="POST",
        headers={
            "smithy-protocol": "rpc-v2-cbor",
            "Content-Type": "application/cbor",
            "Accept": "application/cbor",
            "Authorization": AUTH,
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, response.headers, raw
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def call(bridge, operation: str, payload: dict, headers: dict | None = None):
    status, headers, raw = post(bridge, operation, encode(payload), headers)
    return status, headers, (cbor2.loads(raw) if raw else None)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=250_000)


def window(at: dt.datetime) -> dict:
    return {"StartTime": at - dt.timedelta(minutes=10), "EndTime": at + dt.timedelta(minutes=10)}


# --- PutMetricData and reading back ---------------------------------------------------


def test_put_metric_data_then_list_metrics(bridge, namespace):
    at = now()
    status, headers, body = call(
        bridge,
        "PutMetricData",
        {
            "Namespace": namespace,
            "MetricData": [
                {
                    "MetricName": "SubnetAvailableIps",
                    "Dimensions": [
                        {"Name": "ClusterName", "Value": "prod"},
                        {"Name": "SubnetId", "Value": "subnet-a"},
                        {"Name": "AvailabilityZone", "Value": "eu-west-1a"},
                    ],
                    "Timestamp": at,
                    "Value": 4000.0,
                    "Unit": "Count",
                    "StorageResolution": 60,
                }
            ],
        },
    )
    assert status == 200
    assert headers["smithy-protocol"] == "rpc-v2-cbor"
    assert body is None, "PutMetricData has no output: empty body"

    status, _, body = call(bridge, "ListMetrics", {"Namespace": namespace})
    assert status == 200
    assert body["Metrics"] == [
        {
            "Namespace": namespace,
            "MetricName": "SubnetAvailableIps",
            "Dimensions": [
                {"Name": "ClusterName", "Value": "prod"},
                {"Name": "SubnetId", "Value": "subnet-a"},
                {"Name": "AvailabilityZone", "Value": "eu-west-1a"},
            ],
        }
    ]


def test_get_metric_statistics_returns_typed_datapoints(bridge, namespace):
    at = now()
    datum = {"MetricName": "RunDuration", "Timestamp": at, "Value": 1500.0, "Unit": "Milliseconds"}
    assert call(bridge, "PutMetricData", {"Namespace": namespace, "MetricData": [datum]})[0] == 200

    status, _, raw = post(
        bridge,
        "GetMetricStatistics",
        encode(
            {
                "Namespace": namespace,
                "MetricName": "RunDuration",
                **window(at),
                "Period": 60,
                "Statistics": ["Sum", "SampleCount", "Maximum"],
            }
        ),
    )
    assert status == 200
    body = cbor2.loads(raw)
    [point] = body["Datapoints"]
    assert point["Sum"] == 1500.0 and point["Maximum"] == 1500.0
    assert point["SampleCount"] == 1.0
    assert point["Unit"] == "Milliseconds"
    assert isinstance(point["Timestamp"], dt.datetime), "timestamps come back as tag 1"
    # The Rust decoder wants CBOR floats for doubles, never integers.
    assert all(isinstance(point[k], float) for k in ("Sum", "SampleCount", "Maximum"))


def test_values_and_counts_are_forwarded(bridge, namespace):
    at = now()
    datum = {"MetricName": "Backlog", "Timestamp": at, "Values": [1.0, 10.0], "Counts": [2.0, 3.0], "Unit": "Count"}
    assert call(bridge, "PutMetricData", {"Namespace": namespace, "MetricData": [datum]})[0] == 200

    status, _, body = call(
        bridge,
        "GetMetricData",
        {
            **window(at),
            "MetricDataQueries": [
                {
                    "Id": "b",
                    "MetricStat": {
                        "Metric": {"Namespace": namespace, "MetricName": "Backlog"},
                        "Period": 60,
                        "Stat": "Sum",
                    },
                }
            ],
        },
    )
    assert status == 200
    [result] = body["MetricDataResults"]
    assert result["Id"] == "b"
    assert result["Values"] == [32.0]  # 1×2 + 10×3
    assert all(isinstance(t, dt.datetime) for t in result["Timestamps"])
    assert result["StatusCode"] == "Complete"


def test_statistic_values_are_forwarded(bridge, namespace):
    at = now()
    datum = {
        "MetricName": "Throttled",
        "Timestamp": at,
        "StatisticValues": {"SampleCount": 4.0, "Sum": 10.0, "Minimum": 1.0, "Maximum": 4.0},
    }
    assert call(bridge, "PutMetricData", {"Namespace": namespace, "MetricData": [datum]})[0] == 200
    _, _, body = call(
        bridge,
        "GetMetricStatistics",
        {"Namespace": namespace, "MetricName": "Throttled", **window(at), "Period": 60, "Statistics": ["Sum"]},
    )
    assert [p["Sum"] for p in body["Datapoints"]] == [10.0]


def test_gzip_compressed_request_is_accepted(bridge, namespace):
    data = [{"MetricName": f"M{i}", "Value": float(i), "Timestamp": now()} for i in range(300)]
    body = gzip.compress(encode({"Namespace": namespace, "MetricData": data}))
    status, _, _ = post(bridge, "PutMetricData", body, {"Content-Encoding": "gzip"})
    assert status == 200
    _, _, listed = call(bridge, "ListMetrics", {"Namespace": namespace})
    assert len(listed["Metrics"]) == 300


# --- errors ---------------------------------------------------------------------------


def test_moto_error_becomes_cbor_error_with_query_code(bridge, namespace):
    status, headers, body = call(
        bridge,
        "PutMetricData",
        {"Namespace": namespace, "MetricData": [{"MetricName": "X", "Value": 1.0, "Values": [1.0]}]},
    )
    assert status == 400
    assert body["__type"].endswith("InvalidParameterValueException")
    assert "mutually exclusive" in body["message"]
    assert headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    assert headers["Content-Type"] == "application/cbor"


def test_unknown_operation_is_404(bridge):
    status, _, body = call(bridge, "NoSuchOperation", {})
    assert status == 404
    assert body["__type"] == "UnknownOperationException"


def test_undecodable_body_is_400(bridge):
    status, _, raw = post(bridge, "ListMetrics", b"\xff\xff\xff")
    assert status == 400
    assert cbor2.loads(raw)["__type"] == "SerializationException"


def test_moto_down_is_503():
    dead = start_bridge(f"http://127.0.0.1:{free_port()}", "127.0.0.1", 0)
    try:
        status, _, raw = post(dead, "ListMetrics", encode({}))
    finally:
        dead.shutdown()
    assert status == 503
    assert cbor2.loads(raw)["__type"] == "ServiceUnavailable"


# --- pure translation ---------------------------------------------------------------------


def test_request_translation_keeps_names_and_converts_types():
    op = cbor_bridge._MODEL.operation_model("PutMetricData")
    at = dt.datetime(2026, 11, 28, 12, 0, 0, 123000, tzinfo=dt.timezone.utc)
    decoded = cbor2.loads(
        encode(
            {
                "Namespace": "EKSReaper",
                "MetricData": [
                    {
                        "MetricName": "SubnetIpUtilization",
                        "Dimensions": [{"Name": "ClusterName", "Value": "prod"}],
                        "Timestamp": at,
                        "Value": float("nan"),
                        "Unit": "Percent",
                        "StorageResolution": 1,
                    }
                ],
            }
        )
    )
    converted = cbor_bridge.cbor_to_json(decoded, op.input_shape)
    assert json.loads(json.dumps(converted)) == {
        "Namespace": "EKSReaper",
        "MetricData": [
            {
                "MetricName": "SubnetIpUtilization",
                "Dimensions": [{"Name": "ClusterName", "Value": "prod"}],
                "Timestamp": 1795867200.123,
                "Value": "NaN",
                "Unit": "Percent",
                "StorageResolution": 1,
            }
        ],
    }


def test_response_translation_types_follow_the_model():
    op = cbor_bridge._MODEL.operation_model("GetMetricStatistics")
    out = cbor_bridge.json_to_cbor(
        {"Label": "M", "Datapoints": [{"Timestamp": 1795867200, "Sum": 3, "SampleCount": 1, "Unit": "Count"}]},
        op.output_shape,
    )
    raw = cbor_bridge.encode_cbor(out)
    point = cbor2.loads(raw)["Datapoints"][0]
    assert point["Timestamp"] == dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc)
    assert isinstance(point["Sum"], float) and isinstance(point["SampleCount"], float)
    # Sum is CBOR major type 7 (float), not an integer: 0xfb + 8 bytes.
    assert b"cSum\xfb" + struct.pack(">d", 3.0) in raw


# --- bytes recorded from the Rust SDK -----------------------------------------------------


def recorded() -> list[Path]:
    return sorted(FIXTURES.glob("rust-sdk-*.json"))


@pytest.mark.parametrize("meta_path", recorded(), ids=lambda p: p.stem)
def test_rust_sdk_requests_replay(bridge, meta_path):
    """Replays the exact bytes aws-sdk-cloudwatch sent and checks moto's answer."""
    meta = json.loads(meta_path.read_text())
    body = meta_path.with_suffix(".cbor").read_bytes()
    assert meta["path"].startswith(PATH_PREFIX)
    headers = {k.lower(): v for k, v in meta["headers"].items()}
    gzipped = "gzip" in headers.get("content-encoding", "")
    forwarded = {k: v for k, v in headers.items() if k in ("content-encoding", "x-amz-date", "authorization")}
    status, _, raw = post(bridge, meta["path"][len(PATH_PREFIX) :], body, forwarded)
    assert status == 200, cbor2.loads(raw) if raw else raw
    if meta["path"].endswith("/PutMetricData"):
        decoded = cbor2.loads(gzip.decompress(body) if gzipped else body)
        namespace = decoded["Namespace"]
        _, _, listed = call(bridge, "ListMetrics", {"Namespace": namespace})
        names = {m["MetricName"] for m in listed["Metrics"]}
        assert {d["MetricName"] for d in decoded["MetricData"]} <= names


def test_recorded_fixtures_exist():
    assert recorded(), "testbed/fixtures/rust-sdk-*.json missing: see testbed/fixtures/README.md"

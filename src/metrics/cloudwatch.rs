//! The `PutMetricData` sink.
//!
//! CloudWatch takes at most 1,000 metric values and 1 MB of request payload per call.
//! [`batches`] (pure) cuts the data greedily at whichever comes first, from a
//! conservative size estimate per datum ([`estimated_size`]): the size in CloudWatch's
//! query protocol, its longest wire form (every member repeats its full path, values are
//! percent-encoded), while the SDK actually sends the much smaller rpc-v2-cbor form.
//!
//! Throttling: the client uses the SDK's standard retry strategy with 5 attempts and
//! exponential back-off with jitter (throttling errors such as `Throttling` are retried,
//! as are transient network errors), bounded by per-attempt and per-operation timeouts so
//! an unreachable endpoint cannot eat the invocation's deadline; and each call is bounded
//! by the deadline [`put`] is given (the end of the run). The first call that still fails
//! stops publishing; the [`MetricsOutcome`] says how much got through.

use std::ops::Range;
use std::time::Duration;

use aws_sdk_cloudwatch::config::retry::RetryConfig;
use aws_sdk_cloudwatch::config::timeout::TimeoutConfig;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use jiff::Timestamp;

use super::{Datum, Unit};
use crate::deadline::{CallLimits, Deadline};
use crate::report::MetricsOutcome;

/// Most metric values `PutMetricData` accepts per call.
pub const MAX_DATA_PER_CALL: usize = 1000;

/// Payload budget per call: 1 MB (10^6 bytes, under the 1 MiB service limit).
pub const MAX_PAYLOAD_BYTES: usize = 1_000_000;

/// Attempts per call, first one included.
pub const MAX_ATTEMPTS: u32 = 5;

/// Estimate of one query-protocol field's fixed part: its longest path
/// (`&MetricData.member.1000.Dimensions.member.30.Value=`, 51 bytes) plus slack for a
/// number (`-1.2345678901234567e+300`) or an ISO-8601 timestamp.
const FIELD_BYTES: usize = 64;

/// Percent-encoding can triple a string.
const ENCODED_PER_BYTE: usize = 3;

/// Fields of a datum besides its dimensions: name, value, unit, timestamp, resolution.
const SCALAR_FIELDS: usize = 5;

/// Time for one `PutMetricData` operation, every attempt included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Limits of one call as [`put`] bounds it: just over the client's own operation timeout (so
/// that one reports first when it is what stops the call); started with whatever is left of
/// the run, down to a tenth of a second, since this is the run's last chance to be seen.
const PUT_CALL: CallLimits = CallLimits {
    cap: OPERATION_TIMEOUT.saturating_add(Duration::from_secs(1)),
    min_start: Duration::from_millis(100),
};

/// A CloudWatch client for metrics: the shared AWS config (region, credentials, endpoint
/// such as `AWS_ENDPOINT_URL_CLOUDWATCH`) with the retry and timeout settings above.
pub fn client(sdk: &aws_types::SdkConfig) -> aws_sdk_cloudwatch::Client {
    let config = aws_sdk_cloudwatch::config::Builder::from(sdk)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

/// Upper bound of one datum's share of a request payload, in bytes.
pub fn estimated_size(datum: &Datum) -> usize {
    let name = datum.metric.name().len();
    let dimensions: usize = datum
        .dimensions
        .iter()
        .map(|d| 2 * FIELD_BYTES + ENCODED_PER_BYTE * (d.name.len() + d.value.len()))
        .sum();
    SCALAR_FIELDS * FIELD_BYTES + ENCODED_PER_BYTE * name + dimensions
}

/// Upper bound of a request's payload besides its data (action, version, namespace).
pub fn envelope_size(namespace: &str) -> usize {
    4 * FIELD_BYTES + ENCODED_PER_BYTE * namespace.len()
}

/// Cuts items of the given sizes into consecutive batches of at most `max_items` items
/// and at most `max_bytes` bytes. An item larger than `max_bytes` on its own gets a batch
/// to itself (the service will refuse it; the others still go).
pub fn batches(sizes: &[usize], max_items: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let max_items = max_items.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (i, size) in sizes.iter().enumerate() {
        let full = i - start == max_items || (i > start && bytes.saturating_add(*size) > max_bytes);
        if full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes = bytes.saturating_add(*size);
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

fn standard_unit(unit: Unit) -> StandardUnit {
    match unit {
        Unit::Count => StandardUnit::Count,
        Unit::Milliseconds => StandardUnit::Milliseconds,
        Unit::Percent => StandardUnit::Percent,
        Unit::Bytes => StandardUnit::Bytes,
        Unit::None => StandardUnit::None,
    }
}

/// The SDK form of one datum.
pub fn metric_datum(datum: &Datum, at: Timestamp) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(datum.metric.name())
        .set_dimensions(Some(
            datum
                .dimensions
                .iter()
                .map(|d| Dimension::builder().name(d.name).value(&d.value).build())
                .collect(),
        ))
        .value(datum.value)
        .unit(standard_unit(datum.metric.unit()))
        .timestamp(DateTime::from_millis(at.as_millisecond()))
        .storage_resolution(60)
        .build()
}

/// Sends `data` with as few `PutMetricData` calls as the limits allow, each call bounded by
/// `deadline`.
pub async fn put(
    client: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    data: &[Datum],
    at: Timestamp,
    deadline: &Deadline,
) -> MetricsOutcome {
    let sizes: Vec<usize> = data.iter().map(estimated_size).collect();
    let budget = MAX_PAYLOAD_BYTES.saturating_sub(envelope_size(namespace));
    let plan = batches(&sizes, MAX_DATA_PER_CALL, budget);
    let mut outcome = MetricsOutcome {
        sink: "cloudwatch",
        ..MetricsOutcome::default()
    };
    for (n, range) in plan.iter().enumerate() {
        outcome.calls += 1;
        let call = client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(
                data[range.clone()]
                    .iter()
                    .map(|d| metric_datum(d, at))
                    .collect(),
            ))
            .send();
        let error = match deadline.bound("PutMetricData", PUT_CALL, call).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(crate::failure::chain::Chain(&e).to_string()),
            Err(cut) => Some(cut.to_string()),
        };
        match error {
            None => outcome.metrics += range.len(),
            Some(error) => {
                outcome.failed = data.len() - outcome.metrics;
                outcome.error = Some(format!(
                    "PutMetricData call {} of {}: {error}",
                    n + 1,
                    plan.len()
                ));
                break;
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_cloudwatch::config::http::{HttpRequest, HttpResponse};
    use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_runtime_api::client::http::{
        HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
    };
    use aws_smithy_runtime_api::http::StatusCode;

    use super::*;
    use crate::metrics::{Dimension as Dim, Metric, data, dimension};
    use crate::testing::full_figures;

    #[test]
    fn a_thousand_data_go_in_one_call() {
        assert_eq!(
            batches(&[100; 1000], 1000, MAX_PAYLOAD_BYTES),
            vec![0..1000]
        );
    }

    #[test]
    fn the_thousand_and_first_datum_starts_a_second_call() {
        assert_eq!(
            batches(&[100; 1001], 1000, MAX_PAYLOAD_BYTES),
            vec![0..1000, 1000..1001]
        );
        assert_eq!(
            batches(&[100; 2500], 1000, MAX_PAYLOAD_BYTES),
            vec![0..1000, 1000..2000, 2000..2500]
        );
    }

    #[test]
    fn byte_limit_cuts_before_the_item_count_does() {
        // 400 kB each: two fit under 1 MB, the third does not.
        assert_eq!(
            batches(&[400_000; 5], 1000, 1_000_000),
            vec![0..2, 2..4, 4..5]
        );
    }

    #[test]
    fn a_batch_may_fill_the_byte_budget_exactly() {
        assert_eq!(batches(&[250_000; 4], 1000, 1_000_000), vec![0..4]);
        assert_eq!(
            batches(&[250_000, 250_000, 250_000, 250_001], 1000, 1_000_000),
            vec![0..3, 3..4]
        );
    }

    #[test]
    fn an_oversized_item_travels_alone() {
        assert_eq!(
            batches(&[10, 2_000_000, 10], 1000, 1_000_000),
            vec![0..1, 1..2, 2..3]
        );
    }

    #[test]
    fn nothing_to_send_is_no_call() {
        assert!(batches(&[], 1000, 1_000_000).is_empty());
    }

    /// The largest datum CloudWatch accepts: 30 dimensions, 255-byte names, 1024-byte values.
    fn largest_datum() -> Datum {
        let name = "N".repeat(255).leak();
        Datum {
            metric: Metric::SubnetIpUtilization,
            value: -1.234_567_890_123_456_7e300,
            dimensions: (0..30)
                .map(|_| Dim {
                    name,
                    value: "v".repeat(1024),
                })
                .collect(),
        }
    }

    #[test]
    fn byte_limit_applies_to_real_sized_data() {
        let size = estimated_size(&largest_datum());
        let plan = batches(
            &vec![size; 1000],
            MAX_DATA_PER_CALL,
            MAX_PAYLOAD_BYTES - envelope_size("EKSReaper"),
        );
        // 119,327 bytes each: 8 per call (954,616 bytes), 125 calls.
        assert_eq!(size, 119_327);
        assert_eq!(plan[0], 0..8);
        assert_eq!(plan.len(), 125);
        assert!(plan.iter().all(|r| r.len() * size <= MAX_PAYLOAD_BYTES));
    }

    #[test]
    fn real_metric_set_is_far_from_the_byte_limit() {
        let data = data(&[full_figures(
            "a-cluster-name-of-one-hundred-characters-is-the-eks-maximum-so-use-something-long-like-this-one",
        )]);
        let total: usize = data.iter().map(estimated_size).sum();
        assert!(total < 100_000, "{total}");
    }

    /// Request URI and body, as the SDK would send them.
    type Requests = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

    /// Captures the requests the real SDK would send and answers 200.
    #[derive(Debug, Clone, Default)]
    struct Capture(Requests);

    impl HttpConnector for Capture {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let body = request.body().bytes().unwrap_or_default().to_vec();
            self.0
                .lock()
                .unwrap()
                .push((request.uri().to_owned(), body));
            let ok = HttpResponse::new(StatusCode::try_from(200u16).unwrap(), "".into());
            HttpConnectorFuture::ready(Ok(ok))
        }
    }

    fn capturing_client(capture: &Capture) -> aws_sdk_cloudwatch::Client {
        let capture = capture.clone();
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::for_tests())
            .endpoint_url("http://cloudwatch.test")
            .disable_request_compression(true)
            .http_client(http_client_fn(move |_, _| {
                SharedHttpConnector::new(capture.clone())
            }))
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    }

    #[tokio::test]
    async fn real_request_bodies_stay_under_the_estimate() {
        let capture = Capture::default();
        let client = capturing_client(&capture);
        let data: Vec<Datum> = (0..1000).map(|_| largest_datum()).collect();
        let at: Timestamp = "2026-11-28T12:00:00.123Z".parse().unwrap();

        let outcome = put(&client, "EKSReaper", &data, at, &Deadline::none()).await;

        assert_eq!(outcome.error, None);
        assert_eq!((outcome.metrics, outcome.calls), (1000, 125));
        let requests = capture.0.lock().unwrap();
        assert_eq!(requests.len(), 125);
        assert!(
            requests[0]
                .0
                .ends_with("/service/GraniteServiceVersion20100801/operation/PutMetricData")
        );
        let largest = requests.iter().map(|(_, b)| b.len()).max().unwrap();
        assert!(largest <= MAX_PAYLOAD_BYTES, "{largest}");
        assert!(
            largest <= 8 * estimated_size(&data[0]),
            "estimate is not conservative: {largest}"
        );
    }

    #[tokio::test]
    async fn cloudwatch_sink_sends_the_metric_set_in_one_call() {
        let capture = Capture::default();
        let client = capturing_client(&capture);
        let data = data(&[full_figures("prod"), full_figures("staging")]);

        let outcome = put(
            &client,
            "EKSReaper",
            &data,
            Timestamp::UNIX_EPOCH,
            &Deadline::none(),
        )
        .await;

        assert_eq!((outcome.metrics, outcome.calls, outcome.failed), (62, 1, 0));
        assert!(outcome.ok());
    }

    #[tokio::test]
    async fn the_sink_sends_only_what_its_detail_level_publishes() {
        use crate::config::MetricsDetail;
        use crate::metrics::{Sink, detail, publish};
        let capture = Capture::default();
        let sink = Sink::CloudWatch {
            client: capturing_client(&capture),
            namespace: "EKSReaper".into(),
            detail: MetricsDetail::Essential,
        };

        let outcome = publish(
            &sink,
            &[full_figures("prod")],
            Timestamp::UNIX_EPOCH,
            &Deadline::none(),
        )
        .await;

        // The per-cluster metrics but Backlog (0 in these figures), and ObjectsDeleted per
        // namespace.
        assert_eq!(outcome.metrics, detail::ESSENTIAL.len() - 1 + 1);
        assert_eq!((outcome.calls, outcome.failed), (1, 0));
        assert_eq!(capture.0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_an_outcome_not_a_panic() {
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::for_tests())
            // Port 9 (discard) on loopback: connection refused.
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build();
        let client = aws_sdk_cloudwatch::Client::from_conf(config);
        let data = data(&[full_figures("prod")]);

        let outcome = put(
            &client,
            "EKSReaper",
            &data,
            Timestamp::UNIX_EPOCH,
            &Deadline::none(),
        )
        .await;

        assert_eq!((outcome.metrics, outcome.calls), (0, 1));
        assert_eq!(outcome.failed, data.len());
        let error = outcome.error.unwrap();
        assert!(error.starts_with("PutMetricData call 1 of 1"), "{error}");
    }

    /// Accepts every request and never answers (a hung endpoint).
    #[derive(Debug, Clone)]
    struct Hung;

    impl HttpConnector for Hung {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            HttpConnectorFuture::new(std::future::pending())
        }
    }

    #[tokio::test]
    async fn a_hung_endpoint_is_cut_at_the_deadline_and_the_outcome_says_so() {
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::for_tests())
            .endpoint_url("http://cloudwatch.test")
            .http_client(http_client_fn(|_, _| SharedHttpConnector::new(Hung)))
            .build();
        let client = aws_sdk_cloudwatch::Client::from_conf(config);
        let data = data(&[full_figures("prod")]);
        let end = tokio::time::Instant::now() + Duration::from_millis(400);
        let deadline = Deadline::new(Some(end), Duration::from_millis(100)).end_of_run();
        let started = tokio::time::Instant::now();

        let outcome = put(
            &client,
            "EKSReaper",
            &data,
            Timestamp::UNIX_EPOCH,
            &deadline,
        )
        .await;

        assert!(
            started.elapsed() < Duration::from_millis(400),
            "past the end"
        );
        assert_eq!((outcome.metrics, outcome.calls), (0, 1));
        assert_eq!(outcome.failed, data.len());
        let error = outcome.error.unwrap();
        assert!(
            error.starts_with("PutMetricData call 1 of 1: PutMetricData: no answer after"),
            "{error}"
        );
        assert!(error.ends_with("cut at the end of the run"), "{error}");
    }

    #[test]
    fn datum_carries_unit_dimensions_and_timestamp() {
        let d = Datum {
            metric: Metric::RunDuration,
            value: 1500.0,
            dimensions: vec![Dim {
                name: dimension::CLUSTER_NAME,
                value: "prod".into(),
            }],
        };
        let at: Timestamp = "2026-11-28T12:00:00.250Z".parse().unwrap();
        let m = metric_datum(&d, at);
        assert_eq!(m.metric_name(), Some("RunDuration"));
        assert_eq!(m.unit(), Some(&StandardUnit::Milliseconds));
        assert_eq!(m.value(), Some(1500.0));
        assert_eq!(m.dimensions()[0].name(), Some("ClusterName"));
        assert_eq!(
            m.timestamp().unwrap().to_millis().unwrap(),
            at.as_millisecond()
        );
        assert_eq!(m.storage_resolution(), Some(60));
    }
}

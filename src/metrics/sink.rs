//! Where the metrics go: CloudWatch `PutMetricData`, EMF log lines, or nowhere.

use super::cloudwatch;
use crate::config::{MetricsDetail, MetricsSinkKind};

/// Where metrics go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// `PutMetricData` through this client.
    CloudWatch {
        /// CloudWatch client (see [`cloudwatch::client`] for its retry settings).
        client: aws_sdk_cloudwatch::Client,
        /// CloudWatch namespace.
        namespace: String,
        /// Which metrics it publishes.
        detail: MetricsDetail,
    },
    /// Embedded Metric Format documents, one JSON line each, on stdout.
    Emf {
        /// CloudWatch namespace.
        namespace: String,
        /// Which metrics it publishes.
        detail: MetricsDetail,
    },
    /// Nothing is published.
    None,
}

impl Sink {
    /// Builds the sink from configuration values; `sdk` (region, credentials, endpoint
    /// overrides such as `AWS_ENDPOINT_URL_CLOUDWATCH`) is only used by the CloudWatch sink.
    pub fn new(
        kind: MetricsSinkKind,
        namespace: impl Into<String>,
        detail: MetricsDetail,
        sdk: &aws_types::SdkConfig,
    ) -> Sink {
        let namespace = namespace.into();
        match kind {
            MetricsSinkKind::CloudWatch => Sink::CloudWatch {
                client: cloudwatch::client(sdk),
                namespace,
                detail,
            },
            MetricsSinkKind::Emf => Sink::Emf { namespace, detail },
            MetricsSinkKind::None => Sink::None,
        }
    }

    /// The sink's configuration name (`cloudwatch`, `emf`, `none`).
    pub fn name(&self) -> &'static str {
        match self {
            Sink::CloudWatch { .. } => MetricsSinkKind::CloudWatch.as_str(),
            Sink::Emf { .. } => MetricsSinkKind::Emf.as_str(),
            Sink::None => MetricsSinkKind::None.as_str(),
        }
    }
}

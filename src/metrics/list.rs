//! The metric list: every metric's name and unit, and the dimensions they carry. The
//! table in [`crate::metrics`]'s documentation describes each one.

/// Dimension names.
pub mod dimension {
    /// EKS cluster name.
    pub const CLUSTER_NAME: &str = "ClusterName";
    /// The cluster's Region.
    pub const REGION: &str = "Region";
    /// The cluster's account: the assumed role's, or `self` ([`crate::identity`]).
    pub const ACCOUNT: &str = "Account";
    /// EC2 subnet ID.
    pub const SUBNET_ID: &str = "SubnetId";
    /// Availability Zone name.
    pub const AVAILABILITY_ZONE: &str = "AvailabilityZone";
    /// Kubernetes namespace (per-namespace opt-in only).
    pub const NAMESPACE: &str = "Namespace";
}

/// CloudWatch units used by the metric set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things.
    Count,
    /// A duration in milliseconds.
    Milliseconds,
    /// A percentage, 0–100.
    Percent,
    /// A number of bytes.
    Bytes,
    /// A plain number (flags, hours: CloudWatch has no hour unit).
    None,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Percent => "Percent",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// Every metric eks-reaper publishes; names and units are part of the alarm contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the table in the module docs describes each one
pub enum Metric {
    JobsDeleted,
    PodsDeleted,
    FargatePodsDeleted,
    ObjectsDeleted,
    DeleteErrors,
    Throttled,
    FinishedJobs,
    RetainedJobs,
    TerminatedPods,
    FargatePodsHoldingIps,
    Backlog,
    RunDuration,
    RunSucceeded,
    LowHeadroomMode,
    SubnetsRead,
    ClusterAvailableIps,
    MinSubnetAvailableIps,
    MinSubnetFreePercent,
    IpExhaustionHours,
    SubnetAvailableIps,
    SubnetIpUtilization,
    StuckObjects,
    StuckFargatePods,
    ApiRequests,
    ApiBytesReceived,
    RunPlanned,
    ClustersNotReported,
}

impl Metric {
    /// Every metric of a cluster's run, in publishing order.
    pub const ALL: [Metric; 25] = [
        Metric::JobsDeleted,
        Metric::PodsDeleted,
        Metric::FargatePodsDeleted,
        Metric::ObjectsDeleted,
        Metric::DeleteErrors,
        Metric::Throttled,
        Metric::FinishedJobs,
        Metric::RetainedJobs,
        Metric::TerminatedPods,
        Metric::FargatePodsHoldingIps,
        Metric::Backlog,
        Metric::RunDuration,
        Metric::RunSucceeded,
        Metric::LowHeadroomMode,
        Metric::SubnetsRead,
        Metric::ClusterAvailableIps,
        Metric::MinSubnetAvailableIps,
        Metric::MinSubnetFreePercent,
        Metric::IpExhaustionHours,
        Metric::SubnetAvailableIps,
        Metric::SubnetIpUtilization,
        Metric::StuckObjects,
        Metric::StuckFargatePods,
        Metric::ApiRequests,
        Metric::ApiBytesReceived,
    ];

    /// What a fan-out planner publishes (`src/fanout.rs`), at every detail level: the
    /// `clusters-not-reported` alarm reads them.
    pub const PLANNER: [Metric; 2] = [Metric::RunPlanned, Metric::ClustersNotReported];

    /// The metric name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::JobsDeleted => "JobsDeleted",
            Metric::PodsDeleted => "PodsDeleted",
            Metric::FargatePodsDeleted => "FargatePodsDeleted",
            Metric::ObjectsDeleted => "ObjectsDeleted",
            Metric::DeleteErrors => "DeleteErrors",
            Metric::Throttled => "Throttled",
            Metric::FinishedJobs => "FinishedJobs",
            Metric::RetainedJobs => "RetainedJobs",
            Metric::TerminatedPods => "TerminatedPods",
            Metric::FargatePodsHoldingIps => "FargatePodsHoldingIps",
            Metric::Backlog => "Backlog",
            Metric::RunDuration => "RunDuration",
            Metric::RunSucceeded => "RunSucceeded",
            Metric::LowHeadroomMode => "LowHeadroomMode",
            Metric::SubnetsRead => "SubnetsRead",
            Metric::ClusterAvailableIps => "ClusterAvailableIps",
            Metric::MinSubnetAvailableIps => "MinSubnetAvailableIps",
            Metric::MinSubnetFreePercent => "MinSubnetFreePercent",
            Metric::IpExhaustionHours => "IpExhaustionHours",
            Metric::SubnetAvailableIps => "SubnetAvailableIps",
            Metric::SubnetIpUtilization => "SubnetIpUtilization",
            Metric::StuckObjects => "StuckObjects",
            Metric::StuckFargatePods => "StuckFargatePods",
            Metric::ApiRequests => "ApiRequests",
            Metric::ApiBytesReceived => "ApiBytesReceived",
            Metric::RunPlanned => "RunPlanned",
            Metric::ClustersNotReported => "ClustersNotReported",
        }
    }

    /// The metric's unit.
    pub fn unit(self) -> Unit {
        match self {
            Metric::RunDuration => Unit::Milliseconds,
            Metric::SubnetIpUtilization | Metric::MinSubnetFreePercent => Unit::Percent,
            Metric::LowHeadroomMode | Metric::IpExhaustionHours => Unit::None,
            Metric::ApiBytesReceived => Unit::Bytes,
            _ => Unit::Count,
        }
    }
}

/// A dimension of one datum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dimension {
    /// One of the names in [`dimension`].
    pub name: &'static str,
    /// Its value (never empty: CloudWatch rejects empty values).
    pub value: String,
}

/// One value of one metric, ready for any sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    /// Which metric.
    pub metric: Metric,
    /// The value (finite).
    pub value: f64,
    /// Its dimensions, in a fixed order.
    pub dimensions: Vec<Dimension>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_cloudwatch_units() {
        assert_eq!(Metric::RunDuration.unit().as_str(), "Milliseconds");
        assert_eq!(Metric::SubnetIpUtilization.unit().as_str(), "Percent");
        assert_eq!(Metric::IpExhaustionHours.unit().as_str(), "None");
        assert_eq!(Metric::SubnetAvailableIps.unit().as_str(), "Count");
        assert_eq!(Metric::ApiBytesReceived.unit().as_str(), "Bytes");
    }

    #[test]
    fn documented_table_lists_every_metric_with_its_unit() {
        let source = include_str!("mod.rs");
        for m in Metric::ALL.into_iter().chain(Metric::PLANNER) {
            let row = format!("| `{}` | {} |", m.name(), m.unit().as_str());
            assert!(source.contains(&row), "mod.rs table lacks {row}");
        }
    }
}

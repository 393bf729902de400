//! Subnet IP headroom: which subnets a cluster draws pod IPs from, and how many are left.
//!
//! The watched subnets come from EKS itself — the cluster's `resourcesVpcConfig.subnetIds`
//! and every Fargate profile's subnets, read by [`crate::eks`] — plus
//! `REAPER_EXTRA_SUBNETS` ([`watched`]). Their free IPv4
//! addresses come from `ec2:DescribeSubnets`, called with explicit IDs: EC2's guidance is at
//! most 1,000 IDs per call and no `MaxResults` alongside IDs, so a cluster costs one call
//! (a `NextToken`, should EC2 ever return one, is followed anyway).
//!
//! The arithmetic (capacity, utilisation, the tightest subnet) is pure and tested here;
//! [`read`] is the thin adapter around the EC2 client. Each of its calls is bounded by
//! the deadline it is given and [`eks::AWS_CALL`](crate::eks::AWS_CALL): a hung endpoint
//! costs a `subnetsError`, not the run.

use std::collections::BTreeMap;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use serde::Serialize;

use crate::deadline::{Cut, Deadline};
use crate::eks::{AWS_CALL, FargateProfile};

/// Addresses AWS reserves in every subnet (network, router, DNS, future use, broadcast).
pub const AWS_RESERVED_PER_SUBNET: u64 = 5;

/// Subnet IDs per `DescribeSubnets` call (EC2: "should not specify more than 1,000 IDs").
pub const IDS_PER_DESCRIBE_CALL: usize = 1000;

/// Why a subnet is watched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "name")]
pub enum Source {
    /// Listed in the cluster's `resourcesVpcConfig.subnetIds`.
    Cluster,
    /// Listed in this Fargate profile.
    FargateProfile(String),
    /// Listed in `REAPER_EXTRA_SUBNETS`.
    Extra,
}

/// Free IPv4 addresses of one watched subnet.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetUsage {
    /// `subnet-…` ID.
    pub subnet_id: String,
    /// Availability Zone name, e.g. `eu-west-1a`.
    pub availability_zone: String,
    /// The subnet's IPv4 CIDR block, e.g. `10.0.0.0/20`.
    pub cidr: String,
    /// `AvailableIpAddressCount`: free IPv4 addresses, reserved ones already excluded.
    pub available: u64,
    /// Usable IPv4 addresses: 2^(32 − prefix) − 5.
    pub capacity: u64,
    /// Share of the usable addresses in use, 0–100.
    pub utilization_percent: f64,
    /// Why this subnet is watched (several sources when they overlap).
    pub sources: Vec<Source>,
}

impl SubnetUsage {
    /// Free share of the usable addresses, 0.0–1.0.
    pub fn free_fraction(&self) -> f64 {
        free_fraction(self.available, self.capacity)
    }
}

/// Why a watched subnet has no IPv4 figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SkipReason {
    /// IPv6-only subnet: pods get IPv6 addresses, there is no IPv4 pool to run out of.
    Ipv6Only,
    /// EC2 does not know the ID (typically a typo in `REAPER_EXTRA_SUBNETS`).
    NotFound,
    /// EC2 returned the subnet without an IPv4 CIDR or free-address count.
    Incomplete,
}

impl SkipReason {
    /// The reason as the report spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Ipv6Only => "ipv6Only",
            SkipReason::NotFound => "notFound",
            SkipReason::Incomplete => "incomplete",
        }
    }
}

/// A watched subnet reported without IPv4 figures — never counted as zero free addresses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedSubnet {
    /// `subnet-…` ID.
    pub subnet_id: String,
    /// Availability Zone name, when EC2 returned the subnet.
    pub availability_zone: Option<String>,
    /// Why it has no figures.
    pub reason: SkipReason,
    /// Why this subnet is watched.
    pub sources: Vec<Source>,
}

/// One subnet singled out by [`Headroom`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetRef {
    /// `subnet-…` ID.
    pub subnet_id: String,
    /// Availability Zone name.
    pub availability_zone: String,
    /// Free IPv4 addresses.
    pub available: u64,
    /// Free share of the usable addresses, 0.0–1.0.
    pub free_fraction: f64,
}

impl From<&SubnetUsage> for SubnetRef {
    fn from(s: &SubnetUsage) -> Self {
        SubnetRef {
            subnet_id: s.subnet_id.clone(),
            availability_zone: s.availability_zone.clone(),
            available: s.available,
            free_fraction: s.free_fraction(),
        }
    }
}

/// IPv4 headroom of all the subnets watched for one cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Headroom {
    /// Subnets with IPv4 figures, sorted by ID.
    pub subnets: Vec<SubnetUsage>,
    /// Watched subnets without IPv4 figures (IPv6-only, unknown), sorted by ID.
    pub skipped: Vec<SkippedSubnet>,
    /// Sum of `available` over `subnets`.
    pub total_available: u64,
    /// Sum of `capacity` over `subnets`.
    pub total_capacity: u64,
    /// The subnet with the fewest free addresses (`None` without IPv4 subnets).
    pub min_available: Option<SubnetRef>,
    /// The subnet with the smallest free fraction — what low-headroom mode compares with
    /// `REAPER_LOW_HEADROOM_FRACTION`. Can differ from `min_available` when sizes differ.
    pub tightest: Option<SubnetRef>,
}

impl Headroom {
    /// Builds the summary from per-subnet figures (sorted here; the input order is free).
    pub fn new(mut subnets: Vec<SubnetUsage>, mut skipped: Vec<SkippedSubnet>) -> Self {
        subnets.sort_by(|a, b| a.subnet_id.cmp(&b.subnet_id));
        skipped.sort_by(|a, b| a.subnet_id.cmp(&b.subnet_id));
        // Ties go to the first by ID, so the choice is deterministic.
        let min_available = subnets
            .iter()
            .min_by_key(|s| s.available)
            .map(SubnetRef::from);
        let tightest = subnets
            .iter()
            .min_by(|a, b| a.free_fraction().total_cmp(&b.free_fraction()))
            .map(SubnetRef::from);
        Headroom {
            total_available: subnets.iter().map(|s| s.available).sum(),
            total_capacity: subnets.iter().map(|s| s.capacity).sum(),
            subnets,
            skipped,
            min_available,
            tightest,
        }
    }

    /// Free fraction of the tightest subnet (`None` without IPv4 subnets).
    pub fn tightest_free_fraction(&self) -> Option<f64> {
        self.tightest.as_ref().map(|t| t.free_fraction)
    }

    /// True when the tightest subnet's free fraction is under `threshold` (e.g. 0.10).
    /// Without IPv4 subnets there is nothing to protect: false.
    pub fn is_low(&self, threshold: f64) -> bool {
        self.tightest_free_fraction().is_some_and(|f| f < threshold)
    }
}

/// Failure to read the headroom; the run goes on without subnet figures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `ec2:DescribeSubnets` failed.
    #[error("ec2:DescribeSubnets: {}", crate::failure::chain::Chain(.source))]
    DescribeSubnets {
        /// SDK error.
        #[source]
        source: aws_sdk_ec2::Error,
    },
    /// A call got no answer in time, or there was no time left to start it.
    #[error(transparent)]
    Timeout(#[from] Cut),
}

/// Subnet IDs to watch, each with the reasons it is watched: the cluster's own, its
/// Fargate profiles', and `extra` (each ID once).
pub fn watched(
    cluster: &[String],
    profiles: &[FargateProfile],
    extra: &[String],
) -> BTreeMap<String, Vec<Source>> {
    let mut watched: BTreeMap<String, Vec<Source>> = BTreeMap::new();
    let mut add = |id: &str, source: Source| {
        let sources = watched.entry(id.trim().to_owned()).or_default();
        if !sources.contains(&source) {
            sources.push(source);
        }
    };
    for id in cluster {
        add(id, Source::Cluster);
    }
    for profile in profiles {
        for id in &profile.subnet_ids {
            add(id, Source::FargateProfile(profile.name.clone()));
        }
    }
    for id in extra.iter().filter(|id| !id.trim().is_empty()) {
        add(id, Source::Extra);
    }
    watched
}

/// Reads the IPv4 headroom of the `watched` subnets (from [`watched`]).
///
/// Calls `ec2:DescribeSubnets` once per 1,000 distinct subnet IDs. IDs EC2 does not know
/// are reported as skipped (`NotFound`). Each call is bounded by `deadline` and
/// [`AWS_CALL`].
pub async fn read(
    ec2: &aws_sdk_ec2::Client,
    watched: BTreeMap<String, Vec<Source>>,
    deadline: &Deadline,
) -> Result<Headroom, Error> {
    let ids: Vec<String> = watched.keys().cloned().collect();
    let mut described = Vec::new();
    let mut not_found = Vec::new();
    const DESCRIBE_SUBNETS: &str = "ec2:DescribeSubnets";
    for chunk in ids.chunks(IDS_PER_DESCRIBE_CALL) {
        match deadline
            .bound(DESCRIBE_SUBNETS, AWS_CALL, describe(ec2, chunk))
            .await?
        {
            Ok(subnets) => described.extend(subnets),
            // One unknown ID fails the whole call; find it by asking for each ID alone.
            Err(e) if e.code() == Some("InvalidSubnetID.NotFound") => {
                for id in chunk {
                    let one = describe(ec2, std::slice::from_ref(id));
                    match deadline.bound(DESCRIBE_SUBNETS, AWS_CALL, one).await? {
                        Ok(subnets) => described.extend(subnets),
                        Err(e) if e.code() == Some("InvalidSubnetID.NotFound") => {
                            not_found.push(id.clone())
                        }
                        Err(source) => return Err(Error::DescribeSubnets { source }),
                    }
                }
            }
            Err(source) => return Err(Error::DescribeSubnets { source }),
        }
    }
    Ok(headroom_from(described, not_found, watched))
}

async fn describe(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<Vec<aws_sdk_ec2::types::Subnet>, aws_sdk_ec2::Error> {
    let mut subnets = Vec::new();
    let mut pages = ec2
        .describe_subnets()
        .set_subnet_ids(Some(ids.to_vec()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        subnets.extend(page?.subnets().iter().cloned());
    }
    Ok(subnets)
}

/// Pure: turns EC2's answer into the [`Headroom`] of the watched subnets.
fn headroom_from(
    described: Vec<aws_sdk_ec2::types::Subnet>,
    not_found: Vec<String>,
    mut watched: BTreeMap<String, Vec<Source>>,
) -> Headroom {
    let mut usages = Vec::new();
    let mut skipped = Vec::new();
    for subnet in &described {
        let Some(id) = subnet.subnet_id() else {
            continue;
        };
        let Some(sources) = watched.remove(id) else {
            continue; // answered twice or not asked for
        };
        match usage(
            id,
            subnet.availability_zone().unwrap_or_default(),
            subnet.cidr_block(),
            subnet.available_ip_address_count(),
            subnet.ipv6_native().unwrap_or(false),
            sources,
        ) {
            Ok(u) => usages.push(u),
            Err(s) => skipped.push(s),
        }
    }
    for id in not_found {
        if let Some(sources) = watched.remove(&id) {
            skipped.push(skip(&id, None, SkipReason::NotFound, sources));
        }
    }
    // Asked for but neither described nor reported missing: treat as unknown.
    for (id, sources) in watched {
        skipped.push(skip(&id, None, SkipReason::NotFound, sources));
    }
    Headroom::new(usages, skipped)
}

fn skip(
    id: &str,
    availability_zone: Option<&str>,
    reason: SkipReason,
    sources: Vec<Source>,
) -> SkippedSubnet {
    SkippedSubnet {
        subnet_id: id.to_owned(),
        availability_zone: availability_zone.map(str::to_owned),
        reason,
        sources,
    }
}

/// Pure: the figures of one subnet as EC2 describes it, or why it has none.
pub fn usage(
    subnet_id: &str,
    availability_zone: &str,
    cidr: Option<&str>,
    available: Option<i32>,
    ipv6_native: bool,
    sources: Vec<Source>,
) -> Result<SubnetUsage, SkippedSubnet> {
    let az = Some(availability_zone).filter(|az| !az.is_empty());
    if ipv6_native || cidr.is_none() {
        return Err(skip(subnet_id, az, SkipReason::Ipv6Only, sources));
    }
    let (Some(cidr), Some(prefix), Some(available)) = (
        cidr,
        cidr.and_then(ipv4_prefix_len),
        available.and_then(|a| u64::try_from(a).ok()),
    ) else {
        return Err(skip(subnet_id, az, SkipReason::Incomplete, sources));
    };
    let capacity = capacity(prefix);
    Ok(SubnetUsage {
        subnet_id: subnet_id.to_owned(),
        availability_zone: availability_zone.to_owned(),
        cidr: cidr.to_owned(),
        available,
        capacity,
        utilization_percent: utilization_percent(available, capacity),
        sources,
    })
}

/// Prefix length of an IPv4 CIDR (`10.0.0.0/20` → 20); `None` if it is not one.
pub fn ipv4_prefix_len(cidr: &str) -> Option<u8> {
    let (addr, len) = cidr.split_once('/')?;
    addr.parse::<std::net::Ipv4Addr>().ok()?;
    len.parse::<u8>().ok().filter(|l| *l <= 32)
}

/// Usable IPv4 addresses of a subnet with this prefix length: 2^(32 − prefix) − 5
/// (AWS reserves five per subnet). 0 for prefixes too long to hold the reserved ones.
pub fn capacity(prefix_len: u8) -> u64 {
    let block = 1u64 << (32 - u32::from(prefix_len.min(32)));
    block.saturating_sub(AWS_RESERVED_PER_SUBNET)
}

/// Share of usable addresses in use, in percent (0–100). A subnet without usable
/// addresses counts as full.
pub fn utilization_percent(available: u64, capacity: u64) -> f64 {
    if capacity == 0 {
        return 100.0;
    }
    let used = capacity.saturating_sub(available);
    used as f64 * 100.0 / capacity as f64
}

/// Free share of usable addresses, 0.0–1.0. A subnet without usable addresses has none.
pub fn free_fraction(available: u64, capacity: u64) -> f64 {
    if capacity == 0 {
        return 0.0;
    }
    available.min(capacity) as f64 / capacity as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, az: &str, cidr: &str, available: i32) -> SubnetUsage {
        usage(
            id,
            az,
            Some(cidr),
            Some(available),
            false,
            vec![Source::Cluster],
        )
        .unwrap()
    }

    #[test]
    fn capacity_of_common_sizes_excludes_the_five_reserved_addresses() {
        assert_eq!(capacity(28), 11);
        assert_eq!(capacity(24), 251);
        assert_eq!(capacity(20), 4091);
        assert_eq!(capacity(16), 65531);
    }

    #[test]
    fn capacity_of_prefixes_too_small_for_the_reserved_addresses_is_zero() {
        assert_eq!(capacity(30), 0);
        assert_eq!(capacity(32), 0);
        assert_eq!(capacity(40), 0);
    }

    #[test]
    fn utilisation_of_a_slash_28_with_two_free_addresses() {
        let s = subnet("subnet-a", "eu-west-1a", "10.0.0.0/28", 2);
        assert_eq!(s.capacity, 11);
        assert!((s.utilization_percent - 900.0 / 11.0).abs() < 1e-9);
        assert!((s.free_fraction() - 2.0 / 11.0).abs() < 1e-12);
    }

    #[test]
    fn utilisation_of_a_slash_20_and_a_slash_16() {
        let s20 = subnet("subnet-a", "eu-west-1a", "10.0.16.0/20", 4091 - 1000);
        assert!((s20.utilization_percent - 1000.0 * 100.0 / 4091.0).abs() < 1e-9);
        let s16 = subnet("subnet-b", "eu-west-1b", "10.1.0.0/16", 65531);
        assert_eq!(s16.utilization_percent, 0.0);
        assert_eq!(s16.free_fraction(), 1.0);
    }

    #[test]
    fn full_subnet_is_one_hundred_percent_used() {
        let s = subnet("subnet-a", "eu-west-1a", "10.0.0.0/28", 0);
        assert_eq!(s.utilization_percent, 100.0);
        assert_eq!(s.free_fraction(), 0.0);
    }

    #[test]
    fn ipv6_only_subnet_is_skipped_not_zero() {
        let r = usage(
            "subnet-6",
            "eu-west-1a",
            None,
            Some(0),
            true,
            vec![Source::Extra],
        );
        let skipped = r.unwrap_err();
        assert_eq!(skipped.reason, SkipReason::Ipv6Only);
        assert_eq!(skipped.availability_zone.as_deref(), Some("eu-west-1a"));

        let headroom = Headroom::new(
            vec![subnet("subnet-a", "eu-west-1a", "10.0.0.0/24", 100)],
            vec![skipped],
        );
        assert_eq!(headroom.total_available, 100);
        assert_eq!(headroom.min_available.unwrap().available, 100);
    }

    #[test]
    fn subnet_without_free_count_is_incomplete() {
        let r = usage("subnet-a", "az", Some("10.0.0.0/24"), None, false, vec![]);
        assert_eq!(r.unwrap_err().reason, SkipReason::Incomplete);
        let r = usage("subnet-a", "az", Some("not-a-cidr"), Some(3), false, vec![]);
        assert_eq!(r.unwrap_err().reason, SkipReason::Incomplete);
    }

    #[test]
    fn smallest_subnet_and_tightest_subnet_can_differ() {
        // A /28 with 5 free (45%) and a /20 with 300 free (7%).
        let h = Headroom::new(
            vec![
                subnet("subnet-big", "eu-west-1b", "10.0.16.0/20", 300),
                subnet("subnet-small", "eu-west-1a", "10.0.0.0/28", 5),
            ],
            vec![],
        );
        assert_eq!(h.total_available, 305);
        assert_eq!(h.total_capacity, 4091 + 11);
        assert_eq!(h.min_available.as_ref().unwrap().subnet_id, "subnet-small");
        assert_eq!(h.tightest.as_ref().unwrap().subnet_id, "subnet-big");
        assert!(h.is_low(0.10));
        assert!(!h.is_low(0.05));
        assert_eq!(h.subnets[0].subnet_id, "subnet-big", "sorted by id");
    }

    #[test]
    fn no_ipv4_subnets_means_no_tightest_and_never_low() {
        let h = Headroom::new(vec![], vec![]);
        assert_eq!(h.total_available, 0);
        assert!(h.tightest.is_none());
        assert!(!h.is_low(0.5));
    }

    #[test]
    fn ec2_answer_maps_to_watched_subnets_with_their_sources() {
        let ec2_subnet = |id: &str, az: &str, cidr: Option<&str>, free: i32, v6: bool| {
            aws_sdk_ec2::types::Subnet::builder()
                .subnet_id(id)
                .availability_zone(az)
                .set_cidr_block(cidr.map(str::to_owned))
                .available_ip_address_count(free)
                .ipv6_native(v6)
                .build()
        };
        let mut watched = BTreeMap::new();
        watched.insert(
            "subnet-a".to_owned(),
            vec![Source::Cluster, Source::FargateProfile("fp".into())],
        );
        watched.insert("subnet-6".to_owned(), vec![Source::Extra]);
        watched.insert("subnet-typo".to_owned(), vec![Source::Extra]);
        let h = headroom_from(
            vec![
                ec2_subnet("subnet-a", "eu-west-1a", Some("10.0.0.0/20"), 4000, false),
                ec2_subnet("subnet-6", "eu-west-1b", None, 0, true),
            ],
            vec!["subnet-typo".to_owned()],
            watched,
        );
        assert_eq!(h.subnets.len(), 1);
        assert_eq!(h.subnets[0].capacity, 4091);
        assert_eq!(h.subnets[0].sources.len(), 2);
        let reasons: Vec<_> = h
            .skipped
            .iter()
            .map(|s| (&*s.subnet_id, s.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                ("subnet-6", SkipReason::Ipv6Only),
                ("subnet-typo", SkipReason::NotFound)
            ]
        );
    }

    #[test]
    fn read_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::Config::builder()
                .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
                .build(),
        );
        assert_send(&read(&ec2, BTreeMap::new(), &Deadline::none()));
    }

    #[test]
    fn ipv4_prefix_parsing() {
        assert_eq!(ipv4_prefix_len("10.0.0.0/16"), Some(16));
        assert_eq!(ipv4_prefix_len("10.0.0.0/33"), None);
        assert_eq!(ipv4_prefix_len("2600:1f18::/64"), None);
        assert_eq!(ipv4_prefix_len("10.0.0.0"), None);
    }
}

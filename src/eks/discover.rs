//! Cluster discovery: every cluster carrying a tag, in a set of regions, found each run
//! (`eks:ListClusters`, then `eks:DescribeCluster` per cluster for its tags). A tagged
//! cluster created after the deploy is pruned from its first run on, with no redeploy; its
//! description is kept, so the run does not describe it a second time.
//!
//! The function's own account is searched with its own identity; each other account of the
//! discovery (`REAPER_DISCOVERY_ACCOUNTS`) through its member role, and what is found there
//! is pruned through that role. One account id per account, instead of one role ARN per
//! cluster: a new cluster in an onboarded account needs no reaper redeploy.
//!
//! The deployed role may describe only clusters carrying the tag (an IAM tag condition), so
//! `DescribeCluster` is denied for the others: such a cluster is not the reaper's and is
//! listed as denied, not an error. Any other failure fails the region (of that account).

use aws_types::SdkConfig;

use super::describe::{Cluster, describe};
use super::{AWS_CALL, Error};
use crate::config::{ClusterTag, ClusterTarget, Discovery, ExternalId};
use crate::deadline::{Cut, Deadline};
use crate::failure::ClusterFailure;

/// Page size for `ListClusters` (the API's maximum).
const CLUSTERS_PAGE: i32 = 100;

/// A cluster found by its tag, described.
#[derive(Debug, Clone)]
pub struct Found {
    /// Where it is, with the member role it was found through (none in the function's own
    /// account).
    pub target: ClusterTarget,
    /// Its description.
    pub cluster: Cluster,
}

/// Why one region could not be searched.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// `eks:ListClusters` failed.
    #[error("eks:ListClusters in {region}: {}", crate::failure::chain::Chain(.source))]
    List {
        /// The region searched (`account/region` in another account).
        region: String,
        /// SDK error.
        #[source]
        source: Box<aws_sdk_eks::Error>,
    },
    /// `eks:DescribeCluster` of a listed cluster failed.
    #[error("{region}: {source}")]
    Describe {
        /// The region searched.
        region: String,
        /// What failed.
        #[source]
        source: Error,
    },
    /// A call got no answer in time, or there was no time left to start it.
    #[error("{region}: {source}")]
    Timeout {
        /// The region searched.
        region: String,
        /// The cut.
        #[source]
        source: Cut,
    },
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Clusters carrying the tag.
    pub found: Vec<Found>,
    /// Clusters the identity may not describe (`name@region`): not carrying the tag, as
    /// the IAM tag condition says, or refused by a policy above it.
    pub denied: Vec<String>,
    /// Regions that could not be searched.
    pub errors: Vec<DiscoveryError>,
}

/// Every cluster carrying the discovery's tag in `regions`, in the function's own account and
/// in each of the discovery's accounts. Each call is bounded by `deadline` and [`AWS_CALL`].
pub async fn discover(
    base: &SdkConfig,
    discovery: &Discovery,
    regions: &[String],
    deadline: &Deadline,
) -> Discovered {
    let mut out = Discovered::default();
    let own = std::iter::once(None);
    let members = discovery.accounts.iter().map(|a| Some(a.as_str()));
    for account in own.chain(members) {
        for region in regions {
            let role_arn = account.map(|a| discovery.member_role_arn(a, region));
            let external_id = role_arn.as_ref().and(discovery.external_id.as_ref());
            let sdk = super::identity(base, region, role_arn.as_deref(), external_id).await;
            let place = Place {
                region,
                account,
                role_arn: role_arn.as_deref(),
                external_id,
            };
            if let Err(e) = in_region(&sdk, &discovery.tag, &place, deadline, &mut out).await {
                out.errors.push(e);
            }
        }
    }
    out
}

/// One account and Region searched.
struct Place<'a> {
    region: &'a str,
    /// `None`: the function's own account.
    account: Option<&'a str>,
    role_arn: Option<&'a str>,
    external_id: Option<&'a ExternalId>,
}

impl Place<'_> {
    /// `region`, or `account/region` in another account: how errors name the place.
    fn label(&self) -> String {
        match self.account {
            Some(account) => format!("{account}/{}", self.region),
            None => self.region.to_owned(),
        }
    }
}

async fn in_region(
    sdk: &SdkConfig,
    tag: &ClusterTag,
    place: &Place<'_>,
    deadline: &Deadline,
    out: &mut Discovered,
) -> Result<(), DiscoveryError> {
    let eks = aws_sdk_eks::Client::new(sdk);
    let label = place.label();
    let timeout = |source| DiscoveryError::Timeout {
        region: label.clone(),
        source,
    };
    let mut pages = eks
        .list_clusters()
        .max_results(CLUSTERS_PAGE)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = deadline
        .bound("eks:ListClusters", AWS_CALL, pages.next())
        .await
        .map_err(timeout)?
    {
        let page = page.map_err(|e| DiscoveryError::List {
            region: label.clone(),
            source: Box::new(e.into()),
        })?;
        names.extend(page.clusters().iter().cloned());
    }
    for name in names {
        let described = deadline
            .bound("eks:DescribeCluster", AWS_CALL, describe(&eks, &name))
            .await
            .map_err(timeout)?;
        let cluster = match described {
            Ok(cluster) => cluster,
            Err(e) if e.kind() == ClusterFailure::AccessDenied => {
                let at = crate::identity::label(&name, Some(place.region), place.account);
                out.denied.push(at);
                continue;
            }
            Err(source) => {
                return Err(DiscoveryError::Describe {
                    region: label.clone(),
                    source,
                });
            }
        };
        if carries(&cluster, tag) {
            out.found.push(Found {
                target: ClusterTarget {
                    name,
                    region: Some(place.region.to_owned()),
                    role_arn: place.role_arn.map(str::to_owned),
                    external_id: place.external_id.cloned(),
                    kubeconfig: None,
                },
                cluster,
            });
        }
    }
    Ok(())
}

/// Whether the cluster's tags include `tag` (key and value exactly).
pub fn carries(cluster: &Cluster, tag: &ClusterTag) -> bool {
    cluster.tags.get(&tag.key) == Some(&tag.value)
}

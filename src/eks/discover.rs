//! Cluster discovery: every cluster carrying a tag, in a set of regions, found each run
//! (`eks:ListClusters`, then `eks:DescribeCluster` per cluster for its tags). A tagged
//! cluster created after the deploy is pruned from its first run on, with no redeploy; its
//! description is kept, so the run does not describe it a second time.
//!
//! The deployed role may describe only clusters carrying the tag (an IAM tag condition), so
//! `DescribeCluster` is denied for the others: such a cluster is not the reaper's and is
//! listed as denied, not an error. Any other failure fails the region.

use aws_types::SdkConfig;
use aws_types::region::Region;

use super::describe::{Cluster, describe};
use super::{AWS_CALL, Error};
use crate::config::{ClusterTag, ClusterTarget};
use crate::deadline::{Cut, Deadline};
use crate::failure::ClusterFailure;

/// Page size for `ListClusters` (the API's maximum).
const CLUSTERS_PAGE: i32 = 100;

/// A cluster found by its tag, described.
#[derive(Debug, Clone)]
pub struct Found {
    /// Where it is (no role: discovery uses the function's own identity).
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
        /// The region searched.
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

/// Every cluster carrying `tag` in `regions`. Each call is bounded by `deadline` and
/// [`AWS_CALL`].
pub async fn discover(
    base: &SdkConfig,
    tag: &ClusterTag,
    regions: &[String],
    deadline: &Deadline,
) -> Discovered {
    let mut out = Discovered::default();
    for region in regions {
        if let Err(e) = in_region(base, tag, region, deadline, &mut out).await {
            out.errors.push(e);
        }
    }
    out
}

async fn in_region(
    base: &SdkConfig,
    tag: &ClusterTag,
    region: &str,
    deadline: &Deadline,
    out: &mut Discovered,
) -> Result<(), DiscoveryError> {
    let sdk = base
        .to_builder()
        .region(Region::new(region.to_owned()))
        .build();
    let eks = aws_sdk_eks::Client::new(&sdk);
    let timeout = |source| DiscoveryError::Timeout {
        region: region.to_owned(),
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
            region: region.to_owned(),
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
                out.denied.push(format!("{name}@{region}"));
                continue;
            }
            Err(source) => {
                return Err(DiscoveryError::Describe {
                    region: region.to_owned(),
                    source,
                });
            }
        };
        if carries(&cluster, tag) {
            out.found.push(Found {
                target: ClusterTarget {
                    name,
                    region: Some(region.to_owned()),
                    role_arn: None,
                    external_id: None,
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

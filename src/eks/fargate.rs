//! The cluster's Fargate profiles and their subnets (`eks:ListFargateProfiles`, then
//! `eks:DescribeFargateProfile` per profile): every finished Fargate pod holds an IP of one
//! of them.

use super::AWS_CALL;
use crate::deadline::{Cut, Deadline};

/// Page size for `ListFargateProfiles` (the API's maximum).
const PROFILES_PAGE: i32 = 100;

/// One Fargate profile and the subnets its pods draw IPs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FargateProfile {
    /// Profile name.
    pub name: String,
    /// Its subnets.
    pub subnet_ids: Vec<String>,
}

/// Why the profiles could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `eks:ListFargateProfiles` failed.
    #[error("eks:ListFargateProfiles {cluster}: {}", crate::failure::chain::Chain(.source))]
    List {
        /// Cluster name.
        cluster: String,
        /// SDK error.
        #[source]
        source: aws_sdk_eks::Error,
    },
    /// `eks:DescribeFargateProfile` failed.
    #[error("eks:DescribeFargateProfile {cluster}/{profile}: {}", crate::failure::chain::Chain(.source))]
    Describe {
        /// Cluster name.
        cluster: String,
        /// Fargate profile name.
        profile: String,
        /// SDK error.
        #[source]
        source: aws_sdk_eks::Error,
    },
    /// A call got no answer in time, or there was no time left to start it.
    #[error(transparent)]
    Timeout(#[from] Cut),
}

/// Reads every Fargate profile of `cluster` with its subnets; each call is bounded by
/// `deadline` and [`AWS_CALL`].
pub async fn profiles(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    deadline: &Deadline,
) -> Result<Vec<FargateProfile>, Error> {
    let mut pages = eks
        .list_fargate_profiles()
        .cluster_name(cluster)
        .max_results(PROFILES_PAGE)
        .into_paginator()
        .send();
    let mut names = Vec::new();
    while let Some(page) = deadline
        .bound("eks:ListFargateProfiles", AWS_CALL, pages.next())
        .await?
    {
        let page = page.map_err(|e| Error::List {
            cluster: cluster.to_owned(),
            source: e.into(),
        })?;
        names.extend(page.fargate_profile_names().iter().cloned());
    }
    let mut profiles = Vec::with_capacity(names.len());
    for name in names {
        let call = eks
            .describe_fargate_profile()
            .cluster_name(cluster)
            .fargate_profile_name(&name)
            .send();
        let out = deadline
            .bound(
                &format!("eks:DescribeFargateProfile {name}"),
                AWS_CALL,
                call,
            )
            .await?
            .map_err(|e| Error::Describe {
                cluster: cluster.to_owned(),
                profile: name.clone(),
                source: e.into(),
            })?;
        let subnet_ids = out
            .fargate_profile()
            .map(|p| p.subnets().to_vec())
            .unwrap_or_default();
        profiles.push(FargateProfile { name, subnet_ids });
    }
    Ok(profiles)
}

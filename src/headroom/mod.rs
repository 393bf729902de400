//! Subnet IP headroom: the free IPv4 addresses of the subnets a cluster's pods draw from
//! ([`subnets`]), and how long they last at the rate Fargate pods are created
//! ([`forecast`]).

pub mod forecast;
pub mod subnets;

pub use forecast::Forecast;
pub use subnets::Headroom;

use crate::deadline::Deadline;
use crate::eks;

/// The Fargate profiles' subnets (EKS), then the free addresses of every watched subnet
/// (EC2): what a run reads before pruning, and what `eks-reaper headroom` shows.
pub async fn read(
    connection: &eks::Connection,
    cluster: &str,
    extra: &[String],
    deadline: &Deadline,
) -> Result<Headroom, String> {
    let profiles = eks::fargate::profiles(&connection.eks, cluster, deadline)
        .await
        .map_err(|e| e.to_string())?;
    let watched = subnets::watched(&connection.subnet_ids, &profiles, extra);
    subnets::read(&connection.ec2, watched, deadline)
        .await
        .map_err(|e| e.to_string())
}

//! Cluster discovery against moto's EKS: in every region searched, exactly the clusters
//! carrying the tag (key and value) are found, described once, with their region; a region
//! that cannot be searched is an error, not an empty result; another account is searched
//! through its member role (moto keeps one EKS per account, chosen by the credentials).
//!
//! Starts its own moto (testbed venv, or `EKS_REAPER_PYTHON`).

mod common;

use aws_sdk_eks::types::VpcConfigRequest;
use aws_types::region::Region;
use common::moto::{self, sdk_config};
use eks_reaper::config::{ClusterTag, Discovery};
use eks_reaper::deadline::Deadline;
use eks_reaper::eks::discover::{Discovered, DiscoveryError, discover};

async fn cluster(sdk: &aws_types::SdkConfig, region: &str, name: &str, tags: &[(&str, &str)]) {
    let sdk = sdk
        .to_builder()
        .region(Region::new(region.to_owned()))
        .build();
    let mut create = aws_sdk_eks::Client::new(&sdk)
        .create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(VpcConfigRequest::builder().subnet_ids("subnet-0a").build());
    for (k, v) in tags {
        create = create.tags(*k, *v);
    }
    create.send().await.expect("CreateCluster");
}

fn tag() -> ClusterTag {
    ClusterTag {
        key: "eks-reaper".to_owned(),
        value: "enabled".to_owned(),
    }
}

/// Discovery of the tag in the function's own account and in `accounts`.
fn discovery(accounts: &[&str]) -> Discovery {
    Discovery {
        tag: tag(),
        regions: Vec::new(),
        accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
        member_role: "eks-reaper-member".to_owned(),
        external_id: None,
    }
}

const MEMBER: &str = "222222222222";

#[tokio::test(flavor = "multi_thread")]
async fn tagged_clusters_are_found_in_every_region_searched() {
    // GIVEN tagged clusters in two regions, and clusters with another value, another key,
    // no tags, and a tagged one in a region not searched
    let (_moto, port) = moto::start();
    let sdk = sdk_config(&format!("http://127.0.0.1:{port}")).await;
    let on = [("eks-reaper", "enabled"), ("team", "etl")];
    cluster(&sdk, "eu-west-1", "etl-prod", &on).await;
    cluster(&sdk, "us-east-1", "etl-us", &[("eks-reaper", "enabled")]).await;
    cluster(&sdk, "eu-west-1", "web", &[("eks-reaper", "disabled")]).await;
    cluster(&sdk, "eu-west-1", "ml", &[("team", "enabled")]).await;
    cluster(&sdk, "us-east-1", "bare", &[]).await;
    cluster(&sdk, "ap-south-1", "elsewhere", &on).await;

    // WHEN two regions are searched
    let regions = ["eu-west-1".to_owned(), "us-east-1".to_owned()];
    let Discovered {
        found,
        denied,
        errors,
    } = discover(&sdk, &discovery(&[]), &regions, &Deadline::none()).await;

    // THEN exactly the two tagged clusters, each with its region and description
    assert!(
        errors.is_empty() && denied.is_empty(),
        "{errors:?} {denied:?}"
    );
    let mut names: Vec<_> = found
        .iter()
        .map(|f| {
            (
                f.target.name.as_str(),
                f.target.region.as_deref().unwrap_or(""),
            )
        })
        .collect();
    names.sort();
    assert_eq!(names, [("etl-prod", "eu-west-1"), ("etl-us", "us-east-1")]);
    for f in &found {
        assert_eq!(f.target.role_arn, None);
        assert_eq!(f.cluster.subnet_ids, ["subnet-0a"]);
        assert_eq!(
            f.cluster.tags.get("eks-reaper").map(String::as_str),
            Some("enabled")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_that_cannot_be_searched_is_an_error() {
    // GIVEN an EKS endpoint that refuses connections
    let port = common::free_port();
    let sdk = sdk_config(&format!("http://127.0.0.1:{port}")).await;

    // WHEN discovery searches it
    let Discovered { found, errors, .. } = discover(
        &sdk,
        &discovery(&[]),
        &["eu-west-1".to_owned()],
        &Deadline::none(),
    )
    .await;

    // THEN nothing is found and the region's failure is reported, naming the region
    assert!(found.is_empty());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        matches!(&errors[0], DiscoveryError::List { region, .. } if region == "eu-west-1"),
        "{:?}",
        errors[0]
    );
    assert!(errors[0].to_string().contains("eu-west-1"), "{}", errors[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_account_is_searched_through_its_member_role_and_its_clusters_keep_it() {
    // GIVEN a tagged cluster "prod" in the function's account, and one of the same name and
    // Region and an untagged one in a member account (created through its member role)
    let (_moto, port) = moto::start();
    let sdk = sdk_config(&format!("http://127.0.0.1:{port}")).await;
    let d = discovery(&[MEMBER]);
    let role = d.member_role_arn(MEMBER, "eu-west-1");
    assert_eq!(role, "arn:aws:iam::222222222222:role/eks-reaper-member");
    let member = eks_reaper::eks::identity(&sdk, "eu-west-1", Some(&role), None).await;
    let on = [("eks-reaper", "enabled")];
    cluster(&sdk, "eu-west-1", "prod", &on).await;
    cluster(&member, "eu-west-1", "prod", &on).await;
    cluster(&member, "eu-west-1", "scratch", &[]).await;

    // WHEN the own account and the member account are searched
    let regions = ["eu-west-1".to_owned()];
    let Discovered { found, errors, .. } = discover(&sdk, &d, &regions, &Deadline::none()).await;

    // THEN both "prod" are found, each with the role that reaches it: none for the own
    // account's, the member role for the member's; the untagged one is not
    assert!(errors.is_empty(), "{errors:?}");
    let mut seen: Vec<_> = found
        .iter()
        .map(|f| (f.target.name.as_str(), f.target.role_arn.as_deref()))
        .collect();
    seen.sort();
    assert_eq!(seen, [("prod", None), ("prod", Some(role.as_str()))]);
    let arns: Vec<&str> = found
        .iter()
        .filter_map(|f| f.cluster.arn.as_deref())
        .collect();
    assert!(
        arns.iter().any(|a| a.contains(":222222222222:")),
        "the member's cluster is described in its own account: {arns:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_account_that_cannot_be_searched_is_an_error_naming_it() {
    // GIVEN an EKS endpoint that refuses connections
    let port = common::free_port();
    let sdk = sdk_config(&format!("http://127.0.0.1:{port}")).await;

    // WHEN discovery searches the own account and a member account there
    let regions = ["eu-west-1".to_owned()];
    let d = discovery(&[MEMBER]);
    let Discovered { errors, .. } = discover(&sdk, &d, &regions, &Deadline::none()).await;

    // THEN each is one error, the member's named by its account and Region
    let places: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(places.len(), 2, "{places:?}");
    assert!(places[1].contains("222222222222/eu-west-1"), "{places:?}");
}

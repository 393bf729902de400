//! The headroom read against moto's EKS and EC2: the watched subnets come from the cluster
//! (`DescribeCluster`), its Fargate profiles and the extra list, and the figures equal
//! `DescribeSubnets`.
//!
//! Starts its own moto (testbed venv, or `EKS_REAPER_PYTHON`).

use aws_sdk_eks::types::{FargateProfileSelector, VpcConfigRequest};
use eks_reaper::deadline::Deadline;
use eks_reaper::eks;
use eks_reaper::headroom::subnets::{self, SkipReason, Source};

use crate::common::moto;

/// moto on a free port and an SDK config pointing at it.
async fn start_moto() -> (moto::Process, aws_types::SdkConfig) {
    let (process, port) = moto::start();
    let sdk = moto::sdk_config(&format!("http://127.0.0.1:{port}")).await;
    (process, sdk)
}

async fn subnet(ec2: &aws_sdk_ec2::Client, vpc: &str, cidr: &str, az: &str) -> String {
    ec2.create_subnet()
        .vpc_id(vpc)
        .cidr_block(cidr)
        .availability_zone(az)
        .send()
        .await
        .expect("CreateSubnet")
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("subnet id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn headroom_covers_cluster_fargate_and_extra_subnets_as_ec2_reports_them() {
    // GIVEN a cluster on subnets A and B, Fargate profiles on B+C and C, extra D, A and a
    // subnet that does not exist; three ENIs taken from B
    let (_moto, sdk) = start_moto().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let eks = aws_sdk_eks::Client::new(&sdk);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("CreateVpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap()
        .to_owned();
    let a = subnet(&ec2, &vpc, "10.0.0.0/20", "eu-west-1a").await;
    let b = subnet(&ec2, &vpc, "10.0.16.0/28", "eu-west-1b").await;
    let c = subnet(&ec2, &vpc, "10.0.32.0/24", "eu-west-1c").await;
    let d = subnet(&ec2, &vpc, "10.0.48.0/24", "eu-west-1a").await;
    for _ in 0..3 {
        ec2.create_network_interface()
            .subnet_id(&b)
            .send()
            .await
            .expect("CreateNetworkInterface");
    }
    let role = "arn:aws:iam::123456789012:role/eks";
    eks.create_cluster()
        .name("prod")
        .role_arn(role)
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .subnet_ids(&a)
                .subnet_ids(&b)
                .build(),
        )
        .send()
        .await
        .expect("CreateCluster");
    for (name, subnets) in [("fp-etl", vec![&b, &c]), ("fp-two", vec![&c])] {
        eks.create_fargate_profile()
            .cluster_name("prod")
            .fargate_profile_name(name)
            .pod_execution_role_arn(role)
            .set_subnets(Some(subnets.into_iter().cloned().collect()))
            .selectors(FargateProfileSelector::builder().namespace("etl").build())
            .send()
            .await
            .expect("CreateFargateProfile");
    }
    let extra = vec![d.clone(), a.clone(), "subnet-0doesnotexist0".to_owned()];

    // WHEN the headroom is read: the cluster's subnets from DescribeCluster, the profiles',
    // then EC2
    let deadline = Deadline::none();
    let cluster = eks::describe::describe(&eks, "prod")
        .await
        .expect("DescribeCluster");
    let profiles = eks::fargate::profiles(&eks, "prod", &deadline)
        .await
        .expect("profiles");
    let watched = subnets::watched(&cluster.subnet_ids, &profiles, &extra);
    let headroom = subnets::read(&ec2, watched, &deadline).await.expect("read");

    // THEN the four real subnets are there once each, with EC2's own figures
    let described = ec2
        .describe_subnets()
        .subnet_ids(&a)
        .subnet_ids(&b)
        .subnet_ids(&c)
        .subnet_ids(&d)
        .send()
        .await
        .expect("DescribeSubnets");
    assert_eq!(headroom.subnets.len(), 4);
    for s in described.subnets() {
        let id = s.subnet_id().unwrap();
        let mine = headroom
            .subnets
            .iter()
            .find(|u| u.subnet_id == id)
            .expect(id);
        assert_eq!(
            Some(mine.available as i32),
            s.available_ip_address_count(),
            "{id}"
        );
        assert_eq!(Some(mine.availability_zone.as_str()), s.availability_zone());
        assert_eq!(Some(mine.cidr.as_str()), s.cidr_block());
    }
    let sb = headroom.subnets.iter().find(|u| u.subnet_id == b).unwrap();
    assert_eq!((sb.capacity, sb.available), (11, 8));
    assert_eq!(
        sb.sources,
        [Source::Cluster, Source::FargateProfile("fp-etl".into())]
    );
    let sc = headroom.subnets.iter().find(|u| u.subnet_id == c).unwrap();
    assert_eq!(
        sc.sources,
        [
            Source::FargateProfile("fp-etl".into()),
            Source::FargateProfile("fp-two".into())
        ]
    );
    let sa = headroom.subnets.iter().find(|u| u.subnet_id == a).unwrap();
    assert_eq!(sa.sources, [Source::Cluster, Source::Extra]);

    // AND the unknown one is skipped, not counted as zero
    assert_eq!(headroom.skipped.len(), 1);
    assert_eq!(headroom.skipped[0].subnet_id, "subnet-0doesnotexist0");
    assert_eq!(headroom.skipped[0].reason, SkipReason::NotFound);

    // AND the summary points at B, the fullest and tightest
    assert_eq!(headroom.total_available, 4091 + 8 + 251 + 251);
    assert_eq!(headroom.min_available.as_ref().unwrap().subnet_id, b);
    assert_eq!(headroom.tightest.as_ref().unwrap().subnet_id, b);
    assert!(headroom.is_low(0.75));
    assert!(!headroom.is_low(0.5));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_cluster_is_an_error_naming_it() {
    let (_moto, sdk) = start_moto().await;
    let eks = aws_sdk_eks::Client::new(&sdk);
    let err = eks::describe::describe(&eks, "nope").await.unwrap_err();
    assert_eq!(
        err.kind(),
        eks_reaper::failure::ClusterFailure::ClusterNotFound
    );
    assert!(err.to_string().contains("nope"), "{err}");
    let err = eks::fargate::profiles(&eks, "nope", &Deadline::none())
        .await
        .unwrap_err();
    assert!(matches!(err, eks::fargate::Error::List { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

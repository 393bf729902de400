//! The configuration's tests: options and events in, a validated `Config` or an error
//! naming the setting out.

use clap::Parser;

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: Options,
}

/// The options as these flags give them (no environment read), for tests anywhere.
pub(crate) fn options(args: &[&str]) -> Options {
    let argv = std::iter::once("eks-reaper").chain(args.iter().copied());
    Cli::try_parse_from(argv).expect("flags parse").options
}

fn resolve(args: &[&str]) -> Result<Config, ConfigError> {
    Config::resolve(&options(args), &Overrides::default())
}

fn through_kubeconfig(args: &[&str]) -> Result<Config, ConfigError> {
    let kube = KubeconfigContext {
        path: Some("/tmp/kubeconfig".into()),
        context: Some("admin@lab".to_owned()),
        eks_cluster: false,
    };
    Config::resolve_with_kubeconfig(&options(args), &Overrides::default(), kube, "admin@lab")
}

#[test]
fn a_kubeconfig_context_alone_is_one_cluster_named_after_it_without_eks() {
    let c = through_kubeconfig(&[]).expect("valid");
    assert_eq!(c.clusters.len(), 1);
    assert_eq!(c.clusters[0].name, "admin@lab");
    assert_eq!(c.clusters[0].region, None);
    let kube = c.clusters[0].kubeconfig.as_ref().expect("kubeconfig");
    assert!(!kube.eks_cluster);
}

#[test]
fn a_kubeconfig_context_with_a_named_cluster_reads_that_eks_cluster() {
    let c = through_kubeconfig(&["--cluster", "etl@eu-west-1"]).expect("valid");
    assert_eq!(c.clusters[0].name, "etl");
    assert_eq!(c.clusters[0].region.as_deref(), Some("eu-west-1"));
    assert!(
        c.clusters[0]
            .kubeconfig
            .as_ref()
            .expect("kubeconfig")
            .eks_cluster
    );
}

#[test]
fn a_kubeconfig_context_refuses_several_clusters_and_discovery() {
    let several = through_kubeconfig(&["--cluster", "a,b"]).expect_err("one cluster");
    assert_eq!(several.field(), "REAPER_CLUSTERS (--cluster)");
    assert!(several.to_string().contains("a,b"), "{several}");
    let tagged = through_kubeconfig(&["--cluster-tag", "eks-reaper=on"]).expect_err("no tag");
    assert_eq!(tagged.field(), "REAPER_CLUSTER_TAG (--cluster-tag)");
}

#[test]
fn without_a_kubeconfig_no_cluster_is_still_an_error() {
    assert!(resolve(&[]).is_err());
}

#[test]
fn defaults_match_the_readme_table() {
    let c = resolve(&["--cluster", "etl"]).expect("valid");
    assert_eq!(c.dry_run, DryRun::Off);
    assert_eq!(c.policy, Settings::default());
    assert_eq!(c.concurrency, 16);
    assert_eq!(c.drain_latency_target, LatencyTarget::Factor(3.0));
    assert_eq!(c.cluster_concurrency, 4);
    assert_eq!(c.page_size, 500);
    assert_eq!(c.deadline_margin, Duration::from_secs(30));
    assert_eq!(c.max_run_time, None);
    assert_eq!(c.token_max_age, Duration::from_secs(600));
    assert!((c.low_headroom_fraction - 0.10).abs() < f64::EPSILON);
    assert_eq!(c.forecast_window, Duration::from_secs(15 * 60));
    assert_eq!(c.metrics.sink, MetricsSinkKind::CloudWatch);
    assert_eq!(c.metrics.namespace, "EKSReaper");
    assert!(!c.metrics.per_namespace);
    assert_eq!(c.metrics.detail, MetricsDetail::Essential);
    assert!(
        c.namespace_annotations,
        "namespace annotations are read by default"
    );
    assert!(!c.namespace_events, "namespace events are off by default");
}

#[test]
fn clusters_accept_repeats_comma_lists_regions_and_roles() {
    let c = resolve(&[
        "--cluster",
        "etl,web@eu-west-1",
        "--cluster",
        "ml",
        "--role-arn",
        "web=arn:aws:iam::123456789012:role/reaper",
    ])
    .expect("valid");
    let names: Vec<_> = c.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["etl", "web", "ml"]);
    assert_eq!(c.clusters[1].region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        c.clusters[1].role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/reaper")
    );
    assert_eq!(c.clusters[0].role_arn, None);
}

#[test]
fn dry_run_flag_without_value_means_client() {
    assert_eq!(
        resolve(&["--cluster", "etl", "--dry-run"])
            .expect("valid")
            .dry_run,
        DryRun::Client
    );
    assert_eq!(
        resolve(&["--cluster", "etl", "--dry-run", "server"])
            .expect("valid")
            .dry_run,
        DryRun::Server
    );
}

#[test]
fn boolean_flags_can_be_turned_off() {
    let c = resolve(&[
        "--cluster",
        "etl",
        "--respect-native-ttl",
        "false",
        "--skip-cronjob-jobs",
    ])
    .expect("valid");
    assert!(!c.policy.respect_native_ttl);
    assert!(c.policy.skip_cronjob_jobs);
}

#[test]
fn a_cluster_tag_turns_discovery_on_and_may_replace_the_cluster_list() {
    let c = resolve(&[
        "--cluster-tag",
        "eks-reaper=enabled",
        "--discovery-regions",
        "eu-west-1, us-east-1",
    ])
    .expect("valid without named clusters");
    assert!(c.clusters.is_empty());
    let d = c.discovery.expect("discovery");
    assert_eq!(d.tag.to_string(), "eks-reaper=enabled");
    assert_eq!(d.regions, ["eu-west-1", "us-east-1"]);
    let e = resolve(&["--cluster", "etl", "--discovery-regions", "eu-west-1"])
        .expect_err("regions without a tag");
    assert_eq!(e.field(), "REAPER_CLUSTER_TAG (--cluster-tag)");
    let e = resolve(&["--cluster-tag", "team"]).expect_err("no value");
    assert_eq!(e.field(), "REAPER_CLUSTER_TAG (--cluster-tag)");
    let e = resolve(&["--cluster-tag", "a=b", "--discovery-regions", "EU"]).expect_err("region");
    assert_eq!(e.field(), "REAPER_DISCOVERY_REGIONS (--discovery-regions)");
}

#[test]
fn discovery_accounts_are_searched_through_the_member_role_of_their_partition() {
    let c = resolve(&[
        "--cluster-tag",
        "eks-reaper=enabled",
        "--discovery-account",
        "111111111111, 222222222222,111111111111",
        "--external-id",
        "fleet-1",
    ])
    .expect("valid");
    let d = c.discovery.expect("discovery");
    assert_eq!(d.accounts, ["111111111111", "222222222222"]);
    assert_eq!(d.member_role, "eks-reaper-member");
    assert!(d.external_id.is_some());
    assert_eq!(
        d.member_role_arn("222222222222", "eu-west-1"),
        "arn:aws:iam::222222222222:role/eks-reaper-member"
    );
    assert_eq!(
        d.member_role_arn("222222222222", "cn-north-1"),
        "arn:aws-cn:iam::222222222222:role/eks-reaper-member"
    );
    assert_eq!(
        d.member_role_arn("222222222222", "us-gov-west-1"),
        "arn:aws-us-gov:iam::222222222222:role/eks-reaper-member"
    );
}

#[test]
fn a_bad_discovery_account_or_member_role_is_an_error_naming_it() {
    let tag = ["--cluster-tag", "a=b"];
    let e = resolve(&[&tag[..], &["--discovery-account", "12345"]].concat()).expect_err("short");
    assert_eq!(e.field(), "REAPER_DISCOVERY_ACCOUNTS (--discovery-account)");
    assert!(e.to_string().contains("12345"), "{e}");
    let e = resolve(&[&tag[..], &["--member-role-name", "a role"]].concat()).expect_err("name");
    assert_eq!(e.field(), "REAPER_MEMBER_ROLE_NAME (--member-role-name)");
    let e = resolve(&["--cluster", "etl", "--discovery-account", "111111111111"])
        .expect_err("accounts without a tag");
    assert_eq!(e.field(), "REAPER_CLUSTER_TAG (--cluster-tag)");
    assert!(e.to_string().contains("REAPER_DISCOVERY_ACCOUNTS"), "{e}");
}

fn emergency(cluster: &str) -> Overrides {
    Overrides {
        emergency: Some(Emergency {
            alarm: "reaper-subnet-free-percent-low".to_owned(),
            cluster: cluster.to_owned(),
            region: None,
            account: None,
            field: "event.detail.alarmContributor.attributes.ClusterName",
        }),
        ..Overrides::default()
    }
}

#[test]
fn an_emergency_runs_the_alarms_configured_cluster_only_in_every_region_it_is_in() {
    let opts = options(&["--cluster", "etl,web,etl@eu-west-1", "--cluster-tag", "a=b"]);
    let c = Config::resolve(&opts, &emergency("etl")).expect("configured");
    let picked: Vec<_> = c
        .clusters
        .iter()
        .map(|t| (t.name.as_str(), t.region.as_deref()))
        .collect();
    assert_eq!(picked, [("etl", None), ("etl", Some("eu-west-1"))]);
    assert_eq!(c.discovery, None, "a named cluster needs no discovery");
    assert_eq!(
        c.emergency.expect("kept").alarm,
        "reaper-subnet-free-percent-low"
    );
}

#[test]
fn an_emergency_naming_an_account_runs_only_that_account_s_cluster_of_the_name() {
    let opts = options(&[
        "--cluster",
        "etl@eu-west-1,etl@us-east-1",
        "--role-arn",
        "etl=arn:aws:iam::111111111111:role/eks-reaper",
    ]);
    let mut overrides = emergency("etl");
    let e = overrides.emergency.as_mut().expect("emergency");
    e.region = Some("us-east-1".to_owned());
    e.account = Some("111111111111".to_owned());
    let c = Config::resolve(&opts, &overrides).expect("configured");
    let picked: Vec<_> = c.clusters.iter().map(|t| t.region.as_deref()).collect();
    assert_eq!(picked, [Some("us-east-1")]);

    let e = overrides.emergency.as_mut().expect("emergency");
    e.account = Some("self".to_owned());
    let refused = Config::resolve(&opts, &overrides).expect_err("another account");
    assert!(
        refused.to_string().contains("etl@us-east-1 (account self)"),
        "{refused}"
    );
}

#[test]
fn an_emergency_for_an_unconfigured_cluster_is_refused_or_left_to_discovery() {
    let e = Config::resolve(&options(&["--cluster", "etl,web"]), &emergency("other"))
        .expect_err("not ours");
    assert_eq!(
        e.field(),
        "event.detail.alarmContributor.attributes.ClusterName"
    );
    assert!(e.to_string().contains("\"other\""), "{e}");
    assert!(e.to_string().contains("etl, web"), "{e}");
    let opts = options(&["--cluster", "etl", "--cluster-tag", "a=b"]);
    let c = Config::resolve(&opts, &emergency("other")).expect("discovery may find it");
    assert!(c.clusters.is_empty());
    assert!(c.discovery.is_some());
}

#[test]
fn missing_clusters_is_an_error_naming_the_setting() {
    let e = resolve(&[]).expect_err("no clusters");
    assert!(e.to_string().contains("REAPER_CLUSTERS"), "{e}");
}

#[test]
fn zero_or_negative_concurrency_is_an_error_naming_field_and_value() {
    for bad in ["0", "-3", "many"] {
        let e = resolve(&["--cluster", "etl", "--concurrency", bad]).expect_err("bad");
        let msg = e.to_string();
        assert!(msg.contains("REAPER_CONCURRENCY"), "{msg}");
        assert!(msg.contains(&format!("{bad:?}")), "{msg}");
    }
}

#[test]
fn a_drain_latency_target_is_off_or_a_factor_over_one_and_errors_name_field_and_value() {
    let c = resolve(&["--cluster", "etl", "--drain-latency-target", "off"]).expect("valid");
    assert_eq!(c.drain_latency_target, LatencyTarget::Off);
    let c = resolve(&["--cluster", "etl", "--drain-latency-target", "1.5"]).expect("valid");
    assert_eq!(c.drain_latency_target, LatencyTarget::Factor(1.5));
    for bad in ["1", "0.5", "fast"] {
        let e = resolve(&["--cluster", "etl", "--drain-latency-target", bad]).expect_err("bad");
        let msg = e.to_string();
        assert!(msg.contains("REAPER_DRAIN_LATENCY_TARGET"), "{msg}");
        assert!(msg.contains(&format!("{bad:?}")), "{msg}");
    }
}

#[test]
fn bad_duration_is_an_error_naming_field_and_value() {
    let e = resolve(&["--cluster", "etl", "--failed-job-ttl", "1 fortnight"]).expect_err("bad");
    assert_eq!(e.field(), "REAPER_FAILED_JOB_TTL (--failed-job-ttl)");
    assert!(e.to_string().contains("\"1 fortnight\""), "{e}");
}

#[test]
fn bad_cluster_name_and_region_are_errors() {
    assert!(resolve(&["--cluster", "etl prod"]).is_err());
    assert!(resolve(&["--cluster", "etl@EU_WEST"]).is_err());
    assert!(resolve(&["--cluster", "etl,etl"]).is_err());
}

#[test]
fn bad_role_arn_entry_is_an_error() {
    let e = resolve(&["--cluster", "etl", "--role-arn", "etl"]).expect_err("bad");
    assert!(e.to_string().contains("REAPER_ROLE_ARNS"), "{e}");
}

fn external_id(text: &str) -> Option<ExternalId> {
    values::external_id(text).expect("valid external id")
}

fn shown(id: &Option<ExternalId>) -> Option<&str> {
    id.as_ref().map(ExternalId::as_str)
}

#[test]
fn the_external_id_goes_with_every_role_assumed_and_nowhere_else() {
    let c = resolve(&[
        "--cluster",
        "etl,web,ml",
        "--role-arn",
        "web=arn:aws:iam::123456789012:role/reaper,ml=arn:aws:iam::210987654321:role/r",
        "--external-id",
        "tenant-42",
    ])
    .expect("valid");
    let ids: Vec<_> = c.clusters.iter().map(|t| shown(&t.external_id)).collect();
    assert_eq!(ids, [None, Some("tenant-42"), Some("tenant-42")]);
}

#[test]
fn a_blank_external_id_means_none() {
    let c = resolve(&[
        "--cluster",
        "web",
        "--role-arn",
        "web=arn:aws:iam::1:role/r",
        "--external-id",
        " ",
    ])
    .expect("valid");
    assert_eq!(c.clusters[0].external_id, None);
    let unset = resolve(&[
        "--cluster",
        "web",
        "--role-arn",
        "web=arn:aws:iam::1:role/r",
    ])
    .expect("valid");
    assert_eq!(unset.clusters[0].external_id, None);
}

#[test]
fn a_bad_external_id_is_an_error_naming_the_setting_but_not_the_value() {
    let e = resolve(&["--cluster", "etl", "--external-id", "not a valid id"])
        .expect_err("spaces are not allowed");
    assert_eq!(e.field(), "REAPER_EXTERNAL_ID (--external-id)");
    let msg = e.to_string();
    assert!(msg.contains("<hidden, 14 characters>"), "{msg}");
    assert!(!msg.contains("valid id"), "{msg}");
}

#[test]
fn the_external_id_is_hidden_from_debug_output() {
    let c = resolve(&[
        "--cluster",
        "web",
        "--role-arn",
        "web=arn:aws:iam::1:role/r",
        "--external-id",
        "s3cr3t-tenant",
    ])
    .expect("valid");
    assert!(!format!("{c:?}").contains("s3cr3t"));
    assert!(!format!("{:?}", options(&["--external-id", "s3cr3t-tenant"])).contains("s3cr3t"));
}

#[test]
fn an_event_cluster_external_id_replaces_the_configured_one() {
    let role = |name: &str, arn: Option<&str>, id: Option<&str>| ClusterOverride {
        name: name.to_owned(),
        region: None,
        role_arn: arn.map(str::to_owned),
        external_id: id.and_then(external_id),
    };
    let o = Overrides {
        clusters: Some(vec![
            role("a", Some("arn:aws:iam::1:role/a"), Some("own-id")),
            role("b", Some("arn:aws:iam::1:role/b"), None),
            // A role from REAPER_ROLE_ARNS, an external id from the event.
            role("web", None, Some("event-id")),
            role("plain", None, None),
        ]),
        dry_run: None,
        emergency: None,
    };
    let opts = options(&[
        "--cluster",
        "etl",
        "--role-arn",
        "web=arn:aws:iam::1:role/web",
        "--external-id",
        "configured-id",
    ]);
    let c = Config::resolve(&opts, &o).expect("valid");
    let ids: Vec<_> = c.clusters.iter().map(|t| shown(&t.external_id)).collect();
    assert_eq!(
        ids,
        [
            Some("own-id"),
            Some("configured-id"),
            Some("event-id"),
            None
        ]
    );
}

#[test]
fn an_event_external_id_without_a_role_is_an_error_naming_the_field() {
    let o = Overrides {
        clusters: Some(vec![ClusterOverride {
            name: "etl".to_owned(),
            region: None,
            role_arn: None,
            external_id: external_id("tenant-42"),
        }]),
        dry_run: None,
        emergency: None,
    };
    let e = Config::resolve(&options(&["--cluster", "etl"]), &o).expect_err("no role");
    assert_eq!(e.field(), "event.clusters[0].externalId");
    assert!(!e.to_string().contains("tenant-42"), "{e}");
}

#[test]
fn event_overrides_clusters_and_dry_run() {
    let o = Overrides {
        clusters: Some(vec![ClusterOverride {
            name: "web".to_owned(),
            region: Some("us-east-2".to_owned()),
            role_arn: Some("arn:aws:iam::1:role/r".to_owned()),
            external_id: None,
        }]),
        dry_run: Some(DryRun::Server),
        emergency: None,
    };
    let c = Config::resolve(&options(&["--cluster", "etl"]), &o).expect("valid");
    assert_eq!(c.clusters.len(), 1);
    assert_eq!(c.clusters[0].name, "web");
    assert_eq!(c.clusters[0].region.as_deref(), Some("us-east-2"));
    assert_eq!(c.dry_run, DryRun::Server);
}

#[test]
fn empty_event_cluster_list_is_an_error() {
    let o = Overrides {
        clusters: Some(vec![]),
        dry_run: None,
        emergency: None,
    };
    let e = Config::resolve(&options(&["--cluster", "etl"]), &o).expect_err("empty");
    assert_eq!(e.field(), "event.clusters");
}

#[test]
fn low_headroom_fraction_must_be_a_fraction() {
    assert!(resolve(&["--cluster", "etl", "--low-headroom-fraction", "1.5"]).is_err());
    assert!(resolve(&["--cluster", "etl", "--low-headroom-fraction", "x"]).is_err());
}

#[test]
fn forecast_window_must_be_positive() {
    let e = resolve(&["--cluster", "etl", "--forecast-window", "0s"]).expect_err("zero");
    assert!(e.to_string().contains("REAPER_FORECAST_WINDOW"), "{e}");
    assert!(e.to_string().contains("0s"), "{e}");
    let c = resolve(&["--cluster", "etl", "--forecast-window", "1s 500ms"]).expect("valid");
    assert_eq!(c.forecast_window, Duration::from_millis(1500));
}

#[test]
fn stuck_after_is_a_positive_duration_read_into_the_policy() {
    assert_eq!(
        resolve(&["--cluster", "etl"])
            .expect("valid")
            .policy
            .stuck_after,
        Duration::from_secs(10 * 60)
    );
    let e = resolve(&["--cluster", "etl", "--stuck-after", "0s"]).expect_err("zero");
    assert_eq!(e.field(), "REAPER_STUCK_AFTER (--stuck-after)");
    assert!(e.to_string().contains("0s"), "{e}");
    assert!(resolve(&["--cluster", "etl", "--stuck-after", "soon"]).is_err());
    let c = resolve(&["--cluster", "etl", "--stuck-after", "1s"]).expect("valid");
    assert_eq!(c.policy.stuck_after, Duration::from_secs(1));
}

#[test]
fn the_not_reported_window_is_the_schedule_interval_times_the_runs() {
    let window = |args: &[&str]| {
        let mut all = vec!["--cluster", "etl"];
        all.extend_from_slice(args);
        resolve(&all).map(|c| c.not_reported_after)
    };
    assert_eq!(window(&[]).expect("valid"), None, "no interval, no check");
    assert_eq!(
        window(&["--schedule-interval", "5m"]).expect("valid"),
        Some(Duration::from_secs(4 * 300))
    );
    assert_eq!(
        window(&["--schedule-interval", "300s", "--not-reported-runs", "2"]).expect("valid"),
        Some(Duration::from_secs(600))
    );
    let interval = "REAPER_SCHEDULE_INTERVAL (--schedule-interval)";
    let runs = "REAPER_NOT_REPORTED_RUNS (--not-reported-runs)";
    for (flag, value, field) in [
        ("--schedule-interval", "90s", interval),
        ("--schedule-interval", "0s", interval),
        ("--schedule-interval", "25h", interval),
        ("--not-reported-runs", "0", runs),
        ("--not-reported-runs", "101", runs),
    ] {
        let args = [flag, value];
        let e = window(&args).expect_err(value);
        assert_eq!(e.field(), field, "{args:?}");
        assert!(e.to_string().contains(value), "{e}");
    }
}

#[test]
fn token_max_age_must_stay_under_the_eks_limit() {
    assert!(resolve(&["--cluster", "etl", "--token-max-age", "15m"]).is_err());
    assert!(resolve(&["--cluster", "etl", "--token-max-age", "0s"]).is_err());
    let c = resolve(&["--cluster", "etl", "--token-max-age", "5s"]).expect("valid");
    assert_eq!(c.token_max_age, Duration::from_secs(5));
}

#[test]
fn unset_namespaces_means_all_namespaces() {
    let c = resolve(&["--cluster", "etl"]).expect("valid");
    assert!(c.policy.namespaces.is_empty());
    assert!(c.policy.namespace_in_scope("etl"));
}

#[test]
fn namespaces_list_is_trimmed_and_blank_entries_dropped() {
    let c = resolve(&["--cluster", "etl", "--namespaces", " etl, ,web,"]).expect("valid");
    assert_eq!(c.policy.namespaces, ["etl", "web"]);
}

#[test]
fn set_but_blank_namespaces_is_an_error_naming_setting_and_value() {
    for blank in ["", ",", " ", " , ,"] {
        let e = resolve(&["--cluster", "etl", "--namespaces", blank])
            .expect_err("blank include list must not mean all namespaces");
        assert_eq!(e.field(), "REAPER_NAMESPACES (--namespaces)", "{blank:?}");
        assert!(e.to_string().contains(&format!("{blank:?}")), "{e}");
    }
}

#[test]
fn protected_namespaces_are_out_of_scope_by_default() {
    let c = resolve(&["--cluster", "etl"]).expect("valid");
    assert!(c.policy.exclude_namespaces.is_empty());
    for ns in ["kube-system", "kube-public", "kube-node-lease"] {
        assert!(!c.policy.namespace_in_scope(ns), "{ns}");
    }
}

#[test]
fn an_empty_exclude_list_does_not_unprotect_kube_system() {
    for empty in ["", ",", " "] {
        let c = resolve(&["--cluster", "etl", "--exclude-namespaces", empty]).expect("valid");
        assert!(!c.policy.namespace_in_scope("kube-system"), "{empty:?}");
    }
}

#[test]
fn exclude_namespaces_add_to_the_protected_ones() {
    let c = resolve(&["--cluster", "etl", "--exclude-namespaces", "ops"]).expect("valid");
    assert!(!c.policy.namespace_in_scope("ops"));
    assert!(!c.policy.namespace_in_scope("kube-system"));
    assert!(c.policy.namespace_in_scope("etl"));
}

#[test]
fn a_protected_namespace_is_pruned_only_when_named() {
    let c = resolve(&["--cluster", "etl", "--namespaces", "kube-system,etl"]).expect("valid");
    assert!(c.policy.namespace_in_scope("kube-system"));
    assert!(!c.policy.namespace_in_scope("kube-public"));
}

#[test]
fn duplicate_namespaces_count_once() {
    let c = resolve(&[
        "--cluster",
        "etl",
        "--namespaces",
        "etl, etl,web,etl",
        "--exclude-namespaces",
        "ops,ops",
    ])
    .expect("valid");
    assert_eq!(c.policy.namespaces, ["etl", "web"]);
    assert_eq!(c.policy.exclude_namespaces, ["ops"]);
}

#[test]
fn prune_owners_are_parsed_deduplicated_and_validated() {
    let c = resolve(&[
        "--cluster",
        "etl",
        "--prune-owners",
        "argoproj.io/Workflow, argoproj.io/Workflow,core/ReplicationController",
    ])
    .expect("valid");
    let owners: Vec<String> = c
        .policy
        .prune_owners
        .iter()
        .map(|o| o.to_string())
        .collect();
    assert_eq!(
        owners,
        ["argoproj.io/Workflow", "core/ReplicationController"]
    );
    for bad in [
        "Workflow",
        "argoproj.io/workflow",
        "batch/Job",
        "batch/CronJob",
    ] {
        let e = resolve(&["--cluster", "etl", "--prune-owners", bad]).expect_err(bad);
        assert_eq!(e.field(), "REAPER_PRUNE_OWNERS (--prune-owners)", "{bad}");
        assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
    }
}

#[test]
fn boolean_settings_accept_the_documented_spellings_only() {
    for (v, want) in [
        ("YES", true),
        (" on ", true),
        ("1", true),
        ("Off", false),
        ("no", false),
    ] {
        let c = resolve(&["--cluster", "etl", "--skip-cronjob-jobs", v]).expect(v);
        assert_eq!(c.policy.skip_cronjob_jobs, want, "{v:?}");
    }
    assert!(resolve(&["--cluster", "etl", "--skip-cronjob-jobs", "maybe"]).is_err());
}

#[test]
fn unknown_metrics_sink_is_an_error() {
    let e = resolve(&["--cluster", "etl", "--metrics-sink", "statsd"]).expect_err("bad");
    assert!(e.to_string().contains("REAPER_METRICS_SINK"), "{e}");
}

#[test]
fn metrics_detail_is_read_and_a_bad_one_named_with_its_value() {
    let c = resolve(&["--cluster", "etl", "--metrics-detail", "full"]).expect("valid");
    assert_eq!(c.metrics.detail, MetricsDetail::Full);
    let e = resolve(&["--cluster", "etl", "--metrics-detail", "verbose"]).expect_err("bad");
    assert_eq!(e.field(), "REAPER_METRICS_DETAIL (--metrics-detail)");
    assert!(e.to_string().contains("\"verbose\""), "{e}");
    assert!(e.to_string().contains("essential or full"), "{e}");
}

#[test]
fn keep_last_counts_go_from_zero_to_a_hundred() {
    let c = resolve(&["--cluster", "etl"]).expect("defaults");
    assert_eq!(
        (c.policy.keep_last_failed, c.policy.keep_last_succeeded),
        (1, 0)
    );
    let c = resolve(&["--cluster", "etl", "--keep-last-failed", "0"]).expect("off");
    assert_eq!(c.policy.keep_last_failed, 0);
    for bad in ["-1", "101", "three"] {
        let flag = format!("--keep-last-succeeded={bad}");
        let e = resolve(&["--cluster", "etl", &flag]).expect_err(bad);
        assert_eq!(
            e.field(),
            "REAPER_KEEP_LAST_SUCCEEDED (--keep-last-succeeded)"
        );
        assert!(e.to_string().contains(bad), "{e}");
    }
}

#[test]
fn the_keep_last_label_is_a_label_key_or_nothing() {
    let c = resolve(&["--cluster", "etl"]).expect("defaults");
    assert_eq!(c.policy.keep_last_label, None);
    for good in ["workflow", "workflows.argoproj.io/workflow", "dag_id"] {
        let c = resolve(&["--cluster", "etl", "--keep-last-label", good]).expect(good);
        assert_eq!(c.policy.keep_last_label.as_deref(), Some(good));
    }
    for bad in ["/task", "a b", "Example.com/task", "task-"] {
        let e = resolve(&["--cluster", "etl", "--keep-last-label", bad]).expect_err(bad);
        assert_eq!(e.field(), "REAPER_KEEP_LAST_LABEL (--keep-last-label)");
    }
}

#[test]
fn namespace_annotations_can_be_turned_off_and_namespace_events_on() {
    let c = resolve(&[
        "--cluster",
        "etl",
        "--namespace-annotations",
        "false",
        "--namespace-events",
    ])
    .expect("valid");
    assert!(!c.namespace_annotations);
    assert!(c.namespace_events);
    let c = resolve(&["--cluster", "etl", "--namespace-events", "off"]).expect("valid");
    assert!(!c.namespace_events);
}

#[test]
fn a_bad_namespace_setting_is_named_with_its_value() {
    for (flag, name) in [
        (
            "--namespace-annotations",
            "REAPER_NAMESPACE_ANNOTATIONS (--namespace-annotations)",
        ),
        (
            "--namespace-events",
            "REAPER_NAMESPACE_EVENTS (--namespace-events)",
        ),
    ] {
        let e = resolve(&["--cluster", "etl", flag, "sometimes"]).expect_err(flag);
        assert_eq!(e.field(), name);
        assert!(e.to_string().contains("\"sometimes\""), "{e}");
    }
}

#[test]
fn dry_run_takes_every_yes_no_spelling_and_its_modes() {
    for (value, mode) in [
        ("on", DryRun::Client),
        ("yes", DryRun::Client),
        ("true", DryRun::Client),
        ("client", DryRun::Client),
        ("server", DryRun::Server),
        ("off", DryRun::Off),
        ("0", DryRun::Off),
    ] {
        let flag = format!("--dry-run={value}");
        let c = resolve(&["--cluster", "etl", &flag]).expect(value);
        assert_eq!(c.dry_run, mode, "{value}");
    }
    let e = resolve(&["--cluster", "etl", "--dry-run=maybe"]).expect_err("maybe");
    assert!(e.to_string().contains("\"maybe\""), "{e}");
}

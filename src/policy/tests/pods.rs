//! Pods: phases, Fargate and low headroom, bare and Evicted pods, owners, finish time.

use super::*;

// ---- Pods ------------------------------------------------------------------------------

#[test]
fn pending_running_and_unknown_pods_are_kept() {
    for phase in ["Pending", "Running", "Unknown"] {
        let p = pod().phase(phase).fargate();
        assert_eq!(
            keep(decide_pod(&p)),
            Keep::NotFinished {
                phase: phase.to_owned()
            }
        );
    }
}

#[test]
fn only_succeeded_and_failed_pods_count_as_finished() {
    // What the report's terminated-pod counts (PodGC's threshold) read.
    for (phase, finished) in [
        ("Succeeded", true),
        ("Failed", true),
        ("Pending", false),
        ("Running", false),
        ("Unknown", false),
    ] {
        assert_eq!(is_finished_pod(&pod().phase(phase)), finished, "{phase}");
    }
    let mut p = pod();
    p.status = None;
    assert!(!is_finished_pod(&p));
}

#[test]
fn pod_without_phase_is_kept() {
    let mut p = pod();
    p.status = None;
    assert_eq!(
        keep(decide_pod(&p)),
        Keep::NotFinished {
            phase: String::new()
        }
    );
}

#[test]
fn finished_pod_of_a_job_goes_with_its_job() {
    let p = pod().succeeded(ago("3d")).controlled_by("Job");
    assert_eq!(keep(decide_pod(&p)), Keep::OwnedByJob);
}

#[test]
fn finished_fargate_pod_past_its_ttl_is_deleted_even_while_its_failed_job_is_kept() {
    // GIVEN a failed Job 20 minutes old (kept 24 h) and its Fargate pod
    let j = job().failed(ago("20m"));
    let p = pod().failed(ago("20m")).controlled_by("Job").fargate();
    // THEN the Job stays for troubleshooting and the pod (with its IP) goes
    assert!(matches!(
        decide_job(&j),
        Decision::Keep(Keep::WithinRetention { .. })
    ));
    assert_eq!(
        delete(decide_pod(&p)),
        Delete::FargatePodPastTtl { age: dur("20m") }
    );
}

#[test]
fn finished_fargate_pod_inside_its_ttl_is_kept() {
    let p = pod().succeeded(ago("5m")).controlled_by("Job").fargate();
    assert_eq!(keep(decide_pod(&p)), within("10m"));
}

#[test]
fn pod_with_only_the_fargate_scheduler_is_recognised_as_fargate() {
    let p = pod()
        .succeeded(ago("16m"))
        .controlled_by("Job")
        .fargate_scheduler_only();
    assert_eq!(
        delete(decide_pod(&p)),
        Delete::FargatePodPastTtl { age: dur("16m") }
    );
}

#[test]
fn low_headroom_lowers_the_fargate_pod_retention() {
    let low = Mode::LowHeadroom;
    let p = pod().succeeded(ago("2m")).controlled_by("Job").fargate();
    assert_eq!(
        delete(plan_pod_in(&p, &settings(), low)),
        Delete::FargatePodPastTtl { age: dur("2m") }
    );
    assert_eq!(
        keep(plan_pod_in(&p, &settings(), Mode::Normal)),
        within("13m")
    );
    let p = pod().succeeded(ago("30s")).controlled_by("Job").fargate();
    assert_eq!(keep(plan_pod_in(&p, &settings(), low)), within("30s"));
}

#[test]
fn low_headroom_never_raises_a_shorter_fargate_retention() {
    let s = Settings {
        fargate_pod_ttl: dur("10s"),
        ..settings()
    };
    assert_eq!(s.effective_fargate_pod_ttl(Mode::LowHeadroom), dur("10s"));
}

#[test]
fn low_headroom_caps_an_annotated_fargate_pods_retention() {
    let low = Mode::LowHeadroom;
    let p = pod()
        .succeeded(ago("5m"))
        .fargate()
        .annotate(TTL_ANNOTATION, "2h");
    assert!(matches!(
        plan_pod_in(&p, &settings(), low),
        Decision::Delete(_)
    ));
    // but an explicit opt-out still wins
    let p = p.annotate(KEEP_ANNOTATION, "true");
    assert_eq!(keep(plan_pod_in(&p, &settings(), low)), Keep::OptedOut);
}

#[test]
fn low_headroom_does_not_touch_job_retention() {
    let j = job().failed(ago("20m"));
    assert_eq!(
        keep(plan(Object::Job(&j), now(), &settings())),
        within("23h 40m")
    );
}

#[test]
fn bare_finished_pod_past_an_hour_is_deleted() {
    assert_eq!(
        delete(decide_pod(&pod().succeeded(ago("61m")))),
        Delete::BarePodPastTtl { age: dur("61m") }
    );
}

#[test]
fn bare_finished_pod_inside_an_hour_is_kept() {
    assert_eq!(keep(decide_pod(&pod().failed(ago("59m")))), within("1m"));
}

#[test]
fn pod_with_a_non_controller_owner_counts_as_bare() {
    let p = pod().succeeded(ago("2h")).owned_not_controller("ConfigMap");
    assert!(matches!(
        decide_pod(&p),
        Decision::Delete(Delete::BarePodPastTtl { .. })
    ));
}

#[test]
fn evicted_pod_past_an_hour_is_deleted_whoever_owns_it() {
    let p = pod().evicted(ago("2h")).controlled_by("ReplicaSet");
    assert_eq!(
        delete(decide_pod(&p)),
        Delete::EvictedPastTtl { age: dur("2h") }
    );
}

#[test]
fn evicted_pod_inside_an_hour_is_kept() {
    let p = pod().evicted(ago("10m"));
    assert_eq!(keep(decide_pod(&p)), within("50m"));
}

#[test]
fn evicted_job_pod_is_pruned_as_evicted_not_kept_with_its_job() {
    let p = pod().evicted(ago("2h")).controlled_by("Job");
    assert!(matches!(
        decide_pod(&p),
        Decision::Delete(Delete::EvictedPastTtl { .. })
    ));
}

#[test]
fn finished_pod_of_another_controller_is_kept() {
    let p = pod().succeeded(ago("3d")).controlled_by("ReplicaSet");
    assert_eq!(keep(decide_pod(&p)), owned_by("apps", "ReplicaSet"));
}

#[test]
fn finished_fargate_pod_of_a_foreign_controller_is_kept() {
    let p = pod()
        .failed(ago("3d"))
        .fargate()
        .controlled_by_api("argoproj.io/v1alpha1", "Workflow");
    assert_eq!(keep(decide_pod(&p)), owned_by("argoproj.io", "Workflow"));
}

#[test]
fn pod_of_a_job_kind_from_another_group_is_not_a_job_pod() {
    let p = pod()
        .succeeded(ago("3d"))
        .fargate()
        .controlled_by_api("example.com/v1", "Job");
    assert_eq!(keep(decide_pod(&p)), owned_by("example.com", "Job"));
}

#[test]
fn pods_of_a_handed_over_controller_follow_the_pod_retentions() {
    let s = Settings {
        prune_owners: vec![OwnerKind::parse("argoproj.io/Workflow").expect("owner")],
        ..settings()
    };
    let argo = |p: Pod| p.controlled_by_api("argoproj.io/v1alpha1", "Workflow");
    assert_eq!(
        delete(plan_pod_with(&argo(pod().failed(ago("20m")).fargate()), &s)),
        Delete::FargatePodPastTtl { age: dur("20m") }
    );
    assert_eq!(
        delete(plan_pod_with(&argo(pod().failed(ago("2h"))), &s)),
        Delete::BarePodPastTtl { age: dur("2h") }
    );
}

#[test]
fn pods_of_a_job_kept_by_annotation_are_kept() {
    let mut index = JobIndex::default();
    index.record("uid-owner", true);
    for p in [
        pod().failed(ago("3d")).controlled_by("Job").fargate(),
        pod().evicted(ago("3d")).controlled_by("Job"),
        pod().succeeded(ago("3d")).controlled_by("Job"),
    ] {
        let d = plan(Object::Pod(&p, normal(&index)), now(), &settings());
        assert_eq!(keep(d), Keep::JobOptedOut);
    }
    let kept = job()
        .failed(ago("1h"))
        .annotate(KEEP_ANNOTATION, "not-a-flag");
    assert!(job_keeps_its_pods(&kept));
    assert!(!job_keeps_its_pods(
        &job().failed(ago("1h")).annotate(KEEP_ANNOTATION, "no")
    ));
}

#[test]
fn fargate_pod_of_a_job_this_run_did_not_list_is_kept() {
    let p = pod().failed(ago("3d")).controlled_by("Job").fargate();
    let d = plan(
        Object::Pod(&p, normal(&JobIndex::default())),
        now(),
        &settings(),
    );
    assert_eq!(keep(d), Keep::JobNotListed);
}

#[test]
fn pod_the_job_controller_has_not_counted_is_kept() {
    let mut p = pod().failed(ago("3d")).controlled_by("Job").fargate();
    p.metadata.finalizers = Some(vec![JOB_TRACKING_FINALIZER.to_owned()]);
    assert_eq!(keep(decide_pod(&p)), Keep::NotCounted);
}

#[test]
fn pod_finish_time_is_the_latest_termination_of_any_container() {
    // The init container ended 3 h ago; the pod failed a minute ago.
    let mut p = pod().phase("Failed");
    p.status().init_container_statuses = Some(vec![terminated("init", ago("3h"))]);
    p.status().container_statuses = Some(vec![terminated("main", ago("1m"))]);
    assert_eq!(keep(decide_pod(&p)), within("59m"));
    // A sidecar (restartable init container) stopped after the main container.
    let mut p = pod().phase("Succeeded").terminated_at(ago("3h"));
    p.status().init_container_statuses = Some(vec![terminated("sidecar", ago("10m"))]);
    assert_eq!(keep(decide_pod(&p)), within("50m"));
    // An ephemeral debug container ended last.
    let mut p = pod().phase("Succeeded").terminated_at(ago("3h"));
    p.status().ephemeral_container_statuses = Some(vec![terminated("debug", ago("20m"))]);
    assert_eq!(keep(decide_pod(&p)), within("40m"));
}

#[test]
fn pod_finish_time_includes_a_later_condition_transition() {
    let mut p = pod().phase("Failed").terminated_at(ago("3h"));
    p.status().conditions = Some(vec![PodCondition {
        type_: "Ready".to_owned(),
        status: "False".to_owned(),
        last_transition_time: Some(Time(ago("5m"))),
        ..PodCondition::default()
    }]);
    assert_eq!(keep(decide_pod(&p)), within("55m"));
}

#[test]
fn pod_finish_time_is_its_last_container_termination() {
    let p = pod()
        .phase("Succeeded")
        .terminated_at(ago("3h"))
        .terminated_at(ago("30m"));
    assert_eq!(keep(decide_pod(&p)), within("30m"));
}

#[test]
fn pod_being_deleted_is_kept() {
    let p = pod().succeeded(ago("3h")).fargate().deleting();
    assert_eq!(keep(decide_pod(&p)), Keep::BeingDeleted);
}

#[test]
fn pod_annotated_keep_true_is_kept() {
    let p = pod()
        .succeeded(ago("3h"))
        .fargate()
        .annotate(KEEP_ANNOTATION, "true");
    assert_eq!(keep(decide_pod(&p)), Keep::OptedOut);
}

#[test]
fn ttl_annotation_sets_a_fargate_pods_retention() {
    let p = pod()
        .succeeded(ago("20m"))
        .fargate()
        .annotate(TTL_ANNOTATION, "1h");
    assert_eq!(keep(decide_pod(&p)), within("40m"));
}

#[test]
fn invalid_ttl_annotation_keeps_the_pod() {
    let p = pod()
        .succeeded(ago("20m"))
        .fargate()
        .annotate(TTL_ANNOTATION, "-5m");
    assert_eq!(
        keep(decide_pod(&p)),
        Keep::InvalidTtlAnnotation {
            value: "-5m".to_owned()
        }
    );
}

#[test]
fn pod_in_excluded_namespace_is_kept() {
    let p = pod().succeeded(ago("3h")).in_namespace("kube-system");
    assert_eq!(keep(decide_pod(&p)), Keep::ExcludedNamespace);
}

#[test]
fn reasons_have_stable_labels() {
    assert_eq!(Keep::NativeTtl.label(), "nativeTtl");
    assert_eq!(
        Delete::FargatePodPastTtl { age: dur("1s") }.label(),
        "fargatePodPastTtl"
    );
    assert_eq!(
        Delete::SucceededPastTtl { age: dur("20m") }.to_string(),
        "succeededPastTtl (20m ago)"
    );
}

//! Workflow engines' pods: the engine grace, the done markers, and the engines that only
//! ever say "done" with a marker.

use super::*;

fn kpo() -> Pod {
    pod().label("kubernetes_pod_operator", "True")
}

fn argo() -> Pod {
    pod()
        .label("workflows.argoproj.io/workflow", "nightly")
        .label("workflows.argoproj.io/completed", "false")
        .controlled_by_api("argoproj.io/v1alpha1", "Workflow")
}

fn handing_over(owner: &str) -> Settings {
    Settings {
        prune_owners: vec![OwnerKind::parse(owner).expect("owner")],
        ..settings()
    }
}

fn grace(engine: Engine, remaining: &str) -> Keep {
    Keep::EngineGrace {
        engine,
        remaining: dur(remaining),
    }
}

#[test]
fn engine_pods_are_recognised_by_the_marks_their_engine_writes() {
    let cases: [(Pod, Option<(Engine, bool)>); 10] = [
        (kpo(), Some((Engine::AirflowPodOperator, false))),
        (
            kpo().label("already_checked", "True"),
            Some((Engine::AirflowPodOperator, true)),
        ),
        (
            pod()
                .label("kubernetes_executor", "True")
                .label("airflow-worker", "17")
                .label("airflow_executor_done", "True"),
            Some((Engine::AirflowExecutor, true)),
        ),
        (
            pod().named("digdag-pod-12-1-5d3c"),
            Some((Engine::Digdag, false)),
        ),
        (argo(), Some((Engine::Argo, false))),
        (
            argo().label("workflows.argoproj.io/completed", "true"),
            Some((Engine::Argo, true)),
        ),
        (
            pod().label("spark-role", "driver"),
            Some((Engine::Spark, false)),
        ),
        (
            pod()
                .label("spark-role", "driver")
                .label("sparkoperator.k8s.io/launched-by-spark-operator", "true"),
            Some((Engine::SparkOperator, false)),
        ),
        // Near misses: the marker alone, an executor label without its worker, an executor.
        (pod().label("already_checked", "True"), None),
        (pod().label("kubernetes_executor", "True"), None),
    ];
    for (p, expected) in cases {
        let found = engine_pod(&p.metadata).map(|e| (e.engine, e.done));
        assert_eq!(found, expected, "{:?}", p.metadata.labels);
    }
    assert_eq!(
        engine_pod(&pod().label("spark-role", "executor").metadata),
        None
    );
}

#[test]
fn an_unmarked_engine_fargate_pod_keeps_its_grace_in_low_headroom_mode() {
    let p = kpo().fargate().succeeded(ago("2m"));
    assert_eq!(
        keep(plan_pod_in(&p, &settings(), Mode::LowHeadroom)),
        grace(Engine::AirflowPodOperator, "3m")
    );
    let p = kpo().fargate().succeeded(ago("6m"));
    assert_eq!(
        delete(plan_pod_in(&p, &settings(), Mode::LowHeadroom)).label(),
        "fargatePodPastTtl"
    );
}

#[test]
fn a_pod_that_is_no_engine_s_goes_after_the_low_headroom_ceiling() {
    let p = pod().fargate().succeeded(ago("2m"));
    assert_eq!(
        delete(plan_pod_in(&p, &settings(), Mode::LowHeadroom)).label(),
        "fargatePodPastTtl"
    );
}

#[test]
fn a_marked_engine_fargate_pod_goes_at_once_in_low_headroom_mode_only() {
    let p = kpo()
        .label("already_checked", "True")
        .fargate()
        .failed(ago("10s"));
    assert_eq!(
        delete(plan_pod_in(&p, &settings(), Mode::LowHeadroom)),
        Delete::EngineDone { age: dur("10s") }
    );
    // Normal mode: the Fargate retention, as for any pod (the marker is also written on
    // pods kept for troubleshooting).
    assert_eq!(keep(decide_pod(&p)), within("14m 50s"));
}

#[test]
fn a_marked_engine_pod_off_fargate_keeps_the_bare_pod_retention() {
    let p = kpo().label("already_checked", "True").failed(ago("10s"));
    assert_eq!(
        keep(plan_pod_in(&p, &settings(), Mode::LowHeadroom)),
        within("59m 50s")
    );
}

#[test]
fn the_grace_outlasts_a_shorter_class_retention_and_annotation() {
    let s = Settings {
        bare_pod_ttl: dur("1m"),
        ..settings()
    };
    let p = pod().named("digdag-pod-12-1-5d3c").succeeded(ago("2m"));
    assert_eq!(keep(plan_pod_with(&p, &s)), grace(Engine::Digdag, "3m"));
    let annotated = p.annotate(TTL_ANNOTATION, "30s");
    assert_eq!(
        keep(plan_pod_with(&annotated, &s)),
        grace(Engine::Digdag, "3m")
    );
}

#[test]
fn inside_the_class_retention_the_reason_stays_within_retention() {
    let p = kpo().succeeded(ago("2m"));
    assert_eq!(keep(decide_pod(&p)), within("58m"));
}

#[test]
fn a_zero_grace_changes_nothing() {
    let s = Settings {
        engine_pod_grace: Duration::ZERO,
        ..settings()
    };
    let p = kpo().fargate().succeeded(ago("2m"));
    assert_eq!(
        delete(plan_pod_in(&p, &s, Mode::LowHeadroom)).label(),
        "fargatePodPastTtl"
    );
}

#[test]
fn argo_pods_stay_with_their_workflow_unless_it_is_handed_over() {
    let p = argo().succeeded(ago("3d"));
    assert_eq!(keep(decide_pod(&p)), owned_by("argoproj.io", "Workflow"));
}

#[test]
fn a_handed_over_argo_pod_waits_for_its_completed_label() {
    let s = handing_over("argoproj.io/Workflow");
    let p = argo().succeeded(ago("3d"));
    assert_eq!(
        keep(plan_pod_with(&p, &s)),
        Keep::EngineNotDone {
            engine: Engine::Argo
        }
    );
    let done = p.label("workflows.argoproj.io/completed", "true");
    assert_eq!(delete(plan_pod_with(&done, &s)).label(), "barePodPastTtl");
}

#[test]
fn an_evicted_argo_pod_waits_for_its_completed_label_too() {
    let p = argo().evicted(ago("3d"));
    assert_eq!(
        keep(decide_pod(&p)),
        Keep::EngineNotDone {
            engine: Engine::Argo
        }
    );
}

#[test]
fn a_spark_operator_driver_is_never_due_by_time() {
    let s = handing_over("sparkoperator.k8s.io/SparkApplication");
    let p = pod()
        .label("spark-role", "driver")
        .label("sparkoperator.k8s.io/launched-by-spark-operator", "true")
        .controlled_by_api("sparkoperator.k8s.io/v1beta2", "SparkApplication")
        .succeeded(ago("30d"));
    assert_eq!(
        keep(plan_pod_in(&p, &s, Mode::LowHeadroom)),
        Keep::EngineNotDone {
            engine: Engine::SparkOperator
        }
    );
}

#[test]
fn the_report_names_each_engine_by_its_stable_label() {
    for (engine, label) in [
        (Engine::AirflowPodOperator, "airflowPodOperator"),
        (Engine::AirflowExecutor, "airflowExecutor"),
        (Engine::Digdag, "digdag"),
        (Engine::Argo, "argo"),
        (Engine::Spark, "spark"),
        (Engine::SparkOperator, "sparkOperator"),
    ] {
        assert_eq!(
            Keep::EngineNotDone { engine }.to_string(),
            format!("engineNotDone ({label})")
        );
    }
    assert_eq!(
        grace(Engine::Digdag, "4m").to_string(),
        "engineGrace (digdag, 4m left)"
    );
}

//! The guards every object meets first: being deleted, the keep and TTL annotations,
//! the namespace scope.

use super::*;

// ---- Jobs: guards ------------------------------------------------------------------------

#[test]
fn job_being_deleted_is_kept() {
    assert_eq!(
        keep(decide_job(&job().complete(ago("2h")).deleting())),
        Keep::BeingDeleted
    );
}

// ---- both: being deleted, and stuck terminating --------------------------------------------

fn stuck(terminating_for: &str, finalizers: &[&str]) -> Keep {
    Keep::StuckTerminating {
        terminating_for: dur(terminating_for),
        finalizers: finalizers.iter().map(|f| (*f).to_owned()).collect(),
    }
}

#[test]
fn objects_being_deleted_are_stuck_only_past_stuck_after() {
    // (deletionTimestamp, finalizers) → the keep reason of a Job and of a finished pod,
    // with the default REAPER_STUCK_AFTER of 10 minutes.
    let hold = "example.com/hold";
    let table: [(Timestamp, &[&str], Keep); 7] = [
        (ago("1s"), &[hold], Keep::BeingDeleted),
        (ago("9m 59s"), &[hold], Keep::BeingDeleted),
        (ago("10m"), &[hold], Keep::BeingDeleted),
        (ago("10m 1s"), &[hold], stuck("10m 1s", &[hold])),
        (ago("3h"), &[hold, "orphan"], stuck("3h", &[hold, "orphan"])),
        // No finalizer: a pod whose kubelet never confirmed its end.
        (ago("2h"), &[], stuck("2h", &[])),
        // A pod's deletionTimestamp is the end of its grace period: nothing is late yet.
        (after("30s"), &[hold], Keep::BeingDeleted),
    ];
    for (at, finalizers, want) in table {
        let mut j = job().complete(ago("2d")).deleting_since(at);
        let mut p = pod().succeeded(ago("2d")).deleting_since(at);
        for f in finalizers {
            j = j.with_finalizer(f);
            p = p.with_finalizer(f);
        }
        assert_eq!(keep(decide_job(&j)), want, "job {at} {finalizers:?}");
        assert_eq!(keep(decide_pod(&p)), want, "pod {at} {finalizers:?}");
    }
}

#[test]
fn stuck_after_is_the_setting() {
    let s = Settings {
        stuck_after: dur("1s"),
        ..settings()
    };
    let j = job().deleting_since(ago("2s"));
    assert_eq!(
        keep(plan(Object::Job(&j), now(), &s)),
        stuck("2s", &[]),
        "an active Job too"
    );
    let p = pod()
        .fargate()
        .deleting_since(ago("5m"))
        .with_finalizer(JOB_TRACKING_FINALIZER);
    assert_eq!(
        keep(plan_pod_with(&p, &s)),
        stuck("5m", &[JOB_TRACKING_FINALIZER]),
        "a running Fargate pod the Job controller never counted"
    );
    assert_eq!(keep(decide_pod(&p)), Keep::BeingDeleted, "default 10m");
}

#[test]
fn a_stuck_object_is_never_deleted_whatever_else_applies() {
    // Past its retention, opted in by annotation, even in low-headroom mode: stuck objects
    // are a person's to resolve.
    let p = pod()
        .fargate()
        .failed(ago("2d"))
        .annotate(TTL_ANNOTATION, "1s")
        .deleting_since(ago("1h"))
        .with_finalizer("example.com/hold");
    assert_eq!(
        keep(plan_pod_in(&p, &settings(), Mode::LowHeadroom)),
        stuck("1h", &["example.com/hold"])
    );
    assert_eq!(keep(decide_pod(&p)).label(), "stuckTerminating");
}

#[test]
fn an_excluded_namespace_wins_over_stuck() {
    let j = job().in_namespace("kube-system").deleting_since(ago("1h"));
    assert_eq!(keep(decide_job(&j)), Keep::ExcludedNamespace);
}

#[test]
fn stuck_reasons_show_how_long_and_what_holds_them() {
    assert_eq!(
        stuck("3h 5s", &["a/b", "orphan"]).to_string(),
        "stuckTerminating (3h 5s terminating, finalizers: a/b, orphan)"
    );
    assert_eq!(
        stuck("11m", &[]).to_string(),
        "stuckTerminating (11m terminating, finalizers: none)"
    );
}

#[test]
fn job_annotated_keep_true_is_kept() {
    let j = job().complete(ago("2h")).annotate(KEEP_ANNOTATION, "true");
    assert_eq!(keep(decide_job(&j)), Keep::OptedOut);
}

#[test]
fn keep_annotation_true_spellings_opt_out() {
    for v in ["true", "TRUE", " yes ", "1", "on", "On"] {
        let j = job().complete(ago("2h")).annotate(KEEP_ANNOTATION, v);
        assert_eq!(keep(decide_job(&j)), Keep::OptedOut, "{v:?}");
    }
}

#[test]
fn keep_annotation_false_spellings_change_nothing() {
    for v in ["false", "FALSE", "no", "0", " off "] {
        let j = job().complete(ago("2h")).annotate(KEEP_ANNOTATION, v);
        assert!(matches!(decide_job(&j), Decision::Delete(_)), "{v:?}");
    }
}

#[test]
fn keep_annotation_the_policy_cannot_read_keeps_the_object() {
    for v in ["", " ", "maybe", "ture", "2", "keep", "true please"] {
        let want = Keep::InvalidKeepAnnotation {
            value: v.to_owned(),
        };
        let j = job().complete(ago("2h")).annotate(KEEP_ANNOTATION, v);
        assert_eq!(keep(decide_job(&j)), want, "{v:?}");
        let p = pod().succeeded(ago("2h")).annotate(KEEP_ANNOTATION, v);
        assert_eq!(keep(decide_pod(&p)), want, "{v:?}");
    }
}

#[test]
fn ttl_annotation_lengthens_a_jobs_retention() {
    let j = job().complete(ago("2h")).annotate(TTL_ANNOTATION, "3h");
    assert_eq!(keep(decide_job(&j)), within("1h"));
}

#[test]
fn ttl_annotation_shortens_a_failed_jobs_retention() {
    let j = job().failed(ago("2h")).annotate(TTL_ANNOTATION, "1h 30m");
    assert_eq!(
        delete(decide_job(&j)),
        Delete::FailedPastTtl { age: dur("2h") }
    );
}

#[test]
fn invalid_ttl_annotation_keeps_the_job() {
    let j = job().complete(ago("2h")).annotate(TTL_ANNOTATION, "soon");
    assert_eq!(
        keep(decide_job(&j)),
        Keep::InvalidTtlAnnotation {
            value: "soon".to_owned()
        }
    );
}

#[test]
fn protected_namespaces_are_kept_unless_named() {
    for ns in PROTECTED_NAMESPACES {
        let j = job().complete(ago("2h")).in_namespace(ns);
        assert_eq!(keep(decide_job(&j)), Keep::ExcludedNamespace, "{ns}");
        let p = pod().succeeded(ago("2h")).in_namespace(ns);
        assert_eq!(keep(decide_pod(&p)), Keep::ExcludedNamespace, "{ns}");
    }
    let s = Settings {
        namespaces: vec!["kube-system".to_owned()],
        ..settings()
    };
    let j = job().complete(ago("2h")).in_namespace("kube-system");
    assert!(matches!(
        plan(Object::Job(&j), now(), &s),
        Decision::Delete(_)
    ));
}

#[test]
fn exclude_list_adds_to_the_protected_namespaces() {
    let s = Settings {
        exclude_namespaces: vec!["ops".to_owned()],
        ..settings()
    };
    for ns in ["ops", "kube-system"] {
        let j = job().complete(ago("2h")).in_namespace(ns);
        assert_eq!(
            keep(plan(Object::Job(&j), now(), &s)),
            Keep::ExcludedNamespace,
            "{ns}"
        );
    }
}

#[test]
fn job_in_excluded_namespace_is_kept() {
    let j = job().complete(ago("2h")).in_namespace("kube-system");
    assert_eq!(keep(decide_job(&j)), Keep::ExcludedNamespace);
}

#[test]
fn job_outside_the_included_namespaces_is_kept() {
    let s = Settings {
        namespaces: vec!["etl".to_owned()],
        ..settings()
    };
    let j = job().complete(ago("2h")).in_namespace("web");
    assert_eq!(
        keep(plan(Object::Job(&j), now(), &s)),
        Keep::ExcludedNamespace
    );
    let j = job().complete(ago("2h"));
    assert!(matches!(
        plan(Object::Job(&j), now(), &s),
        Decision::Delete(_)
    ));
}

#[test]
fn exclusion_wins_over_inclusion() {
    let s = Settings {
        namespaces: vec!["etl".to_owned()],
        exclude_namespaces: vec!["etl".to_owned()],
        ..settings()
    };
    let j = job().complete(ago("2h"));
    assert_eq!(
        keep(plan(Object::Job(&j), now(), &s)),
        Keep::ExcludedNamespace
    );
}

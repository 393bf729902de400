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

//! Namespace annotations: reading them, and how they weigh against the object's own
//! annotations, the Job's `ttlSecondsAfterFinished`, the cluster settings and low-headroom
//! mode.

use std::collections::HashMap;

use super::*;

/// The fixtures' namespace (`etl`) listed with `annotations`, and `web` without any.
fn listed(annotations: &[(&str, &str)]) -> NamespaceIndex {
    NamespaceIndex::Listed(HashMap::from([
        ("etl".to_owned(), rule(annotations)),
        ("web".to_owned(), rule(&[])),
    ]))
}

fn rule(annotations: &[(&str, &str)]) -> NamespaceRule {
    let a: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    NamespaceRule::from_annotations(Some(&a))
}

fn job_in(j: &Job, namespaces: &NamespaceIndex) -> Decision {
    plan_job(j, now(), &settings(), JobContext { namespaces })
}

fn pod_in(p: &Pod, namespaces: &NamespaceIndex, mode: Mode) -> Decision {
    let jobs = listed_jobs();
    let context = PodContext {
        jobs: &jobs,
        mode,
        namespaces,
    };
    plan_pod(p, now(), &settings(), context)
}

fn invalid(annotation: &'static str, value: &str) -> Keep {
    Keep::InvalidNamespaceAnnotation {
        annotation,
        value: value.to_owned(),
    }
}

// ---- reading the annotations --------------------------------------------------------------

#[test]
fn every_namespace_annotation_is_read() {
    let r = rule(&[
        ("eks-reaper/keep", "false"),
        ("eks-reaper/ttl", "2h"),
        ("eks-reaper/succeeded-job-ttl", " 5m "),
        ("eks-reaper/failed-job-ttl", "7d"),
        ("eks-reaper/fargate-pod-ttl", "90s"),
        ("eks-reaper/bare-pod-ttl", "1h 30m"),
        ("eks-reaper/unrelated", "whatever"),
    ]);
    assert_eq!(
        r,
        NamespaceRule::Overrides(NamespaceOverrides {
            opted_out: false,
            ttl: Some(dur("2h")),
            succeeded_job_ttl: Some(dur("5m")),
            failed_job_ttl: Some(dur("7d")),
            fargate_pod_ttl: Some(dur("90s")),
            bare_pod_ttl: Some(dur("90m")),
        })
    );
    assert!(r.is_annotated());
    assert!(!rule(&[("team", "data"), ("eks-reaper/keep", "no")]).is_annotated());
    assert_eq!(NAMESPACE_ANNOTATIONS.len(), 6);
}

#[test]
fn a_true_keep_opts_the_namespace_out_whatever_else_it_says() {
    for value in ["true", " YES ", "1", "on"] {
        let r = rule(&[("eks-reaper/keep", value), ("eks-reaper/ttl", "soon")]);
        let NamespaceRule::Overrides(o) = r else {
            panic!("{value:?}: {r:?}");
        };
        assert!(o.opted_out, "{value:?}");
    }
}

#[test]
fn an_unreadable_value_names_the_first_annotation_that_cannot_be_read() {
    for (annotations, want) in [
        (
            vec![("eks-reaper/keep", "maybe")],
            invalid(KEEP_ANNOTATION, "maybe"),
        ),
        (
            vec![("eks-reaper/ttl", "soon")],
            invalid(TTL_ANNOTATION, "soon"),
        ),
        (vec![("eks-reaper/ttl", "")], invalid(TTL_ANNOTATION, "")),
        (
            vec![("eks-reaper/succeeded-job-ttl", "-5m")],
            invalid(SUCCEEDED_JOB_TTL_ANNOTATION, "-5m"),
        ),
        (
            vec![("eks-reaper/failed-job-ttl", "10")],
            invalid(FAILED_JOB_TTL_ANNOTATION, "10"),
        ),
        (
            vec![("eks-reaper/fargate-pod-ttl", "1 fortnight")],
            invalid(FARGATE_POD_TTL_ANNOTATION, "1 fortnight"),
        ),
        (
            vec![("eks-reaper/bare-pod-ttl", "5x"), ("eks-reaper/ttl", "2h")],
            invalid(BARE_POD_TTL_ANNOTATION, "5x"),
        ),
        (
            vec![("eks-reaper/keep", "nope"), ("eks-reaper/ttl", "soon")],
            invalid(KEEP_ANNOTATION, "nope"),
        ),
    ] {
        let index = listed(&annotations);
        assert_eq!(keep(job_in(&job().complete(ago("2d")), &index)), want);
        let p = pod().succeeded(ago("2d"));
        assert_eq!(keep(pod_in(&p, &index, Mode::Normal)), want);
    }
}

#[test]
fn an_unreadable_namespace_annotation_is_shown_with_its_name_and_value() {
    let k = invalid(FARGATE_POD_TTL_ANNOTATION, "soon");
    assert_eq!(k.label(), "invalidNamespaceAnnotation");
    assert_eq!(
        k.to_string(),
        "invalidNamespaceAnnotation (eks-reaper/fargate-pod-ttl=\"soon\")"
    );
}

// ---- opting out, unreadable and unknown --------------------------------------------------

#[test]
fn an_opted_out_namespace_keeps_everything_in_it() {
    let index = listed(&[("eks-reaper/keep", "true")]);
    assert_eq!(
        keep(job_in(&job().failed(ago("30d")), &index)),
        Keep::NamespaceOptedOut
    );
    assert_eq!(
        keep(job_in(&job().active(1), &index)),
        Keep::NamespaceOptedOut
    );
    for p in [
        pod().succeeded(ago("30d")),
        pod().failed(ago("30d")).fargate(),
        pod().evicted(ago("30d")),
    ] {
        assert_eq!(
            keep(pod_in(&p, &index, Mode::LowHeadroom)),
            Keep::NamespaceOptedOut
        );
    }
}

#[test]
fn an_objects_false_keep_does_not_undo_its_namespaces_opt_out() {
    let index = listed(&[("eks-reaper/keep", "true")]);
    let j = job()
        .complete(ago("30d"))
        .annotate(KEEP_ANNOTATION, "false")
        .annotate(TTL_ANNOTATION, "1m");
    assert_eq!(keep(job_in(&j, &index)), Keep::NamespaceOptedOut);
}

#[test]
fn the_objects_own_opt_out_and_the_cluster_scope_come_first() {
    let index = listed(&[("eks-reaper/ttl", "soon")]);
    let j = job().complete(ago("2d")).annotate(KEEP_ANNOTATION, "yes");
    assert_eq!(keep(job_in(&j, &index)), Keep::OptedOut);
    let s = Settings {
        exclude_namespaces: vec!["etl".to_owned()],
        ..settings()
    };
    let d = plan_job(
        &job().complete(ago("2d")),
        now(),
        &s,
        JobContext { namespaces: &index },
    );
    assert_eq!(keep(d), Keep::ExcludedNamespace);
}

#[test]
fn an_unreadable_namespace_annotation_keeps_even_objects_with_their_own_ttl() {
    let index = listed(&[("eks-reaper/failed-job-ttl", "a while")]);
    let j = job().complete(ago("2d")).annotate(TTL_ANNOTATION, "1m");
    assert_eq!(
        keep(job_in(&j, &index)),
        invalid(FAILED_JOB_TTL_ANNOTATION, "a while")
    );
}

#[test]
fn objects_are_kept_when_the_namespaces_could_not_be_listed() {
    let j = job().complete(ago("30d"));
    assert_eq!(
        keep(job_in(&j, &NamespaceIndex::Unknown)),
        Keep::NamespaceAnnotationsUnknown
    );
    let p = pod().failed(ago("30d")).fargate();
    assert_eq!(
        keep(pod_in(&p, &NamespaceIndex::Unknown, Mode::LowHeadroom)),
        Keep::NamespaceAnnotationsUnknown
    );
}

#[test]
fn an_object_in_a_namespace_the_list_did_not_have_is_kept() {
    let p = pod().succeeded(ago("30d")).in_namespace("created-since");
    assert_eq!(
        keep(pod_in(&p, &listed(&[]), Mode::Normal)),
        Keep::NamespaceAnnotationsUnknown
    );
}

#[test]
fn an_unannotated_listed_namespace_changes_nothing() {
    let index = listed(&[]);
    for j in [
        job().complete(ago("20m")),
        job().complete(ago("10m")),
        job().failed(ago("25h")),
    ] {
        assert_eq!(job_in(&j, &index), decide_job(&j));
        assert_eq!(job_in(&j, &NamespaceIndex::Ignored), decide_job(&j));
    }
    let p = pod().succeeded(ago("2h")).in_namespace("web");
    assert_eq!(pod_in(&p, &index, Mode::Normal), decide_pod(&p));
}

// ---- retentions ----------------------------------------------------------------------------

#[test]
fn a_namespace_ttl_sets_the_retention_of_every_class() {
    let index = listed(&[("eks-reaper/ttl", "5m")]);
    assert_eq!(
        delete(job_in(&job().complete(ago("10m")), &index)),
        Delete::SucceededPastTtl { age: dur("10m") }
    );
    assert_eq!(
        delete(job_in(&job().failed(ago("10m")), &index)),
        Delete::FailedPastTtl { age: dur("10m") }
    );
    assert_eq!(
        delete(pod_in(
            &pod().failed(ago("10m")).fargate(),
            &index,
            Mode::Normal
        )),
        Delete::FargatePodPastTtl { age: dur("10m") }
    );
    assert_eq!(
        delete(pod_in(&pod().succeeded(ago("10m")), &index, Mode::Normal)),
        Delete::BarePodPastTtl { age: dur("10m") }
    );
    assert_eq!(
        delete(pod_in(&pod().evicted(ago("10m")), &index, Mode::Normal)),
        Delete::EvictedPastTtl { age: dur("10m") }
    );
}

#[test]
fn a_longer_namespace_ttl_keeps_what_the_cluster_settings_would_delete() {
    let index = listed(&[("eks-reaper/ttl", "7d")]);
    assert_eq!(
        keep(job_in(&job().complete(ago("1d")), &index)),
        within("6d")
    );
    assert_eq!(
        keep(pod_in(
            &pod().failed(ago("1d")).fargate(),
            &index,
            Mode::Normal
        )),
        within("6d")
    );
}

#[test]
fn a_per_class_namespace_annotation_beats_the_namespace_ttl() {
    let index = listed(&[
        ("eks-reaper/ttl", "7d"),
        ("eks-reaper/succeeded-job-ttl", "1m"),
        ("eks-reaper/fargate-pod-ttl", "2m"),
        ("eks-reaper/bare-pod-ttl", "3h"),
    ]);
    assert_eq!(
        delete(job_in(&job().complete(ago("10m")), &index)),
        Delete::SucceededPastTtl { age: dur("10m") }
    );
    assert_eq!(keep(job_in(&job().failed(ago("1d")), &index)), within("6d"));
    assert_eq!(
        delete(pod_in(
            &pod().failed(ago("10m")).fargate(),
            &index,
            Mode::Normal
        )),
        Delete::FargatePodPastTtl { age: dur("10m") }
    );
    assert_eq!(
        keep(pod_in(&pod().evicted(ago("2h")), &index, Mode::Normal)),
        within("1h")
    );
}

#[test]
fn the_objects_own_ttl_beats_its_namespaces() {
    let index = listed(&[
        ("eks-reaper/ttl", "1m"),
        ("eks-reaper/succeeded-job-ttl", "1m"),
    ]);
    let j = job().complete(ago("10m")).annotate(TTL_ANNOTATION, "1h");
    assert_eq!(keep(job_in(&j, &index)), within("50m"));
    let p = pod().succeeded(ago("10m")).annotate(TTL_ANNOTATION, "1h");
    assert_eq!(keep(pod_in(&p, &index, Mode::Normal)), within("50m"));
}

#[test]
fn a_namespace_ttl_beats_the_jobs_ttl_seconds_after_finished_when_the_reaper_handles_it() {
    let index = listed(&[("eks-reaper/failed-job-ttl", "2h")]);
    let s = Settings {
        respect_native_ttl: false,
        ..settings()
    };
    let j = job().failed(ago("1h")).ttl_after_finished(60);
    assert_eq!(
        keep(plan_job(&j, now(), &s, JobContext { namespaces: &index })),
        within("1h")
    );
    // Without a namespace retention the Job's own applies, as before.
    let d = plan_job(
        &j,
        now(),
        &s,
        JobContext {
            namespaces: IGNORED,
        },
    );
    assert_eq!(delete(d), Delete::FailedPastTtl { age: dur("1h") });
}

#[test]
fn a_job_left_to_the_native_ttl_controller_stays_so_whatever_its_namespace_says() {
    let index = listed(&[("eks-reaper/ttl", "1m")]);
    let j = job().complete(ago("1d")).ttl_after_finished(86_400 * 7);
    assert_eq!(keep(job_in(&j, &index)), Keep::NativeTtl);
}

#[test]
fn low_headroom_caps_a_namespaces_fargate_retention() {
    for annotation in ["eks-reaper/ttl", "eks-reaper/fargate-pod-ttl"] {
        let index = listed(&[(annotation, "2h")]);
        let p = pod().failed(ago("5m")).fargate();
        assert_eq!(keep(pod_in(&p, &index, Mode::Normal)), within("1h 55m"));
        assert_eq!(
            delete(pod_in(&p, &index, Mode::LowHeadroom)),
            Delete::FargatePodPastTtl { age: dur("5m") },
            "{annotation}"
        );
    }
}

#[test]
fn low_headroom_leaves_a_namespaces_bare_pod_retention_alone() {
    let index = listed(&[("eks-reaper/bare-pod-ttl", "2h")]);
    let p = pod().succeeded(ago("5m"));
    assert_eq!(
        keep(pod_in(&p, &index, Mode::LowHeadroom)),
        within("1h 55m")
    );
}

#[test]
fn a_namespaces_fargate_retention_goes_for_fargate_pods_of_retained_jobs() {
    let index = listed(&[("eks-reaper/fargate-pod-ttl", "1m")]);
    let p = pod().failed(ago("5m")).fargate().controlled_by("Job");
    assert_eq!(
        delete(pod_in(&p, &index, Mode::Normal)),
        Delete::FargatePodPastTtl { age: dur("5m") }
    );
    // The same pod on EC2 still goes with its Job.
    let p = pod().failed(ago("5m")).controlled_by("Job");
    assert_eq!(keep(pod_in(&p, &index, Mode::Normal)), Keep::OwnedByJob);
}

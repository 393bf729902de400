//! Jobs by owner: CronJob-owned Jobs, Jobs of other controllers, owners handed over.

use super::*;

// ---- Jobs: CronJob ownership -------------------------------------------------------------

#[test]
fn cronjob_job_is_pruned_by_default() {
    let j = job().complete(ago("2h")).controlled_by("CronJob");
    assert!(matches!(decide_job(&j), Decision::Delete(_)));
}

#[test]
fn cronjob_job_is_left_to_history_limits_when_configured() {
    let s = Settings {
        skip_cronjob_jobs: true,
        ..settings()
    };
    let j = job().complete(ago("2h")).controlled_by("CronJob");
    assert_eq!(keep(plan(Object::Job(&j), now(), &s)), Keep::OwnedByCronJob);
}

#[test]
fn job_with_non_controller_cronjob_owner_is_not_treated_as_cronjob_owned() {
    let s = Settings {
        skip_cronjob_jobs: true,
        ..settings()
    };
    let j = job().complete(ago("2h")).owned_not_controller("CronJob");
    assert!(matches!(
        plan(Object::Job(&j), now(), &s),
        Decision::Delete(_)
    ));
}

// ---- Jobs: ownership ----------------------------------------------------------------------

#[test]
fn job_of_a_foreign_controller_is_kept_with_its_owner() {
    let j = job()
        .complete(ago("2h"))
        .controlled_by_api("jobset.x-k8s.io/v1alpha2", "JobSet");
    assert_eq!(keep(decide_job(&j)), owned_by("jobset.x-k8s.io", "JobSet"));
}

#[test]
fn cronjob_of_another_group_is_a_foreign_controller() {
    let j = job()
        .complete(ago("2h"))
        .controlled_by_api("example.com/v1", "CronJob");
    assert_eq!(keep(decide_job(&j)), owned_by("example.com", "CronJob"));
}

#[test]
fn job_of_a_handed_over_controller_is_pruned_by_its_retention() {
    let s = Settings {
        prune_owners: vec![OwnerKind::parse("jobset.x-k8s.io/JobSet").expect("owner")],
        ..settings()
    };
    let j = job()
        .complete(ago("2h"))
        .controlled_by_api("jobset.x-k8s.io/v1alpha2", "JobSet");
    assert_eq!(
        delete(plan(Object::Job(&j), now(), &s)),
        Delete::SucceededPastTtl { age: dur("2h") }
    );
    let other = job()
        .complete(ago("2h"))
        .controlled_by_api("kubeflow.org/v1", "PyTorchJob");
    assert_eq!(
        keep(plan(Object::Job(&other), now(), &s)),
        owned_by("kubeflow.org", "PyTorchJob")
    );
}

#[test]
fn running_job_of_a_foreign_controller_is_active() {
    let j = job()
        .active(1)
        .controlled_by_api("jobset.x-k8s.io/v1alpha2", "JobSet");
    assert_eq!(keep(decide_job(&j)), Keep::Active);
}

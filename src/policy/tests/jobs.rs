//! Jobs: the basic retentions, and Jobs that are not finished.

use super::*;

// ---- Jobs: the basic retentions ---------------------------------------------------------

#[test]
fn succeeded_job_past_ttl_is_deleted() {
    let d = delete(decide_job(&job().complete(ago("20m"))));
    assert_eq!(d, Delete::SucceededPastTtl { age: dur("20m") });
}

#[test]
fn succeeded_job_inside_ttl_is_kept_with_time_left() {
    assert_eq!(keep(decide_job(&job().complete(ago("10m")))), within("5m"));
}

#[test]
fn succeeded_job_exactly_at_ttl_is_deleted() {
    assert_eq!(
        delete(decide_job(&job().complete(ago("15m")))),
        Delete::SucceededPastTtl { age: dur("15m") }
    );
}

#[test]
fn succeeded_job_one_second_before_ttl_is_kept() {
    assert_eq!(
        keep(decide_job(&job().complete(ago("14m 59s")))),
        within("1s")
    );
}

#[test]
fn failed_job_inside_retention_is_kept() {
    assert_eq!(
        keep(decide_job(&job().failed(ago("20m")))),
        within("23h 40m")
    );
}

#[test]
fn failed_job_past_retention_is_deleted() {
    assert_eq!(
        delete(decide_job(&job().failed(ago("25h")))),
        Delete::FailedPastTtl { age: dur("25h") }
    );
}

#[test]
fn job_finished_in_the_future_is_kept_for_more_than_its_whole_retention() {
    assert_eq!(
        keep(decide_job(&job().complete(after("5m")))),
        within("20m")
    );
}

#[test]
fn finish_time_is_the_terminal_conditions_transition_not_completion_time() {
    let mut j = job().complete(ago("1h"));
    // completionTime can differ from the Complete condition; the native TTL controller uses
    // the condition.
    j.status().completion_time = Some(Time(ago("2h")));
    j.status().conditions.as_mut().expect("conditions")[1].last_transition_time =
        Some(Time(ago("10m")));
    assert_eq!(keep(decide_job(&j)), within("5m"));
}

#[test]
fn succeeded_job_without_transition_time_falls_back_to_completion_time() {
    let mut j = job().complete(ago("1h"));
    for c in j.status().conditions.as_mut().expect("conditions") {
        c.last_transition_time = None;
    }
    assert_eq!(
        delete(decide_job(&j)),
        Delete::SucceededPastTtl { age: dur("1h") }
    );
}

#[test]
fn failed_job_without_any_finish_time_is_kept() {
    let mut j = job().failed(ago("48h"));
    for c in j.status().conditions.as_mut().expect("conditions") {
        c.last_transition_time = None;
    }
    assert_eq!(keep(decide_job(&j)), Keep::UnknownFinishTime);
}

// ---- Jobs: not finished -----------------------------------------------------------------

#[test]
fn running_job_is_kept_as_active() {
    assert_eq!(keep(decide_job(&job().active(1))), Keep::Active);
}

#[test]
fn only_a_job_with_a_terminal_condition_counts_as_finished() {
    // What the report's and metrics' finished-Job counts read.
    assert!(is_finished_job(&job().complete(ago("1m"))));
    assert!(is_finished_job(&job().failed(ago("1m"))));
    assert!(!is_finished_job(&job().active(1)));
    let mut j = job();
    j.status = None;
    assert!(!is_finished_job(&j));
}

#[test]
fn job_without_status_is_kept_as_active() {
    let mut j = job();
    j.status = None;
    assert_eq!(keep(decide_job(&j)), Keep::Active);
}

#[test]
fn job_with_only_success_criteria_met_is_not_finished() {
    let j = job().with_condition(cond("SuccessCriteriaMet", ago("2h")));
    assert_eq!(keep(decide_job(&j)), Keep::Active);
}

#[test]
fn job_with_only_failure_target_is_not_finished() {
    let j = job().with_condition(cond("FailureTarget", ago("2d")));
    assert_eq!(keep(decide_job(&j)), Keep::Active);
}

#[test]
fn terminal_condition_with_status_false_is_not_finished() {
    let mut c = cond("Complete", ago("2h"));
    c.status = "False".to_owned();
    assert_eq!(keep(decide_job(&job().with_condition(c))), Keep::Active);
}

#[test]
fn job_with_active_pods_is_kept_even_with_a_terminal_condition() {
    assert_eq!(
        keep(decide_job(&job().complete(ago("2h")).active(1))),
        Keep::Active
    );
}

#[test]
fn suspended_job_is_kept() {
    let j = job()
        .suspended()
        .with_condition(cond("Suspended", ago("3d")));
    assert_eq!(keep(decide_job(&j)), Keep::Suspended);
}

#[test]
fn job_suspended_after_it_finished_is_finished_as_the_ttl_controller_decides() {
    assert_eq!(
        delete(decide_job(&job().failed(ago("3d")).suspended())),
        Delete::FailedPastTtl { age: dur("3d") }
    );
    assert_eq!(
        keep(decide_job(&job().complete(ago("5m")).suspended())),
        within("10m")
    );
}

#[test]
fn job_with_terminating_pods_is_kept_as_active() {
    let mut j = job().failed(ago("3d"));
    j.status().terminating = Some(1);
    assert_eq!(keep(decide_job(&j)), Keep::Active);
}

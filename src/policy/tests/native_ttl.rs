//! Jobs that set `ttlSecondsAfterFinished`: the native TTL controller's cases.

use super::*;

// ---- Jobs: the native TTL controller's cases ---------------------------------------------
// Same matrix as the TTL-after-finished controller's own tests: complete/failed × no TTL,
// 0s, 10s, and 10s ago with 15s.

#[test]
fn native_ttl_jobs_are_left_to_the_native_controller_by_default() {
    for secs in [0, 10, 15] {
        for finished in [job().complete(ago("10s")), job().failed(ago("10s"))] {
            let j = finished.ttl_after_finished(secs);
            assert_eq!(keep(decide_job(&j)), Keep::NativeTtl, "ttl {secs}s");
        }
    }
}

#[test]
fn native_ttl_matrix_when_we_act_in_place_of_the_native_controller() {
    let s = Settings {
        respect_native_ttl: false,
        ..settings()
    };
    let decide = |j: Job| plan(Object::Job(&j), now(), &s);
    // No TTL: our own retentions.
    assert_eq!(keep(decide(job().complete(ago("10s")))), within("14m 50s"));
    assert_eq!(
        keep(decide(job().failed(ago("10s")))),
        within("23h 59m 50s")
    );
    // TTL 0s: due the moment it finishes.
    assert_eq!(
        delete(decide(job().complete(ago("10s")).ttl_after_finished(0))),
        Delete::SucceededPastTtl { age: dur("10s") }
    );
    assert_eq!(
        delete(decide(job().failed(now()).ttl_after_finished(0))),
        Delete::FailedPastTtl { age: dur("0s") }
    );
    // TTL 10s, finished 10s ago: due (exactly at TTL).
    assert_eq!(
        delete(decide(job().complete(ago("10s")).ttl_after_finished(10))),
        Delete::SucceededPastTtl { age: dur("10s") }
    );
    assert_eq!(
        delete(decide(job().failed(ago("10s")).ttl_after_finished(10))),
        Delete::FailedPastTtl { age: dur("10s") }
    );
    // TTL 15s, finished 10s ago: 5s left.
    assert_eq!(
        keep(decide(job().complete(ago("10s")).ttl_after_finished(15))),
        within("5s")
    );
    assert_eq!(
        keep(decide(job().failed(ago("10s")).ttl_after_finished(15))),
        within("5s")
    );
}

#[test]
fn native_ttl_does_not_apply_to_unfinished_jobs() {
    let j = job().active(1).ttl_after_finished(0);
    assert_eq!(keep(decide_job(&j)), Keep::Active);
}

#[test]
fn ttl_annotation_wins_over_the_jobs_own_ttl_when_we_act_for_the_native_controller() {
    let s = Settings {
        respect_native_ttl: false,
        ..settings()
    };
    let j = job()
        .complete(ago("10s"))
        .ttl_after_finished(0)
        .annotate(TTL_ANNOTATION, "1m");
    assert_eq!(keep(plan(Object::Job(&j), now(), &s)), within("50s"));
}

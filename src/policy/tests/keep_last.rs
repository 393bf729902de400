//! Keeping each owner's last failed (and succeeded) Jobs: which ones, from any arrival
//! order, and that it only ever keeps.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::strategies::CASES;
use super::*;
use crate::policy::keep_last::{Finished, History, KeepLast, history_of};

fn cronjob_job(name: &str, cronjob_uid: &str) -> Job {
    let mut j = job().named(name).controlled_by("CronJob");
    if let Some(refs) = j.metadata.owner_references.as_mut() {
        refs[0].uid = cronjob_uid.to_owned();
    }
    j
}

fn counting(failed: usize, succeeded: usize) -> Settings {
    Settings {
        keep_last_failed: failed,
        keep_last_succeeded: succeeded,
        keep_last_label: Some("workflows.example.com/task".to_owned()),
        ..settings()
    }
}

/// Offers `jobs` (name, finished how long ago, due) of one history in the given order;
/// returns the names released (due after all) and the names kept.
fn run(
    s: &Settings,
    history: &History,
    jobs: &[(&str, &str, bool)],
) -> (Vec<String>, BTreeSet<String>) {
    let mut last = KeepLast::new(s);
    let mut released = Vec::new();
    for (name, finished, due) in jobs {
        let offered = Finished {
            history: history.clone(),
            at: ago(finished),
            uid: format!("uid-{name}"),
            due: due.then(|| (*name).to_owned()),
        };
        released.extend(last.offer(offered));
    }
    (released, last.kept().into_iter().collect())
}

fn failed_history(j: &Job, s: &Settings) -> History {
    history_of(j, false, s).expect("a history")
}

#[test]
fn the_newest_failed_run_of_a_cronjob_is_kept_past_its_retention() {
    let s = counting(1, 0);
    let h = failed_history(&cronjob_job("weekly", "uid-weekly"), &s);
    // GIVEN a weekly CronJob's failed runs, 3 and 2 weeks old and last week's, all due
    let (released, kept) = run(
        &s,
        &h,
        &[
            ("w1", "504h", true),
            ("w3", "168h", true),
            ("w2", "336h", true),
        ],
    );
    // THEN last week's stays, the older two go
    assert_eq!(released, ["w1", "w2"]);
    assert_eq!(kept, BTreeSet::from(["w3".to_owned()]));
}

#[test]
fn a_newer_job_inside_its_retention_takes_a_place_among_the_last() {
    let s = counting(1, 0);
    let h = failed_history(&cronjob_job("hourly", "uid-hourly"), &s);
    let (released, kept) = run(&s, &h, &[("old", "30h", true), ("new", "1h", false)]);
    assert_eq!(released, ["old"]);
    assert!(
        kept.is_empty(),
        "the newest is kept by its retention: {kept:?}"
    );
}

#[test]
fn histories_are_per_owner_per_outcome_and_per_namespace() {
    let s = counting(1, 1);
    let a = cronjob_job("a", "uid-a");
    let b = cronjob_job("b", "uid-b");
    assert_ne!(failed_history(&a, &s), failed_history(&b, &s));
    assert_ne!(
        history_of(&a, true, &s).expect("succeeded"),
        failed_history(&a, &s)
    );
    let labelled = |ns: &str| {
        job()
            .in_namespace(ns)
            .label("workflows.example.com/task", "load")
    };
    assert_eq!(
        failed_history(&labelled("etl"), &s),
        failed_history(&labelled("etl"), &s)
    );
    assert_ne!(
        failed_history(&labelled("etl"), &s),
        failed_history(&labelled("ml"), &s)
    );
}

#[test]
fn jobs_without_an_owner_or_with_the_count_off_have_no_history() {
    let s = counting(1, 0);
    assert_eq!(history_of(&job(), false, &s), None, "no CronJob, no label");
    let cj = cronjob_job("a", "uid-a");
    assert_eq!(history_of(&cj, true, &s), None, "succeeded count is 0");
    let other = job().controlled_by_api("example.com/v1", "CronJob");
    assert_eq!(history_of(&other, false, &s), None, "not a batch CronJob");
    let without_label = Settings {
        keep_last_label: None,
        ..s
    };
    let labelled = job().label("workflows.example.com/task", "load");
    assert_eq!(history_of(&labelled, false, &without_label), None);
}

#[test]
fn a_count_of_zero_releases_every_due_job_at_once() {
    let s = counting(1, 0);
    let h = history_of(&cronjob_job("a", "uid-a"), true, &counting(1, 1)).expect("history");
    let (released, kept) = run(&s, &h, &[("s1", "2h", true), ("s2", "1h", true)]);
    assert_eq!(released, ["s1", "s2"]);
    assert!(kept.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Whatever the order the Jobs arrive in, exactly the due ones outside their history's
    /// N newest are released; nothing that was not due ever is.
    #[test]
    fn exactly_the_due_jobs_outside_the_last_n_are_released_in_any_order(
        limit in 0usize..4,
        jobs in prop::collection::vec((0u8..3, 0i64..50, any::<bool>()), 0..40),
        order in any::<prop::sample::Index>(),
    ) {
        let s = counting(limit, 0);
        let histories: Vec<History> = (0..3)
            .map(|i| failed_history(&cronjob_job("j", &format!("uid-cron-{i}")), &counting(1, 0)))
            .collect();
        let named: Vec<(usize, String, u8, i64, bool)> = jobs
            .iter()
            .enumerate()
            .map(|(i, (h, hours, due))| (i, format!("job-{i:02}"), *h, *hours, *due))
            .collect();
        // The model: per history, newest first (ties: larger uid newer), the first `limit` kept.
        let mut expected = BTreeSet::new();
        for h in 0..3u8 {
            let mut mine: Vec<_> = named.iter().filter(|j| j.2 == h).collect();
            // hours ago ascending = newest first; equal ages: the larger uid is newer
            mine.sort_by(|a, b| a.3.cmp(&b.3).then(b.1.cmp(&a.1)));
            for j in mine.iter().skip(limit) {
                if j.4 {
                    expected.insert(j.1.clone());
                }
            }
        }
        let mut arrival = named.clone();
        let k = if arrival.is_empty() { 0 } else { order.index(arrival.len()) };
        arrival.rotate_left(k);
        arrival.reverse();
        let mut last = KeepLast::new(&s);
        let mut released = BTreeSet::new();
        for (_, name, h, hours, due) in &arrival {
            let offered = Finished {
                history: histories[usize::from(*h)].clone(),
                at: now() - SignedDuration::from_hours(*hours),
                uid: format!("uid-{name}"),
                due: due.then(|| name.clone()),
            };
            if let Some(r) = last.offer(offered) {
                prop_assert!(released.insert(r));
            }
        }
        prop_assert_eq!(&released, &expected);
        let kept: BTreeSet<String> = last.kept().into_iter().collect();
        let due: BTreeSet<String> = named.iter().filter(|j| j.4).map(|j| j.1.clone()).collect();
        prop_assert_eq!(kept.union(&released).cloned().collect::<BTreeSet<_>>(), due);
    }
}

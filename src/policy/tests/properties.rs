//! The safety properties: what must never be deleted, whatever the input.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::strategies::*;
use super::*;

pub(super) fn annotation_value<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Asserts `d` keeps the object when `must_keep` holds; `why` names the rule.
pub(super) fn never(d: &Decision, must_keep: bool, why: &str) -> Result<(), TestCaseError> {
    if must_keep {
        prop_assert!(
            matches!(d, Decision::Keep(_)),
            "deleted although {}: {:?}",
            why,
            d
        );
    }
    Ok(())
}

/// The invariants every object shares: namespace scope, deletion in progress, opt-out.
fn never_common(d: &Decision, meta: &ObjectMeta, s: &Settings) -> Result<(), TestCaseError> {
    let ns = meta.namespace.as_deref().unwrap_or("");
    let named = s.namespaces.iter().any(|n| n == ns);
    never(
        d,
        PROTECTED_NAMESPACES.contains(&ns) && !named,
        "in a protected namespace not named in the include list",
    )?;
    never(
        d,
        s.exclude_namespaces.iter().any(|n| n == ns),
        "in an excluded namespace",
    )?;
    never(
        d,
        !s.namespaces.is_empty() && !named,
        "outside the include list",
    )?;
    never(
        d,
        meta.deletion_timestamp.is_some(),
        "already being deleted",
    )?;
    let keep = annotation_value(meta, KEEP_ANNOTATION);
    never(
        d,
        keep.is_some_and(|v| !FALSE_SPELLINGS.contains(&v)),
        "its eks-reaper/keep is not a false spelling",
    )
}

/// The controller reference (`controller: true`), with its group.
fn controller(meta: &ObjectMeta) -> Option<(&str, &OwnerReference)> {
    let o = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    let group = o.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Some((group, o))
}

fn handed_over(s: &Settings, group: &str, kind: &str) -> bool {
    s.prune_owners
        .iter()
        .any(|o| o.group == group && o.kind == kind)
}

/// The retention an object's own `eks-reaper/ttl` sets, if it is a valid duration.
pub(super) fn annotated_ttl(meta: &ObjectMeta) -> Option<Duration> {
    annotation_value(meta, TTL_ANNOTATION).and_then(|v| humantime::parse_duration(v.trim()).ok())
}

/// A deletion must come `retention` or more after `finished`.
pub(super) fn never_early(
    d: &Decision,
    finished: Option<Timestamp>,
    retention: Duration,
    t: Timestamp,
) -> Result<(), TestCaseError> {
    let Decision::Delete(reason) = d else {
        return Ok(());
    };
    let Some(finished) = finished else {
        return Err(TestCaseError::fail(format!(
            "deleted without any recorded finish instant: {reason:?}"
        )));
    };
    let age = Duration::try_from(t.duration_since(finished)).ok();
    prop_assert!(
        age.is_some_and(|a| a >= retention),
        "deleted {:?} after finishing {} (clock {}), retention {:?}: {:?}",
        age,
        finished,
        t,
        retention,
        reason
    );
    Ok(())
}

fn job_invariants(j: &Job, t: Timestamp, s: &Settings) -> Result<(), TestCaseError> {
    let d = plan(Object::Job(j), t, s);
    prop_assert!(!d.label().is_empty());
    never_common(&d, &j.metadata, s)?;
    let status = j.status.as_ref();
    let terminal = status
        .and_then(|x| x.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| is_terminal(c)));
    never(&d, terminal.is_none(), "the Job has not finished")?;
    never(
        &d,
        status.is_some_and(|x| x.active.unwrap_or(0) > 0 || x.terminating.unwrap_or(0) > 0),
        "the Job still has pods active or terminating",
    )?;
    if let Some((group, o)) = controller(&j.metadata) {
        let cronjob = group == "batch" && o.kind == "CronJob";
        never(
            &d,
            !cronjob && !handed_over(s, group, &o.kind),
            "another controller manages the Job",
        )?;
        never(
            &d,
            cronjob && s.skip_cronjob_jobs,
            "CronJob Jobs are left to their CronJob",
        )?;
    }
    let native = j.spec.as_ref().and_then(|x| x.ttl_seconds_after_finished);
    never(
        &d,
        native.is_some() && s.respect_native_ttl,
        "the native TTL controller owns it",
    )?;
    let Some(terminal) = terminal else {
        return Ok(());
    };
    let succeeded = terminal.type_ == "Complete";
    let finished = terminal
        .last_transition_time
        .as_ref()
        .map(|x| x.0)
        .or_else(|| {
            succeeded
                .then(|| status.and_then(|x| x.completion_time.as_ref()).map(|x| x.0))
                .flatten()
        });
    let retention = annotated_ttl(&j.metadata)
        .or_else(|| native.map(|n| Duration::from_secs(u64::try_from(n).unwrap_or(0))))
        .unwrap_or(if succeeded {
            s.succeeded_job_ttl
        } else {
            s.failed_job_ttl
        });
    never_early(&d, finished, retention, t)
}

/// The latest instant a pod recorded finishing: any container's termination, any condition's
/// transition; its start time only when it recorded neither.
pub(super) fn latest_finish_evidence(p: &Pod) -> Option<Timestamp> {
    let s = p.status.as_ref()?;
    let ends = [
        &s.init_container_statuses,
        &s.container_statuses,
        &s.ephemeral_container_statuses,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref());
    let transitions = s
        .conditions
        .iter()
        .flatten()
        .filter_map(|c| c.last_transition_time.as_ref());
    ends.chain(transitions)
        .map(|x| x.0)
        .max()
        .or_else(|| s.start_time.as_ref().map(|x| x.0))
}

fn pod_invariants(
    p: &Pod,
    jobs: &JobIndex,
    t: Timestamp,
    s: &Settings,
    mode: Mode,
) -> Result<(), TestCaseError> {
    let d = plan(Object::Pod(p, in_mode(jobs, mode)), t, s);
    prop_assert!(!d.label().is_empty());
    never_common(&d, &p.metadata, s)?;
    let status = p.status.as_ref();
    let phase = status.and_then(|x| x.phase.as_deref());
    never(
        &d,
        !matches!(phase, Some("Succeeded" | "Failed")),
        "the pod has not finished",
    )?;
    never(
        &d,
        p.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == JOB_TRACKING_FINALIZER),
        "the Job controller has not counted the pod",
    )?;
    let evicted =
        phase == Some("Failed") && status.and_then(|x| x.reason.as_deref()) == Some("Evicted");
    let fargate = is_fargate_pod(p);
    if let Some((group, o)) = controller(&p.metadata) {
        if group == "batch" && o.kind == "Job" {
            never(
                &d,
                jobs.owner(&o.uid) == OwnerJob::KeepsItsPods,
                "its Job keeps its pods",
            )?;
            never(
                &d,
                jobs.owner(&o.uid) == OwnerJob::NotListed,
                "its Job was not listed",
            )?;
            never(
                &d,
                !fargate && !evicted,
                "a non-Fargate pod goes with its Job",
            )?;
        } else {
            never(
                &d,
                !evicted && !handed_over(s, group, &o.kind),
                "another controller manages the pod",
            )?;
        }
    }
    let ceiling = |ttl: Duration| {
        if fargate && mode == Mode::LowHeadroom {
            ttl.min(s.low_headroom_fargate_ttl)
        } else {
            ttl
        }
    };
    let default = if fargate {
        s.fargate_pod_ttl
    } else {
        s.bare_pod_ttl
    };
    let retention = ceiling(annotated_ttl(&p.metadata).unwrap_or(default));
    if let Some(EnginePod {
        engine,
        done: false,
    }) = engine_pod(&p.metadata)
    {
        never(
            &d,
            // Argo's and the Spark operator's pods say "done" only with a marker.
            matches!(engine, Engine::Argo | Engine::SparkOperator),
            "its engine has not marked it done",
        )?;
    }
    let retention = engine_retention(p, retention, mode, s);
    never_early(&d, latest_finish_evidence(p), retention, t)
}

/// The retention of a pod whose engine is known, from the retention of its class: a pod
/// its engine is done with goes at once on Fargate in low-headroom mode, and one its engine
/// has not marked waits for the engine grace as well.
pub(super) fn engine_retention(p: &Pod, retention: Duration, mode: Mode, s: &Settings) -> Duration {
    match engine_pod(&p.metadata) {
        None => retention,
        Some(EnginePod { done: true, .. }) if is_fargate_pod(p) && mode == Mode::LowHeadroom => {
            Duration::ZERO
        }
        Some(EnginePod { done: true, .. }) => retention,
        Some(EnginePod { done: false, .. }) => retention.max(s.engine_pod_grace),
    }
}

/// Every retention one hour longer and doubled.
fn longer(s: &Settings) -> Settings {
    let l = |d: Duration| d * 2 + Duration::from_secs(3600);
    Settings {
        succeeded_job_ttl: l(s.succeeded_job_ttl),
        failed_job_ttl: l(s.failed_job_ttl),
        fargate_pod_ttl: l(s.fargate_pod_ttl),
        bare_pod_ttl: l(s.bare_pod_ttl),
        low_headroom_fargate_ttl: l(s.low_headroom_fargate_ttl),
        ..s.clone()
    }
}

/// A deletion stays one (same reason) later on, and longer retentions never delete more.
fn relations(
    decide: impl Fn(Timestamp, &Settings) -> Decision,
    t: Timestamp,
    later: Duration,
    s: &Settings,
) -> Result<(), TestCaseError> {
    let now = decide(t, s);
    if let Decision::Delete(r) = &now {
        let then = decide(t + SignedDuration::try_from(later).expect("small"), s);
        prop_assert_eq!(
            then.label(),
            r.label(),
            "deleted at {} but not {:?} later",
            t,
            later
        );
    }
    if matches!(decide(t, &longer(s)), Decision::Delete(_)) {
        prop_assert!(
            matches!(now, Decision::Delete(_)),
            "longer retentions deleted what the shorter kept: {:?}",
            now
        );
    }
    Ok(())
}

/// A keep annotation with a false spelling must change nothing.
fn check_false_keep_is_inert<T: Metadata<Ty = ObjectMeta> + Clone>(
    object: &T,
    decide: impl Fn(&T) -> Decision,
) -> Result<(), TestCaseError> {
    if let Some(v) =
        annotation_value(object.metadata(), KEEP_ANNOTATION).filter(|v| FALSE_SPELLINGS.contains(v))
    {
        let mut without = object.clone();
        if let Some(a) = without.metadata_mut().annotations.as_mut() {
            a.remove(KEEP_ANNOTATION);
        }
        prop_assert_eq!(
            decide(object),
            decide(&without),
            "keep annotation {:?} changed the decision",
            v
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn no_job_is_deleted_that_the_safety_rules_protect(
        j in arb_job(), t in arb_instant(), s in arb_settings(), later in arb_later(),
    ) {
        job_invariants(&j, t, &s)?;
        relations(|t, s| plan(Object::Job(&j), t, s), t, later, &s)?;
        check_false_keep_is_inert(&j, |j| plan(Object::Job(j), t, &s))?;
    }

    #[test]
    fn no_pod_is_deleted_that_the_safety_rules_protect(
        p in arb_pod(), jobs in arb_job_index(), t in arb_instant(), s in arb_settings(),
        mode in arb_mode(), later in arb_later(),
    ) {
        let context = in_mode(&jobs, mode);
        pod_invariants(&p, &jobs, t, &s, mode)?;
        relations(|t, s| plan(Object::Pod(&p, context), t, s), t, later, &s)?;
        check_false_keep_is_inert(&p, |p| plan(Object::Pod(p, context), t, &s))?;
    }

    #[test]
    fn no_job_of_a_controller_the_policy_does_not_understand_is_deleted(
        j in arb_owned_job(), s in arb_owner_settings(),
    ) {
        job_invariants(&j, now(), &s)?;
    }

    #[test]
    fn no_pod_of_a_controller_or_job_that_keeps_it_is_deleted(
        p in arb_owned_pod(), jobs in arb_job_index(), s in arb_owner_settings(),
        mode in arb_mode(),
    ) {
        pod_invariants(&p, &jobs, now(), &s, mode)?;
    }
}

/// Without this the properties could pass vacuously: the generators must reach every reason
/// (every delete and every keep), as many cases as a property runs.
#[test]
fn property_strategies_reach_every_reason() {
    let mut runner = TestRunner::deterministic();
    let cases = (
        arb_job(),
        arb_pod(),
        arb_job_index(),
        arb_instant(),
        arb_settings(),
        arb_mode(),
    );
    let mut seen = BTreeMap::<&str, u32>::new();
    for _ in 0..CASES {
        let (j, p, jobs, t, s, mode) = cases.new_tree(&mut runner).expect("case").current();
        *seen
            .entry(plan(Object::Job(&j), t, &s).label())
            .or_default() += 1;
        *seen
            .entry(plan(Object::Pod(&p, in_mode(&jobs, mode)), t, &s).label())
            .or_default() += 1;
    }
    let every = [
        "succeededPastTtl",
        "failedPastTtl",
        "fargatePodPastTtl",
        "evictedPastTtl",
        "barePodPastTtl",
        "excludedNamespace",
        "beingDeleted",
        "optedOut",
        "invalidKeepAnnotation",
        "suspended",
        "active",
        "nativeTtl",
        "ownedByCronJob",
        "notFinished",
        "notCounted",
        "ownedByJob",
        "jobOptedOut",
        "jobNotListed",
        "ownedByController",
        "withinRetention",
        "unknownFinishTime",
        "invalidTtlAnnotation",
        "stuckTerminating",
    ];
    let missing: Vec<_> = every.iter().filter(|l| !seen.contains_key(*l)).collect();
    assert!(
        missing.is_empty(),
        "never reached: {missing:?} (seen {seen:?})"
    );
}

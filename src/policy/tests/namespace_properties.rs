//! Properties of namespace annotations over random Jobs, Pods, settings, clocks and
//! namespaces, stated from the raw annotation text, not from the policy's reading of it:
//! - never anything whose namespace's annotations are unknown (the list failed, or the
//!   namespace was not in it), whose namespace's `eks-reaper/keep` is not a false spelling,
//!   or whose namespace carries a retention that is not a duration;
//! - never before the retention the precedence gives (the object's `eks-reaper/ttl`, its
//!   namespace's per-class annotation, its namespace's `eks-reaper/ttl`, the Job's own
//!   `ttlSecondsAfterFinished`, the cluster setting; Fargate capped in low-headroom mode,
//!   where a Fargate pod its workflow engine is done with goes at once);
//! - and, for finished objects no other rule keeps, deleted exactly once that retention has
//!   passed.
//!
//! And two relations: a listed namespace without annotations changes nothing, and longer
//! namespace retentions never delete more.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::properties::{
    annotated_ttl, engine_retention, latest_finish_evidence, never, never_early,
};
use super::strategies::*;
use super::*;

/// The per-class retention annotations of a namespace.
const CLASS_TTLS: [&str; 4] = [
    SUCCEEDED_JOB_TTL_ANNOTATION,
    FAILED_JOB_TTL_ANNOTATION,
    FARGATE_POD_TTL_ANNOTATION,
    BARE_POD_TTL_ANNOTATION,
];

/// The namespaces as the run could know them, with their annotations as written.
#[derive(Debug, Clone)]
enum RawNamespaces {
    Ignored,
    Unknown,
    Listed(BTreeMap<String, BTreeMap<String, String>>),
}

impl RawNamespaces {
    fn index(&self) -> NamespaceIndex {
        match self {
            RawNamespaces::Ignored => NamespaceIndex::Ignored,
            RawNamespaces::Unknown => NamespaceIndex::Unknown,
            RawNamespaces::Listed(raw) => NamespaceIndex::Listed(
                raw.iter()
                    .map(|(ns, a)| (ns.clone(), NamespaceRule::from_annotations(Some(a))))
                    .collect(),
            ),
        }
    }

    /// Every valid retention doubled plus an hour; the rest as it was.
    fn longer(&self) -> RawNamespaces {
        let RawNamespaces::Listed(raw) = self else {
            return self.clone();
        };
        let mut raw = raw.clone();
        for a in raw.values_mut() {
            for (key, value) in a.iter_mut() {
                if key == KEEP_ANNOTATION {
                    continue;
                }
                if let Ok(d) = humantime::parse_duration(value.trim()) {
                    *value = format!("{}s", (d * 2 + Duration::from_secs(3600)).as_secs());
                }
            }
        }
        RawNamespaces::Listed(raw)
    }
}

/// A namespace's annotations: each retention valid, unreadable or absent, a keep of any
/// spelling, sometimes a key the policy does not read.
fn arb_namespace_annotations() -> impl Strategy<Value = BTreeMap<String, String>> {
    let ttl = || {
        prop::option::weighted(
            0.35,
            prop_oneof![
                6 => arb_retention().prop_map(|d| format!("{}s", d.as_secs())),
                1 => prop::sample::select(vec!["soon", "-5m", "", "10", "5x"]).prop_map(str::to_owned),
            ],
        )
    };
    let ttls = (ttl(), ttl(), ttl(), ttl(), ttl());
    (arb_keep_annotation(), ttls, prop::bool::weighted(0.1)).prop_map(
        |(keep, (all, succeeded, failed, fargate, bare), other)| {
            let mut a = BTreeMap::new();
            if let Some(v) = keep {
                a.insert(KEEP_ANNOTATION.to_owned(), v.to_owned());
            }
            let values = [
                (TTL_ANNOTATION, all),
                (SUCCEEDED_JOB_TTL_ANNOTATION, succeeded),
                (FAILED_JOB_TTL_ANNOTATION, failed),
                (FARGATE_POD_TTL_ANNOTATION, fargate),
                (BARE_POD_TTL_ANNOTATION, bare),
            ];
            for (key, value) in values {
                if let Some(v) = value {
                    a.insert(key.to_owned(), v);
                }
            }
            if other {
                a.insert("eks-reaper/owner".to_owned(), "data".to_owned());
            }
            a
        },
    )
}

/// Not read, not listed, or listed (most namespaces present, each with its annotations).
fn arb_raw_namespaces() -> impl Strategy<Value = RawNamespaces> {
    let listed = prop::collection::vec(
        (prop::bool::weighted(0.9), arb_namespace_annotations()),
        NAMESPACES.len(),
    )
    .prop_map(|entries| {
        RawNamespaces::Listed(
            NAMESPACES
                .iter()
                .zip(entries)
                .filter(|(_, (present, _))| *present)
                .map(|(ns, (_, a))| ((*ns).to_owned(), a))
                .collect(),
        )
    });
    prop_oneof![1 => Just(RawNamespaces::Ignored), 1 => Just(RawNamespaces::Unknown), 8 => listed]
}

/// A namespace's own retention for a class (its per-class annotation, else its
/// `eks-reaper/ttl`), when readable.
fn namespace_retention(annotations: &BTreeMap<String, String>, class: &str) -> Option<Duration> {
    let read = |key: &str| {
        annotations
            .get(key)
            .and_then(|v| humantime::parse_duration(v.trim()).ok())
    };
    read(class).or_else(|| read(TTL_ANNOTATION))
}

/// The namespace's annotations for an object: `Err(())` when they are unknown.
fn annotations_of<'r>(
    raw: &'r RawNamespaces,
    meta: &ObjectMeta,
) -> Result<Option<&'r BTreeMap<String, String>>, ()> {
    let ns = meta.namespace.as_deref().unwrap_or("");
    match raw {
        RawNamespaces::Ignored => Ok(None),
        RawNamespaces::Unknown => Err(()),
        RawNamespaces::Listed(listed) => listed.get(ns).map(Some).ok_or(()),
    }
}

/// What a namespace protects: its annotations unknown, an opt-out (or a keep that is not a
/// false spelling), an unreadable retention.
fn never_in_namespace(
    d: &Decision,
    raw: &RawNamespaces,
    meta: &ObjectMeta,
) -> Result<Option<BTreeMap<String, String>>, TestCaseError> {
    let Ok(annotations) = annotations_of(raw, meta) else {
        never(d, true, "its namespace's annotations are unknown")?;
        return Ok(None);
    };
    let Some(a) = annotations else {
        return Ok(None);
    };
    never(
        d,
        a.get(KEEP_ANNOTATION)
            .is_some_and(|v| !FALSE_SPELLINGS.contains(&v.as_str())),
        "its namespace's eks-reaper/keep is not a false spelling",
    )?;
    let unreadable = std::iter::once(TTL_ANNOTATION)
        .chain(CLASS_TTLS)
        .filter_map(|k| a.get(k))
        .any(|v| humantime::parse_duration(v.trim()).is_err());
    never(d, unreadable, "a retention of its namespace cannot be read")?;
    Ok(Some(a.clone()))
}

/// `(succeeded, finish instant)` of a Job with a terminal condition.
fn job_finish(j: &Job) -> Option<(bool, Option<Timestamp>)> {
    let status = j.status.as_ref()?;
    let terminal = status
        .conditions
        .iter()
        .flatten()
        .find(|c| is_terminal(c))?;
    let succeeded = terminal.type_ == "Complete";
    let at = terminal
        .last_transition_time
        .as_ref()
        .map(|x| x.0)
        .or_else(|| {
            succeeded
                .then(|| status.completion_time.as_ref().map(|x| x.0))
                .flatten()
        });
    Some((succeeded, at))
}

fn job_in(j: &Job, t: Timestamp, s: &Settings, raw: &RawNamespaces) -> Decision {
    plan_job(
        j,
        t,
        s,
        JobContext {
            namespaces: &raw.index(),
        },
    )
}

fn pod_in(p: &Pod, t: Timestamp, s: &Settings, raw: &RawNamespaces, mode: Mode) -> Decision {
    let jobs = listed_jobs();
    let context = PodContext {
        jobs: &jobs,
        mode,
        namespaces: &raw.index(),
    };
    plan_pod(p, t, s, context)
}

fn job_namespace_invariants(
    j: &Job,
    t: Timestamp,
    s: &Settings,
    raw: &RawNamespaces,
) -> Result<(), TestCaseError> {
    let d = job_in(j, t, s, raw);
    let namespace = never_in_namespace(&d, raw, &j.metadata)?;
    let Some((succeeded, finished)) = job_finish(j) else {
        return Ok(());
    };
    let class = if succeeded {
        SUCCEEDED_JOB_TTL_ANNOTATION
    } else {
        FAILED_JOB_TTL_ANNOTATION
    };
    let native = j.spec.as_ref().and_then(|x| x.ttl_seconds_after_finished);
    let retention = annotated_ttl(&j.metadata)
        .or_else(|| {
            namespace
                .as_ref()
                .and_then(|a| namespace_retention(a, class))
        })
        .or_else(|| native.map(|n| Duration::from_secs(u64::try_from(n).unwrap_or(0))))
        .unwrap_or(if succeeded {
            s.succeeded_job_ttl
        } else {
            s.failed_job_ttl
        });
    never_early(&d, finished, retention, t)
}

fn pod_namespace_invariants(
    p: &Pod,
    t: Timestamp,
    s: &Settings,
    raw: &RawNamespaces,
    mode: Mode,
) -> Result<(), TestCaseError> {
    let d = pod_in(p, t, s, raw, mode);
    let namespace = never_in_namespace(&d, raw, &p.metadata)?;
    let fargate = is_fargate_pod(p);
    let (class, setting) = if fargate {
        (FARGATE_POD_TTL_ANNOTATION, s.fargate_pod_ttl)
    } else {
        (BARE_POD_TTL_ANNOTATION, s.bare_pod_ttl)
    };
    let retention = annotated_ttl(&p.metadata)
        .or_else(|| {
            namespace
                .as_ref()
                .and_then(|a| namespace_retention(a, class))
        })
        .unwrap_or(setting);
    let retention = if fargate && mode == Mode::LowHeadroom {
        retention.min(s.low_headroom_fargate_ttl)
    } else {
        retention
    };
    let retention = engine_retention(p, retention, mode, s);
    never_early(&d, latest_finish_evidence(p), retention, t)
}

/// Every namespace the generators use (and objects without one) listed, none annotated.
fn unannotated() -> RawNamespaces {
    RawNamespaces::Listed(
        NAMESPACES
            .iter()
            .chain(std::iter::once(&""))
            .map(|ns| ((*ns).to_owned(), BTreeMap::new()))
            .collect(),
    )
}

/// Longer namespace retentions never delete what the shorter keep.
fn longer_never_deletes_more(
    decide: impl Fn(&RawNamespaces) -> Decision,
    raw: &RawNamespaces,
) -> Result<(), TestCaseError> {
    if matches!(decide(&raw.longer()), Decision::Delete(_)) {
        let now = decide(raw);
        prop_assert!(
            matches!(now, Decision::Delete(_)),
            "longer namespace retentions deleted what the shorter kept: {:?}",
            now
        );
    }
    Ok(())
}

/// Namespaces finished objects are drawn from (in scope whatever the settings say, once
/// [`in_scope`] cleared their lists).
const TENANTS: [&str; 3] = ["etl", "web", "ml"];

prop_compose! {
    /// A finished Job no rule but its retention decides on: no owner, no keep, in scope; its
    /// own `eks-reaper/ttl` and `ttlSecondsAfterFinished` maybe (the settings do not leave it
    /// to the native controller).
    fn arb_plain_job()(
        ns in prop::sample::select(TENANTS.to_vec()),
        succeeded in any::<bool>(),
        finished in arb_instant(),
        own in prop::option::weighted(0.2, arb_retention()),
        native in prop::option::weighted(0.3, 0i32..200_000),
    ) -> Job {
        let j = if succeeded { job().complete(finished) } else { job().failed(finished) };
        let mut j = j.in_namespace(ns);
        if let Some(d) = own {
            j = j.annotate(TTL_ANNOTATION, &format!("{}s", d.as_secs()));
        }
        if let Some(n) = native {
            j = j.ttl_after_finished(n);
        }
        j
    }
}

prop_compose! {
    /// A finished bare, Evicted or Fargate pod no rule but its retention decides on.
    fn arb_plain_pod()(
        ns in prop::sample::select(TENANTS.to_vec()),
        class in 0u8..3,
        finished in arb_instant(),
        own in prop::option::weighted(0.2, arb_retention()),
    ) -> Pod {
        let p = match class {
            0 => pod().succeeded(finished),
            1 => pod().evicted(finished),
            _ => pod().failed(finished).fargate(),
        };
        let mut p = p.in_namespace(ns);
        if let Some(d) = own {
            p = p.annotate(TTL_ANNOTATION, &format!("{}s", d.as_secs()));
        }
        p
    }
}

/// The settings with every namespace in scope and the native TTL controller not respected.
fn in_scope(s: &Settings) -> Settings {
    Settings {
        namespaces: Vec::new(),
        exclude_namespaces: Vec::new(),
        respect_native_ttl: false,
        ..s.clone()
    }
}

/// The retention in force for a plain object of `meta`'s namespace (`None`: kept by its
/// namespace), the precedence applied to the raw annotations.
fn plain_retention(
    raw: &RawNamespaces,
    meta: &ObjectMeta,
    class: &str,
    fallback: Duration,
) -> Option<Duration> {
    let annotations = annotations_of(raw, meta).ok()?;
    let namespace = match annotations {
        None => None,
        Some(a) => {
            let protects = a
                .get(KEEP_ANNOTATION)
                .is_some_and(|v| !FALSE_SPELLINGS.contains(&v.as_str()))
                || std::iter::once(TTL_ANNOTATION)
                    .chain(CLASS_TTLS)
                    .filter_map(|k| a.get(k))
                    .any(|v| humantime::parse_duration(v.trim()).is_err());
            if protects {
                return None;
            }
            namespace_retention(a, class)
        }
    };
    Some(annotated_ttl(meta).or(namespace).unwrap_or(fallback))
}

/// Deleted exactly when `retention` has passed since `finished`; kept when it is `None`.
fn exactly_at(
    d: &Decision,
    finished: Timestamp,
    retention: Option<Duration>,
    t: Timestamp,
) -> Result<(), TestCaseError> {
    let deleted = matches!(d, Decision::Delete(_));
    let Some(retention) = retention else {
        prop_assert!(!deleted, "deleted although its namespace keeps it: {:?}", d);
        return Ok(());
    };
    let due = Duration::try_from(t.duration_since(finished)).is_ok_and(|age| age >= retention);
    prop_assert_eq!(
        deleted,
        due,
        "retention {:?}, finished {}, now {}: {:?}",
        retention,
        finished,
        t,
        d
    );
    Ok(())
}

fn plain_job_retention(j: &Job, s: &Settings, raw: &RawNamespaces) -> Option<Duration> {
    let succeeded = job_finish(j).is_some_and(|(succeeded, _)| succeeded);
    let (class, setting) = if succeeded {
        (SUCCEEDED_JOB_TTL_ANNOTATION, s.succeeded_job_ttl)
    } else {
        (FAILED_JOB_TTL_ANNOTATION, s.failed_job_ttl)
    };
    let native = j.spec.as_ref().and_then(|x| x.ttl_seconds_after_finished);
    let fallback = native.map_or(setting, |n| {
        Duration::from_secs(u64::try_from(n).unwrap_or(0))
    });
    plain_retention(raw, &j.metadata, class, fallback)
}

fn plain_pod_retention(p: &Pod, s: &Settings, raw: &RawNamespaces, mode: Mode) -> Option<Duration> {
    let fargate = is_fargate_pod(p);
    let retention = if fargate {
        plain_retention(
            raw,
            &p.metadata,
            FARGATE_POD_TTL_ANNOTATION,
            s.fargate_pod_ttl,
        )
    } else {
        plain_retention(raw, &p.metadata, BARE_POD_TTL_ANNOTATION, s.bare_pod_ttl)
    };
    retention.map(|r| {
        if fargate && mode == Mode::LowHeadroom {
            r.min(s.low_headroom_fargate_ttl)
        } else {
            r
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn a_finished_job_goes_exactly_when_the_retention_its_namespace_gives_has_passed(
        j in arb_plain_job(), t in arb_instant(), s in arb_settings(), raw in arb_raw_namespaces(),
    ) {
        let s = in_scope(&s);
        let finished = job_finish(&j).and_then(|(_, at)| at).expect("finished");
        exactly_at(&job_in(&j, t, &s, &raw), finished, plain_job_retention(&j, &s, &raw), t)?;
    }

    #[test]
    fn a_finished_pod_goes_exactly_when_the_retention_its_namespace_gives_has_passed(
        p in arb_plain_pod(), t in arb_instant(), s in arb_settings(), mode in arb_mode(),
        raw in arb_raw_namespaces(),
    ) {
        let s = in_scope(&s);
        let finished = latest_finish_evidence(&p).expect("finished");
        let retention = plain_pod_retention(&p, &s, &raw, mode);
        exactly_at(&pod_in(&p, t, &s, &raw, mode), finished, retention, t)?;
    }

    #[test]
    fn no_job_is_deleted_that_its_namespace_protects_or_before_its_retention(
        j in arb_job(), t in arb_instant(), s in arb_settings(), raw in arb_raw_namespaces(),
    ) {
        job_namespace_invariants(&j, t, &s, &raw)?;
        prop_assert_eq!(job_in(&j, t, &s, &unannotated()), plan(Object::Job(&j), t, &s));
        longer_never_deletes_more(|raw| job_in(&j, t, &s, raw), &raw)?;
    }

    #[test]
    fn no_pod_is_deleted_that_its_namespace_protects_or_before_its_retention(
        p in arb_pod(), t in arb_instant(), s in arb_settings(), mode in arb_mode(),
        raw in arb_raw_namespaces(),
    ) {
        pod_namespace_invariants(&p, t, &s, &raw, mode)?;
        let jobs = listed_jobs();
        prop_assert_eq!(
            pod_in(&p, t, &s, &unannotated(), mode),
            plan(Object::Pod(&p, in_mode(&jobs, mode)), t, &s)
        );
        longer_never_deletes_more(|raw| pod_in(&p, t, &s, raw, mode), &raw)?;
    }
}

/// The generators reach every namespace reason, and deletions decided by a namespace's own
/// retention, so the properties above do not hold vacuously.
#[test]
fn namespace_strategies_reach_every_namespace_reason() {
    let mut runner = TestRunner::deterministic();
    let cases = (
        (arb_job(), arb_plain_job()),
        (arb_pod(), arb_plain_pod()),
        arb_instant(),
        arb_settings(),
        arb_mode(),
        arb_raw_namespaces(),
    );
    let mut seen = BTreeMap::<&str, u32>::new();
    let mut by_namespace_retention = HashMap::<&str, u32>::new();
    for _ in 0..CASES {
        let ((j, plain_j), (p, plain_p), t, s, mode, raw) =
            cases.new_tree(&mut runner).expect("case").current();
        for d in [job_in(&j, t, &s, &raw), pod_in(&p, t, &s, &raw, mode)] {
            *seen.entry(d.label()).or_default() += 1;
        }
        let s = in_scope(&s);
        for (kind, meta, d) in [
            ("job", &plain_j.metadata, job_in(&plain_j, t, &s, &raw)),
            (
                "pod",
                &plain_p.metadata,
                pod_in(&plain_p, t, &s, &raw, mode),
            ),
        ] {
            *seen.entry(d.label()).or_default() += 1;
            let namespace_set = matches!(annotations_of(&raw, meta), Ok(Some(a)) if
                std::iter::once(TTL_ANNOTATION).chain(CLASS_TTLS).any(|k| a.contains_key(k)));
            if matches!(d, Decision::Delete(_)) && namespace_set && annotated_ttl(meta).is_none() {
                *by_namespace_retention.entry(kind).or_default() += 1;
            }
        }
    }
    let every = [
        "namespaceOptedOut",
        "invalidNamespaceAnnotation",
        "namespaceAnnotationsUnknown",
        "succeededPastTtl",
        "failedPastTtl",
        "fargatePodPastTtl",
        "evictedPastTtl",
        "barePodPastTtl",
        "withinRetention",
    ];
    let missing: Vec<_> = every.iter().filter(|l| !seen.contains_key(*l)).collect();
    assert!(
        missing.is_empty(),
        "never reached: {missing:?} (seen {seen:?})"
    );
    for kind in ["job", "pod"] {
        assert!(
            by_namespace_retention.get(kind).copied().unwrap_or(0) >= 100,
            "too few {kind} deletions under a namespace's retention: {by_namespace_retention:?}"
        );
    }
}

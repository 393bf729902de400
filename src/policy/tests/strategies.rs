//! Generators for the properties: random Jobs, Pods, settings, clocks and Job indexes.

use proptest::prelude::*;

use super::*;

// ---- properties -------------------------------------------------------------------------
//
// Invariants over random Jobs, Pods, settings, clocks and Job indexes, each stated as what
// must never be deleted (docs/concepts.md, "What eks-reaper never deletes"), not as a second copy of the policy:
// - never outside the namespace scope (excluded, not included, protected and not named);
// - never anything being deleted, or whose `eks-reaper/keep` is not a false spelling;
// - never an unfinished Job (no `Complete=True`/`Failed=True`, pods active or terminating),
//   nor a pod that is not `Succeeded`/`Failed` or that the Job controller has not counted;
// - never what a controller the policy does not understand manages (group *and* kind);
// - never a pod whose Job keeps its pods or was not listed, nor a non-Fargate pod of a Job;
// - never before its retention has passed since the latest instant it recorded finishing;
// and three relations: a deletion stays a deletion as time passes; longer retentions never
// delete more; a false `eks-reaper/keep` changes nothing.
// `property_strategies_reach_every_reason` checks the generators reach every reason, so no
// invariant holds vacuously.

/// Cases per property (proptest's default is 256): the properties and the reach check stay
/// within a few seconds in a debug build on a loaded machine.
pub(super) const CASES: u32 = 2048;

pub(super) const DAY_MS: i64 = 86_400_000;

/// Namespaces objects and the include/exclude lists draw from: few, so they often meet.
pub(super) const NAMESPACES: [&str; 6] = [
    "etl",
    "web",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "ml",
];

/// `eks-reaper/keep` values that opt out.
pub(super) const TRUE_SPELLINGS: [&str; 9] = [
    "true", "TRUE", "True", " true ", "\ttrue\n", "yes", "YES", "1", "on",
];
/// `eks-reaper/keep` values that do not.
pub(super) const FALSE_SPELLINGS: [&str; 6] = ["false", "FALSE", "no", "0", "off", " Off "];
/// `eks-reaper/keep` values that are neither.
pub(super) const UNREADABLE_SPELLINGS: [&str; 7] =
    ["", " ", "truee", "t rue", "maybe", "2", "keep"];

/// Controllers: `apiVersion` and kind, the Job controller's own among look-alikes of other
/// groups.
pub(super) const CONTROLLERS: [(&str, &str); 8] = [
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("example.com/v1", "Job"),
    ("example.com/v1", "CronJob"),
    ("jobset.x-k8s.io/v1alpha2", "JobSet"),
    ("apps/v1", "ReplicaSet"),
    ("argoproj.io/v1alpha1", "Workflow"),
    ("v1", "ReplicationController"),
];

/// Owners a user may hand over with `prune_owners`.
pub(super) const HANDABLE: [&str; 4] = [
    "jobset.x-k8s.io/JobSet",
    "argoproj.io/Workflow",
    "apps/ReplicaSet",
    "example.com/Job",
];

/// Pods as each workflow engine marks them (a `name` entry sets the pod's name), done or
/// not, and near misses that mark no engine.
pub(super) const ENGINE_MARKS: [&[(&str, &str)]; 12] = [
    &[("kubernetes_pod_operator", "True")],
    &[
        ("kubernetes_pod_operator", "True"),
        ("already_checked", "True"),
    ],
    &[
        ("kubernetes_pod_operator", "True"),
        ("already_checked", "False"),
    ],
    &[("kubernetes_executor", "True"), ("airflow-worker", "42")],
    &[
        ("kubernetes_executor", "True"),
        ("airflow-worker", "42"),
        ("airflow_executor_done", "True"),
    ],
    &[
        ("workflows.argoproj.io/workflow", "wf"),
        ("workflows.argoproj.io/completed", "false"),
    ],
    &[
        ("workflows.argoproj.io/workflow", "wf"),
        ("workflows.argoproj.io/completed", "true"),
    ],
    &[
        ("sparkoperator.k8s.io/launched-by-spark-operator", "true"),
        ("spark-role", "driver"),
    ],
    &[("spark-role", "driver")],
    &[("spark-role", "executor")],
    &[("name", "digdag-pod-7-1-0f8e")],
    &[("already_checked", "True")],
];

pub(super) const FINALIZERS: [&str; 2] = [JOB_TRACKING_FINALIZER, "example.com/protect"];

/// An instant within ±5 days of `now()`: anywhere at millisecond resolution, or on the minute
/// grid within ±2 days so that ages often equal a retention exactly.
pub(super) fn arb_instant() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        (-5 * DAY_MS..=5 * DAY_MS).prop_map(|ms| now() + SignedDuration::from_millis(ms)),
        (-48 * 60i64..=48 * 60).prop_map(|m| now() + SignedDuration::from_mins(m)),
    ]
}

pub(super) fn arb_retention() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..=200_000).prop_map(Duration::from_secs),
        prop::sample::select(vec![0u64, 60, 900, 3600, 86_400]).prop_map(Duration::from_secs),
    ]
}

/// A namespace list: empty, or one to three of [`NAMESPACES`], maybe with a duplicate.
pub(super) fn arb_namespace_list() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        Just(Vec::new()),
        prop::sample::subsequence(NAMESPACES.to_vec(), 1..=3).prop_map(|v| {
            let mut v: Vec<String> = v.into_iter().map(str::to_owned).collect();
            v.push(v[0].clone());
            v
        }),
    ]
}

prop_compose! {
    pub(super) fn arb_settings()(
        (succeeded_job_ttl, failed_job_ttl, fargate_pod_ttl, bare_pod_ttl, low_headroom_fargate_ttl)
            in (arb_retention(), arb_retention(), arb_retention(), arb_retention(), arb_retention()),
        namespaces in prop_oneof![2 => Just(Vec::new()), 1 => arb_namespace_list()],
        exclude_namespaces in arb_namespace_list(),
        prune_owners in prop::sample::subsequence(HANDABLE.to_vec(), 0..=2),
        (respect_native_ttl, skip_cronjob_jobs) in any::<(bool, bool)>(),
        engine_pod_grace in arb_retention(),
        stuck_after in arb_retention(),
    ) -> Settings {
        Settings {
            succeeded_job_ttl,
            failed_job_ttl,
            fargate_pod_ttl,
            bare_pod_ttl,
            namespaces,
            exclude_namespaces,
            prune_owners: prune_owners
                .into_iter()
                .map(|o| OwnerKind::parse(o).expect("valid owner"))
                .collect(),
            respect_native_ttl,
            skip_cronjob_jobs,
            low_headroom_fargate_ttl,
            engine_pod_grace,
            // Applied by the scanner over a whole list, not by plan_job: keep_last.rs.
            keep_last_failed: 0,
            keep_last_succeeded: 0,
            keep_last_label: None,
            stuck_after,
        }
    }
}

pub(super) fn arb_mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Normal), Just(Mode::LowHeadroom)]
}

/// `eks-reaper/ttl` values: valid (as written by people, padding included) or not durations.
pub(super) fn arb_ttl_annotation() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.4,
        prop_oneof![
            3 => arb_retention().prop_map(|d| format!("{}s", d.as_secs())),
            1 => arb_retention().prop_map(|d| format!(" {}m {}s ", d.as_secs() / 60, d.as_secs() % 60)),
            1 => prop::sample::select(vec!["soon", "-5m", "", " ", "10", "1 fortnight", "5x"])
                .prop_map(str::to_owned),
        ],
    )
}

pub(super) fn arb_keep_annotation() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::weighted(
        0.3,
        prop_oneof![
            prop::sample::select(TRUE_SPELLINGS.to_vec()),
            prop::sample::select(FALSE_SPELLINGS.to_vec()),
            prop::sample::select(UNREADABLE_SPELLINGS.to_vec()),
        ],
    )
}

/// Owner references with `controller: true`, `false` or missing; owner `i` has UID
/// `uid-owner-{i}`.
pub(super) fn arb_owners() -> impl Strategy<Value = Vec<OwnerReference>> {
    let owner = (
        prop::sample::select(CONTROLLERS.to_vec()),
        prop_oneof![3 => Just(Some(true)), 1 => Just(Some(false)), 1 => Just(None)],
    );
    prop::collection::vec(owner, 0..3).prop_map(|refs| {
        refs.into_iter()
            .enumerate()
            .map(|(i, ((api_version, kind), controller))| OwnerReference {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
                name: format!("owner-{i}"),
                uid: format!("uid-owner-{i}"),
                controller,
                block_owner_deletion: None,
            })
            .collect()
    })
}

prop_compose! {
    pub(super) fn arb_meta()(
        namespace in prop::option::weighted(0.95, prop::sample::select(NAMESPACES.to_vec())),
        deleting in prop::option::weighted(0.1, arb_instant()),
        keep in arb_keep_annotation(),
        ttl in arb_ttl_annotation(),
        owners in arb_owners(),
        finalizers in prop::sample::subsequence(FINALIZERS.to_vec(), 0..=2),
    ) -> ObjectMeta {
        let mut m = meta("etl-run");
        m.namespace = namespace.map(str::to_owned);
        m.deletion_timestamp = deleting.map(Time);
        let mut annotations = BTreeMap::new();
        if let Some(v) = keep {
            annotations.insert(KEEP_ANNOTATION.to_owned(), v.to_owned());
        }
        if let Some(v) = ttl {
            annotations.insert(TTL_ANNOTATION.to_owned(), v);
        }
        m.annotations = (!annotations.is_empty()).then_some(annotations);
        m.owner_references = (!owners.is_empty()).then_some(owners);
        m.finalizers = (!finalizers.is_empty())
            .then(|| finalizers.into_iter().map(str::to_owned).collect());
        m
    }
}

/// What the Jobs pass learned about the three generated owner UIDs.
pub(super) fn arb_job_index() -> impl Strategy<Value = JobIndex> {
    prop::collection::vec(0u8..3, 3).prop_map(|states| {
        let mut index = JobIndex::default();
        for (i, state) in states.into_iter().enumerate() {
            match state {
                0 => {}
                1 => index.record(&format!("uid-owner-{i}"), false),
                _ => index.record(&format!("uid-owner-{i}"), true),
            }
        }
        index
    })
}

/// A condition of any type, status `True`, `False` or `Unknown`, `lastTransitionTime` or none.
pub(super) fn arb_job_condition() -> impl Strategy<Value = JobCondition> {
    let type_ = prop_oneof![
        3 => Just("Complete"),
        3 => Just("Failed"),
        1 => Just("SuccessCriteriaMet"),
        1 => Just("FailureTarget"),
        1 => Just("Suspended"),
    ];
    let status = prop_oneof![4 => Just("True"), 1 => Just("False"), 1 => Just("Unknown")];
    (type_, status, prop::option::weighted(0.85, arb_instant())).prop_map(|(t, s, at)| {
        JobCondition {
            type_: t.to_owned(),
            status: s.to_owned(),
            last_transition_time: at.map(Time),
            ..JobCondition::default()
        }
    })
}

pub(super) fn is_terminal(c: &JobCondition) -> bool {
    matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True"
}

prop_compose! {
    /// Up to three conditions, at most one of them terminal (the apiserver's Job status
    /// validation refuses `Complete=True` with `Failed=True`).
    pub(super) fn arb_job_status()(
        conditions in prop::collection::vec(arb_job_condition(), 0..4),
        completion in prop::option::of(arb_instant()),
        active in prop::option::of(prop_oneof![3 => Just(0), 1 => 1i32..3]),
        terminating in prop::option::of(prop_oneof![3 => Just(0), 1 => 1i32..3]),
    ) -> JobStatus {
        let mut terminal_seen = false;
        let conditions: Vec<JobCondition> = conditions
            .into_iter()
            .filter(|c| !(is_terminal(c) && std::mem::replace(&mut terminal_seen, true)))
            .collect();
        JobStatus {
            conditions: (!conditions.is_empty()).then_some(conditions),
            completion_time: completion.map(Time),
            active,
            terminating,
            ..JobStatus::default()
        }
    }
}

prop_compose! {
    pub(super) fn arb_job()(
        metadata in arb_meta(),
        suspend in prop::option::of(prop::bool::weighted(0.2)),
        native in prop::option::weighted(0.3, prop_oneof![0i32..200_000, Just(0), Just(900)]),
        status in prop::option::weighted(0.95, arb_job_status()),
    ) -> Job {
        Job {
            metadata,
            spec: Some(JobSpec {
                suspend,
                ttl_seconds_after_finished: native,
                ..JobSpec::default()
            }),
            status,
        }
    }
}

/// Which status list a generated container goes in.
#[derive(Debug, Clone, Copy)]
pub(super) enum ContainerList {
    /// Init containers, sidecars (restartable init containers) among them.
    Init,
    Main,
    Ephemeral,
}

prop_compose! {
    /// A pod status with containers in every list (terminated at some instant, or not
    /// terminated at all), conditions with or without a transition time, maybe a start time.
    pub(super) fn arb_pod_status()(
        containers in prop::collection::vec(
            (
                prop_oneof![Just(ContainerList::Init), Just(ContainerList::Main), Just(ContainerList::Ephemeral)],
                prop::option::weighted(0.8, arb_instant()),
            ),
            0..4,
        ),
        conditions in prop::collection::vec(prop::option::weighted(0.7, arb_instant()), 0..3),
        start in prop::option::weighted(0.8, arb_instant()),
    ) -> PodStatus {
        let mut s = PodStatus {
            start_time: start.map(Time),
            ..PodStatus::default()
        };
        for (i, (list, ended)) in containers.into_iter().enumerate() {
            let name = format!("c{i}");
            let status = match ended {
                Some(at) => terminated(&name, at),
                None => ContainerStatus { name, ..ContainerStatus::default() },
            };
            match list {
                ContainerList::Init => &mut s.init_container_statuses,
                ContainerList::Main => &mut s.container_statuses,
                ContainerList::Ephemeral => &mut s.ephemeral_container_statuses,
            }
            .get_or_insert_with(Vec::new)
            .push(status);
        }
        let conditions: Vec<_> = conditions.into_iter().map(|at| pod_condition("Ready", at)).collect();
        s.conditions = (!conditions.is_empty()).then_some(conditions);
        s
    }
}

prop_compose! {
    pub(super) fn arb_pod()(
        metadata in arb_meta(),
        fargate in prop_oneof![2 => Just((false, false)), 1 => any::<(bool, bool)>()],
        phase in prop_oneof![
            3 => Just(Some("Succeeded")),
            3 => Just(Some("Failed")),
            1 => prop::sample::select(vec![
                None, Some(""), Some("Pending"), Some("Running"), Some("Unknown"), Some("succeeded"),
            ]),
        ],
        reason in prop::option::weighted(0.5, prop_oneof![2 => Just("Evicted"), 1 => Just("OOMKilled"), 1 => Just("DeadlineExceeded")]),
        status in prop::option::weighted(0.97, arb_pod_status()),
        engine in prop::option::weighted(0.3, prop::sample::select(ENGINE_MARKS.to_vec())),
    ) -> Pod {
        let (label, scheduler) = fargate;
        let mut pod = Pod { metadata, ..pod() };
        for (key, value) in engine.unwrap_or_default() {
            pod = match *key {
                "name" => pod.named(value),
                _ => pod.label(key, value),
            };
        }
        if label {
            pod.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(FARGATE_PROFILE_LABEL.to_owned(), "etl".to_owned());
        }
        if scheduler {
            pod = pod.fargate_scheduler_only();
        }
        pod.status = status.map(|s| PodStatus {
            phase: phase.map(str::to_owned),
            reason: reason.map(str::to_owned),
            ..s
        });
        pod
    }
}

pub(super) fn arb_later() -> impl Strategy<Value = Duration> {
    (0u64..=10 * 86_400).prop_map(Duration::from_secs)
}

prop_compose! {
    /// Settings at their defaults but for the owners handed over and the CronJob switch.
    pub(super) fn arb_owner_settings()(
        prune_owners in prop::sample::subsequence(HANDABLE.to_vec(), 0..=2),
        skip_cronjob_jobs in any::<bool>(),
    ) -> Settings {
        Settings {
            prune_owners: prune_owners
                .into_iter()
                .map(|o| OwnerKind::parse(o).expect("valid owner"))
                .collect(),
            skip_cronjob_jobs,
            ..settings()
        }
    }
}

prop_compose! {
    /// A Job every other rule would delete (in scope, no annotations, failed two weeks ago):
    /// only its owners decide, so a wrong owner rule cannot hide behind another keep.
    pub(super) fn arb_owned_job()(owners in arb_owners()) -> Job {
        let mut j = job().failed(ago("14d"));
        j.metadata.owner_references = (!owners.is_empty()).then_some(owners);
        j
    }
}

prop_compose! {
    /// A pod every other rule would delete (in scope, no annotations, finished two weeks
    /// ago): only its owners, the Job index, its finalizers and whether it is Fargate or
    /// Evicted decide.
    pub(super) fn arb_owned_pod()(
        owners in arb_owners(),
        counting in prop::bool::weighted(0.2),
        fargate in any::<bool>(),
        evicted in any::<bool>(),
    ) -> Pod {
        let mut p = if evicted { pod().evicted(ago("14d")) } else { pod().failed(ago("14d")) };
        if fargate {
            p = p.fargate();
        }
        p.metadata.owner_references = (!owners.is_empty()).then_some(owners);
        if counting {
            p.metadata.finalizers = Some(vec![JOB_TRACKING_FINALIZER.to_owned()]);
        }
        p
    }
}

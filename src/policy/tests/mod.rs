//! Table tests and properties of the policy, one file per rule group. Fixtures are the
//! shared builders of [`crate::testing`] on the real k8s-openapi types.

mod engines;
mod guards;
mod jobs;
mod keep_last;
mod namespace_properties;
mod namespaces;
mod native_ttl;
mod owners;
mod pods;
mod properties;
mod strategies;

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::Metadata;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use super::*;
use crate::testing::*;

/// One object to decide on.
#[derive(Debug, Clone, Copy)]
enum Object<'a> {
    /// A batch/v1 Job.
    Job(&'a Job),
    /// A core/v1 Pod, with what the run knows when it judges pods.
    Pod(&'a Pod, PodContext<'a>),
}

/// Decides what to do with one object at instant `now`.
fn plan(object: Object<'_>, now: Timestamp, settings: &Settings) -> Decision {
    match object {
        Object::Job(job) => plan_job(
            job,
            now,
            settings,
            JobContext {
                namespaces: IGNORED,
            },
        ),
        Object::Pod(pod, context) => plan_pod(pod, now, settings, context),
    }
}

fn settings() -> Settings {
    Settings::default()
}

/// The Jobs pass listed the fixtures' owner Job (`uid-owner`), which keeps nothing.
fn listed_jobs() -> JobIndex {
    let mut index = JobIndex::default();
    index.record("uid-owner", false);
    index
}

fn decide_job(j: &Job) -> Decision {
    plan(Object::Job(j), now(), &settings())
}

fn decide_pod(p: &Pod) -> Decision {
    plan_pod_with(p, &settings())
}

fn plan_pod_with(p: &Pod, s: &Settings) -> Decision {
    plan_pod_in(p, s, Mode::Normal)
}

fn plan_pod_in(p: &Pod, s: &Settings, mode: Mode) -> Decision {
    let jobs = listed_jobs();
    plan(Object::Pod(p, in_mode(&jobs, mode)), now(), s)
}

/// Namespace annotations not read: the cluster settings apply everywhere.
const IGNORED: &NamespaceIndex = &NamespaceIndex::Ignored;

/// Pods judged in `mode` against `jobs`, namespace annotations not read.
fn in_mode(jobs: &JobIndex, mode: Mode) -> PodContext<'_> {
    PodContext {
        jobs,
        mode,
        namespaces: IGNORED,
    }
}

/// Pods judged in normal mode against `jobs`.
fn normal(jobs: &JobIndex) -> PodContext<'_> {
    in_mode(jobs, Mode::Normal)
}

fn owned_by(group: &str, kind: &str) -> Keep {
    Keep::OwnedByController {
        owner: OwnerKind {
            group: group.to_owned(),
            kind: kind.to_owned(),
        },
    }
}

fn delete(d: Decision) -> Delete {
    match d {
        Decision::Delete(d) => d,
        Decision::Keep(k) => panic!("expected Delete, got Keep::{k:?}"),
    }
}

fn keep(d: Decision) -> Keep {
    match d {
        Decision::Keep(k) => k,
        Decision::Delete(d) => panic!("expected Keep, got Delete::{d:?}"),
    }
}

fn within(remaining: &str) -> Keep {
    Keep::WithinRetention {
        remaining: dur(remaining),
    }
}

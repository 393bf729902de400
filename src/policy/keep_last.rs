//! "Keep the last N": the newest finished Jobs of each owner stay, whatever their retention
//! says, so a weekly CronJob's only failed run is still there next week while an hourly
//! one does not keep dozens.
//!
//! An owner is a `batch` CronJob (its controller reference) or, with `keep_last_label`, the
//! value of that label (the workflow or task a Job belongs to), always within one
//! namespace. Failed and succeeded Jobs are counted apart (`keep_last_failed`,
//! `keep_last_succeeded`); 0 turns a count off.
//!
//! Jobs arrive page by page in no useful order, so [`KeepLast`] holds, per owner and
//! outcome, only the N newest finished Jobs seen so far: a due Job among them waits; one
//! pushed out by a newer Job is released (due after all); whatever is still held when the
//! list ends is kept. Memory is N entries per owner, not the list. The result does not
//! depend on the order the Jobs arrive in: ties on the finish time are broken by uid.
//!
//! This only ever keeps Jobs the retentions would delete: it never deletes anything. A kept
//! Job's finished Fargate pods still go after the Fargate retention (the pod passes judge
//! them as pods of a listed Job); its other pods stay with it, as for any retained Job.

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;

use super::{OwnerKind, Settings, controller_of};

/// Which owner's history a finished Job belongs to, and which count applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct History {
    /// `namespace`, then `cronjob:<uid>` or `label:<value>`.
    owner: (String, String),
    succeeded: bool,
}

/// One finished Job offered to [`KeepLast`].
#[derive(Debug, Clone)]
pub struct Finished<T> {
    /// Its owner's history.
    pub history: History,
    /// When it finished.
    pub at: Timestamp,
    /// Its uid (breaks ties on `at`).
    pub uid: String,
    /// What to hand back if it is due and not among the last N (`None`: not due).
    pub due: Option<T>,
}

/// The history a finished Job counts in, if any: `None` when it has no owner to keep a
/// history of, or the count for its outcome is 0.
pub fn history_of(job: &Job, succeeded: bool, settings: &Settings) -> Option<History> {
    let wanted = if succeeded {
        settings.keep_last_succeeded
    } else {
        settings.keep_last_failed
    };
    if wanted == 0 {
        return None;
    }
    let meta = &job.metadata;
    let namespace = meta.namespace.clone().unwrap_or_default();
    let by_cronjob = controller_of(meta)
        .filter(|r| OwnerKind::of(r).is_batch_cronjob())
        .map(|r| format!("cronjob:{}", r.uid));
    let by_label = || {
        let key = settings.keep_last_label.as_deref()?;
        let value = meta.labels.as_ref()?.get(key)?;
        Some(format!("label:{value}"))
    };
    let owner = by_cronjob.or_else(by_label)?;
    Some(History {
        owner: (namespace, owner),
        succeeded,
    })
}

/// The N newest finished Jobs of each history seen so far.
#[derive(Debug)]
pub struct KeepLast<T> {
    failed: usize,
    succeeded: usize,
    held: HashMap<History, Vec<(Timestamp, String, Option<T>)>>,
}

impl<T> KeepLast<T> {
    /// Keeps the last `settings.keep_last_failed` failed and `keep_last_succeeded`
    /// succeeded Jobs of each owner.
    pub fn new(settings: &Settings) -> Self {
        Self {
            failed: settings.keep_last_failed,
            succeeded: settings.keep_last_succeeded,
            held: HashMap::new(),
        }
    }

    /// Takes one finished Job. Returns the due item released by it: the oldest of its
    /// history's last N when this Job pushed it out, or this Job's own when it is older than
    /// all of them. `None` when nothing due is released.
    pub fn offer(&mut self, job: Finished<T>) -> Option<T> {
        let limit = if job.history.succeeded {
            self.succeeded
        } else {
            self.failed
        };
        if limit == 0 {
            return job.due;
        }
        let entries = self.held.entry(job.history).or_default();
        entries.push((job.at, job.uid, job.due));
        if entries.len() <= limit {
            return None;
        }
        // The oldest goes: earliest finish, then the smallest uid.
        let oldest = entries
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| (a.0, &a.1).cmp(&(b.0, &b.1)))
            .map(|(i, _)| i)?;
        entries.swap_remove(oldest).2
    }

    /// The due items still held when the list ends: each among its owner's last N, kept.
    pub fn kept(self) -> Vec<T> {
        self.held
            .into_values()
            .flatten()
            .filter_map(|(_, _, due)| due)
            .collect()
    }
}

//! The namespaces' `eks-reaper/*` annotations, read once per cluster before the passes: one
//! paginated list of the Namespaces' metadata (a `PartialObjectMetadataList`: names and
//! annotations, no spec or status), turned into the policy's [`NamespaceIndex`].
//!
//! A list that fails leaves the annotations unknown, and an opt-out might then be missed:
//! the index says so ([`NamespaceIndex::Unknown`]), the policy keeps every object
//! (`namespaceAnnotationsUnknown`), and the cluster is failed once the passes are done, naming
//! the cause (typically RBAC without `list namespaces` after an upgrade): a run that prunes
//! nothing must not look healthy. `REAPER_NAMESPACE_ANNOTATIONS=false` turns the read off
//! ([`NamespaceIndex::Ignored`]): the cluster settings then apply everywhere.

use std::collections::{BTreeMap, HashMap};

use http::StatusCode;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube::core::Request;
use kube::core::params::ListParams;
use serde::Deserialize;
use tracing::{info, warn};

use super::scan::ScanError;
use crate::api::{self, ApiStats, CallError};
use crate::deadline::Deadline;
use crate::eks::ClusterAccess;
use crate::failure::ClusterFailure;
use crate::policy::{NamespaceIndex, NamespaceRule};
use crate::report::{
    InvalidNamespaceAnnotation, NamespaceAnnotationsReport, NamespaceAnnotationsStatus,
};

/// The collection listed.
const PATH: &str = "/api/v1/namespaces";
/// How many times the list starts again after its continue token expired (410).
const MAX_RESTARTS: u32 = 3;
/// Unreadable annotations named in the report (all are counted).
const MAX_INVALID_SAMPLES: usize = 20;
/// What the cluster's error adds to the cause.
const KEPT: &str = "every object was kept (namespaceAnnotationsUnknown), as a namespace's \
     opt-out could be missed; REAPER_NAMESPACE_ANNOTATIONS=false prunes by the cluster \
     settings alone";

/// What reading the namespaces gave.
#[derive(Debug)]
pub struct NamespacesRead {
    /// For the policy.
    pub index: NamespaceIndex,
    /// For the cluster's report.
    pub report: NamespaceAnnotationsReport,
    /// Why the cluster fails once the passes are done: the namespaces could not be listed.
    pub failure: Option<(ClusterFailure, String)>,
}

/// Lists the namespaces and reads their annotations; `enabled` is
/// `REAPER_NAMESPACE_ANNOTATIONS`.
pub async fn read(
    access: &ClusterAccess,
    stats: &ApiStats,
    deadline: &Deadline,
    page_size: u32,
    enabled: bool,
) -> NamespacesRead {
    let cluster = access.cluster();
    if !enabled {
        return NamespacesRead {
            index: NamespaceIndex::Ignored,
            report: NamespaceAnnotationsReport::default(),
            failure: None,
        };
    }
    match list(access, stats, deadline, page_size).await {
        Ok(rules) => {
            let report = summary(&rules);
            for sample in &report.invalid_samples {
                warn!(
                    cluster,
                    namespace = %sample.namespace,
                    annotation = %sample.annotation,
                    value = %sample.value,
                    "namespace annotation not understood: every object in the namespace is kept"
                );
            }
            info!(
                cluster,
                namespaces = report.namespaces,
                annotated = report.annotated,
                opted_out = report.opted_out,
                "namespace annotations read"
            );
            NamespacesRead {
                index: NamespaceIndex::Listed(rules),
                report,
                failure: None,
            }
        }
        Err((kind, cause)) => {
            let error = format!("{cause}; {KEPT}");
            // The cluster's failure is logged once the passes are done (failure::log).
            info!(cluster, error = %cause, "namespaces not listed: every object is kept");
            NamespacesRead {
                index: NamespaceIndex::Unknown,
                report: NamespaceAnnotationsReport {
                    status: NamespaceAnnotationsStatus::Unknown,
                    error: Some(cause),
                    ..NamespaceAnnotationsReport::default()
                },
                failure: Some((kind, error)),
            }
        }
    }
}

/// The report's counts for the namespaces read.
fn summary(rules: &HashMap<String, NamespaceRule>) -> NamespaceAnnotationsReport {
    let mut report = NamespaceAnnotationsReport {
        status: NamespaceAnnotationsStatus::Read,
        namespaces: rules.len() as u64,
        ..NamespaceAnnotationsReport::default()
    };
    // By name, so the samples are the same from run to run.
    let sorted: BTreeMap<&String, &NamespaceRule> = rules.iter().collect();
    for (namespace, rule) in sorted {
        report.annotated += u64::from(rule.is_annotated());
        match rule {
            NamespaceRule::Overrides(o) => report.opted_out += u64::from(o.opted_out),
            NamespaceRule::Invalid { annotation, value } => {
                report.invalid += 1;
                if report.invalid_samples.len() < MAX_INVALID_SAMPLES {
                    report.invalid_samples.push(InvalidNamespaceAnnotation {
                        namespace: namespace.clone(),
                        annotation: (*annotation).to_owned(),
                        value: value.clone(),
                    });
                }
            }
        }
    }
    report
}

/// A page of namespaces' metadata: names and annotations only.
#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
struct Item {
    metadata: ItemMeta,
}

#[derive(Debug, Deserialize)]
struct ItemMeta {
    name: String,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// Every namespace's rule, page by page; on failure, the cluster's failure kind and a
/// one-line cause.
async fn list(
    access: &ClusterAccess,
    stats: &ApiStats,
    deadline: &Deadline,
    page_size: u32,
) -> Result<HashMap<String, NamespaceRule>, (ClusterFailure, String)> {
    let resource = "namespaces";
    let failed = |e: ScanError| (e.kind(), e.explain(access));
    let mut rules = HashMap::new();
    let mut params = ListParams {
        limit: Some(page_size),
        ..ListParams::default()
    };
    let mut restarts = 0;
    loop {
        let request = Request::new(PATH);
        let response =
            match api::call(access, stats, deadline, || request.list_metadata(&params)).await {
                Ok(response) => response,
                Err(CallError::Deadline) => {
                    return Err((
                        ClusterFailure::Timeout,
                        "listing namespaces: deadline reached before the namespaces were listed"
                            .to_owned(),
                    ));
                }
                Err(source) => return Err(failed(ScanError::Call { resource, source })),
            };
        if response.status == StatusCode::GONE && restarts < MAX_RESTARTS {
            // The continue token expired: start again (namespaces are few).
            restarts += 1;
            rules.clear();
            params.continue_token = None;
            continue;
        }
        if !response.status.is_success() {
            return Err(failed(ScanError::Status {
                resource,
                code: response.status.as_u16(),
                message: response.message(),
            }));
        }
        let page: Page = serde_json::from_slice(response.body()).map_err(|e| {
            failed(ScanError::Decode {
                resource,
                source: e.into(),
            })
        })?;
        for item in page.items {
            let rule = NamespaceRule::from_annotations(item.metadata.annotations.as_ref());
            rules.insert(item.metadata.name, rule);
        }
        params.continue_token = page.metadata.continue_.filter(|c| !c.is_empty());
        if params.continue_token.is_none() {
            return Ok(rules);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::NamespaceOverrides;

    #[test]
    fn a_page_of_partial_object_metadata_is_read_for_names_and_annotations() {
        let body = br#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1",
            "metadata":{"resourceVersion":"7","continue":"next"},
            "items":[
              {"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",
               "metadata":{"name":"etl","uid":"u1","annotations":{"eks-reaper/ttl":"2h"},
                           "managedFields":[{"manager":"kubectl"}]}},
              {"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",
               "metadata":{"name":"web","uid":"u2"}}]}"#;
        let page: Page = serde_json::from_slice(body).expect("page");
        assert_eq!(page.metadata.continue_.as_deref(), Some("next"));
        assert_eq!(page.items.len(), 2);
        let rule = NamespaceRule::from_annotations(page.items[0].metadata.annotations.as_ref());
        assert_eq!(
            rule,
            NamespaceRule::Overrides(NamespaceOverrides {
                ttl: Some(Duration::from_secs(7200)),
                ..NamespaceOverrides::NONE
            })
        );
        assert_eq!(page.items[1].metadata.annotations, None);
    }

    #[test]
    fn the_summary_counts_annotated_opted_out_and_invalid_namespaces() {
        let annotated = |pairs: &[(&str, &str)]| {
            let a: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            NamespaceRule::from_annotations(Some(&a))
        };
        let rules = HashMap::from([
            ("plain".to_owned(), NamespaceRule::from_annotations(None)),
            ("short".to_owned(), annotated(&[("eks-reaper/ttl", "1m")])),
            ("kept".to_owned(), annotated(&[("eks-reaper/keep", "true")])),
            (
                "bad".to_owned(),
                annotated(&[("eks-reaper/bare-pod-ttl", "soon")]),
            ),
        ]);
        let r = summary(&rules);
        assert_eq!(r.status, NamespaceAnnotationsStatus::Read);
        assert_eq!(
            (r.namespaces, r.annotated, r.opted_out, r.invalid),
            (4, 3, 1, 1)
        );
        assert_eq!(
            r.invalid_samples,
            vec![InvalidNamespaceAnnotation {
                namespace: "bad".to_owned(),
                annotation: "eks-reaper/bare-pod-ttl".to_owned(),
                value: "soon".to_owned(),
            }]
        );
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["status"], "read");
        assert_eq!(v["optedOut"], 1);
        assert_eq!(
            v["invalidSamples"][0]["annotation"],
            "eks-reaper/bare-pod-ttl"
        );
        assert!(v.get("error").is_none());
    }
}

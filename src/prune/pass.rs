//! What one list pass covers and what it hands on: the resource [`Kind`], the [`Pass`]
//! (which part of the resource the API server sends back), and the small [`Candidate`] a
//! due object becomes.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::core::Request;
use kube::core::params::ListParams;

use crate::policy::{Delete, FARGATE_PROFILE_LABEL};

/// Field selector keeping only terminal pods (evaluated by the API server).
pub const FINISHED_PODS: &str = "status.phase!=Pending,status.phase!=Running,status.phase!=Unknown";

/// Field selector keeping the pods that have not finished (evaluated by the API server). A
/// pod whose phase is none of the five Kubernetes defines matches both selectors: it is
/// judged (and kept) by the full pass and its creation counted twice, an error towards an
/// earlier forecast.
pub const UNFINISHED_PODS: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// Which resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// batch/v1 Job.
    Job,
    /// core/v1 Pod.
    Pod,
}

impl Kind {
    /// `"job"` or `"pod"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Job => "job",
            Kind::Pod => "pod",
        }
    }

    /// Resource name in API paths and RBAC (`jobs`, `pods`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Job => "jobs",
            Kind::Pod => "pods",
        }
    }

    /// Collection path, cluster-wide or in one namespace.
    pub fn url_path(self, namespace: Option<&str>) -> String {
        match self {
            Kind::Job => <Job as kube::Resource>::url_path(&(), namespace),
            Kind::Pod => <Pod as kube::Resource>::url_path(&(), namespace),
        }
    }
}

/// One list pass: a resource, and the part of it the API server sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pass {
    /// Every Job in scope.
    Jobs,
    /// Finished pods labelled `eks.amazonaws.com/fargate-profile` (server-side phase
    /// filter), whole: planned like every finished pod.
    FargatePods,
    /// Fargate pods that have not finished, metadata only (`PartialObjectMetadataList`):
    /// each took an IP, so their creation times feed the forecast. Nothing else is read
    /// from them, and with no status in hand the policy keeps every one of them
    /// (`NotFinished`): this pass never yields a candidate.
    FargateCreations,
    /// Finished pods without that label (server-side phase filter). A pod with the
    /// `fargate-scheduler` but no label lands here and is still classified Fargate.
    OtherPods,
}

impl Pass {
    /// Every pass, in the order a run lists them: Jobs first (the pod passes read what it
    /// learnt), then the pods. The unfinished Fargate pods are listed before the finished
    /// ones: a pod that finishes in between is then listed twice (its creation counted
    /// twice, a forecast a little early) rather than not at all (a forecast late).
    pub const ALL: [Pass; 4] = [
        Pass::Jobs,
        Pass::FargateCreations,
        Pass::FargatePods,
        Pass::OtherPods,
    ];

    /// The resource listed.
    pub fn kind(self) -> Kind {
        match self {
            Pass::Jobs => Kind::Job,
            Pass::FargatePods | Pass::FargateCreations | Pass::OtherPods => Kind::Pod,
        }
    }

    /// Name in logs: `jobs`, `fargatePods`, `fargateCreations`, `otherPods`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pass::Jobs => "jobs",
            Pass::FargatePods => "fargatePods",
            Pass::FargateCreations => "fargateCreations",
            Pass::OtherPods => "otherPods",
        }
    }

    /// Whether the API server sends only each object's metadata
    /// (`PartialObjectMetadataList`): a fraction of the bytes to encode and send.
    pub fn metadata_only(self) -> bool {
        self == Pass::FargateCreations
    }

    /// The request for one page: whole objects, or only their metadata, in Kubernetes
    /// protobuf when the server speaks it (half the API server's CPU of a JSON page), else
    /// in JSON.
    pub fn list_request(
        self,
        request: &Request,
        params: &ListParams,
    ) -> Result<http::Request<Vec<u8>>, kube::core::request::Error> {
        let mut list = if self.metadata_only() {
            request.list_metadata(params)?
        } else {
            request.list(params)?
        };
        list.headers_mut()
            .insert(http::header::ACCEPT, self.accept());
        Ok(list)
    }

    /// The `Accept` header of a page: protobuf first, JSON second.
    fn accept(self) -> http::HeaderValue {
        const OBJECTS: &str = "application/vnd.kubernetes.protobuf, application/json";
        const METADATA: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;\
                                g=meta.k8s.io;v=v1, \
                                application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        http::HeaderValue::from_static(if self.metadata_only() {
            METADATA
        } else {
            OBJECTS
        })
    }

    /// The pass's label selector ANDed (`,`) with the user's, if any.
    pub fn label_selector(self, user: Option<&str>) -> Option<String> {
        let own = match self {
            Pass::Jobs => None,
            Pass::FargatePods | Pass::FargateCreations => Some(FARGATE_PROFILE_LABEL.to_owned()),
            Pass::OtherPods => Some(format!("!{FARGATE_PROFILE_LABEL}")),
        };
        let user = user.map(str::trim).filter(|s| !s.is_empty());
        match (user, own) {
            (Some(u), Some(o)) => Some(format!("{u},{o}")),
            (Some(u), None) => Some(u.to_owned()),
            (None, own) => own,
        }
    }

    /// The pass's field selector: the phase filter of the pod passes.
    pub fn field_selector(self) -> Option<&'static str> {
        match self {
            Pass::Jobs => None,
            Pass::FargatePods | Pass::OtherPods => Some(FINISHED_PODS),
            Pass::FargateCreations => Some(UNFINISHED_PODS),
        }
    }
}

/// A due object: everything the deleter needs, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Job or Pod.
    pub kind: Kind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID, sent as a deletion precondition (names are reused).
    pub uid: String,
    /// The resourceVersion the policy judged, also sent as a precondition: an object changed
    /// since (a keep annotation added, another run already deleting it) is answered 409 and
    /// left for the next run instead of being deleted on a stale decision.
    pub resource_version: String,
    /// Why it is due.
    pub reason: Delete,
    /// A Fargate pod (its deletion frees a subnet IP).
    pub fargate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_paths_are_the_batch_and_core_ones() {
        assert_eq!(Kind::Job.url_path(None), "/apis/batch/v1/jobs");
        assert_eq!(
            Kind::Job.url_path(Some("etl")),
            "/apis/batch/v1/namespaces/etl/jobs"
        );
        assert_eq!(Kind::Pod.url_path(None), "/api/v1/pods");
    }

    fn query(pass: Pass, user: Option<&str>) -> String {
        let params = ListParams {
            label_selector: pass.label_selector(user),
            field_selector: pass.field_selector().map(str::to_owned),
            limit: Some(500),
            continue_token: Some("tok".to_owned()),
            ..ListParams::default()
        };
        let r = Request::new(pass.kind().url_path(None))
            .list(&params)
            .expect("request");
        r.uri().query().expect("query").to_owned()
    }

    #[test]
    fn other_pods_list_carries_limit_continue_the_phase_filter_and_no_fargate_label() {
        let q = query(Pass::OtherPods, None);
        assert!(q.contains("limit=500"), "{q}");
        assert!(q.contains("continue=tok"), "{q}");
        assert!(q.contains("fieldSelector=status.phase%21%3DPending"), "{q}");
        assert!(
            q.contains("labelSelector=%21eks.amazonaws.com%2Ffargate-profile"),
            "{q}"
        );
    }

    #[test]
    fn fargate_pods_list_has_the_label_and_the_finished_phase_filter() {
        let q = query(Pass::FargatePods, None);
        assert!(
            q.contains("labelSelector=eks.amazonaws.com%2Ffargate-profile"),
            "{q}"
        );
        assert!(q.contains("fieldSelector=status.phase%21%3DPending"), "{q}");
        assert!(!Pass::FargatePods.metadata_only());
    }

    #[test]
    fn fargate_creations_list_the_unfinished_fargate_pods_metadata_only() {
        let q = query(Pass::FargateCreations, None);
        assert!(
            q.contains("labelSelector=eks.amazonaws.com%2Ffargate-profile"),
            "{q}"
        );
        assert!(
            q.contains("fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed"),
            "{q}"
        );
        assert!(Pass::FargateCreations.metadata_only());
        assert!(!Pass::Jobs.metadata_only() && !Pass::OtherPods.metadata_only());
    }

    #[test]
    fn every_page_asks_for_protobuf_first_and_json_second() {
        let accept = |pass: Pass| {
            let r = pass
                .list_request(
                    &Request::new(pass.kind().url_path(None)),
                    &ListParams::default(),
                )
                .expect("request");
            r.headers()[http::header::ACCEPT]
                .to_str()
                .expect("ascii")
                .to_owned()
        };
        assert_eq!(
            accept(Pass::Jobs),
            "application/vnd.kubernetes.protobuf, application/json"
        );
        assert_eq!(accept(Pass::OtherPods), accept(Pass::Jobs));
        assert_eq!(
            accept(Pass::FargateCreations),
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, \
             application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        );
    }

    #[test]
    fn the_two_fargate_phase_filters_leave_no_known_phase_out() {
        // Every phase Kubernetes defines is excluded by exactly one of the two selectors.
        for phase in ["Pending", "Running", "Unknown", "Succeeded", "Failed"] {
            let excluded = |selector: &str| selector.contains(&format!("!={phase}"));
            assert!(
                excluded(FINISHED_PODS) != excluded(UNFINISHED_PODS),
                "{phase}"
            );
        }
    }

    #[test]
    fn jobs_list_has_only_the_users_selector() {
        let q = query(Pass::Jobs, None);
        assert!(
            !q.contains("labelSelector") && !q.contains("fieldSelector"),
            "{q}"
        );
        assert_eq!(
            Pass::Jobs.label_selector(Some(" app=etl ")).as_deref(),
            Some("app=etl")
        );
    }

    #[test]
    fn pod_passes_and_their_label_with_the_users_selector() {
        let user = Some("app=etl,tier in (a,b)");
        assert_eq!(
            Pass::FargatePods.label_selector(user).as_deref(),
            Some("app=etl,tier in (a,b),eks.amazonaws.com/fargate-profile")
        );
        assert_eq!(
            Pass::OtherPods.label_selector(user).as_deref(),
            Some("app=etl,tier in (a,b),!eks.amazonaws.com/fargate-profile")
        );
        assert_eq!(
            Pass::OtherPods.label_selector(Some("  ")).as_deref(),
            Some("!eks.amazonaws.com/fargate-profile")
        );
    }
}

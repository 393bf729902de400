//! Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), read for the list
//! pages of Jobs and Pods and for the `Status` an error answer carries.
//!
//! The API server encodes a protobuf page in about half the CPU time of the JSON one
//! (BENCHMARKS.md, "Control-plane cost per run"), and the reaper lists every Job and every
//! Fargate pod every run. k8s-openapi has no protobuf types, so the messages the reaper
//! reads are declared here with their field numbers from the `generated.proto` files of
//! `k8s.io/api` and `k8s.io/apimachinery`; every other field is skipped while decoding.
//!
//! A body is the four bytes `k8s\0` and a `runtime.Unknown` whose `raw` field holds the
//! object. The Go types behind the messages decide what an absent value looks like:
//! a non-pointer string, number or `metav1.Time` is always encoded, empty, zero or as an
//! empty message, where JSON leaves it out. [`text`], [`time`] and [`nonzero`] turn those
//! back into `None`, so a protobuf page becomes the same objects as its JSON twin (tested
//! against the testbed's API server in `tests/protobuf_lists.rs`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time as MetaTime;
use prost::Message;

/// The media type of Kubernetes protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Whether a `Content-Type` header value is Kubernetes protobuf (parameters such as
/// `;as=PartialObjectMetadataList` may follow the media type).
pub fn is_media_type(content_type: &[u8]) -> bool {
    content_type
        .strip_prefix(MEDIA_TYPE.as_bytes())
        .is_some_and(|rest| matches!(rest.first(), None | Some(b';' | b' ')))
}

/// The prefix of every protobuf body.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a protobuf body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body does not start with `k8s\0`.
    #[error("not a Kubernetes protobuf body (no k8s\\0 prefix)")]
    NoMagic,
    /// The envelope or the object is not valid protobuf.
    #[error("protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The envelope says the object is compressed or in another encoding.
    #[error("protobuf envelope with content encoding {0:?}, which is not read")]
    Encoding(String),
    /// The object is not of the kind asked for.
    #[error("protobuf object of kind {found:?}, expected {expected}")]
    Kind {
        /// The kind the envelope names.
        found: String,
        /// The kinds the request asked for.
        expected: String,
    },
}

/// `runtime.Unknown`: the envelope around every object.
#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    content_encoding: Option<String>,
}

/// `runtime.TypeMeta`.
#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

/// Decodes the object in `body`, whose envelope must name one of `kinds`.
pub fn decode<M: Message + Default>(body: &[u8], kinds: &[&str]) -> Result<M, Error> {
    let inner = body.strip_prefix(MAGIC).ok_or(Error::NoMagic)?;
    let envelope = Unknown::decode(inner)?;
    if let Some(encoding) = envelope.content_encoding.filter(|e| !e.is_empty()) {
        return Err(Error::Encoding(encoding));
    }
    let kind = envelope.type_meta.and_then(|t| t.kind).unwrap_or_default();
    if !kinds.contains(&kind.as_str()) {
        return Err(Error::Kind {
            found: kind,
            expected: kinds.join(" or "),
        });
    }
    Ok(M::decode(envelope.raw.unwrap_or_default().as_slice())?)
}

/// `metav1.Time`: whole seconds (the API server drops the nanoseconds, as JSON does).
#[derive(Clone, PartialEq, Message)]
pub struct Time {
    #[prost(int64, optional, tag = "1")]
    seconds: Option<i64>,
}

/// `metav1.ListMeta`.
#[derive(Clone, PartialEq, Message)]
pub struct ListMeta {
    /// The token for the next page; empty on the last.
    #[prost(string, optional, tag = "3")]
    pub continue_: Option<String>,
    /// Objects left after this page, when the server counted them.
    #[prost(int64, optional, tag = "4")]
    pub remaining_item_count: Option<i64>,
}

/// `metav1.ObjectMeta`: the fields the policy and the deleter read.
#[derive(Clone, PartialEq, Message)]
pub struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    pub(crate) name: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub(crate) namespace: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub(crate) uid: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub(crate) resource_version: Option<String>,
    #[prost(message, optional, tag = "8")]
    pub(crate) creation_timestamp: Option<Time>,
    #[prost(message, optional, tag = "9")]
    pub(crate) deletion_timestamp: Option<Time>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub(crate) labels: std::collections::BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    pub(crate) annotations: std::collections::BTreeMap<String, String>,
    #[prost(message, repeated, tag = "13")]
    pub(crate) owner_references: Vec<OwnerReference>,
    #[prost(string, repeated, tag = "14")]
    pub(crate) finalizers: Vec<String>,
}

/// `metav1.OwnerReference`.
#[derive(Clone, PartialEq, Message)]
pub struct OwnerReference {
    #[prost(string, optional, tag = "1")]
    pub(crate) kind: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub(crate) name: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub(crate) uid: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub(crate) api_version: Option<String>,
    #[prost(bool, optional, tag = "6")]
    pub(crate) controller: Option<bool>,
    #[prost(bool, optional, tag = "7")]
    pub(crate) block_owner_deletion: Option<bool>,
}

impl From<OwnerReference> for k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    fn from(o: OwnerReference) -> Self {
        Self {
            api_version: o.api_version.unwrap_or_default(),
            kind: o.kind.unwrap_or_default(),
            name: o.name.unwrap_or_default(),
            uid: o.uid.unwrap_or_default(),
            controller: o.controller,
            block_owner_deletion: o.block_owner_deletion,
        }
    }
}

/// `metav1.Status`: what an error answer (and a 410 for an expired continue token) says.
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    #[prost(message, optional, tag = "1")]
    pub(crate) metadata: Option<ListMeta>,
    #[prost(string, optional, tag = "3")]
    pub(crate) message: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub(crate) reason: Option<String>,
}

/// A string field of a non-pointer Go string: empty is absent.
pub fn text(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.is_empty())
}

/// A `metav1.Time` field: an empty message is the zero time, which JSON writes as `null`.
pub fn time(value: Option<Time>) -> Option<MetaTime> {
    let seconds = value?.seconds?;
    jiff::Timestamp::from_second(seconds).ok().map(MetaTime)
}

/// A number field of a non-pointer Go integer with `omitempty`: zero is absent.
pub fn nonzero<N: Default + PartialEq>(value: Option<N>) -> Option<N> {
    value.filter(|n| *n != N::default())
}

/// A repeated field or a map: empty is absent, as `omitempty` leaves it out of JSON.
pub fn some<C: IntoIterator + Default + PartialEq>(value: C) -> Option<C> {
    (value != C::default()).then_some(value)
}

/// A body as the API server writes it: `k8s\0` and the envelope around `raw`.
#[cfg(test)]
pub(crate) fn envelope(kind: &str, raw: Vec<u8>, encoding: Option<&str>) -> Vec<u8> {
    let mut body = MAGIC.to_vec();
    Unknown {
        type_meta: Some(TypeMeta {
            kind: Some(kind.to_owned()),
        }),
        raw: Some(raw),
        content_encoding: encoding.map(str::to_owned),
    }
    .encode(&mut body)
    .expect("encode");
    body
}

/// A `metav1.Time` of `seconds` (`None`: the zero time's empty message).
#[cfg(test)]
pub(crate) fn at(seconds: Option<i64>) -> Option<Time> {
    Some(Time { seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(message: &str) -> Vec<u8> {
        Status {
            metadata: Some(ListMeta {
                continue_: Some("next".to_owned()),
                remaining_item_count: None,
            }),
            message: Some(message.to_owned()),
            reason: Some("Expired".to_owned()),
        }
        .encode_to_vec()
    }

    #[test]
    fn an_object_is_read_from_its_envelope() {
        let body = envelope("Status", status("too old"), Some(""));
        let s: Status = decode(&body, &["Status"]).expect("status");
        assert_eq!(s.message.as_deref(), Some("too old"));
        assert_eq!(s.reason.as_deref(), Some("Expired"));
        assert_eq!(
            s.metadata.and_then(|m| m.continue_).as_deref(),
            Some("next")
        );
    }

    #[test]
    fn the_media_type_is_recognised_with_or_without_parameters() {
        assert!(is_media_type(b"application/vnd.kubernetes.protobuf"));
        assert!(is_media_type(
            b"application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        ));
        assert!(!is_media_type(b"application/json"));
        assert!(!is_media_type(b"application/vnd.kubernetes"));
        assert!(!is_media_type(b"application/vnd.kubernetes.protobuf2"));
    }

    #[test]
    fn a_body_without_the_prefix_is_refused() {
        let body = envelope("Status", status("x"), None);
        let err = decode::<Status>(&body[4..], &["Status"]).expect_err("no magic");
        assert!(matches!(err, Error::NoMagic), "{err}");
        let err = decode::<Status>(b"{\"kind\":\"Status\"}", &["Status"]).expect_err("json");
        assert!(matches!(err, Error::NoMagic), "{err}");
    }

    #[test]
    fn another_kind_or_an_encoded_object_is_refused() {
        let err = decode::<Status>(&envelope("JobList", status("x"), None), &["PodList"])
            .expect_err("kind");
        assert_eq!(
            err.to_string(),
            "protobuf object of kind \"JobList\", expected PodList"
        );
        let err = decode::<Status>(&envelope("Status", status("x"), Some("gzip")), &["Status"])
            .expect_err("encoding");
        assert!(
            matches!(err, Error::Encoding(ref e) if e == "gzip"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_object_is_an_error_not_an_empty_one() {
        let mut body = envelope("Status", status("a message long enough"), None);
        body.truncate(body.len() - 5);
        assert!(matches!(
            decode::<Status>(&body, &["Status"]),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn zero_values_of_go_non_pointer_fields_are_absent() {
        assert_eq!(text(Some(String::new())), None);
        assert_eq!(text(Some("x".to_owned())), Some("x".to_owned()));
        assert_eq!(time(Some(Time { seconds: None })), None);
        assert_eq!(time(None), None);
        assert_eq!(
            time(Some(Time {
                seconds: Some(1_764_000_000)
            })),
            Some(MetaTime(
                jiff::Timestamp::from_second(1_764_000_000).expect("ts")
            ))
        );
        assert_eq!(nonzero(Some(0)), None);
        assert_eq!(nonzero(Some(2)), Some(2));
        assert_eq!(some(Vec::<String>::new()), None);
        assert_eq!(some(vec!["f".to_owned()]), Some(vec!["f".to_owned()]));
    }
}

//! `eks:DescribeCluster`: the cluster's status, API endpoint, certificate authority and
//! subnets, read once per cluster per run.

use aws_sdk_eks::types::ClusterStatus;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Error;
use crate::failure::aws;

/// What the reaper needs to know about an EKS cluster, from one `DescribeCluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The status as EKS reports it; only `ACTIVE` clusters are pruned.
    pub status: String,
    /// The API server URL, if EKS gave one.
    pub endpoint: Option<String>,
    /// The certificate authority (`certificateAuthority.data`: base64 of a PEM bundle).
    pub ca_data: Option<String>,
    /// The cluster's own subnets (`resourcesVpcConfig.subnetIds`).
    pub subnet_ids: Vec<String>,
    /// The cluster's tags.
    pub tags: std::collections::HashMap<String, String>,
    /// Its ARN (`arn:aws:eks:REGION:ACCOUNT:cluster/NAME`): the cluster's identity, as a
    /// name is not one (the same name exists in other accounts and Regions).
    pub arn: Option<String>,
}

impl Cluster {
    /// Whether the cluster is `ACTIVE`.
    pub fn is_active(&self) -> bool {
        self.status == ClusterStatus::Active.as_str()
    }

    /// How to reach the API server: the endpoint and the CA certificates, checked.
    pub fn endpoint(&self) -> Result<Endpoint, Error> {
        let url = self
            .endpoint
            .clone()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| Error::ClusterData {
                field: "cluster.endpoint",
                reason: "missing".to_owned(),
            })?;
        let ca = self.ca_data.as_deref().ok_or_else(|| Error::ClusterData {
            field: "cluster.certificateAuthority.data",
            reason: "missing".to_owned(),
        })?;
        Ok(Endpoint {
            url,
            ca_der: ca_to_der(ca)?,
        })
    }
}

/// How to reach an active cluster's API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://...` API server URL.
    pub url: String,
    /// The cluster CA certificates, DER-encoded.
    pub ca_der: Vec<Vec<u8>>,
}

/// Calls `DescribeCluster` for `cluster`.
pub async fn describe(eks: &aws_sdk_eks::Client, cluster: &str) -> Result<Cluster, Error> {
    let out = eks
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .map_err(|e| {
            let region = eks.config().region().map_or("", |r| r.as_ref());
            let call = aws::Call {
                action: "eks:DescribeCluster",
                cluster,
                region,
            };
            let (kind, message) = aws::classify(call, &e);
            Error::Describe {
                kind,
                message,
                source: Box::new(e.into()),
            }
        })?;
    let c = out.cluster.ok_or_else(|| Error::ClusterData {
        field: "cluster",
        reason: "DescribeCluster returned no cluster".to_owned(),
    })?;
    Ok(Cluster {
        status: c
            .status
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        endpoint: c.endpoint,
        ca_data: c.certificate_authority.and_then(|ca| ca.data),
        subnet_ids: c
            .resources_vpc_config
            .map(|v| v.subnet_ids.unwrap_or_default())
            .unwrap_or_default(),
        tags: c.tags.unwrap_or_default(),
        arn: c.arn,
    })
}

/// Converts EKS's `certificateAuthority.data` (base64 of a PEM bundle) to DER certificates.
pub fn ca_to_der(data: &str) -> Result<Vec<Vec<u8>>, Error> {
    const FIELD: &str = "cluster.certificateAuthority.data";
    // Quote the start of the value: enough to recognise it, never a whole blob.
    let start: String = data.chars().take(24).collect();
    let ellipsis = if data.chars().count() > 24 { "..." } else { "" };
    let bad = |reason: &str| Error::ClusterData {
        field: FIELD,
        reason: format!("{reason} (value {start:?}{ellipsis})"),
    };
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let pem = STANDARD.decode(compact).map_err(|_| bad("not base64"))?;
    let pem = String::from_utf8(pem).map_err(|_| bad("not a PEM certificate bundle"))?;
    let mut certs = Vec::new();
    let mut rest = pem.as_str();
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let end = after
            .find(END)
            .ok_or_else(|| bad("PEM certificate without END line"))?;
        let body: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| bad("PEM certificate body is not base64"))?;
        certs.push(der);
        rest = &after[end + END.len()..];
    }
    if certs.is_empty() {
        return Err(bad("not a PEM certificate bundle"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn pem_bundle_becomes_one_der_per_certificate() {
        let pem = "-----BEGIN CERTIFICATE-----\nAQID\nBA==\n-----END CERTIFICATE-----\n\
                   -----BEGIN CERTIFICATE-----\nBQY=\n-----END CERTIFICATE-----\n";
        let ders = ca_to_der(&b64(pem)).expect("valid");
        assert_eq!(ders, vec![vec![1, 2, 3, 4], vec![5, 6]]);
    }

    #[test]
    fn ca_that_is_not_pem_is_an_error_naming_the_field() {
        let e = ca_to_der(&b64("hello")).expect_err("not pem");
        assert!(e.to_string().contains("certificateAuthority.data"), "{e}");
        assert!(e.to_string().contains("aGVsbG8="), "{e}");
        let e = ca_to_der("%%%").expect_err("not base64");
        assert!(e.to_string().contains("certificateAuthority.data"), "{e}");
    }
}

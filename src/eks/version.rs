//! The Kubernetes versions eks-reaper supports, and the check of a cluster's `GET /version`
//! against them: read once per cluster when connecting (`super::connect`).
//!
//! The floor is the oldest minor Amazon EKS still supports, extended support included, and
//! the top is the newest the testbed runs. Both ends are tested (`scripts/matrix`: the
//! testbed's suites and the demo on each). As of 2026-12-07 (AWS's "Amazon EKS Kubernetes
//! release calendar"): 1.32 is the oldest, in extended support until 2027-03-23; 1.36 the
//! newest on EKS, and CI runs 1.37. Below the floor a cluster fails
//! ([`Unsupported`], the report's `UnsupportedVersion`): the policy reads Job and Pod fields
//! whose meaning older releases do not share, and the shipped admission policy and
//! FlowSchema need their v1 APIs. Above the top it is only a warning: Kubernetes keeps the
//! v1 APIs it serves, and EKS ships minors after upstream does.

use std::fmt;

/// A Kubernetes `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Minor {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The oldest Kubernetes minor supported: the oldest Amazon EKS supports (1.32, extended
/// support until 2027-03-23).
pub const OLDEST_SUPPORTED: Minor = Minor {
    major: 1,
    minor: 32,
};

/// The newest Kubernetes minor tested (the testbed's default control plane).
pub const NEWEST_TESTED: Minor = Minor {
    major: 1,
    minor: 37,
};

/// What the API server says it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// `gitVersion` as served (`v1.32.9-eks-113cf36`), or `major.minor` when it is empty.
    pub git_version: String,
    /// Its major and minor.
    pub minor: Minor,
}

/// A cluster whose Kubernetes is older than eks-reaper supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the API server runs Kubernetes {version}, older than eks-reaper supports ({range}); \
     upgrade the cluster to {OLDEST_SUPPORTED} or later"
)]
pub struct Unsupported {
    /// The server's `gitVersion`.
    pub version: String,
    /// The supported range, as [`range`] writes it.
    pub range: String,
}

/// The supported range in words: `1.32 to 1.37`.
pub fn range() -> String {
    format!("{OLDEST_SUPPORTED} to {NEWEST_TESTED}")
}

/// Parses `/version`'s `gitVersion` (`v1.32.9-eks-113cf36`); when that says nothing usable
/// (empty, or an unstamped build's `v0.0.0-master`), its `major` and `minor` fields (EKS has
/// served minors like `32+`). `None`: no version, nothing to check.
pub fn parse(git_version: &str, major: &str, minor: &str) -> Option<ServerVersion> {
    let from_git = git_version
        .strip_prefix('v')
        .and_then(|rest| {
            let mut parts = rest.splitn(3, '.');
            Some((parts.next()?, parts.next()?))
        })
        .and_then(|(major, minor)| numbers(major, minor))
        .filter(|m| m.major >= 1);
    let parsed = from_git.or_else(|| numbers(major, minor))?;
    let git_version = if git_version.is_empty() {
        parsed.to_string()
    } else {
        git_version.to_owned()
    };
    Some(ServerVersion {
        git_version,
        minor: parsed,
    })
}

/// `major` and `minor` as numbers: digits only, but a trailing `+` on the minor is accepted.
fn numbers(major: &str, minor: &str) -> Option<Minor> {
    let minor = minor.strip_suffix('+').unwrap_or(minor);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some(Minor {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

/// Checks a server's version: `Err` below [`OLDEST_SUPPORTED`]; `Ok(Some(warning))` above
/// [`NEWEST_TESTED`]; `Ok(None)` inside the range.
pub fn check(server: &ServerVersion) -> Result<Option<String>, Unsupported> {
    if server.minor < OLDEST_SUPPORTED {
        return Err(Unsupported {
            version: server.git_version.clone(),
            range: range(),
        });
    }
    if server.minor > NEWEST_TESTED {
        return Ok(Some(format!(
            "the API server runs Kubernetes {}, newer than eks-reaper was tested on ({}); \
             it should work, as Kubernetes keeps the v1 APIs it reads, but check for a newer \
             eks-reaper",
            server.git_version,
            range()
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(git: &str) -> ServerVersion {
        parse(git, "", "").expect("parses")
    }

    #[test]
    fn eks_git_version_parses_to_its_minor() {
        let s = parse("v1.32.9-eks-113cf36", "1", "32+").expect("parses");
        assert_eq!(
            s.minor,
            Minor {
                major: 1,
                minor: 32
            }
        );
        assert_eq!(s.git_version, "v1.32.9-eks-113cf36");
    }

    #[test]
    fn upstream_release_parses() {
        assert_eq!(
            v("v1.37.2").minor,
            Minor {
                major: 1,
                minor: 37
            }
        );
    }

    #[test]
    fn unusable_git_version_falls_back_to_major_and_minor() {
        // (gitVersion, major, minor) → (minor read, gitVersion reported, when checked)
        let cases = [
            (
                ("v0.0.0-master+$Format:%H$", "1", "33+"),
                (33, Some("v0.0.0-master+$Format:%H$")),
            ),
            (("", "1", "33+"), (33, Some("1.33"))),
            (("unknown", "1", "34"), (34, None)),
        ];
        for ((git, major, minor), (want_minor, want_git)) in cases {
            let s = parse(git, major, minor).expect("fields");
            let want = Minor {
                major: 1,
                minor: want_minor,
            };
            assert_eq!(s.minor, want, "{git:?}");
            if let Some(want_git) = want_git {
                assert_eq!(s.git_version, want_git, "{git:?}");
            }
        }
    }

    #[test]
    fn nothing_usable_is_no_version() {
        assert_eq!(parse("", "", ""), None);
        assert_eq!(parse("garbage", "one", "x"), None);
        assert_eq!(parse("v1", "", ""), None);
        // An unstamped build says nothing about its release: not checked, not failed.
        assert_eq!(parse("v0.0.0-master+$Format:%H$", "", ""), None);
    }

    #[test]
    fn oldest_supported_and_newest_tested_pass_without_warning() {
        assert_eq!(check(&v("v1.32.13")), Ok(None));
        assert_eq!(check(&v("v1.37.2")), Ok(None));
        assert_eq!(check(&v("v1.34.0-eks-1")), Ok(None));
    }

    #[test]
    fn version_below_the_floor_fails_naming_it_and_the_range() {
        let e = check(&v("v1.31.14-eks-abc")).expect_err("below the floor");
        assert_eq!(
            e.to_string(),
            "the API server runs Kubernetes v1.31.14-eks-abc, older than eks-reaper supports \
             (1.32 to 1.37); upgrade the cluster to 1.32 or later"
        );
    }

    #[test]
    fn version_above_the_newest_tested_is_a_warning_not_a_failure() {
        let w = check(&v("v1.38.0"))
            .expect("not a failure")
            .expect("a warning");
        assert!(w.contains("v1.38.0") && w.contains("1.32 to 1.37"), "{w}");
    }

    #[test]
    fn minors_compare_numerically() {
        assert!(
            Minor { major: 1, minor: 9 }
                < Minor {
                    major: 1,
                    minor: 32
                }
        );
        assert!(Minor { major: 2, minor: 0 } > NEWEST_TESTED);
    }
}

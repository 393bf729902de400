//! What tells one cluster from every other of a fleet: its account, its Region and its
//! name. The same name exists in many accounts and Regions, so every place that keys by
//! cluster (the FIFO message group, the metric dimensions, an alarm's contributor, an
//! emergency run) keys by all three.

/// The account of a cluster reached with the function's own credentials (no role to
/// assume): the account the function runs in, which publishes the metrics and owns the
/// queue.
pub const OWN_ACCOUNT: &str = "self";

/// The account of a cluster: the role's account (`arn:aws:iam::ACCOUNT:role/…`) when one is
/// assumed for it, else [`OWN_ACCOUNT`].
pub fn account(role_arn: Option<&str>) -> &str {
    role_arn
        .and_then(|arn| arn.split(':').nth(4))
        .filter(|a| !a.is_empty())
        .unwrap_or(OWN_ACCOUNT)
}

/// `account/region/name`.
///
/// It is the FIFO `MessageGroupId`, which SQS caps at 128 characters: 12 (account) + 1 +
/// 14 (the longest Region name) + 1 + 100 (EKS's longest cluster name) = 128.
pub fn of(name: &str, region: &str, role_arn: Option<&str>) -> String {
    format!("{}/{region}/{name}", account(role_arn))
}

/// How a person reads a cluster: `name`, `name@region`, with ` (account …)` when the account
/// is given.
pub fn label(name: &str, region: Option<&str>, account: Option<&str>) -> String {
    let mut out = name.to_owned();
    if let Some(region) = region {
        out.push('@');
        out.push_str(region);
    }
    if let Some(account) = account {
        out.push_str(" (account ");
        out.push_str(account);
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_the_role_s_or_the_function_s_own() {
        assert_eq!(
            account(Some("arn:aws:iam::111111111111:role/eks-reaper")),
            "111111111111"
        );
        assert_eq!(account(None), OWN_ACCOUNT);
        assert_eq!(account(Some("not-an-arn")), OWN_ACCOUNT);
    }

    #[test]
    fn the_same_name_in_two_accounts_or_regions_is_two_identities() {
        let a = of(
            "prod",
            "eu-west-1",
            Some("arn:aws:iam::111111111111:role/r"),
        );
        let b = of(
            "prod",
            "eu-west-1",
            Some("arn:aws:iam::222222222222:role/r"),
        );
        let c = of(
            "prod",
            "us-east-1",
            Some("arn:aws:iam::111111111111:role/r"),
        );
        let own = of("prod", "eu-west-1", None);
        assert_eq!(a, "111111111111/eu-west-1/prod");
        assert_eq!(own, "self/eu-west-1/prod");
        assert_eq!(
            std::collections::BTreeSet::from([&a, &b, &c, &own]).len(),
            4
        );
    }

    #[test]
    fn a_label_gives_what_is_known() {
        assert_eq!(label("prod", None, None), "prod");
        assert_eq!(label("prod", Some("eu-west-1"), None), "prod@eu-west-1");
        assert_eq!(
            label("prod", Some("eu-west-1"), Some("self")),
            "prod@eu-west-1 (account self)"
        );
    }
}

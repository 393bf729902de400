//! The concurrency a cluster's deletions ran at, as the report shows it.

use std::collections::BTreeMap;

use serde::Serialize;

/// `(settled, min, max)` of requests counted by the limit they were sent under: the
/// limit most went out under, the lowest and the highest; all 0 when none was sent.
pub fn spread(sent_at: &BTreeMap<usize, u64>) -> (usize, usize, usize) {
    let min = sent_at.keys().next().copied().unwrap_or(0);
    let max = sent_at.keys().next_back().copied().unwrap_or(0);
    (settled(sent_at), min, max)
}

/// The limit most requests were sent under (the higher one on a tie); 0 when none was sent.
fn settled(sent_at: &BTreeMap<usize, u64>) -> usize {
    sent_at
        .iter()
        .max_by_key(|(limit, n)| (**n, **limit))
        .map_or(0, |(limit, _)| *limit)
}

/// The concurrency a cluster's deletions ran at.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrencyReport {
    /// `REAPER_CONCURRENCY`: the limit never went above it.
    pub ceiling: usize,
    /// The limit most DELETEs were sent under (0: none sent).
    pub settled: usize,
    /// Lowest limit a DELETE was sent under (slow start begins at 1).
    pub min: usize,
    /// Highest limit a DELETE was sent under.
    pub max: usize,
    /// Decreases on a 429 or a DELETE with no answer in time.
    pub decreases_throttled: u64,
    /// Decreases on rising latency.
    pub decreases_latency: u64,
    /// `REAPER_DRAIN_LATENCY_TARGET`: the factor of the baseline the median DELETE latency
    /// is kept within (`null`: off).
    pub latency_target: Option<f64>,
    /// The baseline the target multiplies: the lowest window median at low concurrency, in
    /// milliseconds (`null`: off, or no window judged).
    pub baseline_ms: Option<f64>,
    /// DELETEs sent, by the limit in force (for merging clusters; not serialised).
    #[serde(skip)]
    pub sent_at: BTreeMap<usize, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_is_the_limit_most_requests_went_out_under() {
        let sent = BTreeMap::from([(1, 8), (2, 16), (12, 900), (13, 40)]);
        assert_eq!(spread(&sent), (12, 1, 13));
        assert_eq!(spread(&BTreeMap::from([(3, 5), (7, 5)])), (7, 3, 7));
        assert_eq!(spread(&BTreeMap::new()), (0, 0, 0));
    }
}

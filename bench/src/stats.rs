//! Medians and percentiles of samples: the machines are shared and noisy, so the report gives
//! medians and high percentiles, never means or single runs.

use std::time::Duration;

/// Samples of one measurement, sorted.
#[derive(Debug, Clone)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// From durations, in milliseconds.
    pub fn millis(durations: impl IntoIterator<Item = Duration>) -> Self {
        Self::from_values(durations.into_iter().map(|d| d.as_secs_f64() * 1e3))
    }

    /// From plain values.
    pub fn from_values(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().collect();
        v.sort_by(f64::total_cmp);
        Self(v)
    }

    /// The `p`-th percentile (0–100), nearest rank; 0 for no samples.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    /// The median.
    pub fn median(&self) -> f64 {
        self.percentile(50.0)
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Samples::from_values((1..=100).map(f64::from));
        assert_eq!(s.median(), 50.0);
        assert_eq!(s.percentile(99.0), 99.0);
        assert_eq!(s.percentile(100.0), 100.0);
        assert_eq!(Samples::from_values([3.0, 1.0, 2.0]).median(), 2.0);
        assert_eq!(Samples::from_values([]).median(), 0.0);
    }
}

//! Order statistics over repeated samples. Medians, not means: on a shared
//! machine a single run can be slowed by another tenant's build, and one
//! outlier must not move the figure.

/// The median of `xs` (mean of the two middle values for an even count).
pub fn median(xs: &[f64]) -> f64 {
    quantile(xs, 0.5)
}

/// Linear-interpolated quantile `q` in 0..=1; NaN for no samples.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Interquartile range relative to the median: the run-to-run noise of
/// one configuration.
pub fn rel_iqr(xs: &[f64]) -> f64 {
    let m = median(xs);
    if m == 0.0 || m.is_nan() {
        return f64::NAN;
    }
    (quantile(xs, 0.75) - quantile(xs, 0.25)) / m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_and_outlier() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[1.0, 1.0, 1000.0]), 1.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn quantiles_interpolate() {
        let xs = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(quantile(&xs, 0.25), 20.0);
        assert_eq!(quantile(&xs, 0.0), 10.0);
        assert_eq!(quantile(&xs, 1.0), 50.0);
        assert!((rel_iqr(&xs) - 20.0 / 30.0).abs() < 1e-12);
    }
}

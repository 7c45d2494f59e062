//! The statistics behind `analyze compare`: Mann–Whitney U computed from
//! two latency histograms, and a two-proportion z-test for error rates.
//!
//! Mann–Whitney U from histograms: every value recorded in one histogram
//! bucket is a tie, so the two histograms' recorded buckets are walked
//! together in value order, each bucket value gets the mid-rank of its tied
//! group, and the normal approximation uses the tie-corrected variance. This
//! equals `scipy.stats.mannwhitneyu(x, y, method="asymptotic")` (with its
//! default continuity correction) on the bucket values, and costs
//! O(buckets), not O(requests).

use hdrhistogram::Histogram;

/// The result of a Mann–Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U statistic of the first sample (scipy's `statistic`).
    pub u: f64,
    /// Two-sided p-value (normal approximation, tie and continuity
    /// corrected). 1 when either side is empty or all values tie.
    pub p_value: f64,
    /// Size of the first sample.
    pub n1: u64,
    /// Size of the second sample.
    pub n2: u64,
}

/// The recorded buckets of a histogram, in value order: what every
/// statistic here needs, extracted in one pass (walking a histogram's
/// bucket array is the expensive part; the recorded buckets are few).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    /// Highest value equivalent to each bucket (`value_iterated_to`).
    pub values: Vec<u64>,
    /// Middle value of each bucket (used for the mean, as HdrHistogram does).
    pub medians: Vec<u64>,
    /// Count in each bucket.
    pub counts: Vec<u64>,
    /// Lowest value equivalent to the first bucket (the 0th percentile).
    pub lowest: u64,
    /// Sum of `counts`.
    pub total: u64,
}

impl Buckets {
    /// Extracts the recorded buckets of `h`.
    pub fn from_histogram(h: &Histogram<u64>) -> Buckets {
        let mut b = Buckets::default();
        for v in h.iter_recorded() {
            let value = v.value_iterated_to();
            if b.values.is_empty() {
                b.lowest = h.lowest_equivalent(value);
            }
            b.values.push(value);
            b.medians.push(h.median_equivalent(value));
            b.counts.push(v.count_at_value());
            b.total += v.count_at_value();
        }
        b
    }

    /// The buckets of several histograms of one layout added together.
    pub fn merged(parts: &[&Buckets]) -> Buckets {
        let mut out = match parts {
            [] => return Buckets::default(),
            [one] => return (*one).clone(),
            [first, ..] => (*first).clone(),
        };
        for p in &parts[1..] {
            let mut m = Buckets {
                lowest: if out.total == 0 {
                    p.lowest
                } else if p.total == 0 {
                    out.lowest
                } else {
                    out.lowest.min(p.lowest)
                },
                total: out.total + p.total,
                ..Buckets::default()
            };
            let (mut i, mut j) = (0, 0);
            while i < out.values.len() || j < p.values.len() {
                let take_left =
                    j >= p.values.len() || (i < out.values.len() && out.values[i] <= p.values[j]);
                let same =
                    i < out.values.len() && j < p.values.len() && out.values[i] == p.values[j];
                if same {
                    m.values.push(out.values[i]);
                    m.medians.push(out.medians[i]);
                    m.counts.push(out.counts[i] + p.counts[j]);
                    i += 1;
                    j += 1;
                } else if take_left {
                    m.values.push(out.values[i]);
                    m.medians.push(out.medians[i]);
                    m.counts.push(out.counts[i]);
                    i += 1;
                } else {
                    m.values.push(p.values[j]);
                    m.medians.push(p.medians[j]);
                    m.counts.push(p.counts[j]);
                    j += 1;
                }
            }
            out = m;
        }
        out
    }

    /// `value_at_quantile(q)` of the histogram for every q of an ascending
    /// list (0 when empty).
    pub fn quantiles(&self, ascending: &[f64]) -> Vec<u64> {
        let targets: Vec<u64> = ascending
            .iter()
            .map(|q| ((q.min(1.0) * self.total as f64).ceil() as u64).max(1))
            .collect();
        let mut out = vec![0; ascending.len()];
        let mut next = 0;
        let mut seen = 0u64;
        for (k, (&value, &count)) in self.values.iter().zip(&self.counts).enumerate() {
            seen += count;
            while next < targets.len() && seen >= targets[next] {
                out[next] = if ascending[next] == 0.0 && k == 0 {
                    self.lowest
                } else {
                    value
                };
                next += 1;
            }
            if next == targets.len() {
                break;
            }
        }
        out
    }

    /// The histogram's mean (same arithmetic as `Histogram::mean`).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let n = self.total as f64;
        self.medians
            .iter()
            .zip(&self.counts)
            .fold(0.0, |acc, (&m, &c)| acc + m as f64 * c as f64 / n)
    }

    /// Mean of the fastest `keep` fraction of the values (e.g. 0.99: the
    /// slowest 1 % left out). One stall of the machine during one run moves
    /// a plain mean by more than any regression, but not this.
    pub fn trimmed_mean(&self, keep: f64) -> f64 {
        let budget = (self.total as f64 * keep.clamp(0.0, 1.0)).ceil() as u64;
        if budget == 0 {
            return 0.0;
        }
        let (mut sum, mut taken) = (0.0, 0u64);
        for (&m, &c) in self.medians.iter().zip(&self.counts) {
            let take = c.min(budget - taken);
            sum += m as f64 * take as f64;
            taken += take;
            if taken == budget {
                break;
            }
        }
        sum / taken as f64
    }
}

/// Mann–Whitney U test of histogram `x` against histogram `y`, two-sided.
/// Both histograms must have the same bucket layout (as all histograms made
/// by [`crate::report::new_histogram`] do).
pub fn mann_whitney_u(x: &Histogram<u64>, y: &Histogram<u64>) -> MannWhitney {
    mann_whitney_u_buckets(&Buckets::from_histogram(x), &Buckets::from_histogram(y))
}

/// [`mann_whitney_u`] on already extracted buckets.
pub fn mann_whitney_u_buckets(x: &Buckets, y: &Buckets) -> MannWhitney {
    let (n1, n2) = (x.total, y.total);
    if n1 == 0 || n2 == 0 {
        return MannWhitney {
            u: 0.0,
            p_value: 1.0,
            n1,
            n2,
        };
    }
    let (mut i, mut j) = (0, 0);
    let mut below = 0f64; // values ranked so far
    let mut rank_sum_x = 0f64;
    let mut tie_term = 0f64; // Σ (t³ − t)
    while i < x.values.len() || j < y.values.len() {
        let (cx, cy) = match (x.values.get(i), y.values.get(j)) {
            (Some(vx), Some(vy)) if vx == vy => {
                i += 1;
                j += 1;
                (x.counts[i - 1], y.counts[j - 1])
            }
            (Some(vx), Some(vy)) if vx < vy => {
                i += 1;
                (x.counts[i - 1], 0)
            }
            (Some(_), None) => {
                i += 1;
                (x.counts[i - 1], 0)
            }
            _ => {
                j += 1;
                (0, y.counts[j - 1])
            }
        };
        let t = (cx + cy) as f64;
        let mid_rank = below + (t + 1.0) / 2.0;
        rank_sum_x += cx as f64 * mid_rank;
        tie_term += t * t * t - t;
        below += t;
    }
    let (a, b) = (n1 as f64, n2 as f64);
    let n = a + b;
    let u1 = rank_sum_x - a * (a + 1.0) / 2.0;
    let u2 = a * b - u1;
    let mu = a * b / 2.0;
    let var = a * b / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let p_value = if var <= 0.0 {
        1.0
    } else {
        let z = (u1.max(u2) - mu - 0.5) / var.sqrt();
        (2.0 * normal_sf(z)).clamp(0.0, 1.0)
    };
    MannWhitney {
        u: u1,
        p_value,
        n1,
        n2,
    }
}

/// Two-sided two-proportion z-test (pooled variance): `k1` of `n1` against
/// `k2` of `n2`. Returns 1 when there is nothing to compare.
pub fn two_proportion_p(k1: u64, n1: u64, k2: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (p1, p2) = (k1 as f64 / n1 as f64, k2 as f64 / n2 as f64);
    let pooled = (k1 + k2) as f64 / (n1 + n2) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se == 0.0 {
        return 1.0;
    }
    let z = ((p1 - p2) / se).abs();
    (2.0 * normal_sf(z)).clamp(0.0, 1.0)
}

/// Upper tail of the standard normal distribution, P(Z > z).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function, to about 1e-14 relative accuracy.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        return 1.0 - erf_series(x);
    }
    if x > 27.0 {
        return 0.0; // below the smallest positive f64
    }
    // Continued fraction erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))),
    // evaluated backwards; 120 terms converge to double precision for x ≥ 2.
    let mut f = x;
    for k in (1..=120).rev() {
        f = x + (k as f64 / 2.0) / f;
    }
    (-x * x).exp() / (std::f64::consts::PI.sqrt() * f)
}

/// erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)): all terms
/// positive, so no cancellation.
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= 2.0 * x2 / (2 * n + 1) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x2).exp() * sum
}

/// Upper tail of Student's t distribution with `df` degrees of freedom,
/// P(T > t).
pub fn student_t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    let tail = 0.5 * regularized_beta(df / (df + t * t), df / 2.0, 0.5);
    if t >= 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

/// The two-sided critical value of Student's t: the `t` with
/// P(|T| > t) = `alpha`.
pub fn t_critical(alpha: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    // Bounded doubling: P(|T| > 1e12) is below any alpha used here.
    for _ in 0..40 {
        if 2.0 * student_t_sf(hi, df) <= alpha {
            break;
        }
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if 2.0 * student_t_sf(mid, df) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b).
fn regularized_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2);
    // otherwise use the symmetry I_x(a, b) = 1 − I_{1−x}(b, a).
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_fraction(1.0 - x, b, a) / b
    }
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::new_histogram;

    #[test]
    fn erfc_matches_known_values() {
        // Reference values (Abramowitz & Stegun, and mpmath).
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028513),
            (1.9, 0.007209570764742524),
            (2.0, 0.004677734981047266),
            (3.0, 2.209049699858544e-05),
            (5.0, 1.537_459_794_428_035e-12),
            (10.0, 2.088487583762545e-45),
            (-1.0, 1.8427007929497148),
        ] {
            let got = erfc(x);
            assert!(
                ((got - want) / want).abs() < 1e-12,
                "erfc({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn identical_histograms_are_not_different() {
        let mut h = new_histogram();
        for v in 1..1000 {
            h.record(v * 7).unwrap();
        }
        let r = mann_whitney_u(&h, &h);
        assert_eq!(r.u, (999.0 * 999.0) / 2.0);
        assert!(r.p_value > 0.99, "{r:?}");
    }

    #[test]
    fn shifted_histograms_are_different() {
        let (mut a, mut b) = (new_histogram(), new_histogram());
        for v in 0..500u64 {
            a.record(10_000 + v * 10).unwrap();
            b.record(11_000 + v * 10).unwrap();
        }
        let r = mann_whitney_u(&a, &b);
        assert!(r.p_value < 1e-6, "{r:?}");
        assert!(r.u < 500.0 * 500.0 / 2.0);
    }

    #[test]
    fn student_t_matches_scipy() {
        // scipy.stats.t.sf and t.isf.
        for (df, x, want) in [
            (1.0, 1.0, 0.25000000000000006),
            (2.0, 3.0, 0.04773298313335456),
            (4.0, 4.604, 0.005000357218007836),
            (8.0, 2.5, 0.01847101885681206),
            (30.0, 1.0, 0.1626543077130151),
            (100.0, 3.5, 0.0003482138586781344),
        ] {
            let got = student_t_sf(x, df);
            assert!(
                ((got - want) / want).abs() < 1e-9,
                "t.sf({x}, {df}) = {got}, want {want}"
            );
        }
        for (alpha, df, want) in [
            (0.01, 4.0, 4.604094871349993),
            (0.01 / 13.0, 4.0, 9.219211764159),
            (0.001, 2.0, 31.59905457644362),
            (0.05, 10.0, 2.2281388519862753),
        ] {
            let got = t_critical(alpha, df);
            assert!(
                ((got - want) / want).abs() < 1e-9,
                "t.isf({alpha}/2, {df}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn buckets_match_histogram_arithmetic() {
        let (mut a, mut b) = (new_histogram(), new_histogram());
        let mut x = 7u64;
        for i in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = 1 + (x >> 40) % 5_000_000;
            if i % 3 == 0 {
                b.record(v).unwrap()
            } else {
                a.record(v).unwrap()
            }
        }
        let qs = [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 0.99999, 1.0];
        let ba = Buckets::from_histogram(&a);
        for (q, v) in qs.iter().zip(ba.quantiles(&qs)) {
            assert_eq!(v, a.value_at_quantile(*q), "q = {q}");
        }
        assert_eq!(ba.mean(), a.mean());
        let mut sum = a.clone();
        sum.add(&b).unwrap();
        let merged = Buckets::merged(&[&ba, &Buckets::from_histogram(&b)]);
        assert_eq!(merged, Buckets::from_histogram(&sum));
    }

    proptest::proptest! {
        #[test]
        fn merged_buckets_equal_added_histograms(
            a in proptest::collection::vec(1u64..10_000_000, 0..300),
            b in proptest::collection::vec(1u64..10_000_000, 0..300),
        ) {
            let (mut ha, mut hb) = (new_histogram(), new_histogram());
            a.iter().for_each(|v| ha.record(*v).unwrap());
            b.iter().for_each(|v| hb.record(*v).unwrap());
            let merged = Buckets::merged(&[&Buckets::from_histogram(&ha), &Buckets::from_histogram(&hb)]);
            ha.add(&hb).unwrap();
            let direct = Buckets::from_histogram(&ha);
            proptest::prop_assert_eq!(&merged, &direct);
            let qs = [0.0, 0.5, 0.95, 0.99, 1.0];
            let want: Vec<u64> = qs.iter().map(|q| if ha.is_empty() { 0 } else { ha.value_at_quantile(*q) }).collect();
            proptest::prop_assert_eq!(merged.quantiles(&qs), want);
        }
    }

    #[test]
    fn proportions() {
        assert_eq!(two_proportion_p(0, 100, 0, 100), 1.0);
        assert!(two_proportion_p(0, 1000, 20, 1000) < 1e-4);
        assert!(two_proportion_p(10, 1000, 12, 1000) > 0.5);
    }
}

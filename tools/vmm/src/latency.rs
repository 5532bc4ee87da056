// SPDX-License-Identifier: GPL-2.0
//! Per-page latency of the page server: a fixed delay, or one drawn from a
//! distribution with a seeded generator, so that a run can be repeated.
//!
//! Spec syntax (`--page-latency`): `DUR`, `fixed:DUR`, `uniform:MIN,MAX`,
//! `exp:MEAN` (exponential, the memoryless delay of a busy link). `DUR` is a
//! decimal number with a unit `ns`, `us`, `ms` or `s`; `0` needs no unit.
//! A list of specs (`--remote-latency`) separates them with commas:
//! `0.2ms,1ms,uniform:5ms,15ms,exp:10ms` (a `uniform:` spec takes the next
//! item as its MAX).

use crate::error::Error;
use crate::error::Result;

/// How long the page server waits before it serves one page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Every page waits this many nanoseconds.
    Fixed(u64),
    /// Uniform between the two bounds (nanoseconds, inclusive).
    Uniform(u64, u64),
    /// Exponential with this mean (nanoseconds).
    Exponential(u64),
}

impl Latency {
    /// Parses a `--page-latency` spec.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |why: &str| Error::new(format!("bad page latency '{spec}': {why}"));
        let (kind, rest) = match spec.split_once(':') {
            Some((k, r)) => (k, r),
            None => ("fixed", spec),
        };
        match kind {
            "fixed" => Ok(Latency::Fixed(parse_duration_ns(rest).map_err(|e| bad(&e))?)),
            "uniform" => {
                let (lo, hi) = rest
                    .split_once(',')
                    .ok_or_else(|| bad("uniform needs MIN,MAX"))?;
                let lo = parse_duration_ns(lo).map_err(|e| bad(&e))?;
                let hi = parse_duration_ns(hi).map_err(|e| bad(&e))?;
                if lo > hi {
                    return Err(bad("MIN is above MAX"));
                }
                Ok(Latency::Uniform(lo, hi))
            }
            "exp" => Ok(Latency::Exponential(parse_duration_ns(rest).map_err(|e| bad(&e))?)),
            _ => Err(bad("expected DUR, fixed:DUR, uniform:MIN,MAX or exp:MEAN")),
        }
    }

    /// Parses a comma-separated list of specs (at least one). Each item is
    /// a spec, except that `uniform:MIN` takes the next item as its `,MAX`.
    pub fn parse_list(list: &str) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        let mut items = list.split(',');
        while let Some(item) = items.next() {
            let item = item.trim();
            if item.is_empty() {
                return Err(Error::new(format!("bad latency list '{list}': an empty item")));
            }
            let spec = if item.starts_with("uniform:") {
                let max = items
                    .next()
                    .ok_or_else(|| Error::new(format!("bad latency list '{list}': '{item}' needs ,MAX")))?;
                format!("{item},{}", max.trim())
            } else {
                item.to_owned()
            };
            out.push(Latency::parse(&spec)?);
        }
        Ok(out)
    }

    /// The expected value, in nanoseconds.
    pub fn mean_ns(&self) -> u64 {
        match *self {
            Latency::Fixed(d) | Latency::Exponential(d) => d,
            Latency::Uniform(lo, hi) => lo + (hi - lo) / 2,
        }
    }

    /// Draws one delay, in nanoseconds.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform(lo, hi) => {
                let span = hi - lo;
                if span == u64::MAX {
                    rng.next_u64()
                } else {
                    lo + rng.below(span + 1)
                }
            }
            Latency::Exponential(mean) => {
                // Inverse CDF; 1 - u is in (0, 1], so the log is finite.
                let u = rng.next_f64();
                let d = -(1.0 - u).ln() * mean as f64;
                // Cap at 1000 means: a tail longer than that only hangs a test.
                d.min(mean as f64 * 1000.0) as u64
            }
        }
    }
}

/// The latency after restore `n` (1 for the first): the `n`-th of `list`,
/// its last for later restores; `None` (keep the current one) if the list
/// is empty.
pub fn latency_of_restore(list: &[Latency], n: u64) -> Option<Latency> {
    let i = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
    list.get(i).or(list.last()).copied()
}

/// Parses `DUR` (see the module doc) into nanoseconds.
pub fn parse_duration_ns(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("'{s}' has no unit (ns, us, ms, s)"))?;
    let (num, unit) = s.split_at(split);
    let scale = match unit {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(format!("unknown unit '{unit}' (ns, us, ms, s)")),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{num}' is not a number"))?;
    let ns = value * scale;
    // An hour per page is beyond any useful experiment.
    if !(0.0..=3.6e12).contains(&ns) {
        return Err(format!("'{s}' is out of range (0 to 1 hour)"));
    }
    Ok(ns.round() as u64)
}

/// A small seeded generator (SplitMix64): reproducible, not cryptographic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, n)` for `n > 0`, without modulo bias; 0 for `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX - n + 1) % n;
        loop {
            let x = self.next_u64();
            if x <= zone {
                return x % n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration_ns("0"), Ok(0));
        assert_eq!(parse_duration_ns("250ns"), Ok(250));
        assert_eq!(parse_duration_ns("200us"), Ok(200_000));
        assert_eq!(parse_duration_ns("0.2ms"), Ok(200_000));
        assert_eq!(parse_duration_ns("10ms"), Ok(10_000_000));
        assert_eq!(parse_duration_ns("1s"), Ok(1_000_000_000));
        assert!(parse_duration_ns("10").is_err());
        assert!(parse_duration_ns("10 parsecs").is_err());
        assert!(parse_duration_ns("ms").is_err());
        assert!(parse_duration_ns("1.2.3ms").is_err());
        assert!(parse_duration_ns("2h").is_err());
        assert!(parse_duration_ns("4000s").is_err());
    }

    #[test]
    fn specs_parse() {
        assert_eq!(Latency::parse("1ms"), Ok(Latency::Fixed(1_000_000)));
        assert_eq!(Latency::parse("fixed:0"), Ok(Latency::Fixed(0)));
        assert_eq!(
            Latency::parse("uniform:100us,2ms"),
            Ok(Latency::Uniform(100_000, 2_000_000))
        );
        assert_eq!(Latency::parse("exp:1ms"), Ok(Latency::Exponential(1_000_000)));
        assert!(Latency::parse("uniform:2ms,1ms").is_err());
        assert!(Latency::parse("uniform:2ms").is_err());
        assert!(Latency::parse("gauss:1ms").is_err());
        assert!(Latency::parse("").is_err());
    }

    #[test]
    fn lists_parse() {
        assert_eq!(
            Latency::parse_list("0.2ms,1ms,10ms"),
            Ok(vec![Latency::Fixed(200_000), Latency::Fixed(1_000_000), Latency::Fixed(10_000_000)])
        );
        assert_eq!(Latency::parse_list("0"), Ok(vec![Latency::Fixed(0)]));
        assert_eq!(
            Latency::parse_list("uniform:1ms,2ms,exp:3ms, fixed:4ms"),
            Ok(vec![
                Latency::Uniform(1_000_000, 2_000_000),
                Latency::Exponential(3_000_000),
                Latency::Fixed(4_000_000)
            ])
        );
        for bad in ["", ",", "1ms,", ",1ms", "1ms,,2ms", "uniform:1ms", "1ms,uniform:2ms", "1ms,10"] {
            let e = Latency::parse_list(bad).expect_err(bad).to_string();
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(Latency::parse_list("1ms,10").unwrap_err().to_string().contains("no unit"));
    }

    #[test]
    fn each_restore_takes_its_latency_then_the_last() {
        let l = [Latency::Fixed(1), Latency::Fixed(2), Latency::Fixed(3)];
        assert_eq!(latency_of_restore(&l, 1), Some(Latency::Fixed(1)));
        assert_eq!(latency_of_restore(&l, 3), Some(Latency::Fixed(3)));
        assert_eq!(latency_of_restore(&l, 4), Some(Latency::Fixed(3)));
        assert_eq!(latency_of_restore(&l, u64::MAX), Some(Latency::Fixed(3)));
        assert_eq!(latency_of_restore(&[], 1), None);
    }

    #[test]
    fn same_seed_same_delays() {
        let l = Latency::Exponential(1_000_000);
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(l.sample(&mut a), l.sample(&mut b));
        }
        let mut c = Rng::new(8);
        let differs = (0..100).any(|_| l.sample(&mut a) != l.sample(&mut c));
        assert!(differs);
    }

    #[test]
    fn fixed_is_fixed() {
        let mut r = Rng::new(1);
        assert!((0..100).all(|_| Latency::Fixed(5).sample(&mut r) == 5));
    }

    #[test]
    fn uniform_stays_in_bounds_and_covers_them() {
        let l = Latency::Uniform(10, 13);
        let mut r = Rng::new(3);
        let mut seen = [false; 4];
        for _ in 0..1000 {
            let d = l.sample(&mut r);
            assert!((10..=13).contains(&d));
            seen[(d - 10) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(Latency::Uniform(0, u64::MAX).mean_ns(), u64::MAX / 2);
    }

    #[test]
    fn sample_means_match_the_spec() {
        let n = 200_000;
        for l in [Latency::Uniform(0, 2_000_000), Latency::Exponential(1_000_000)] {
            let mut r = Rng::new(42);
            let sum: u64 = (0..n).map(|_| l.sample(&mut r)).sum();
            let mean = sum as f64 / n as f64;
            let want = l.mean_ns() as f64;
            assert!((mean - want).abs() < want * 0.02, "{l:?}: mean {mean}, want {want}");
        }
    }

    #[test]
    fn exponential_has_the_right_shape() {
        // P(X > mean) = 1/e for an exponential.
        let l = Latency::Exponential(1000);
        let mut r = Rng::new(9);
        let n = 100_000;
        let above = (0..n).filter(|_| l.sample(&mut r) > 1000).count();
        let share = above as f64 / n as f64;
        assert!((share - (-1.0f64).exp()).abs() < 0.01, "share {share}");
    }

    #[test]
    fn below_is_unbiased_enough() {
        let mut r = Rng::new(5);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[r.below(3) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
        assert_eq!(r.below(0), 0);
    }
}

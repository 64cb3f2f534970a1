//! Placement: which stores a chunk's copies go to, by weighted rendezvous hashing.
//!
//! Every store gets a pseudo-random score for each chunk, derived from the chunk's hash and
//! the store's id, scaled by the store's weight; the chunk prefers stores in score order
//! (highest random weight, Thaler and Ravishankar 1996, in its weighted "logarithmic" form
//! `-w / ln(u)`). A store's share of first choices is proportional to its weight, and adding
//! or removing a store moves only the first choices that the new store wins or the removed
//! one held. The order is then rearranged so that copies spread over zones first.
//!
//! This module knows nothing of replica counts, store health, the network, HTTP or paths:
//! it turns a chunk hash and a list of candidates into an order, and the caller decides how
//! many to use and skips the ones that are down. It must give the same answer on every
//! machine of a cluster (x86_64, aarch64, armv7), since a director that disagreed would look
//! for chunks in the wrong places: see `score` and `ln_unit` for how.

use crate::hash::{Hash, Hasher};
use std::collections::BTreeMap;

/// Weight used in place of a zero, negative, NaN or infinite one. Such a store is never
/// excluded, only last in practice: a misconfigured weight must not make chunks unplaceable,
/// and excluding stores is the caller's decision (for instance a store marked draining).
pub const WEIGHT_MIN: f64 = 1e-9;

/// Terms of the atanh series in `ln_unit`: enough for full f64 precision (see there).
const LN_SERIES_TERMS: usize = 11;

/// A store a chunk may be placed on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate<'a> {
    /// The store's stable id: it seeds the store's scores, so renaming a store moves chunks.
    pub id: &'a str,
    /// Failure domain (a machine, a power strip, a room); copies spread over zones first.
    pub zone: &'a str,
    /// Relative capacity; see `WEIGHT_MIN` for weights that are not finite and positive.
    pub weight: f64,
}

/// All candidates ordered by preference for this chunk: weighted rendezvous score
/// score = -weight / ln(u) where u in (0,1) is derived from SHA-256(chunk hash bytes || store
/// id) (first 8 bytes as u64, mapped to (0,1) excluding 0 and 1).
///
/// Zone spreading: the order is rebuilt so that the first occurrence of each distinct zone
/// comes first in score order, i.e. walk the score-sorted list taking the best store of each
/// not-yet-used zone, then repeat for the remaining ones (so with N replicas, copies land in
/// distinct zones when at least N zones exist).
///
/// Returns indices into `candidates`, each exactly once.
pub fn order(chunk: &Hash, candidates: &[Candidate<'_>]) -> Vec<usize> {
    let scores: Vec<f64> = candidates.iter().map(|c| score(chunk, c)).collect();
    let mut by_score: Vec<usize> = (0..candidates.len()).collect();
    // Highest score first. Ties (equal f64 scores, which needs equal weights and a 52-bit
    // collision) are broken by id, then by index for duplicate ids, so the order never
    // depends on the sort algorithm or on the order the candidates were listed in.
    by_score.sort_by(|&a, &b| {
        scores[b]
            .total_cmp(&scores[a])
            .then_with(|| candidates[a].id.cmp(candidates[b].id))
            .then_with(|| a.cmp(&b))
    });
    spread_zones(&by_score, candidates)
}

/// Rearranges a score-sorted order into rounds: round 0 holds the best store of each zone,
/// round 1 the second best of each zone that has one, and so on; within a round, score
/// order is kept. A BTreeMap, not a HashMap, so nothing depends on iteration order (it is
/// only looked up, but this keeps the module free of randomised state).
fn spread_zones(by_score: &[usize], candidates: &[Candidate<'_>]) -> Vec<usize> {
    let mut seen_per_zone: BTreeMap<&str, usize> = BTreeMap::new();
    let mut keyed: Vec<(usize, usize)> = by_score
        .iter()
        .enumerate()
        .map(|(rank, &i)| {
            let seen = seen_per_zone.entry(candidates[i].zone).or_insert(0);
            let round = *seen;
            *seen += 1;
            (round, rank)
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, rank)| by_score[rank]).collect()
}

/// The store's weighted rendezvous score for this chunk: `-weight / ln(u)`, positive.
///
/// Why this is the same on every platform: `u` is exact (see `unit_from_bits`), `ln_unit`
/// uses only IEEE-754 basic operations, which are correctly rounded everywhere, and the
/// division is one more. Rust does not fuse multiply-adds on its own, and on the targets
/// we build for (x86_64 with SSE2, aarch64, armv7 with VFP) f64 arithmetic is plain IEEE
/// double. `f64::ln` is not used because it calls the platform's libm, whose last-bit
/// results differ between glibc, musl and FMA/non-FMA code paths.
fn score(chunk: &Hash, c: &Candidate<'_>) -> f64 {
    let weight = if c.weight.is_finite() && c.weight > 0.0 {
        c.weight
    } else {
        WEIGHT_MIN
    };
    let u = unit_from_bits(draw(chunk, c.id));
    -weight / ln_unit(u)
}

/// First 8 bytes (big-endian) of SHA-256(chunk hash bytes || store id). The chunk hash has
/// a fixed length, so the concatenation is unambiguous.
fn draw(chunk: &Hash, id: &str) -> u64 {
    let mut h = Hasher::new();
    h.update(&chunk.0);
    h.update(id.as_bytes());
    let digest = h.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.0[..8]);
    u64::from_be_bytes(first)
}

/// Maps 64 random bits to (0, 1), both ends excluded: the top 52 bits k give (k + 0.5) / 2^52.
/// Every step is exact (k + 0.5 needs 53 significant bits, and dividing by a power of two
/// only changes the exponent), so the result is in [2^-53, 1 - 2^-53] on every platform.
/// 53 bits would not do: k + 0.5 would then need 54 and could round up to 1.
fn unit_from_bits(bits: u64) -> f64 {
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
    ((bits >> 12) as f64 + 0.5) / TWO_POW_52
}

/// Natural logarithm of `x` in (0, 1), from +, -, *, / only, so that it gives the same bits
/// on every platform (see `score`). Always negative.
///
/// Writes x = m * 2^e with m in (sqrt(1/2), sqrt(2)], then ln x = e ln 2 + ln m, and
/// ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...) with s = (m - 1) / (m + 1). Here
/// |s| <= 0.1716, so s^2 <= 0.0295 and the 11th term is below 2^-53 of the first: full
/// precision, within a few ulp of the correctly rounded value.
fn ln_unit(x: f64) -> f64 {
    assert!(x > 0.0);
    assert!(x < 1.0);
    // x >= 2^-53 is normal, so its exponent field is the plain biased exponent.
    assert!(x.is_normal());
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i32 - 1023;
    // The significand with exponent 0: m in [1, 2).
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5; // exact
        e += 1;
    }
    // m - 1 is exact (Sterbenz: m is within a factor 2 of 1); it keeps ln of x near 1 exact
    // to the last bits instead of losing them to cancellation.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut series = 0.0;
    for k in (0..LN_SERIES_TERMS).rev() {
        series = series * s2 + 1.0 / (2 * k + 1) as f64;
    }
    2.0 * s * series + f64::from(e) * std::f64::consts::LN_2
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    fn hashes(n: u32) -> impl Iterator<Item = Hash> {
        (0..n).map(|i| Hash::of(&i.to_le_bytes()))
    }

    fn cand<'a>(id: &'a str, zone: &'a str, weight: f64) -> Candidate<'a> {
        Candidate { id, zone, weight }
    }

    fn first_counts(candidates: &[Candidate<'_>], n: u32) -> Vec<usize> {
        let mut counts = vec![0; candidates.len()];
        for h in hashes(n) {
            counts[order(&h, candidates)[0]] += 1;
        }
        counts
    }

    fn three_zones() -> Vec<Candidate<'static>> {
        vec![
            cand("s1", "z1", 1.0),
            cand("s2", "z2", 1.0),
            cand("s3", "z3", 1.0),
        ]
    }

    #[test]
    fn order_is_deterministic_and_a_permutation() {
        let cs = vec![
            cand("a", "x", 1.0),
            cand("b", "x", 2.0),
            cand("c", "y", 0.5),
            cand("d", "z", 1.0),
            cand("e", "y", 3.0),
        ];
        for h in hashes(500) {
            let o = order(&h, &cs);
            assert_eq!(o, order(&h, &cs));
            let mut sorted = o.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
        }
        assert!(order(&Hash::of(b"x"), &[]).is_empty());
    }

    #[test]
    fn order_does_not_depend_on_listing_order() {
        let cs = three_zones();
        let reversed: Vec<Candidate<'_>> = cs.iter().rev().copied().collect();
        for h in hashes(200) {
            let ids: Vec<&str> = order(&h, &cs).iter().map(|&i| cs[i].id).collect();
            let rev_ids: Vec<&str> = order(&h, &reversed)
                .iter()
                .map(|&i| reversed[i].id)
                .collect();
            assert_eq!(ids, rev_ids);
        }
    }

    #[test]
    fn equal_weights_share_first_choices_equally() {
        let counts = first_counts(&three_zones(), 30_000);
        for c in counts {
            let share = c as f64 / 30_000.0;
            assert!((share - 1.0 / 3.0).abs() < 0.05, "share {share}");
        }
    }

    #[test]
    fn double_weight_is_first_twice_as_often() {
        let cs = vec![
            cand("s1", "z1", 2.0),
            cand("s2", "z2", 1.0),
            cand("s3", "z3", 1.0),
        ];
        let counts = first_counts(&cs, 30_000);
        for &other in &counts[1..] {
            let ratio = counts[0] as f64 / other as f64;
            assert!((1.8..2.2).contains(&ratio), "ratio {ratio}, {counts:?}");
        }
    }

    #[test]
    fn bad_weights_are_tiny_not_excluded() {
        for w in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let cs = vec![cand("good", "z1", 1.0), cand("bad", "z2", w)];
            let counts = first_counts(&cs, 2000);
            assert_eq!(counts[1], 0, "weight {w}");
            assert_eq!(order(&Hash::of(b"x"), &cs), vec![0, 1]);
        }
    }

    #[test]
    fn copies_spread_over_zones_first() {
        let cs = vec![
            cand("s1", "a", 1.0),
            cand("s2", "a", 1.0),
            cand("s3", "b", 1.0),
        ];
        let mut b_first = 0;
        for h in hashes(3000) {
            let o = order(&h, &cs);
            assert_ne!(cs[o[0]].zone, cs[o[1]].zone);
            b_first += usize::from(o[0] == 2);
        }
        // Spreading reorders, it does not reweight: first choices still follow the scores.
        assert!((800..1200).contains(&b_first), "{b_first}");
    }

    #[test]
    fn zone_rounds_keep_score_order() {
        // Two zones with two stores each: the order is best-of-each-zone, then the rest.
        let cs = vec![
            cand("s1", "a", 1.0),
            cand("s2", "a", 1.0),
            cand("s3", "b", 1.0),
            cand("s4", "b", 1.0),
        ];
        for h in hashes(500) {
            let o = order(&h, &cs);
            assert_ne!(cs[o[0]].zone, cs[o[1]].zone);
            assert_ne!(cs[o[2]].zone, cs[o[3]].zone);
            assert!(score(&h, &cs[o[0]]) > score(&h, &cs[o[1]]));
            assert!(score(&h, &cs[o[2]]) > score(&h, &cs[o[3]]));
            assert!(score(&h, &cs[o[0]]) > score(&h, &cs[o[2]]));
        }
    }

    #[test]
    fn adding_a_store_moves_about_a_quarter_of_first_choices() {
        let three = three_zones();
        let mut four = three.clone();
        four.push(cand("s4", "z4", 1.0));
        let n = 30_000;
        let mut moved = 0;
        for h in hashes(n) {
            let before = order(&h, &three)[0];
            let after = order(&h, &four)[0];
            if before != after {
                // A chunk only ever moves to the new store, never between old ones.
                assert_eq!(after, 3);
                moved += 1;
            }
        }
        let share = moved as f64 / f64::from(n);
        assert!((share - 0.25).abs() < 0.03, "moved {share}");
    }

    #[test]
    fn unit_from_bits_excludes_both_ends() {
        let lo = unit_from_bits(0);
        let hi = unit_from_bits(u64::MAX);
        assert!(lo > 0.0);
        assert!(hi < 1.0);
        assert_eq!(lo, 2f64.powi(-53));
        assert_eq!(hi, 1.0 - 2f64.powi(-53));
    }

    #[test]
    fn ln_unit_matches_std_ln() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let check = |u: f64| {
            let ours = ln_unit(u);
            let std = u.ln();
            assert!(ours < 0.0);
            assert!(
                ((ours - std) / std).abs() < 4.0 * f64::EPSILON,
                "{u}: {ours} vs {std}"
            );
        };
        check(unit_from_bits(0));
        check(unit_from_bits(u64::MAX));
        check(0.5);
        check(std::f64::consts::FRAC_1_SQRT_2);
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(unit_from_bits(x));
        }
    }

    #[test]
    fn scores_are_pinned() {
        // Bit-exact values: a change here moves chunks between stores (and, on a platform
        // where it alone fails, means that platform computes scores differently).
        let h = Hash::of(b"dpyfs");
        let s = score(&h, &cand("store-1", "z", 1.0));
        assert_eq!(s.to_bits(), 4606273907493059803);
        assert_eq!(ln_unit(0.3).to_bits(), 13831473067500349216);
        let cs = vec![
            cand("s1", "a", 1.0),
            cand("s2", "a", 2.0),
            cand("s3", "b", 1.0),
            cand("s4", "c", 0.5),
        ];
        let orders: Vec<Vec<usize>> = hashes(4).map(|h| order(&h, &cs)).collect();
        assert_eq!(
            orders,
            [[1, 2, 3, 0], [1, 2, 3, 0], [0, 3, 2, 1], [2, 1, 3, 0]]
        );
    }
}

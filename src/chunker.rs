//! Content-defined chunking: FastCDC with normalised chunking.
//!
//! A file is cut into chunks whose boundaries depend on the bytes themselves, not on their
//! offsets, so inserting or deleting a few bytes changes only the chunks around the edit and
//! every other chunk keeps its name and is deduplicated. The algorithm is FastCDC (Xia et
//! al., USENIX ATC 2016 and IEEE TPDS 2020): a gear rolling hash `fp = (fp << 1) + GEAR[byte]`,
//! no cut before the minimum size, a harder mask (`mask_s`, more bits) below the average size
//! and an easier one (`mask_l`, fewer bits) above it, which squeezes chunk sizes towards the
//! average, and a forced cut at the maximum size. A fixed-size mode is offered as well.
//!
//! This module knows nothing of chunk names, stores, placement, HTTP or paths: it reads bytes
//! from a `std::io::Read` (its only I/O) and hands back owned chunks. Memory is bounded: the
//! input is never held whole, only at most `max` bytes plus one read's worth.
//!
//! The gear table and the mask rule are part of the on-disk dedup behaviour: changing
//! either one moves chunk boundaries, so files uploaded before and after the change no
//! longer share chunks. The `gear_table_is_pinned` and `chunk_sizes_are_pinned` tests fail
//! if that happens by accident.

use std::io::{self, ErrorKind, Read};

/// Default smallest CDC chunk (the last chunk of a stream may be shorter).
pub const CDC_MIN_BYTES: u32 = 256 * 1024;
/// Default average CDC chunk: where the mask switches from hard to easy.
pub const CDC_AVG_BYTES: u32 = 1024 * 1024;
/// Default largest CDC chunk: a cut is forced here.
pub const CDC_MAX_BYTES: u32 = 4 * 1024 * 1024;
/// Largest chunk any `Chunking` may ask for; bounds the chunker's buffer.
pub const CHUNK_LIMIT_BYTES: u32 = 64 * 1024 * 1024;
/// Smallest CDC average: below it the easy mask would have fewer than 4 bits.
pub const CDC_AVG_MIN_BYTES: u32 = 64;

/// Bits added to (`mask_s`) and taken from (`mask_l`) log2(avg): FastCDC's normalisation
/// level 2, which the paper found to keep dedup close to plain CDC with sizes much tighter.
const NORMALISATION_BITS: u32 = 2;
/// Most bytes asked of the reader at once. Small enough that the bytes left over after a
/// cut, which are moved to the front of the buffer, stay cheap to move.
const READ_BYTES: usize = 64 * 1024;
/// Seed of the gear table. Changing it changes every chunk boundary (see the module doc).
const GEAR_SEED: u64 = 0x6470_7966_735f_6364; // "dpyfs_cd"

/// The gear table: 256 pseudo-random u64 values, one per byte value, from splitmix64 with a
/// fixed seed, computed at compile time so every build and platform has the same table.
static GEAR: [u64; 256] = gear_table(GEAR_SEED);

const fn gear_table(seed: u64) -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut state = seed;
    let mut i = 0;
    while i < 256 {
        // splitmix64 (Steele, Lea, Flood 2014): a fixed, well-mixed sequence from one seed.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        table[i] = z ^ (z >> 31);
        i += 1;
    }
    table
}

/// How a stream is cut into chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunking {
    /// Content-defined: no cut before `min` bytes, a cut forced at `max`, sizes centred
    /// near `avg`. All three in bytes.
    Cdc { min: u32, avg: u32, max: u32 },
    /// Every chunk `size` bytes except possibly the last.
    Fixed { size: u32 },
}

impl Chunking {
    /// CDC with `CDC_MIN_BYTES`, `CDC_AVG_BYTES` and `CDC_MAX_BYTES`.
    pub fn default_cdc() -> Chunking {
        Chunking::Cdc {
            min: CDC_MIN_BYTES,
            avg: CDC_AVG_BYTES,
            max: CDC_MAX_BYTES,
        }
    }

    /// Checks the sizes: for CDC `1 <= min <= avg <= max`, `avg >= CDC_AVG_MIN_BYTES`;
    /// for fixed `size >= 1`; and nothing above `CHUNK_LIMIT_BYTES`.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Chunking::Cdc { min, avg, max } => {
                if min == 0 {
                    return Err("CDC min must be at least 1 byte".to_string());
                }
                if !(min <= avg && avg <= max) {
                    return Err(format!(
                        "CDC sizes must satisfy min <= avg <= max, got {min}, {avg}, {max}"
                    ));
                }
                if avg < CDC_AVG_MIN_BYTES {
                    return Err(format!(
                        "CDC avg must be at least {CDC_AVG_MIN_BYTES} bytes, got {avg}"
                    ));
                }
                if max > CHUNK_LIMIT_BYTES {
                    return Err(format!(
                        "CDC max must be at most {CHUNK_LIMIT_BYTES} bytes, got {max}"
                    ));
                }
                Ok(())
            }
            Chunking::Fixed { size } => {
                if size == 0 {
                    return Err("fixed chunk size must be at least 1 byte".to_string());
                }
                if size > CHUNK_LIMIT_BYTES {
                    return Err(format!(
                        "fixed chunk size must be at most {CHUNK_LIMIT_BYTES} bytes, got {size}"
                    ));
                }
                Ok(())
            }
        }
    }

    /// The smallest chunk this chunking cuts, in bytes (only a stream's last chunk may be
    /// shorter): a stream up to this long is always one chunk.
    pub fn min_chunk(&self) -> u32 {
        match *self {
            Chunking::Cdc { min, .. } => min,
            Chunking::Fixed { size } => size,
        }
    }

    /// The largest chunk this chunking can produce, in bytes.
    pub fn max_chunk(&self) -> u32 {
        match *self {
            Chunking::Cdc { max, .. } => max,
            Chunking::Fixed { size } => size,
        }
    }
}

/// The two FastCDC masks for an average size: `(mask_s, mask_l)`, with log2(avg) ± 2 bits.
///
/// The masks take the *top* bits of the fingerprint. After `fp = (fp << 1) + GEAR[b]`, bit k
/// of `fp` depends only on the last k + 1 bytes, so the low bits would see a window of a few
/// bytes; the top bits see the widest window (at least 64 - bits + 1 bytes), which is what
/// the paper's zero-padded masks aim for. A non-power-of-two `avg` rounds down to one.
fn masks(avg: u32) -> (u64, u64) {
    assert!(avg >= CDC_AVG_MIN_BYTES);
    let bits = avg.ilog2();
    (
        top_bits(bits + NORMALISATION_BITS),
        top_bits(bits - NORMALISATION_BITS),
    )
}

fn top_bits(n: u32) -> u64 {
    assert!(n >= 1);
    assert!(n <= 64);
    u64::MAX << (64 - n)
}

/// Where to cut `data`, which starts at a chunk boundary: the length of the first chunk.
///
/// Treats `data` as the rest of the input: with no cut found before `max`, or data shorter
/// than `max`, the answer is `min(data.len(), max)`. Pure, for tests; the `Chunker` runs the
/// same search incrementally as bytes arrive, which is why only tests compile this.
#[cfg(test)]
fn cut_point(data: &[u8], min: usize, avg: usize, max: usize, mask_s: u64, mask_l: u64) -> usize {
    let rule = CdcRule {
        min,
        avg,
        max,
        mask_s,
        mask_l,
    };
    let mut scan = Scan::default();
    scan.find(data, &rule).unwrap_or(data.len().min(max))
}

/// FastCDC parameters in the form the search uses.
#[derive(Clone, Copy, Debug)]
struct CdcRule {
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
}

/// How far a cut-point search has got, so it can resume when more bytes arrive instead of
/// rehashing them. The fingerprint depends only on bytes from `min` onwards, so searching
/// in pieces gives exactly the cut that one search over all the bytes gives.
#[derive(Clone, Copy, Debug, Default)]
struct Scan {
    /// Next index of the chunk to feed to the hash (0 before the search starts).
    pos: usize,
    /// Gear fingerprint of the bytes fed so far.
    fp: u64,
}

impl Scan {
    /// Searches `data` (the current chunk's bytes so far) for a cut. Returns its length once
    /// decided; `None` when more bytes are needed (and none is decided yet).
    fn find(&mut self, data: &[u8], rule: &CdcRule) -> Option<usize> {
        let end = data.len().min(rule.max);
        let normal = rule.avg.min(end);
        let mut i = self.pos.max(rule.min);
        if i < normal {
            if let Some(n) = gear_search(&data[i..normal], &mut self.fp, rule.mask_s) {
                return Some(i + n);
            }
            i = normal;
        }
        if i < end {
            if let Some(n) = gear_search(&data[i..end], &mut self.fp, rule.mask_l) {
                return Some(i + n);
            }
            i = end;
        }
        if end == rule.max {
            return Some(rule.max);
        }
        self.pos = i;
        None
    }
}

/// Rolls the gear hash over `bytes`; returns how many bytes up to and including the first
/// one after which `fp & mask == 0`. This loop runs on every byte of every upload, so it is
/// kept to a shift, an add, a table load and a test: the slice iterator has no bounds checks
/// and a `u8` index into a 256-entry table has none either.
#[inline]
fn gear_search(bytes: &[u8], fp: &mut u64, mask: u64) -> Option<usize> {
    let mut h = *fp;
    for (j, &b) in bytes.iter().enumerate() {
        h = (h << 1).wrapping_add(GEAR[b as usize]);
        if h & mask == 0 {
            *fp = h;
            return Some(j + 1);
        }
    }
    *fp = h;
    None
}

/// The cut rule a `Chunker` applies, in `usize` for indexing.
#[derive(Clone, Copy, Debug)]
enum Rule {
    Cdc(CdcRule),
    Fixed(usize),
}

/// Splits a byte stream into chunks, reading as it goes.
pub struct Chunker<R: Read> {
    reader: R,
    rule: Rule,
    /// Fixed-size buffer of `max + READ_BYTES` bytes; `buf[..filled]` is unconsumed input,
    /// starting at a chunk boundary.
    buf: Vec<u8>,
    filled: usize,
    scan: Scan,
    eof: bool,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader`.
    ///
    /// # Panics
    /// If `chunking.validate()` fails: configuration is validated where it is parsed, so an
    /// invalid one here is a programmer error.
    pub fn new(reader: R, chunking: Chunking) -> Self {
        if let Err(e) = chunking.validate() {
            panic!("invalid chunking {chunking:?}: {e}");
        }
        let rule = match chunking {
            Chunking::Cdc { min, avg, max } => {
                let (mask_s, mask_l) = masks(avg);
                Rule::Cdc(CdcRule {
                    min: min as usize,
                    avg: avg as usize,
                    max: max as usize,
                    mask_s,
                    mask_l,
                })
            }
            Chunking::Fixed { size } => Rule::Fixed(size as usize),
        };
        let max = chunking.max_chunk() as usize;
        Chunker {
            reader,
            rule,
            buf: vec![0u8; max + READ_BYTES],
            filled: 0,
            scan: Scan::default(),
            eof: false,
        }
    }

    /// Next chunk's bytes (owned Vec, len <= max), or Ok(None) at end of input. An empty
    /// input yields no chunks.
    ///
    /// A read error is returned as is and consumes nothing, so the call may be repeated.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(cut) = self.find_cut() {
                return Ok(Some(self.take(cut)));
            }
            if self.eof {
                if self.filled == 0 {
                    return Ok(None);
                }
                return Ok(Some(self.take(self.filled)));
            }
            self.fill()?;
        }
    }

    /// The cut in the buffered bytes, if they decide one.
    fn find_cut(&mut self) -> Option<usize> {
        let data = &self.buf[..self.filled];
        match self.rule {
            Rule::Cdc(rule) => self.scan.find(data, &rule),
            Rule::Fixed(size) => (data.len() >= size).then_some(size),
        }
    }

    /// Hands out the first `cut` buffered bytes and moves the rest (less than one read's
    /// worth) to the front.
    fn take(&mut self, cut: usize) -> Vec<u8> {
        assert!(cut >= 1);
        assert!(cut <= self.filled);
        let chunk = self.buf[..cut].to_vec();
        self.buf.copy_within(cut..self.filled, 0);
        self.filled -= cut;
        self.scan = Scan::default();
        chunk
    }

    /// One successful read (retrying on `Interrupted`), of at most `READ_BYTES`.
    fn fill(&mut self) -> io::Result<()> {
        // find_cut decides a cut once `max` bytes are buffered, so there is always room.
        let end = (self.filled + READ_BYTES).min(self.buf.len());
        assert!(self.filled < end);
        loop {
            match self.reader.read(&mut self.buf[self.filled..end]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) if n <= end - self.filled => {
                    self.filled += n;
                    return Ok(());
                }
                Ok(n) => {
                    return Err(io::Error::other(format!(
                        "reader claimed {n} bytes into a {}-byte buffer",
                        end - self.filled
                    )));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::hash::Hash;
    use std::collections::HashSet;
    use std::time::Instant;

    const MIB: usize = 1024 * 1024;

    /// Deterministic pseudo-random bytes (xorshift64), so tests need no rand crate.
    fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn chunks_of(reader: impl Read, chunking: Chunking) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(reader, chunking);
        let mut out = Vec::new();
        while let Some(chunk) = c.next_chunk().unwrap() {
            out.push(chunk);
        }
        out
    }

    fn small_cdc() -> Chunking {
        Chunking::Cdc {
            min: 2048,
            avg: 8192,
            max: 32768,
        }
    }

    /// Returns 1 to 7 bytes per call, and an `Interrupted` error now and then.
    struct Dribble<'a> {
        data: &'a [u8],
        calls: usize,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 5 == 0 {
                return Err(io::Error::from(ErrorKind::Interrupted));
            }
            let n = (self.calls % 7 + 1).min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn empty_input_yields_no_chunks() {
        assert!(chunks_of(&[][..], Chunking::default_cdc()).is_empty());
        assert!(chunks_of(&[][..], Chunking::Fixed { size: 10 }).is_empty());
    }

    #[test]
    fn sizes_are_within_bounds_and_bytes_are_preserved() {
        let data = random_bytes(3 * MIB + 12345, 1);
        for chunking in [small_cdc(), Chunking::default_cdc()] {
            let Chunking::Cdc { min, max, .. } = chunking else {
                unreachable!()
            };
            let chunks = chunks_of(&data[..], chunking);
            let (last, rest) = chunks.split_last().unwrap();
            for c in rest {
                assert!(c.len() >= min as usize, "{} < {min}", c.len());
                assert!(c.len() <= max as usize, "{} > {max}", c.len());
            }
            assert!(!last.is_empty());
            assert!(last.len() <= max as usize);
            assert_eq!(chunks.concat(), data);
        }
    }

    #[test]
    fn low_entropy_input_respects_max() {
        // All zeros: the fingerprint settles on a constant, so every cut is forced or at min.
        let data = vec![0u8; 200_000];
        let chunks = chunks_of(&data[..], small_cdc());
        assert!(chunks.iter().all(|c| c.len() <= 32768));
        assert_eq!(chunks.concat(), data);
    }

    #[test]
    fn chunking_is_deterministic() {
        let data = random_bytes(2 * MIB, 2);
        let a = chunks_of(&data[..], small_cdc());
        let b = chunks_of(&data[..], small_cdc());
        assert_eq!(a, b);
    }

    #[test]
    fn fixed_mode_cuts_every_size_bytes() {
        let data = random_bytes(100_003, 3);
        let chunks = chunks_of(&data[..], Chunking::Fixed { size: 1000 });
        assert_eq!(chunks.len(), 101);
        assert!(chunks[..100].iter().all(|c| c.len() == 1000));
        assert_eq!(chunks[100].len(), 3);
        assert_eq!(chunks.concat(), data);
        let exact = chunks_of(&data[..5000], Chunking::Fixed { size: 1000 });
        assert_eq!(exact.len(), 5);
    }

    #[test]
    fn short_reads_give_the_same_chunks() {
        let data = random_bytes(300_000, 4);
        let whole = chunks_of(&data[..], small_cdc());
        let dribbled = chunks_of(
            Dribble {
                data: &data,
                calls: 0,
            },
            small_cdc(),
        );
        assert_eq!(whole, dribbled);
        let fixed = chunks_of(
            Dribble {
                data: &data,
                calls: 0,
            },
            Chunking::Fixed { size: 777 },
        );
        assert_eq!(fixed, chunks_of(&data[..], Chunking::Fixed { size: 777 }));
    }

    #[test]
    fn chunker_agrees_with_cut_point() {
        let data = random_bytes(500_000, 5);
        let (mask_s, mask_l) = masks(8192);
        let mut rest = &data[..];
        let mut expected = Vec::new();
        while !rest.is_empty() {
            let n = cut_point(rest, 2048, 8192, 32768, mask_s, mask_l);
            expected.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        assert_eq!(chunks_of(&data[..], small_cdc()), expected);
    }

    #[test]
    fn cut_point_edge_cases() {
        let (s, l) = masks(8192);
        assert_eq!(cut_point(&[], 2048, 8192, 32768, s, l), 0);
        assert_eq!(cut_point(&[7; 100], 2048, 8192, 32768, s, l), 100);
        let data = random_bytes(100_000, 6);
        let n = cut_point(&data, 2048, 8192, 32768, s, l);
        assert!((2048..=32768).contains(&n));
        // Masks that never match force the cut at max.
        assert_eq!(cut_point(&data, 10, 20, 30, u64::MAX, u64::MAX), 30);
    }

    #[test]
    fn masks_have_log2_avg_plus_minus_two_bits() {
        let (s, l) = masks(CDC_AVG_BYTES);
        assert_eq!(s.count_ones(), 22);
        assert_eq!(l.count_ones(), 18);
        assert_eq!(s.leading_ones(), 22);
        assert_eq!(l.leading_ones(), 18);
    }

    #[test]
    fn validate_refuses_bad_sizes() {
        assert!(Chunking::default_cdc().validate().is_ok());
        assert_eq!(Chunking::default_cdc().max_chunk(), CDC_MAX_BYTES);
        assert_eq!(Chunking::Fixed { size: 9 }.max_chunk(), 9);
        let bad = [
            Chunking::Cdc {
                min: 0,
                avg: 1024,
                max: 4096,
            },
            Chunking::Cdc {
                min: 2048,
                avg: 1024,
                max: 4096,
            },
            Chunking::Cdc {
                min: 256,
                avg: 1024,
                max: 512,
            },
            Chunking::Cdc {
                min: 1,
                avg: 32,
                max: 4096,
            },
            Chunking::Cdc {
                min: 1,
                avg: 1024,
                max: CHUNK_LIMIT_BYTES + 1,
            },
            Chunking::Fixed { size: 0 },
            Chunking::Fixed {
                size: CHUNK_LIMIT_BYTES + 1,
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn gear_table_is_pinned() {
        // Changing the table changes every chunk boundary: see the module doc.
        assert_eq!(GEAR[0], 0x82d5_5fb5_21cb_545c);
        assert_eq!(GEAR[255], 0x339e_e0e9_2523_f1ca);
        let folded = GEAR.iter().fold(0u64, |a, &g| a.rotate_left(5) ^ g);
        assert_eq!(folded, 0xfd81_f9f6_c48a_d3b5);
    }

    #[test]
    fn chunk_sizes_are_pinned() {
        let data = random_bytes(8 * MIB, 7);
        let sizes: Vec<usize> = chunks_of(&data[..], Chunking::default_cdc())
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(
            sizes,
            [
                414613, 692023, 1234393, 1183970, 1171435, 1285827, 985943, 1062960, 357444
            ]
        );
    }

    /// The reason for CDC: an insertion at the start and one in the middle of 64 MiB leave
    /// nearly every chunk of the new version already stored; and the default sizes average
    /// near CDC_AVG_BYTES on random data.
    #[test]
    fn insertions_keep_most_chunks_and_sizes_average_near_avg() {
        let data = random_bytes(64 * MIB, 8);
        let first = chunks_of(&data[..], Chunking::default_cdc());
        let mean = data.len() / first.len();
        let avg = CDC_AVG_BYTES as usize;
        assert!(mean >= avg / 2, "mean chunk {mean}");
        assert!(mean <= avg * 2, "mean chunk {mean}");
        println!("64 MiB random: {} chunks, mean {mean} bytes", first.len());

        let known: HashSet<Hash> = first.iter().map(|c| Hash::of(c)).collect();
        let mut edited = Vec::with_capacity(data.len() + 200);
        edited.extend_from_slice(&random_bytes(100, 9));
        let mid = data.len() / 2;
        edited.extend_from_slice(&data[..mid]);
        edited.extend_from_slice(&random_bytes(100, 10));
        edited.extend_from_slice(&data[mid..]);
        let second = chunks_of(&edited[..], Chunking::default_cdc());
        let kept = second
            .iter()
            .filter(|c| known.contains(&Hash::of(c)))
            .count();
        println!(
            "after two insertions: {kept} of {} chunks known",
            second.len()
        );
        assert!(kept * 10 >= second.len() * 9, "{kept} of {}", second.len());
    }

    /// Benchmark, not a check: `cargo test --release -- --ignored --nocapture throughput`.
    #[test]
    #[ignore = "benchmark; run in release mode with --nocapture"]
    fn cut_point_throughput() {
        let data = random_bytes(64 * MIB, 11);
        let (s, l) = masks(CDC_AVG_BYTES);
        let (min, avg, max) = (
            CDC_MIN_BYTES as usize,
            CDC_AVG_BYTES as usize,
            CDC_MAX_BYTES as usize,
        );
        let mib_per_s =
            |bytes: usize, t: Instant| bytes as f64 / MIB as f64 / t.elapsed().as_secs_f64();
        for _ in 0..3 {
            // As the chunker uses it: the first `min` bytes of each chunk are skipped.
            let t = Instant::now();
            let mut rest = &data[..];
            let mut n = 0;
            while !rest.is_empty() {
                let cut = cut_point(rest, min, avg, max, s, l);
                rest = &rest[cut..];
                n += 1;
            }
            println!(
                "cut_point, default sizes: {:.0} MiB/s ({n} chunks)",
                mib_per_s(data.len(), t)
            );

            // Every byte hashed: min 0 and masks that (almost) never match.
            let t = Instant::now();
            let mut rest = &data[..];
            let mut hashed = 0;
            while !rest.is_empty() {
                let cut = cut_point(rest, 0, 1, CHUNK_LIMIT_BYTES as usize, u64::MAX, u64::MAX);
                hashed += cut;
                rest = &rest[cut..];
            }
            println!(
                "cut_point, every byte hashed: {:.0} MiB/s",
                mib_per_s(hashed, t)
            );

            let t = Instant::now();
            let chunks = chunks_of(&data[..], Chunking::default_cdc());
            println!(
                "Chunker end to end: {:.0} MiB/s ({} chunks)",
                mib_per_s(data.len(), t),
                chunks.len()
            );
        }
    }
}

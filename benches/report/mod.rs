//! What both benchmarks (`make bench`, `make bench-boards`) share: a row of the report
//! (a figure next to the limit it is measured against, and the target for the
//! ratio), medians and percentiles, the load generator, and the table and JSON output.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::{bin, free_port, random_bytes};

pub const MIB: f64 = 1024.0 * 1024.0;

/// What a ratio must be to meet the target.
#[derive(Clone, Copy)]
pub enum Target {
    AtLeast(f64),
    Below(f64),
}

impl Target {
    pub fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtLeast(t) => ratio >= t,
            Target::Below(t) => ratio < t,
        }
    }

    pub fn text(self) -> String {
        match self {
            Target::AtLeast(t) => format!(">={t}"),
            Target::Below(t) => format!("<{t}"),
        }
    }
}

pub struct Row {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub limit_name: String,
    /// NaN when the figure has no limit to compare with.
    pub limit: f64,
    pub target: Option<Target>,
}

impl Row {
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            name: name.into(),
            value,
            unit,
            limit_name: "-".into(),
            limit: f64::NAN,
            target: None,
        }
    }

    /// A machine limit: its own limit, ratio 1.
    pub fn machine(name: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row::new(name, value, unit).vs("-", value)
    }

    pub fn vs(mut self, limit_name: impl Into<String>, limit: f64) -> Row {
        self.limit_name = limit_name.into();
        self.limit = limit;
        self
    }

    pub fn target(mut self, t: Target) -> Row {
        self.target = Some(t);
        self
    }

    pub fn ratio(&self) -> f64 {
        self.value / self.limit
    }

    pub fn verdict(&self) -> &'static str {
        match self.target {
            Some(t) if t.met(self.ratio()) => "ok",
            Some(_) => "MISS",
            None => "",
        }
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The `p`-th percentile (0..=100) of `v`.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() - 1) as f64 * p / 100.0).round() as usize;
    v[i]
}

/// Runs `f` `n` times and returns the median of what it returns.
pub fn repeat(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    median((0..n).map(|_| f()).collect())
}

/// Runs `f` `n` times; the median of each of the figures it returns.
pub fn repeat_many<const K: usize>(n: usize, mut f: impl FnMut(usize) -> [f64; K]) -> [f64; K] {
    let runs: Vec<[f64; K]> = (0..n).map(&mut f).collect();
    std::array::from_fn(|k| median(runs.iter().map(|r| r[k]).collect()))
}

pub fn mibs(bytes: u64, t: Instant) -> f64 {
    bytes as f64 / MIB / t.elapsed().as_secs_f64()
}

/// The load generator's agent; `https://` URLs trust the test CA (`common::test_ca`).
pub fn agent() -> ureq::Agent {
    crate::common::trust_test_ca();
    ureq::AgentBuilder::new()
        .tls_connector(dpyfs::tls::connector())
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(600))
        .build()
}

/// A deterministic pseudo-random stream of `len` bytes, a word at a time (the client must
/// not be the bottleneck on two cores); never repeats, so nothing deduplicates.
pub struct FastGen {
    x: u64,
    left: u64,
}

impl FastGen {
    pub fn new(len: u64, seed: u64) -> FastGen {
        FastGen {
            x: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            left: len,
        }
    }
}

impl Read for FastGen {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for w in buf[..n].chunks_mut(8) {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            w.copy_from_slice(&self.x.to_le_bytes()[..w.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

pub fn binary_sizes() -> Vec<(String, u64)> {
    ["dpyfs-store", "dpyfs-director", "dpyfs"]
        .iter()
        .map(|b| {
            let len = fs::metadata(bin(b)).map(|m| m.len()).unwrap_or(0);
            (b.to_string(), len)
        })
        .collect()
}

pub fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.prec$}", prec = if v.abs() < 10.0 { 2 } else { 1 })
    }
}

pub fn print_table(rows: &[Row], sizes: &[(String, u64)]) {
    println!(
        "{:<34} {:>9} {:<6} {:>22} {:>9} {:>6} {:>6}",
        "measure", "value", "unit", "limit", "limit val", "ratio", "target"
    );
    for r in rows {
        let target = match r.target {
            Some(t) => format!("{} {}", t.text(), r.verdict()),
            None => String::new(),
        };
        let ratio = if r.limit_name == "p99" {
            "-".into()
        } else {
            format!("{:.2}", r.ratio())
        };
        println!(
            "{:<34} {:>9} {:<6} {:>22} {:>9} {:>6} {}",
            r.name,
            fmt_num(r.value),
            r.unit,
            r.limit_name,
            fmt_num(r.limit),
            if r.limit.is_nan() { "-".into() } else { ratio },
            target
        );
    }
    for (b, s) in sizes {
        println!("binary {b}: {s} bytes ({:.2} MiB)", *s as f64 / MIB);
    }
}

/// Writes `target/bench/<file>` (`latest.json`, `boards.json`).
pub fn write_json(file: &str, quick: bool, rows: &[Row], sizes: &[(String, u64)]) {
    let json = serde_json::json!({
        "quick": quick,
        "rows": rows.iter().map(|r| serde_json::json!({
            "name": r.name, "value": r.value, "unit": r.unit,
            "limit_name": r.limit_name, "limit": r.limit, "ratio": r.ratio(),
            "target": r.target.map(Target::text),
            "target_met": r.target.map(|t| t.met(r.ratio())),
        })).collect::<Vec<_>>(),
        "binary_bytes": sizes.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join(file), serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("written: target/bench/{file}");
}

/// Runs one section and says how long it took (on stderr, so stdout stays the table).
pub fn section(name: &str, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    eprintln!("bench: {name} took {:.1} s", t.elapsed().as_secs_f64());
}

/// PUT of `len` generated bytes (FastGen, `seed`) to `url`, expecting 200.
pub fn put_stream(a: &ureq::Agent, url: &str, len: u64, seed: u64) {
    let r = a
        .put(url)
        .set("Content-Length", &len.to_string())
        .send(FastGen::new(len, seed))
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// GET of `url` to its end; the bytes received.
pub fn get_all(a: &ureq::Agent, url: &str) -> u64 {
    let r = a.get(url).call().unwrap();
    std::io::copy(&mut r.into_reader(), &mut std::io::sink()).unwrap()
}

/// Durable creates per second with `threads` threads at once, each creating its share of
/// `n` files in a folder of its own (as a store's chunks spread over `chunks/ab/cd/`): what
/// the disk gives to concurrent writers, whose fsyncs the file system may share. The limit
/// of the 16-client small PUT, which makes one durable create on each of 2 stores.
pub fn parallel_creates_per_s(dir: &std::path::Path, threads: usize, n: usize) -> f64 {
    let d = dir.join(format!("pcreates-{}", free_port()));
    let data = random_bytes(4096, 6);
    let per = n.div_ceil(threads);
    let t = Instant::now();
    std::thread::scope(|sc| {
        for j in 0..threads {
            let (d, data) = (d.join(format!("t{j}")), &data);
            sc.spawn(move || {
                fs::create_dir_all(&d).unwrap();
                for i in 0..per {
                    dpyfs::fsutil::write_atomic(&d.join(format!("f{i}")), data).unwrap();
                }
            });
        }
    });
    let r = (per * threads) as f64 / t.elapsed().as_secs_f64();
    fs::remove_dir_all(&d).unwrap();
    r
}

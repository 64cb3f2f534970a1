//! `make bench`: measures dpyfs next to this machine's own limits, in the same run, and
//! reports ratios. Starts the real release binaries on 127.0.0.1 in a temporary directory.
//! `BENCH_QUICK=1` runs smaller sizes (under two minutes); `BENCH_ONLY=mount` or
//! `BENCH_ONLY=https` runs only those rows. docs/PERFORMANCE.md explains
//! each figure and records a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "report/mod.rs"]
mod report;

use common::*;
use dpyfs::http::{Body, Response, Server, ServerConfig};
use md5::{Digest, Md5};
use report::*;
use std::fs;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Small objects and durable creates: 4 KiB each.
const SMALL: usize = 4096;
/// Clients of the concurrent small-object and index runs.
const CLIENTS: usize = 16;
/// Streams of the parallel large-object run.
const STREAMS: usize = 4;
/// docs/ARCHITECTURE.md "Memory cost of the index": ~300 bytes for a small object.
const INDEX_ESTIMATE_BYTES: f64 = 300.0;

/// Sizes and repetitions: full (`make bench`) or quick (`make bench-quick`).
struct Plan {
    quick: bool,
    /// Repetitions of the cheap machine-limit probes.
    runs: usize,
    /// Repetitions of the cluster measures (each on a fresh cluster).
    cluster_runs: usize,
    /// MiB hashed, written and sent by the machine-limit probes and the store bench.
    probe_mib: u64,
    /// Durable 4 KiB creates timed.
    creates: usize,
    /// The single-stream object; the parallel run sends STREAMS objects of a quarter each.
    large_mib: u64,
    small_ops: usize,
    dedup_mib: usize,
    index_objects: usize,
    repair_mib: u64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                runs: 3,
                cluster_runs: 3,
                probe_mib: 64,
                creates: 200,
                large_mib: 256,
                small_ops: 500,
                dedup_mib: 64,
                index_objects: 10_000,
                repair_mib: 64,
            }
        } else {
            Plan {
                quick,
                runs: 5,
                cluster_runs: 3,
                probe_mib: 256,
                creates: 1000,
                large_mib: 1024,
                small_ops: 2000,
                dedup_mib: 256,
                index_objects: 100_000,
                repair_mib: 512,
            }
        }
    }
}

// ---- limits of this machine ----

fn sha256_mibs(buf: &[u8]) -> f64 {
    let t = Instant::now();
    std::hint::black_box(dpyfs::hash::Hash::of(buf));
    mibs(buf.len() as u64, t)
}

fn md5_mibs(buf: &[u8]) -> f64 {
    let t = Instant::now();
    std::hint::black_box(Md5::digest(buf));
    mibs(buf.len() as u64, t)
}

fn cdc_mibs(buf: &[u8]) -> f64 {
    let t = Instant::now();
    let mut c = dpyfs::chunker::Chunker::new(buf, dpyfs::chunker::Chunking::default_cdc());
    while let Some(chunk) = c.next_chunk().unwrap() {
        std::hint::black_box(chunk);
    }
    mibs(buf.len() as u64, t)
}

/// Sequential write of `total` bytes with one fsync at the end, in `dir`.
fn disk_write_mibs(dir: &std::path::Path, total: usize) -> f64 {
    let block = random_bytes(4 << 20, 77);
    let p = dir.join("disk-probe");
    let t = Instant::now();
    let mut f = fs::File::create(&p).unwrap();
    let mut done = 0;
    while done < total {
        f.write_all(&block).unwrap();
        done += block.len();
    }
    f.sync_all().unwrap();
    let r = mibs(done as u64, t);
    drop(f);
    fs::remove_file(&p).unwrap();
    r
}

/// Durable creates per second: 4 KiB written to a temporary file, fsynced, renamed into
/// place and the folder fsynced (`write_atomic`, as a store places a chunk).
fn durable_creates_per_s(dir: &std::path::Path, n: usize) -> f64 {
    let d = dir.join(format!("creates-{}", free_port()));
    fs::create_dir_all(&d).unwrap();
    let data = random_bytes(SMALL, 5);
    let t = Instant::now();
    for i in 0..n {
        dpyfs::fsutil::write_atomic(&d.join(format!("f{i}")), &data).unwrap();
    }
    let r = n as f64 / t.elapsed().as_secs_f64();
    fs::remove_dir_all(&d).unwrap();
    r
}

/// A bare server on the project's own HTTP edge: `GET /N` answers N bytes from memory,
/// `PUT` reads and discards the body.
fn bare_server() -> Server {
    let payload = Arc::new(random_bytes(4 << 20, 9));
    let handler: dpyfs::http::Handler = Arc::new(move |rq| {
        if rq.method == "PUT" {
            std::io::copy(rq.body, &mut std::io::sink()).unwrap();
            return Response::empty(200);
        }
        let n: usize = rq.path[1..].parse().unwrap_or(0).min(payload.len());
        Response::new(200, Body::Bytes(payload[..n].to_vec()))
    });
    Server::start("127.0.0.1:0", &ServerConfig::default(), handler).unwrap()
}

/// Loopback HTTP to the bare server, one kept-alive connection: (PUT MiB/s, GET MiB/s) of
/// 4 MiB bodies, and 4 KiB GETs per second.
fn bare_http(total_mib: u64) -> [f64; 3] {
    let s = bare_server();
    let base = format!("http://{}", s.addr);
    let a = agent();
    let body = random_bytes(4 << 20, 10);
    let n = (total_mib / 4).max(1);
    let t = Instant::now();
    for _ in 0..n {
        a.put(&format!("{base}/x")).send_bytes(&body).unwrap();
    }
    let put = mibs(n << 22, t);
    let t = Instant::now();
    for _ in 0..n {
        let r = a.get(&format!("{base}/{}", 4 << 20)).call().unwrap();
        std::io::copy(&mut r.into_reader(), &mut std::io::sink()).unwrap();
    }
    let get = mibs(n << 22, t);
    let ops = 2000;
    let t = Instant::now();
    for _ in 0..ops {
        let r = a.get(&format!("{base}/{SMALL}")).call().unwrap();
        std::io::copy(&mut r.into_reader(), &mut std::io::sink()).unwrap();
    }
    let small = ops as f64 / t.elapsed().as_secs_f64();
    s.stop();
    [put, get, small]
}

/// This machine's limits, measured in the same run as everything else.
struct Limits {
    sha: f64,
    md5: f64,
    /// The content-defined chunker (`Chunking::default_cdc`), one core.
    cdc: f64,
    disk: f64,
    creates: f64,
    /// Durable creates from CLIENTS threads at once.
    creates_par: f64,
    http_put: f64,
    http_get: f64,
    http_small_get: f64,
}

fn machine_limits(p: &Plan, dir: &TempDir, rows: &mut Vec<Row>) -> Limits {
    let buf = random_bytes((p.probe_mib as usize) << 20, 1);
    let sha = repeat(p.runs, || sha256_mibs(&buf));
    let md5 = repeat(p.runs, || md5_mibs(&buf));
    let cdc = repeat(p.runs, || cdc_mibs(&buf));
    drop(buf);
    let disk = repeat(p.runs, || {
        disk_write_mibs(dir.path(), (p.probe_mib as usize) << 20)
    });
    let creates = repeat(p.runs, || durable_creates_per_s(dir.path(), p.creates));
    let creates_par = repeat(p.runs, || {
        parallel_creates_per_s(dir.path(), CLIENTS, p.creates * 4)
    });
    let [http_put, http_get, http_small_get] = repeat_many(p.runs, |_| bare_http(p.probe_mib));
    rows.push(Row::machine("SHA-256, one core", sha, "MiB/s"));
    rows.push(Row::machine("MD5, one core", md5, "MiB/s"));
    rows.push(Row::machine("CDC chunker, one core", cdc, "MiB/s"));
    rows.push(Row::machine("disk write + fsync", disk, "MiB/s"));
    rows.push(Row::machine("durable 4 KiB creates", creates, "ops/s"));
    rows.push(Row::machine(
        format!("durable 4 KiB creates, {CLIENTS} thr"),
        creates_par,
        "ops/s",
    ));
    rows.push(Row::machine("bare HTTP PUT 4 MiB", http_put, "MiB/s"));
    rows.push(Row::machine("bare HTTP GET 4 MiB", http_get, "MiB/s"));
    rows.push(Row::machine("bare HTTP GET 4 KiB", http_small_get, "ops/s"));
    Limits {
        sha,
        md5,
        cdc,
        disk,
        creates,
        creates_par,
        http_put,
        http_get,
        http_small_get,
    }
}

// ---- one store ----

fn store_put_get(dir: &TempDir, chunks: &[Vec<u8>]) -> [f64; 2] {
    let data = dir.path().join(format!("store-{}", free_port()));
    let s = Daemon::start(
        "dpyfs-store",
        &[
            "--listen",
            "127.0.0.1:{port}",
            "--data",
            data.to_str().unwrap(),
            "--scrub-rate",
            "0",
            "--reserve",
            "0",
        ],
        dir.path(),
    );
    let agent = agent();
    let total: usize = chunks.iter().map(Vec::len).sum();
    let urls: Vec<String> = chunks
        .iter()
        .map(|c| format!("{}/chunks/{}", s.url(), sha256_hex(c)))
        .collect();
    let t = Instant::now();
    for (u, c) in urls.iter().zip(chunks) {
        let r = agent.put(u).send_bytes(c).unwrap();
        assert_eq!(r.status(), 201);
    }
    let put = mibs(total as u64, t);
    let t = Instant::now();
    let mut got = 0u64;
    for u in &urls {
        let mut r = agent.get(u).call().unwrap().into_reader();
        got += std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    }
    let get = mibs(got, t);
    assert_eq!(got, total as u64);
    drop(s);
    fs::remove_dir_all(&data).unwrap();
    [put, get]
}

fn store_rows(p: &Plan, dir: &TempDir, l: &Limits, rows: &mut Vec<Row>) {
    // 4 MiB chunks over one kept-alive loopback connection.
    let chunks: Vec<Vec<u8>> = (0..p.probe_mib / 4)
        .map(|i| random_bytes(4 << 20, 1000 + i))
        .collect();
    let [put, get] = repeat_many(p.runs, |_| store_put_get(dir, &chunks));
    // A PUT hashes every byte once and writes it once with fsync: bounded by both.
    let put_limit = 1.0 / (1.0 / l.sha + 1.0 / l.disk);
    rows.push(Row::new("store PUT 4 MiB chunks", put, "MiB/s").vs("1/(1/sha+1/disk)", put_limit));
    rows.push(Row::new("store GET 4 MiB chunks", get, "MiB/s").vs("SHA-256", l.sha));
}

// ---- the cluster ----

/// A fresh cluster of 3 stores and a director (N=2) in its own folder, with a bucket.
struct Bed {
    c: Cluster,
    // Dropped after the cluster (fields drop in order): removes the data.
    dir: TempDir,
}

impl Bed {
    fn new(dir: &TempDir, tag: &str, extra: &[&str]) -> Bed {
        Bed::new_on(dir, tag, extra, tls_default())
    }

    /// As `new`, on HTTPS with `tls`'s files when given, plain HTTP when None.
    fn new_on(dir: &TempDir, tag: &str, extra: &[&str], tls: Option<&TestCa>) -> Bed {
        let sub = TempDir(dir.path().join(format!("{tag}-{}", free_port())));
        fs::create_dir_all(sub.path()).unwrap();
        let c = Cluster::start_on(&sub, 3, 2, extra, &["--scrub-rate", "0"], tls);
        let r = agent().put(&format!("{}/bench", c.url())).call().unwrap();
        assert_eq!(r.status(), 200);
        Bed { c, dir: sub }
    }

    fn url(&self, key: &str) -> String {
        format!("{}/bench/{key}", self.c.url())
    }

    fn director_pid(&self) -> u32 {
        self.c.director.pid().unwrap()
    }

    fn store_pids(&self) -> Vec<u32> {
        self.c.stores.iter().map(|s| s.pid().unwrap()).collect()
    }

    /// Sum of the stores' chunk bytes (every copy counts).
    fn stored_bytes(&self) -> u64 {
        self.c
            .stores
            .iter()
            .map(|s| {
                get(&format!("{}/status", s.url())).unwrap().json()["chunks"]["bytes"]
                    .as_u64()
                    .unwrap()
            })
            .sum()
    }
}

/// `streams` objects of `mib` MiB each, PUT at once and then GET at once; aggregate MiB/s.
fn parallel_put_get(b: &Bed, streams: usize, mib: u64, seed: u64) -> [f64; 2] {
    let len = mib << 20;
    let urls: Vec<String> = (0..streams).map(|i| b.url(&format!("par-{i}"))).collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        for (i, u) in urls.iter().enumerate() {
            s.spawn(move || put_stream(&agent(), u, len, seed * 100 + i as u64));
        }
    });
    let put = mibs(len * streams as u64, t);
    let t = Instant::now();
    std::thread::scope(|s| {
        for u in &urls {
            s.spawn(move || assert_eq!(get_all(&agent(), u), len));
        }
    });
    let get = mibs(len * streams as u64, t);
    [put, get]
}

fn mib_of(bytes: Option<u64>) -> f64 {
    bytes.unwrap() as f64 / MIB
}

/// CPU seconds (user + system) the director and the stores have used so far.
fn daemons_cpu_s(b: &Bed) -> f64 {
    std::iter::once(b.director_pid())
        .chain(b.store_pids())
        .map(|pid| cpu_seconds(pid).unwrap())
        .sum()
}

/// One fresh cluster: idle RSS, a single-stream PUT (peak RSS read right after it) and
/// GET of `mib` MiB, then STREAMS parallel streams of a quarter each. Returns [put, get,
/// par put, par get, idle director, idle store max, peak director, peak store max,
/// daemons' CPU s per GiB PUT, per GiB GET] (the CPU of the single-stream runs).
fn large_run(dir: &TempDir, mib: u64, seed: u64) -> [f64; 10] {
    let b = Bed::new(dir, "large", &[]);
    std::thread::sleep(Duration::from_millis(500));
    let idle_dir = mib_of(rss_bytes(b.director_pid()));
    let idle_store = b
        .store_pids()
        .into_iter()
        .map(|p| mib_of(rss_bytes(p)))
        .fold(0.0, f64::max);
    let a = agent();
    let url = b.url("big");
    let len = mib << 20;
    let gib = len as f64 / (1u64 << 30) as f64;
    let cpu0 = daemons_cpu_s(&b);
    let t = Instant::now();
    put_stream(&a, &url, len, seed);
    let put = mibs(len, t);
    let cpu_put = (daemons_cpu_s(&b) - cpu0) / gib;
    let peak_dir = mib_of(peak_rss_bytes(b.director_pid()));
    let peak_store = b
        .store_pids()
        .into_iter()
        .map(|p| mib_of(peak_rss_bytes(p)))
        .fold(0.0, f64::max);
    let cpu0 = daemons_cpu_s(&b);
    let t = Instant::now();
    assert_eq!(get_all(&a, &url), len);
    let get = mibs(len, t);
    let cpu_get = (daemons_cpu_s(&b) - cpu0) / gib;
    let [par_put, par_get] = parallel_put_get(&b, STREAMS, mib / STREAMS as u64, seed + 1);
    [
        put, get, par_put, par_get, idle_dir, idle_store, peak_dir, peak_store, cpu_put, cpu_get,
    ]
}

fn large_rows(p: &Plan, dir: &TempDir, l: &Limits, rows: &mut Vec<Row>) {
    let m = p.large_mib;
    let [
        put,
        get,
        par_put,
        par_get,
        idle_dir,
        idle_store,
        peak_dir,
        peak_store,
        cpu_put,
        cpu_get,
    ] = repeat_many(p.cluster_runs, |run| large_run(dir, m, run as u64 + 1));
    let q = m / STREAMS as u64;
    rows.push(
        Row::new(format!("PUT {m} MiB, 1 stream, N=2"), put, "MiB/s")
            .vs("disk write / 2", l.disk / 2.0)
            .target(Target::AtLeast(0.7)),
    );
    rows.push(
        Row::new(format!("GET {m} MiB, 1 stream"), get, "MiB/s")
            .vs("SHA-256", l.sha)
            .target(Target::AtLeast(0.5)),
    );
    rows.push(
        Row::new(format!("PUT {STREAMS}x{q} MiB parallel"), par_put, "MiB/s")
            .vs("disk write / 2", l.disk / 2.0)
            .target(Target::AtLeast(0.7)),
    );
    rows.push(
        Row::new(format!("GET {STREAMS}x{q} MiB parallel"), par_get, "MiB/s")
            .vs("SHA-256", l.sha)
            .target(Target::AtLeast(0.5)),
    );
    rows.push(
        Row::new("idle RSS, director", idle_dir, "MiB")
            .vs("target 16 MiB", 16.0)
            .target(Target::Below(1.0)),
    );
    rows.push(
        Row::new("idle RSS, store (max of 3)", idle_store, "MiB")
            .vs("target 8 MiB", 8.0)
            .target(Target::Below(1.0)),
    );
    rows.push(
        Row::new(format!("peak RSS, director, PUT {m} MiB"), peak_dir, "MiB")
            .vs("target 64 MiB", 64.0)
            .target(Target::Below(1.0)),
    );
    rows.push(Row::new(
        format!("peak RSS, store max, PUT {m} MiB"),
        peak_store,
        "MiB",
    ));
    // CPU per GiB that no design can avoid, from this machine's one-core rates (s/GiB =
    // 1024 / MiB/s): a PUT hashes every byte with SHA-256 at the director and once more at
    // each of the N=2 stores (each verifies its copy), MD5s it for the ETag and cuts it
    // with the chunker; a GET hashes it once (the director checks every chunk; stores
    // send with `?verify=0`). Value: that floor; limit: what the daemons spent; the
    // ratio is the efficiency (issue 19's goal: at least 0.7).
    let s_per_gib = |mibs: f64| 1024.0 / mibs;
    let put_floor = 3.0 * s_per_gib(l.sha) + s_per_gib(l.md5) + s_per_gib(l.cdc);
    rows.push(
        Row::new("CPU floor / spent, PUT", put_floor, "s/GiB")
            .vs("daemons' CPU", cpu_put)
            .target(Target::AtLeast(0.7)),
    );
    rows.push(
        Row::new("CPU floor / spent, GET", s_per_gib(l.sha), "s/GiB")
            .vs("daemons' CPU", cpu_get)
            .target(Target::AtLeast(0.7)),
    );
}

/// Ops/s and per-op latencies (ms) of `ops` calls of `op(agent, index)` spread over
/// `clients` threads, each with its own agent.
fn run_clients(
    clients: usize,
    ops: usize,
    op: impl Fn(&ureq::Agent, usize) + Sync,
) -> (f64, Vec<f64>) {
    let per = ops / clients;
    let t = Instant::now();
    let lat: Vec<f64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..clients)
            .map(|c| {
                let op = &op;
                s.spawn(move || {
                    let a = agent();
                    (0..per)
                        .map(|i| {
                            let t = Instant::now();
                            op(&a, c * per + i);
                            t.elapsed().as_secs_f64() * 1000.0
                        })
                        .collect::<Vec<f64>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    ((per * clients) as f64 / t.elapsed().as_secs_f64(), lat)
}

/// PUT then GET of `ops` distinct 4 KiB objects from `clients` clients: [put ops/s, put
/// p50, put p99, get ops/s, get p50, get p99].
fn small_run(b: &Bed, clients: usize, ops: usize) -> [f64; 6] {
    let url = |i: usize| b.url(&format!("small-{clients}/{i:07}"));
    let (put, mut pl) = run_clients(clients, ops, |a, i| {
        let body = random_bytes(SMALL, (clients * 1_000_000 + i) as u64);
        assert_eq!(a.put(&url(i)).send_bytes(&body).unwrap().status(), 200);
    });
    let (get, mut gl) = run_clients(clients, ops, |a, i| {
        assert_eq!(get_all(a, &url(i)), SMALL as u64);
    });
    [
        put,
        percentile(&mut pl, 50.0),
        percentile(&mut pl, 99.0),
        get,
        percentile(&mut gl, 50.0),
        percentile(&mut gl, 99.0),
    ]
}

fn small_rows(p: &Plan, dir: &TempDir, l: &Limits, rows: &mut Vec<Row>) {
    let b = Bed::new(dir, "small", &[]);
    for clients in [1, CLIENTS] {
        let [put, put50, put99, get, get50, get99] = small_run(&b, clients, p.small_ops);
        // A small object is one durable create on each of 2 stores (its manifest, which
        // carries its bytes) and a share of the journal's group fsync: one client waits for
        // about two creates in a row; 16 clients can at best make the disk's concurrent
        // creates, two per object.
        let r = if clients == CLIENTS {
            Row::new(format!("PUT 4 KiB, {clients} clients"), put, "ops/s")
                .vs(format!("creates {CLIENTS} thr / 2"), l.creates_par / 2.0)
                .target(Target::AtLeast(0.8))
        } else {
            Row::new(format!("PUT 4 KiB, {clients} clients"), put, "ops/s")
                .vs("durable creates / 2", l.creates / 2.0)
        };
        rows.push(r);
        rows.push(Row::new(format!("  PUT p50 / p99, {clients} cl"), put50, "ms").vs("p99", put99));
        rows.push(
            Row::new(format!("GET 4 KiB, {clients} clients"), get, "ops/s")
                .vs("bare 4 KiB GET / 2", l.http_small_get / 2.0),
        );
        rows.push(Row::new(format!("  GET p50 / p99, {clients} cl"), get50, "ms").vs("p99", get99));
    }
}

// ---- HTTPS ----

/// Idle RSS (MiB) of a bed's director and of its largest store.
fn idle_rss(b: &Bed) -> [f64; 2] {
    let store = b
        .store_pids()
        .into_iter()
        .map(|p| mib_of(rss_bytes(p)))
        .fold(0.0, f64::max);
    [mib_of(rss_bytes(b.director_pid())), store]
}

/// A fresh cluster on plain HTTP and one on HTTPS (the test CA, stores with mutual TLS,
/// the director verifying them), side by side: the HTTPS daemons' idle RSS, then a
/// single-stream PUT and GET of `mib` MiB on each, one after the other. Returns [plain
/// PUT, plain GET, HTTPS PUT, HTTPS GET, HTTPS idle director, HTTPS idle store max].
fn https_large_run(dir: &TempDir, mib: u64, seed: u64) -> [f64; 6] {
    let plain = Bed::new_on(dir, "plain", &[], None);
    let tls = Bed::new_on(dir, "https", &[], Some(test_ca()));
    std::thread::sleep(Duration::from_millis(500));
    let [idle_dir, idle_store] = idle_rss(&tls);
    let a = agent();
    let len = mib << 20;
    let mut out = [0.0; 6];
    for (i, b) in [&plain, &tls].into_iter().enumerate() {
        let url = b.url("big");
        let t = Instant::now();
        put_stream(&a, &url, len, seed);
        out[2 * i] = mibs(len, t);
        let t = Instant::now();
        assert_eq!(get_all(&a, &url), len);
        out[2 * i + 1] = mibs(len, t);
    }
    out[4] = idle_dir;
    out[5] = idle_store;
    out
}

/// Large objects and 4 KiB objects over HTTPS, each next to plain HTTP measured in the
/// same run (issue 15's goal: TLS costs under 20% of a large transfer), and the idle RSS
/// of daemons serving HTTPS.
fn https_rows(p: &Plan, dir: &TempDir, rows: &mut Vec<Row>) {
    let m = p.large_mib;
    let [put, get, tls_put, tls_get, idle_dir, idle_store] = repeat_many(p.cluster_runs, |run| {
        https_large_run(dir, m, run as u64 + 21)
    });
    rows.push(
        Row::new(format!("HTTPS PUT {m} MiB, 1 stream"), tls_put, "MiB/s")
            .vs("plain HTTP, same run", put)
            .target(Target::AtLeast(0.8)),
    );
    rows.push(
        Row::new(format!("HTTPS GET {m} MiB, 1 stream"), tls_get, "MiB/s")
            .vs("plain HTTP, same run", get)
            .target(Target::AtLeast(0.8)),
    );
    let plain = Bed::new_on(dir, "small-plain", &[], None);
    let tls = Bed::new_on(dir, "small-https", &[], Some(test_ca()));
    for clients in [1, CLIENTS] {
        let [put, _, _, get, _, _] = small_run(&plain, clients, p.small_ops);
        let [tls_put, put50, put99, tls_get, get50, get99] = small_run(&tls, clients, p.small_ops);
        rows.push(
            Row::new(
                format!("HTTPS PUT 4 KiB, {clients} clients"),
                tls_put,
                "ops/s",
            )
            .vs("plain HTTP, same run", put),
        );
        rows.push(Row::new(format!("  PUT p50 / p99, {clients} cl"), put50, "ms").vs("p99", put99));
        rows.push(
            Row::new(
                format!("HTTPS GET 4 KiB, {clients} clients"),
                tls_get,
                "ops/s",
            )
            .vs("plain HTTP, same run", get),
        );
        rows.push(Row::new(format!("  GET p50 / p99, {clients} cl"), get50, "ms").vs("p99", get99));
    }
    rows.push(
        Row::new("idle RSS, director, HTTPS", idle_dir, "MiB")
            .vs("target 16 MiB", 16.0)
            .target(Target::Below(1.0)),
    );
    rows.push(
        Row::new("idle RSS, store, HTTPS (max of 3)", idle_store, "MiB")
            .vs("target 8 MiB", 8.0)
            .target(Target::Below(1.0)),
    );
}

/// `orig` with 100 bytes inserted at 3 places and 100 bytes deleted at 2 others.
fn edited_copy(orig: &[u8]) -> Vec<u8> {
    let n = orig.len();
    let insert = random_bytes(100, 4242);
    let mut out = Vec::with_capacity(n + 100);
    let mut from = 0;
    for k in 1..=5 {
        let at = n * k / 6;
        out.extend_from_slice(&orig[from..at]);
        if k % 2 == 1 {
            out.extend_from_slice(&insert);
            from = at;
        } else {
            from = at + 100;
        }
    }
    out.extend_from_slice(&orig[from..]);
    out
}

/// Stored bytes (all copies) for a random file plus an edited copy, over 2 x size: 2.0
/// would mean no deduplication at all, 1.0 perfect.
fn dedup_factor(dir: &TempDir, mib: usize) -> f64 {
    let b = Bed::new(dir, "dedup", &[]);
    let orig = random_bytes(mib << 20, 31);
    let edited = edited_copy(&orig);
    let before = b.stored_bytes();
    let a = agent();
    for (key, body) in [("orig", &orig), ("edited", &edited)] {
        assert_eq!(a.put(&b.url(key)).send_bytes(body).unwrap().status(), 200);
    }
    let stored = b.stored_bytes() - before;
    stored as f64 / (2.0 * orig.len() as f64)
}

/// PUTs `n` tiny objects from CLIENTS clients. Each has its own content: 16 concurrent
/// PUTs of one identical chunk made stores stop answering (docs/PERFORMANCE.md).
fn put_tiny(b: &Bed, prefix: &str, n: usize) -> f64 {
    run_clients(CLIENTS, n, |a, i| {
        let key = format!("{prefix}/{i:07}");
        let r = a.put(&b.url(&key)).send_bytes(key.as_bytes());
        assert_eq!(r.unwrap().status(), 200);
    })
    .0
}

/// The director's RSS growth per object over `n` tiny objects, after a warm-up that lets
/// every worker thread and allocator arena reach its working size. [bytes/object, ops/s].
fn index_bytes_per_object(dir: &TempDir, n: usize) -> [f64; 2] {
    let b = Bed::new(dir, "index", &[]);
    put_tiny(&b, "warm", 2000);
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_bytes(b.director_pid()).unwrap();
    let ops = put_tiny(&b, "idx", n);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_bytes(b.director_pid()).unwrap();
    [after.saturating_sub(before) as f64 / n as f64, ops]
}

fn footprint_rows(p: &Plan, dir: &TempDir, rows: &mut Vec<Row>) {
    let [per_obj, ops] = index_bytes_per_object(dir, p.index_objects);
    rows.push(
        Row::new(
            format!("director RSS / object, {}", p.index_objects),
            per_obj,
            "B",
        )
        .vs("ARCHITECTURE.md est.", INDEX_ESTIMATE_BYTES),
    );
    rows.push(Row::new("  (tiny PUTs while filling)", ops, "ops/s"));
}

// ---- repair ----

/// Fills a 3-store cluster (N=2) with one `mib` MiB object, wipes store 1, restarts it
/// empty and times one repair pass; returns MiB/s re-replicated.
fn repair_mibs(dir: &TempDir, mib: u64) -> f64 {
    let knobs = [
        "--repair-rate",
        "0",
        "--repair-interval",
        "3600",
        "--lost-after",
        "3600",
    ];
    let mut b = Bed::new(dir, "repair", &knobs);
    let agent = agent();
    put_stream(&agent, &b.url("big"), mib << 20, 7);
    let store1 = b.dir.path().join("store1");
    let c = &mut b.c;
    c.stores[0].kill();
    fs::remove_dir_all(&store1).unwrap();
    c.stores[0].restart();
    c.wait_stores_up(3);
    // Let the pass that the store's return triggers finish first, then time a fresh one
    // from the wiped state: wipe again.
    let passes = |c: &Cluster| get(&format!("{}/_dpyfs/repair", c.url())).unwrap().json();
    wait_for(600_000, "the automatic pass", || {
        (passes(c)["running"] == false).then_some(())
    });
    c.stores[0].kill();
    fs::remove_dir_all(&store1).unwrap();
    c.stores[0].restart();
    let before = passes(c)["passes"].as_u64().unwrap();
    let t = Instant::now();
    agent
        .post(&format!("{}/_dpyfs/repair", c.url()))
        .call()
        .unwrap();
    let r = wait_for(600_000, "the repair pass", || {
        let r = passes(c);
        (r["passes"].as_u64().unwrap() > before
            && r["running"] == false
            && r["under_replicated"] == 0)
            .then_some(r)
    });
    // The pass's own start and end: it may have been started by the store's return just
    // before the request.
    let secs =
        (r["finished_ms"].as_u64().unwrap() - r["started_ms"].as_u64().unwrap()) as f64 / 1000.0;
    assert!(t.elapsed().as_secs_f64() >= secs * 0.5);
    let bytes = r["bytes_copied"].as_u64().unwrap() as f64;
    assert!(bytes > 0.0, "the timed pass copied nothing: {r}");
    bytes / MIB / secs
}

// ---- the mount ----

/// A `dpyfs mount` of the bench bucket at `<bed>/mnt`, unmounted and stopped on drop.
struct BenchMount {
    child: std::process::Child,
    mp: std::path::PathBuf,
}

impl BenchMount {
    fn new(b: &Bed) -> BenchMount {
        let mp = b.dir.path().join("mnt");
        let spool = b.dir.path().join("spool");
        fs::create_dir_all(&mp).unwrap();
        fs::create_dir_all(&spool).unwrap();
        let child = command("dpyfs")
            .args(["--url", &b.c.url(), "mount", "--spool"])
            .arg(&spool)
            .arg("bench")
            .arg(&mp)
            .stderr(fs::File::create(b.dir.path().join("mount.log")).unwrap())
            .spawn()
            .unwrap();
        let want = mp.to_str().unwrap().to_string();
        wait_for(30_000, "the mount", || {
            let m = fs::read_to_string("/proc/mounts").unwrap();
            m.lines()
                .any(|l| l.split(' ').nth(1) == Some(want.as_str()))
                .then_some(())
        });
        BenchMount { child, mp }
    }
}

impl Drop for BenchMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mp)
            .status();
        let _ = self.child.wait();
    }
}

fn run_ok(cmd: &mut std::process::Command) {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {o:?}");
}

/// One fresh cluster: a `mib` MiB file written through the mount (closed: committed) and
/// read back, next to a PUT and a GET of the same size over S3; then `files` small files
/// by `rsync -a` into the mount next to `dpyfs-put -r`. Returns [mount write, PUT, mount
/// read, GET, rsync s, dpyfs-put s, mount peak RSS].
fn mount_run(dir: &TempDir, mib: u64, files: usize, seed: u64) -> [f64; 7] {
    let b = Bed::new(dir, "mount", &[]);
    let m = BenchMount::new(&b);
    let a = agent();
    let len = mib << 20;
    let t = Instant::now();
    put_stream(&a, &b.url("s3.bin"), len, seed);
    let put = mibs(len, t);
    let t = Instant::now();
    {
        let mut f = fs::File::create(m.mp.join("mount.bin")).unwrap();
        let mut source = FastGen::new(len, seed + 1);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = source.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n]).unwrap();
        }
        // close() returns once the object is committed.
    }
    let write = mibs(len, t);
    let t = Instant::now();
    assert_eq!(get_all(&a, &b.url("s3.bin")), len);
    let get = mibs(len, t);
    let t = Instant::now();
    let mut f = fs::File::open(m.mp.join("mount.bin")).unwrap();
    assert_eq!(std::io::copy(&mut f, &mut std::io::sink()).unwrap(), len);
    let read = mibs(len, t);
    let small = b.dir.path().join("small");
    for i in 0..files {
        let sub = small.join(format!("d{}", i % 20));
        fs::create_dir_all(&sub).unwrap();
        let mut data = vec![0u8; SMALL];
        FastGen::new(SMALL as u64, seed * 10_000 + i as u64)
            .read_exact(&mut data)
            .unwrap();
        fs::write(sub.join(format!("f{i}")), data).unwrap();
    }
    let t = Instant::now();
    run_ok(
        std::process::Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", small.display()))
            .arg(m.mp.join("small")),
    );
    let rsync = t.elapsed().as_secs_f64();
    let t = Instant::now();
    run_ok(
        command("dpyfs-put")
            .args(["--url", &b.c.url(), "-q", "-r"])
            .arg(&small)
            .arg("bench/put"),
    );
    let put_r = t.elapsed().as_secs_f64();
    let rss = mib_of(peak_rss_bytes(m.child.id()));
    [write, put, read, get, rsync, put_r, rss]
}

fn mount_rows(p: &Plan, dir: &TempDir, rows: &mut Vec<Row>) {
    if !std::path::Path::new("/dev/fuse").exists() {
        // Said, not hidden: the table then simply has no mount rows.
        eprintln!("bench: no /dev/fuse, so no mount rows (modprobe fuse; fuse3, rsync)");
        return;
    }
    let m = p.large_mib;
    let files = if p.quick { 500 } else { 2000 };
    let [write, put, read, get, rsync, put_r, rss] = repeat_many(p.cluster_runs, |run| {
        mount_run(dir, m, files, run as u64 + 7)
    });
    rows.push(
        Row::new(format!("mount: write {m} MiB, close"), write, "MiB/s")
            .vs("S3 PUT, same run", put)
            .target(Target::AtLeast(0.8)),
    );
    rows.push(
        Row::new(format!("mount: read {m} MiB"), read, "MiB/s")
            .vs("S3 GET, same run", get)
            .target(Target::AtLeast(0.8)),
    );
    rows.push(
        Row::new(format!("mount: rsync -a {files} x 4 KiB"), rsync, "s")
            .vs("dpyfs-put -r, same run", put_r),
    );
    rows.push(Row::new(
        format!("mount: peak RSS, {m} MiB file"),
        rss,
        "MiB",
    ));
}

/// A group of three directors next to one director, in the same run (issue 13): 4 KiB
/// PUTs at CLIENTS clients spread over every director, a follower's idle RSS, and the
/// time from `kill -9` of the leader to the first acknowledged PUT through another.
fn directors_rows(p: &Plan, dir: &TempDir, rows: &mut Vec<Row>) {
    let one = {
        let b = Bed::new(dir, "one-director", &[]);
        small_run(&b, CLIENTS, p.small_ops)[0]
    };
    let sub = TempDir(dir.path().join(format!("directors-{}", free_port())));
    fs::create_dir_all(sub.path()).unwrap();
    let mut g = DirectorGroup::start(&sub, 3);
    let urls: Vec<String> = g.directors.iter().map(|d| d.url()).collect();
    let r = agent().put(&format!("{}/bench", urls[0])).call().unwrap();
    assert_eq!(r.status(), 200);
    let (three, _) = run_clients(CLIENTS, p.small_ops, |a, i| {
        let body = random_bytes(SMALL, 7_000_000 + i as u64);
        let url = format!("{}/bench/three/{i:07}", urls[i % urls.len()]);
        assert_eq!(a.put(&url).send_bytes(&body).unwrap().status(), 200);
    });
    rows.push(
        Row::new(
            format!("PUT 4 KiB, {CLIENTS} cl, 3 directors"),
            three,
            "ops/s",
        )
        .vs("1 director, same run", one)
        .target(Target::AtLeast(0.8)),
    );
    let leader = g.wait_settled(&[0, 1, 2]);
    // Idle: the writes are over; heartbeats only.
    std::thread::sleep(Duration::from_secs(3));
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let rss = rss_bytes(g.directors[follower].pid().unwrap()).unwrap() as f64 / MIB;
    rows.push(Row::new("director follower idle RSS", rss, "MiB"));
    let failover = repeat(p.cluster_runs, || failover_secs(&mut g));
    rows.push(
        Row::new("kill -9 leader to next PUT", failover, "s")
            .vs("goal", 3.0)
            .target(Target::Below(1.0)),
    );
}

/// Kills the leader with SIGKILL and PUTs through the other two in turn until one is
/// acknowledged; the seconds in between. The killed director is restarted afterwards.
fn failover_secs(g: &mut DirectorGroup) -> f64 {
    let leader = g.wait_settled(&[0, 1, 2]);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let a = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_millis(500))
        .timeout(Duration::from_secs(15))
        .build();
    g.directors[leader].kill();
    let t = Instant::now();
    for n in 0u64.. {
        let url = format!(
            "{}/bench/failover-{n}",
            g.directors[others[n as usize % 2]].url()
        );
        if a.put(&url).send_bytes(b"after").is_ok() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no PUT acknowledged after the kill"
        );
    }
    let secs = t.elapsed().as_secs_f64();
    g.directors[leader].restart();
    secs
}

fn main() {
    let p = Plan::new(std::env::var("BENCH_QUICK").is_ok());
    let dir = TempDir::new("bench");
    let mut rows = Vec::new();
    let t = Instant::now();
    // `BENCH_ONLY=mount` or `BENCH_ONLY=https`: only those rows (each carries its own
    // plain S3 figures to compare with).
    match std::env::var("BENCH_ONLY").as_deref() {
        Ok("mount") => {
            section("mount", || mount_rows(&p, &dir, &mut rows));
            print_table(&rows, &[]);
            return;
        }
        Ok("https") => {
            section("https", || https_rows(&p, &dir, &mut rows));
            print_table(&rows, &[]);
            return;
        }
        _ => {}
    }
    // `BENCH_ONLY=directors`: only the rows of a group of directors.
    if std::env::var("BENCH_ONLY").as_deref() == Ok("directors") {
        section("directors", || directors_rows(&p, &dir, &mut rows));
        print_table(&rows, &[]);
        return;
    }
    // `BENCH_ONLY=small`: the machine limits, then only the small-object rows.
    if std::env::var("BENCH_ONLY").as_deref() == Ok("small") {
        let mut limits = None;
        section("machine limits", || {
            limits = Some(machine_limits(&p, &dir, &mut rows))
        });
        let l = limits.unwrap();
        section("small objects", || small_rows(&p, &dir, &l, &mut rows));
        print_table(&rows, &[]);
        write_json("small.json", p.quick, &rows, &[]);
        return;
    }
    let mut limits = None;
    section("machine limits", || {
        limits = Some(machine_limits(&p, &dir, &mut rows))
    });
    let l = limits.unwrap();
    section("one store", || store_rows(&p, &dir, &l, &mut rows));
    section("large objects", || large_rows(&p, &dir, &l, &mut rows));
    section("small objects", || small_rows(&p, &dir, &l, &mut rows));
    section("https", || https_rows(&p, &dir, &mut rows));
    section("deduplication", || {
        let f = dedup_factor(&dir, p.dedup_mib);
        rows.push(
            Row::new(
                format!("dedup: orig+edited {} MiB", p.dedup_mib),
                f,
                "x size",
            )
            .vs("2 copies, no dedup", 2.0),
        );
    });
    section("index memory", || footprint_rows(&p, &dir, &mut rows));
    section("mount", || mount_rows(&p, &dir, &mut rows));
    section("directors", || directors_rows(&p, &dir, &mut rows));
    section("repair", || {
        let rep = repeat(p.cluster_runs, || repair_mibs(&dir, p.repair_mib));
        rows.push(
            Row::new(
                format!("repair after wipe ({} MiB)", p.repair_mib),
                rep,
                "MiB/s",
            )
            .vs("disk write", l.disk),
        );
    });
    eprintln!(
        "bench: total {:.1} s (MD5 {:.0} MiB/s, bare HTTP PUT/GET {:.0}/{:.0} MiB/s)",
        t.elapsed().as_secs_f64(),
        l.md5,
        l.http_put,
        l.http_get
    );
    let sizes = binary_sizes();
    print_table(&rows, &sizes);
    write_json("latest.json", p.quick, &rows, &sizes);
}

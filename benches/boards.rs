//! `make bench-boards`: dpyfs on a testbed of "boards" — the director, three stores and the
//! client each in its own network namespace with its own address, joined by a bridge, every
//! link shaped to a board's link rate (`BOARDS_RATE`, tc syntax, default `1gbit`). The same
//! release binaries as `make bench`. Every figure is reported as a ratio to the link rate
//! measured in the same run by a plain TCP blast between two boards.
//! `BENCH_QUICK=1`: smaller sizes, a few minutes. Needs root (CI is root) and iproute2.
//! Writes target/bench/boards.json in the same row format as latest.json.
//! `BENCH_ONLY=small`: the link, this disk's durable creates and the 4 KiB rows only
//! (target/bench/boards-small.json).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "report/mod.rs"]
mod report;

use common::boards::{BoardCluster, Testbed};
use common::*;
use report::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::Instant;

/// Where the TCP sink of the link measure listens, on the director's board.
const SINK_PORT: u16 = 7099;
/// When set, this process is the TCP sink of the link measure (started on a board).
const SINK_ENV: &str = "DPYFS_BOARDS_SINK";
/// 4 KiB objects, as in `make bench`.
const SMALL: usize = 4096;
const CLIENTS: usize = 16;

struct Plan {
    quick: bool,
    runs: usize,
    link_mib: u64,
    large_mib: u64,
    small_ops: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                runs: 1,
                link_mib: 256,
                large_mib: 256,
                small_ops: 320,
            }
        } else {
            Plan {
                quick,
                runs: 3,
                link_mib: 1024,
                large_mib: 1024,
                small_ops: 1600,
            }
        }
    }
}

// ---- the link ----

/// The sink side of the link measure: accepts connections, reads each to its end and
/// answers with the byte count. Runs on a board, started by `link_mibs`.
fn sink(addr: &str) {
    let l = TcpListener::bind(addr).unwrap();
    for s in l.incoming() {
        let mut s = s.unwrap();
        let n = std::io::copy(&mut s, &mut std::io::sink()).unwrap();
        s.write_all(&n.to_le_bytes()).unwrap();
    }
}

/// Stops the sink by its PID when the measure ends, however it ends.
struct SinkProcess(Child);

impl Drop for SinkProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// MiB/s of one TCP stream from this process (the host board) to a sink on the director's
/// board: the same two shaped links a PUT crosses from the client to the director.
fn link_mibs(tb: &Testbed, mib: u64) -> f64 {
    let board = tb.board("director");
    let addr = format!("{}:{SINK_PORT}", board.addr);
    let exe = std::env::current_exe().unwrap();
    let child = tb
        .command("director", exe.to_str().unwrap())
        .env(SINK_ENV, &addr)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let _sink = SinkProcess(child);
    let mut s = wait_for(10_000, "the link sink", || TcpStream::connect(&addr).ok());
    let buf = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    for _ in 0..mib {
        s.write_all(&buf).unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut n = [0u8; 8];
    s.read_exact(&mut n).unwrap();
    assert_eq!(u64::from_le_bytes(n), mib << 20, "the sink lost bytes");
    mibs(mib << 20, t)
}

// ---- the cluster ----

/// One large object through the director: [PUT MiB/s, GET MiB/s].
fn large_run(c: &BoardCluster, mib: u64, seed: u64) -> [f64; 2] {
    let a = agent();
    let url = c.url("bench", &format!("big-{seed}"));
    let t = Instant::now();
    put_stream(&a, &url, mib << 20, seed);
    let put = mibs(mib << 20, t);
    let t = Instant::now();
    assert_eq!(get_all(&a, &url), mib << 20);
    [put, mibs(mib << 20, t)]
}

/// `ops` calls of `op(agent, i)` over `clients` threads: ops/s.
fn run_clients(clients: usize, ops: usize, op: impl Fn(&ureq::Agent, usize) + Sync) -> f64 {
    let per = ops / clients;
    let t = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let op = &op;
            s.spawn(move || {
                let a = agent();
                for i in 0..per {
                    op(&a, c * per + i);
                }
            });
        }
    });
    (per * clients) as f64 / t.elapsed().as_secs_f64()
}

/// PUT then GET of `ops` distinct 4 KiB objects: [put ops/s, get ops/s].
fn small_run(c: &BoardCluster, clients: usize, ops: usize) -> [f64; 2] {
    let url = |i: usize| c.url("bench", &format!("small-{clients}/{i:07}"));
    let put = run_clients(clients, ops, |a, i| {
        let body = random_bytes(SMALL, (clients * 1_000_000 + i) as u64);
        assert_eq!(a.put(&url(i)).send_bytes(&body).unwrap().status(), 200);
    });
    let get = run_clients(clients, ops, |a, i| {
        assert_eq!(get_all(a, &url(i)), SMALL as u64);
    });
    [put, get]
}

fn cluster_rows(p: &Plan, c: &BoardCluster, link: f64, rows: &mut Vec<Row>) {
    large_rows(p, c, link, rows);
    small_rows(p, c, link, None, rows);
}

fn large_rows(p: &Plan, c: &BoardCluster, link: f64, rows: &mut Vec<Row>) {
    let m = p.large_mib;
    let [put, get] = repeat_many(p.runs, |run| large_run(c, m, run as u64 + 1));
    rows.push(
        Row::new(format!("PUT {m} MiB, 1 stream, N=2, chain"), put, "MiB/s")
            .vs("link", link)
            .target(Target::AtLeast(0.85)),
    );
    rows.push(
        Row::new(format!("GET {m} MiB, 1 stream"), get, "MiB/s")
            .vs("link", link)
            .target(Target::AtLeast(0.9)),
    );
}

/// The 4 KiB rows. With `creates` (durable creates a second from CLIENTS threads on the
/// stores' disk, measured in the same run), the 16-client PUT is also set against
/// `creates / 2`, issue 19's goal: the boards share this machine's disk, not a link's worth
/// of disks.
fn small_rows(p: &Plan, c: &BoardCluster, link: f64, creates: Option<f64>, rows: &mut Vec<Row>) {
    // A link carries at most this many 4 KiB objects a second: the ceiling of the small
    // rates, to set them on the same scale as the large ones.
    let link_ops = link * MIB / SMALL as f64;
    for clients in [1, CLIENTS] {
        let [put, get] = small_run(c, clients, p.small_ops);
        rows.push(
            Row::new(format!("PUT 4 KiB, {clients} clients"), put, "ops/s")
                .vs("link / 4 KiB", link_ops),
        );
        if let (Some(cr), true) = (creates, clients == CLIENTS) {
            rows.push(
                Row::new(format!("PUT 4 KiB, {clients} clients"), put, "ops/s")
                    .vs(format!("creates {CLIENTS} thr / 2"), cr / 2.0)
                    .target(Target::AtLeast(0.8)),
            );
        }
        rows.push(
            Row::new(format!("GET 4 KiB, {clients} clients"), get, "ops/s")
                .vs("link / 4 KiB", link_ops),
        );
    }
}

fn main() {
    if let Ok(addr) = std::env::var(SINK_ENV) {
        sink(&addr);
        return;
    }
    let p = Plan::new(std::env::var("BENCH_QUICK").is_ok());
    let rate = std::env::var("BOARDS_RATE").unwrap_or_else(|_| "1gbit".into());
    let t = Instant::now();
    let tb = Testbed::new(&["director", "s1", "s2", "s3"], Some(&rate));
    let mut rows = Vec::new();
    let mut link = 0.0;
    section("link", || {
        link = repeat(p.runs, || link_mibs(&tb, p.link_mib));
        rows.push(Row::machine(
            format!("link, TCP, {rate} shaped"),
            link,
            "MiB/s",
        ));
    });
    if std::env::var("BENCH_ONLY").as_deref() == Ok("small") {
        let dir = TempDir::new("boards-creates");
        let creates = repeat(3, || parallel_creates_per_s(dir.path(), CLIENTS, 800));
        rows.push(Row::machine(
            format!("durable 4 KiB creates, {CLIENTS} thr"),
            creates,
            "ops/s",
        ));
        section("small objects on boards", || {
            let c = BoardCluster::start(&tb, 2, &[]);
            let r = agent().put(&c.url("bench", "")).call().unwrap();
            assert_eq!(r.status(), 200);
            small_rows(&p, &c, link, Some(creates), &mut rows);
        });
        print_table(&rows, &[]);
        write_json("boards-small.json", p.quick, &rows, &[]);
        return;
    }
    section("cluster on boards", || {
        let c = BoardCluster::start(&tb, 2, &[]);
        let r = agent().put(&c.url("bench", "")).call().unwrap();
        assert_eq!(r.status(), 200);
        cluster_rows(&p, &c, link, &mut rows);
    });
    section("fan-out for comparison", || {
        let c = BoardCluster::start(&tb, 2, &["--replication", "fanout"]);
        let r = agent().put(&c.url("bench", "")).call().unwrap();
        assert_eq!(r.status(), 200);
        let m = p.large_mib;
        let [put, _] = repeat_many(p.runs, |run| large_run(&c, m, run as u64 + 1));
        rows.push(
            Row::new(format!("PUT {m} MiB, --replication fanout"), put, "MiB/s").vs("link", link),
        );
    });
    eprintln!("bench-boards: total {:.1} s", t.elapsed().as_secs_f64());
    let sizes = binary_sizes();
    print_table(&rows, &sizes);
    write_json("boards.json", p.quick, &rows, &sizes);
}

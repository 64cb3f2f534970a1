//! Three directors on three boards (network namespaces joined by a bridge, issue 13), each
//! store on its own board too, while clients write and read through every director and
//! links are cut and healed: the leader cut off, then a follower. Every request is
//! recorded (a history), and checked afterwards: no acknowledged write is lost, no two
//! directors acknowledged conflicting creates of one key, a cut-off director acknowledged
//! nothing, every read returned the newest value acknowledged before it began or one
//! written concurrently, and the journals agree up to the commit point.
//!
//! Runs as root (CI is root): without it `Testbed::new` fails saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::boards::{DIRECTOR_PORT, Testbed, director_args_on, store_on};
use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DIRECTORS: [&str; 3] = ["d1", "d2", "d3"];
const WRITERS: usize = 3;
const READERS: usize = 3;
/// Keys created with `If-None-Match: *` by every writer alike (they race for each).
const CREATE_KEYS: u64 = 400;
/// A client pauses this long after a request that failed.
const FAILED_PAUSE_MS: u64 = 50;

/// One request of the history: when it began and ended (ms since the start), what it
/// did and how it ended.
#[derive(Clone, Debug)]
struct Op {
    start: u64,
    end: u64,
    kind: Kind,
    key: String,
    /// The value written, or the value read (None: the key did not exist).
    value: Option<String>,
    /// Acknowledged (a 200 to a write, any answer to a read that is kept).
    ok: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Write,
    Create,
    Read,
}

struct Group {
    tb: Testbed,
    directors: Vec<Daemon>,
    _stores: Vec<Daemon>,
    dir: TempDir,
}

impl Group {
    fn url(&self, i: usize) -> String {
        self.directors[i].url()
    }

    fn status(&self, i: usize) -> Option<serde_json::Value> {
        let a = client()
            .get(&format!("{}/_dpyfs/status", self.url(i)))
            .call()
            .ok()?;
        serde_json::from_reader(a.into_reader()).ok()
    }

    /// Waits until directors `alive` agree on a leader among them; its position.
    fn settled(&self, alive: &[usize]) -> usize {
        wait_leader(alive, |i| self.status(i), |i| self.url(i), |_| true)
    }
}

/// Short timeouts: a request to a director whose link is cut must not hang the history.
fn client() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_millis(1_000))
        .timeout(Duration::from_millis(8_000))
        .max_idle_connections(0)
        .build()
}

fn start() -> Group {
    let names: Vec<&str> = DIRECTORS
        .iter()
        .copied()
        .chain(["s1", "s2", "s3"])
        .collect();
    let tb = Testbed::new(&names, None);
    let dir = TempDir::new("directors-partition");
    let token = dir.path().join("token");
    std::fs::write(&token, format!("partition-{:016x}\n", std::process::id())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = token.to_str().unwrap().to_string();
    let stores: Vec<Daemon> = ["s1", "s2", "s3"]
        .iter()
        .map(|s| store_on(&tb, tb.board(s), &dir, &token))
        .collect();
    let directors = DIRECTORS
        .iter()
        .map(|name| {
            let data = dir.path().join(name);
            let mut args = director_args_on(tb.board(name), &data, 2, &token, &stores);
            for other in DIRECTORS.iter().filter(|o| *o != name) {
                let url = format!("http://{}:{DIRECTOR_PORT}", tb.board(other).addr);
                args.extend(["--peer".to_string(), url]);
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            tb.daemon(name, "dpyfs-director", &argv, dir.path(), DIRECTOR_PORT)
        })
        .collect();
    let g = Group {
        tb,
        directors,
        _stores: stores,
        dir,
    };
    g.settled(&[0, 1, 2]);
    g
}

/// A PUT (with `If-None-Match: *` when `create`): acknowledged or not.
fn put_value(url: &str, create: bool, value: &str) -> bool {
    let mut r = client().put(url);
    if create {
        r = r.set("If-None-Match", "*");
    }
    r.send_bytes(value.as_bytes()).is_ok()
}

/// A GET: Some(value or None for 404), or None when the director did not answer.
fn get_value(url: &str) -> Option<Option<String>> {
    match client().get(url).call() {
        Ok(r) => Some(Some(r.into_string().ok()?)),
        Err(ureq::Error::Status(404, _)) => Some(None),
        Err(_) => None,
    }
}

struct Load {
    history: Arc<Mutex<Vec<Op>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    acked: Arc<AtomicU64>,
}

/// Writers (each owns register `reg<t>`, writes fresh keys, and races the others to
/// create `c<n>`) and readers of the registers, every request through a director in turn.
fn start_load(urls: Vec<String>, t0: Instant) -> Load {
    let history = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let ms = move || t0.elapsed().as_millis() as u64;
    let mut threads = Vec::new();
    for t in 0..WRITERS + READERS {
        let (history, stop, acked, urls) = (
            Arc::clone(&history),
            Arc::clone(&stop),
            Arc::clone(&acked),
            urls.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let base = &urls[(t + n as usize) % urls.len()];
                let (kind, key, value) = if t >= WRITERS {
                    (Kind::Read, format!("reg{}", n as usize % WRITERS), None)
                } else {
                    match n % 3 {
                        0 => (Kind::Write, format!("reg{t}"), Some(format!("w{t}-{n}"))),
                        1 => (
                            Kind::Write,
                            format!("fresh{t}-{n}"),
                            Some(format!("f{t}-{n}")),
                        ),
                        _ => (
                            Kind::Create,
                            format!("c{}", (n / 3) % CREATE_KEYS),
                            Some(format!("c{t}-{n}")),
                        ),
                    }
                };
                let url = format!("{base}/bkt/{key}");
                let start = ms();
                let (value, ok) = match (kind, value) {
                    (Kind::Read, _) => match get_value(&url) {
                        Some(v) => (v, true),
                        None => (None, false),
                    },
                    (kind, Some(v)) => {
                        let ok = put_value(&url, kind == Kind::Create, &v);
                        (Some(v), ok)
                    }
                    (_, None) => unreachable!(),
                };
                let end = ms();
                if ok && kind != Kind::Read {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                let op = Op {
                    start,
                    end,
                    kind,
                    key,
                    value,
                    ok,
                };
                history.lock().unwrap().push(op);
                if !ok {
                    // A cut-off director fails at once: pause rather than spin.
                    std::thread::sleep(Duration::from_millis(FAILED_PAUSE_MS));
                }
                n += 1;
            }
        }));
    }
    Load {
        history,
        stop,
        threads,
        acked,
    }
}

impl Load {
    fn wait_more(&self, more: u64) {
        let before = self.acked.load(Ordering::Relaxed);
        wait_for(60_000, "more writes acknowledged", || {
            (self.acked.load(Ordering::Relaxed) >= before + more).then_some(())
        });
    }

    fn finish(self) -> Vec<Op> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        self.history.lock().unwrap().clone()
    }
}

/// Creates bucket `bucket` through the director on board `name`, by curl run inside that
/// board (the only side that reaches it while its link is cut): the HTTP status. A bucket
/// needs no store, so the refusal comes from the directors' agreement alone.
fn create_from_inside(g: &Group, name: &str, i: usize, bucket: &str) -> String {
    let o =
        g.tb.command(name, "curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-m",
                "30",
                "-X",
                "PUT",
            ])
            .arg(format!("{}/{bucket}", g.url(i)))
            .output()
            .unwrap();
    assert!(
        o.status.success() || !o.stdout.is_empty(),
        "curl inside {name} failed: {} (apt-get install curl)",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The seq at which each value of a register key was committed, from a journal (every
/// director's agrees up to the commit point, `check_journals`): the commit order.
fn commit_order(dir: &std::path::Path) -> BTreeMap<(String, String), u64> {
    journal_lines(dir)
        .into_iter()
        .filter_map(|(seq, line)| {
            let v: serde_json::Value =
                serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
            let key = v["key"].as_str()?.to_string();
            let etag = v["object"]["etag"].as_str()?.to_string();
            (v["type"] == "object_put").then_some(((key, etag), seq))
        })
        .collect()
}

fn etag(value: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Linearizable registers, checked against the commit order: acknowledged writes took
/// effect in the order they were made, and each read returned a value committed no earlier
/// than the newest write acknowledged before the read began, and written by a request that
/// began before the read ended. A write that was not acknowledged (a timeout, a 503 from a
/// director cut off while forwarding) may still take effect later: its value may then be
/// read after newer ones, which is why the order is the journal's, not the clients'.
fn check_registers(history: &[Op], order: &BTreeMap<(String, String), u64>) {
    let seq_of = |op: &Op| {
        let v = op.value.as_deref()?;
        order.get(&(op.key.clone(), etag(v))).copied()
    };
    let acked: Vec<&Op> = history
        .iter()
        .filter(|o| o.kind == Kind::Write && o.ok && o.key.starts_with("reg"))
        .collect();
    for a in &acked {
        let sa = seq_of(a).unwrap_or_else(|| panic!("acknowledged {a:?} is not in the journal"));
        for b in acked.iter().filter(|b| b.key == a.key && a.end < b.start) {
            assert!(sa < seq_of(b).unwrap(), "{b:?} took effect before {a:?}");
        }
    }
    let mut checked = 0;
    for r in history.iter().filter(|o| o.kind == Kind::Read && o.ok) {
        let before = acked
            .iter()
            .filter(|w| w.key == r.key && w.end < r.start)
            .filter_map(|w| seq_of(w))
            .max();
        match (&r.value, before) {
            (None, None) => {}
            (None, Some(s)) => panic!("{r:?} found nothing after the write at seq {s}"),
            (Some(v), before) => {
                let written = history.iter().find(|w| {
                    w.kind == Kind::Write && w.key == r.key && w.value.as_ref() == Some(v)
                });
                let w = written.unwrap_or_else(|| panic!("{r:?} read a value never written"));
                assert!(w.start < r.end, "{r:?} read the future: {w:?}");
                let seq = seq_of(w).unwrap_or_else(|| panic!("{r:?} read an uncommitted {w:?}"));
                assert!(
                    before.is_none_or(|b| seq >= b),
                    "{r:?} returned seq {seq}, older than seq {before:?} acknowledged before it"
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 0, "no read was answered");
}

/// After healing: every acknowledged fresh write reads back from every director; each
/// created key was acknowledged to at most one writer and holds its value; each register
/// holds the value committed last.
fn check_final(g: &Group, history: &[Op], order: &BTreeMap<(String, String), u64>) {
    let mut created: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history.iter().filter(|o| o.kind == Kind::Create) {
        created.entry(&op.key).or_default().push(op);
    }
    let regs: std::collections::BTreeSet<&str> = history
        .iter()
        .filter(|o| o.kind == Kind::Write && o.key.starts_with("reg"))
        .map(|o| o.key.as_str())
        .collect();
    for i in 0..DIRECTORS.len() {
        let base = format!("{}/bkt", g.url(i));
        let read =
            |key: &str| get_value(&format!("{base}/{key}")).expect("a healed director answers");
        for op in history
            .iter()
            .filter(|o| o.kind == Kind::Write && o.ok && o.key.starts_with("fresh"))
        {
            assert_eq!(
                read(&op.key),
                op.value,
                "director {i} lost acknowledged {}",
                op.key
            );
        }
        for (key, ops) in &created {
            let won: Vec<&&Op> = ops.iter().filter(|o| o.ok).collect();
            assert!(
                won.len() <= 1,
                "{key} created for {} writers: {won:?}",
                won.len()
            );
            if let Some(w) = won.first() {
                assert_eq!(read(key), w.value, "director {i}: {key}");
            }
        }
        for key in &regs {
            let last = order
                .iter()
                .filter(|((k, _), _)| k == *key)
                .max_by_key(|(_, seq)| **seq)
                .map(|((_, e), _)| e.clone());
            let held = read(key).map(|v| etag(&v));
            assert_eq!(
                held, last,
                "director {i}: {key} is not its last committed value"
            );
        }
    }
}

fn check_journals(g: &Group) {
    let applied = |i: usize| g.status(i).and_then(|s| s["applied"].as_u64());
    let commit = wait_for(30_000, "every director caught up", || {
        let a: Vec<u64> = (0..3).map(applied).collect::<Option<_>>()?;
        (a[0] == a[1] && a[1] == a[2]).then_some(a[0])
    });
    let lines: Vec<Vec<(u64, String)>> = DIRECTORS
        .iter()
        .map(|n| {
            journal_lines(&g.dir.path().join(n))
                .into_iter()
                .filter(|(s, _)| *s <= commit)
                .collect()
        })
        .collect();
    assert_eq!(lines[0].len() as u64, commit, "d1 misses journal lines");
    assert!(
        lines[1] == lines[0] && lines[2] == lines[0],
        "the journals differ up to {commit}"
    );
}

#[test]
fn partitions_lose_no_acknowledged_write_and_split_no_brain() {
    let g = start();
    let urls: Vec<String> = (0..3).map(|i| g.url(i)).collect();
    assert_eq!(
        client()
            .put(&format!("{}/bkt", urls[0]))
            .call()
            .unwrap()
            .status(),
        200
    );
    let load = start_load(urls, Instant::now());
    load.wait_more(20);

    // The leader cut off: the other two elect a new one and go on; the old leader, alone,
    // acknowledges nothing.
    let old = g.settled(&[0, 1, 2]);
    g.tb.cut(DIRECTORS[old]);
    let rest: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    g.settled(&rest);
    load.wait_more(20);
    let code = create_from_inside(&g, DIRECTORS[old], old, "minority1");
    assert_eq!(code, "503", "a cut-off leader answered a write");
    g.tb.heal(DIRECTORS[old]);
    g.settled(&[0, 1, 2]);
    load.wait_more(20);

    // A follower cut off: the majority goes on; the follower acknowledges nothing.
    let leader = g.settled(&[0, 1, 2]);
    let follower = (0..3).find(|&i| i != leader).unwrap();
    g.tb.cut(DIRECTORS[follower]);
    load.wait_more(20);
    let code = create_from_inside(&g, DIRECTORS[follower], follower, "minority2");
    assert_eq!(code, "503", "a cut-off follower answered a write");
    g.tb.heal(DIRECTORS[follower]);
    g.settled(&[0, 1, 2]);

    // Two cut off at once: nobody has a majority, nothing is acknowledged anywhere.
    let leader = g.settled(&[0, 1, 2]);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    g.tb.cut(DIRECTORS[others[0]]);
    g.tb.cut(DIRECTORS[others[1]]);
    for &i in &[leader, others[0], others[1]] {
        let code = create_from_inside(&g, DIRECTORS[i], i, "alone");
        assert_eq!(code, "503", "director {i} alone answered a write");
    }
    g.tb.heal(DIRECTORS[others[0]]);
    g.tb.heal(DIRECTORS[others[1]]);
    g.settled(&[0, 1, 2]);
    load.wait_more(20);

    let history = load.finish();
    for i in 0..3 {
        for bucket in ["minority1", "minority2", "alone"] {
            let r = client().head(&format!("{}/{bucket}", g.url(i))).call();
            assert!(
                matches!(r, Err(ureq::Error::Status(404, _))),
                "bucket {bucket} exists on director {i}"
            );
        }
    }
    let count = |k: Kind, ok: bool| history.iter().filter(|o| o.kind == k && o.ok == ok).count();
    eprintln!(
        "history: {} writes acknowledged ({} not), {} creates won ({} not), {} reads answered ({} not)",
        count(Kind::Write, true),
        count(Kind::Write, false),
        count(Kind::Create, true),
        count(Kind::Create, false),
        count(Kind::Read, true),
        count(Kind::Read, false)
    );
    check_journals(&g);
    let order = commit_order(&g.dir.path().join(DIRECTORS[0]));
    check_registers(&history, &order);
    check_final(&g, &history, &order);
}

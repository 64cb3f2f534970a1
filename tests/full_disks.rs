//! Full disks answer in the right words (issue 18, item 8): stores below their reserve
//! make the director answer 507 InsufficientStorage naming them (not "only 1 store is
//! up"), and a full journal disk answers 507 with a code and no file path, stores nothing,
//! and writes work again once space is freed. Real stores and director on loopback; the
//! director's small disk is a tmpfs in a mount namespace of its own (`unshare -rm`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn code_and_message(a: &Answer) -> (String, String) {
    let doc = a.text();
    let code = xml_values(&doc, "Code").pop().unwrap_or_default();
    let msg = xml_values(&doc, "Message").pop().unwrap_or_default();
    (code, msg)
}

#[test]
fn full_stores_answer_507_naming_them_and_store_nothing() {
    let dir = TempDir::new("full-stores");
    // Every store keeps its whole disk in reserve: each PUT of a chunk is answered 507.
    let c = Cluster::start_with(&dir, 3, 2, &[], &["--scrub-rate", "0", "--reserve", "100%"]);
    assert_eq!(
        request("PUT", &format!("{}/full", c.url()), &[], None)
            .unwrap()
            .status,
        200,
        "a bucket is only a journal record"
    );
    let seq = c.status()["journal"]["last_seq"].clone();
    let r = put(&format!("{}/full/a", c.url()), b"no room anywhere").unwrap();
    let (code, msg) = code_and_message(&r);
    assert_eq!(r.status, 507, "{msg}");
    assert_eq!(code, "InsufficientStorage");
    assert!(msg.contains("are full"), "{msg}");
    // The director stops asking once N copies are out of reach: two of three are named.
    let named = ["s1", "s2", "s3"]
        .iter()
        .filter(|id| msg.contains(*id))
        .count();
    assert!(named >= 2, "the full stores are named: {msg}");
    assert!(!msg.contains("are up"), "{msg}");
    assert_eq!(c.status()["journal"]["last_seq"], seq, "nothing journaled");
    assert_eq!(get(&format!("{}/full/a", c.url())).unwrap().status, 404);
}

/// A director whose data folder is a 1 MiB tmpfs in its own mount namespace. A helper
/// shell in that namespace fills the disk when `fill-now` appears in `ctl` (then writes
/// `filled`) and frees it on `free-now` (then `freed`); it exits with the director.
struct SmallDiskDirector {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

const SMALL_DISK_SCRIPT: &str = r#"
mount -t tmpfs -o size=1m tmpfs "$MNT" || exit 97
(
  wait_for() { n=0; while kill -0 $$ 2>/dev/null && [ ! -e "$CTL/$1" ]; do
      sleep 0.05; n=$((n+1)); [ $n -lt 1200 ] || exit 0; done; kill -0 $$ 2>/dev/null || exit 0; }
  wait_for fill-now
  dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null
  touch "$CTL/filled"
  wait_for free-now
  rm -f "$MNT/filler"
  touch "$CTL/freed"
) &
exec "$@"
"#;

impl SmallDiskDirector {
    fn start(dir: &TempDir, stores: &[Daemon]) -> SmallDiskDirector {
        let mnt = dir.path().join("small-disk");
        std::fs::create_dir_all(&mnt).unwrap();
        let port = free_port();
        let log = dir.path().join("director.log");
        let mut cmd = Command::new("unshare");
        cmd.args(["-rm", "sh", "-c", SMALL_DISK_SCRIPT, "sh"])
            .arg(bin("dpyfs-director"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(mnt.join("director"))
            .args(["--replicas", "2"]);
        for s in stores {
            cmd.args(["--store", &s.url()]);
        }
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .env("MNT", &mnt)
            .env("CTL", dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("unshare (util-linux) is needed: apt-get install util-linux");
        let mut d = SmallDiskDirector { child, port, log };
        wait_for(30_000, "the director on a small disk", || {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!(
                    "the director on a tmpfs exited ({st}); `unshare -rm` needs mount \
                     namespaces (run as root or allow user namespaces). Log:\n{}",
                    d.log_text()
                );
            }
            get(&format!("{}/_dpyfs/status", d.url())).ok().map(|_| ())
        });
        d
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Creates `ctl/what` and waits for `ctl/answer` from the shell in the namespace.
    fn signal(&self, ctl: &Path, what: &str, answer: &str) {
        std::fs::write(ctl.join(what), b"").unwrap();
        wait_for(30_000, answer, || ctl.join(answer).exists().then_some(()));
    }
}

impl Drop for SmallDiskDirector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- director log ---\n{}", self.log_text());
        }
    }
}

/// Small PUTs tried after the disk is filled before one must be refused.
const JOURNAL_FILL_PUTS_MAX: usize = 200;

#[test]
fn a_full_journal_disk_answers_507_without_paths_and_recovers() {
    let dir = TempDir::new("full-journal");
    let stores: Vec<Daemon> = (1..=3)
        .map(|i| Cluster::store(&dir, i, &["--scrub-rate", "0"]))
        .collect();
    let d = SmallDiskDirector::start(&dir, &stores);
    wait_for(30_000, "3 stores up", || {
        let st = get(&format!("{}/_dpyfs/status", d.url())).ok()?.json();
        let up = st["stores"].as_array()?.iter().filter(|s| s["up"] == true);
        (up.count() == 3).then_some(())
    });
    let url = d.url();
    assert_eq!(
        request("PUT", &format!("{url}/jfull"), &[], None)
            .unwrap()
            .status,
        200
    );
    let before = random_bytes(300_000, 1);
    assert_eq!(
        put(&format!("{url}/jfull/before"), &before).unwrap().status,
        200
    );

    d.signal(dir.path(), "fill-now", "filled");
    // The journal's last page may still have room for a few lines: buckets (the shortest
    // records) are made until one is refused, and every one acknowledged must stay. Then
    // an object's record, longer than a bucket's, cannot fit either.
    let mut acknowledged = Vec::new();
    let refused = (0..JOURNAL_FILL_PUTS_MAX)
        .find_map(|i| {
            let bucket = format!("{url}/fill-{i}");
            let r = request("PUT", &bucket, &[], None).unwrap();
            if r.status == 200 {
                acknowledged.push(bucket);
                None
            } else {
                Some(r)
            }
        })
        .expect("the full journal disk never refused a write");
    for (what, r) in [
        ("bucket", Ok(refused)),
        (
            "object",
            put(&format!("{url}/jfull/after"), b"no room in the journal"),
        ),
    ] {
        let r = r.unwrap();
        let (code, msg) = code_and_message(&r);
        assert_eq!(r.status, 507, "{what}: {msg}");
        assert_eq!(code, "InsufficientStorage", "{what}");
        assert!(msg.contains("journal disk is full"), "{what}: {msg}");
        assert!(
            !msg.contains('/'),
            "{what}: a path reached the client: {msg}"
        );
    }
    assert!(
        d.log_text().contains("small-disk/director/journal"),
        "the log keeps the path"
    );
    assert_eq!(get(&format!("{url}/jfull/after")).unwrap().status, 404);
    let g = get(&format!("{url}/jfull/before")).unwrap();
    assert!(g.status == 200 && g.body == before, "reads go on");
    let refused_bucket = format!("{url}/fill-{}", acknowledged.len());
    let r = request("HEAD", &refused_bucket, &[], None).unwrap();
    assert_eq!(r.status, 404, "the refused bucket was not made");
    for bucket in &acknowledged {
        let r = request("HEAD", bucket, &[], None).unwrap();
        assert_eq!(r.status, 200, "{bucket}");
    }

    // Space freed: the partial line was cut off, so the journal takes writes again.
    d.signal(dir.path(), "free-now", "freed");
    assert_eq!(
        put(&format!("{url}/jfull/after"), b"room again")
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        get(&format!("{url}/jfull/after")).unwrap().text(),
        "room again"
    );
}

//! `dpyfs mount`: a real FUSE mount of a real cluster, driven with ordinary programs (cp,
//! cat, ls, mkdir, rm, mv, rsync, tar, truncate, cmp, diff), and served on by a private
//! smbd (Samba) and minidlnad on loopback ports. Needs /dev/fuse, `fusermount3` (Debian's
//! fuse3), rsync, samba, smbclient and minidlna; tests/clients/install.sh installs the
//! programs when missing. Runs as root in CI. A missing /dev/fuse fails the test, saying
//! what to do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// How long the mount may take to appear in /proc/mounts.
const MOUNT_WAIT_MS: u64 = 30_000;
const BUCKET: &str = "mnt";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails (never skips) when FUSE cannot work here; installs fuse3 and rsync if missing.
fn need_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "no /dev/fuse: load the module (modprobe fuse), or run the container with \
         --device /dev/fuse --cap-add SYS_ADMIN"
    );
    if !have("fusermount3") || !have("rsync") {
        install_test_tools();
    }
    assert!(
        have("fusermount3") && have("rsync"),
        "fusermount3 and rsync are needed: apt-get install --no-install-recommends fuse3 rsync"
    );
}

fn have(program: &str) -> bool {
    Command::new("which")
        .arg(program)
        .output()
        .unwrap()
        .status
        .success()
}

fn install_test_tools() {
    let s = Command::new(manifest_dir().join("tests/clients/install.sh"))
        .status()
        .unwrap();
    assert!(s.success(), "tests/clients/install.sh failed");
}

/// Fails (never skips) without the servers put on top of the mount; installs them if
/// missing. `programs`: (program, Debian package).
fn need_programs(programs: &[(&str, &str)]) {
    if programs.iter().any(|(p, _)| !have(p)) {
        install_test_tools();
    }
    for (p, package) in programs {
        assert!(
            have(p),
            "{p} is needed: apt-get install --no-install-recommends {package}"
        );
    }
}

fn is_mounted(mp: &Path) -> bool {
    let text = fs::read_to_string("/proc/mounts").unwrap();
    let want = mp.to_str().unwrap();
    text.lines().any(|l| l.split(' ').nth(1) == Some(want))
}

/// A running `dpyfs mount`: unmounted (by path) and stopped (by PID) when dropped.
struct Mounted {
    child: Option<Child>,
    mp: PathBuf,
    log: PathBuf,
}

impl Mounted {
    fn start(url: &str, target: &str, dir: &Path, extra: &[&str]) -> Mounted {
        let mp = dir.join("mnt");
        let spool = dir.join("spool");
        fs::create_dir_all(&mp).unwrap();
        fs::create_dir_all(&spool).unwrap();
        let log = dir.join("mount.log");
        let mut args = vec![
            "--url",
            url,
            "mount",
            "--spool",
            spool.to_str().unwrap(),
            "--cache-ttl",
            "200",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[target, mp.to_str().unwrap()]);
        let child = command("dpyfs")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut m = Mounted {
            child: Some(child),
            mp,
            log,
        };
        let mp = m.mp.clone();
        let mut exited = None;
        wait_for(MOUNT_WAIT_MS, "the mount", || {
            if let Some(s) = m.child.as_mut().unwrap().try_wait().unwrap() {
                exited = Some(s);
                return Some(());
            }
            is_mounted(&mp).then_some(())
        });
        assert!(
            exited.is_none(),
            "dpyfs mount exited ({exited:?}): {}",
            m.log_text()
        );
        m
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.mp.join(rel)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if is_mounted(&self.mp) {
            let _ = Command::new("fusermount3").arg("-u").arg(&self.mp).status();
        }
        if let Some(mut c) = self.child.take() {
            // fusermount3 -u ends the session and the process by itself; SIGTERM if not.
            for _ in 0..50 {
                if c.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if c.try_wait().unwrap().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if is_mounted(&self.mp) {
            // A killed mount leaves a dead mount point: detach it lazily.
            let _ = Command::new("fusermount3")
                .arg("-uz")
                .arg(&self.mp)
                .status();
        }
        if std::thread::panicking() {
            eprintln!("--- dpyfs mount log ---\n{}", self.log_text());
        }
    }
}

fn sh(cwd: &Path, script: &str) -> Output {
    Command::new("sh")
        .args(["-c", script])
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn sh_ok(cwd: &Path, script: &str) -> String {
    let o = sh(cwd, script);
    assert!(
        o.status.success(),
        "`{script}` failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tool(name: &str, url: &str, args: &[&str], cwd: &Path) -> Output {
    command(name)
        .args(["--url", url])
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn cluster_with_bucket(dir: &TempDir) -> Cluster {
    let c = Cluster::start(dir, 2, 2, &[]);
    put(&format!("{}/{BUCKET}", c.url()), b"").unwrap();
    c
}

/// The mount tests run one at a time. Starting any process forks this one, and the fork
/// holds a duplicate of every open descriptor until it execs; closing that duplicate is a
/// FUSE flush, which uploads a file another test is holding open (as a close should), so a
/// test that keeps a file open would see it stored early.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn files_and_folders_through_the_mount() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-basic");
    let c = cluster_with_bucket(&dir);
    let m = Mounted::start(&c.url(), BUCKET, dir.path(), &[]);
    let work = dir.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let mp = m.mp.to_str().unwrap().to_string();

    // cp in, cat back, ls -la shows it with its size.
    fs::write(work.join("hello.txt"), b"hello, mount\n").unwrap();
    sh_ok(&work, &format!("cp hello.txt {mp}/hello.txt"));
    assert_eq!(
        sh_ok(&work, &format!("cat {mp}/hello.txt")),
        "hello, mount\n"
    );
    let ls = sh_ok(&work, &format!("ls -la {mp}"));
    assert!(ls.contains("hello.txt") && ls.contains(" 13 "), "{ls}");

    // Folders: mkdir -p makes markers; a file deep inside; rmdir of a full folder refused.
    sh_ok(
        &work,
        &format!("mkdir -p {mp}/a/b/c && cp hello.txt {mp}/a/b/c/x.txt"),
    );
    assert!(m.path("a/b/c").is_dir());
    // ENOTEMPTY is 39 on Linux.
    let e = fs::remove_dir(m.path("a/b")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(39), "{e}");
    sh_ok(&work, &format!("mkdir {mp}/empty"));
    assert!(m.path("empty").is_dir());
    let listed = tool("dpyfs", &c.url(), &["ls", "-r", BUCKET], &work);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("empty/"), "the marker object: {listed}");

    // The last file of a folder removed: the folder stays.
    fs::remove_file(m.path("a/b/c/x.txt")).unwrap();
    assert!(m.path("a/b/c").is_dir());
    fs::remove_dir(m.path("a/b/c")).unwrap();
    assert!(!m.path("a/b/c").exists());

    // mv of a file and of a folder with files (server-side copies).
    sh_ok(
        &work,
        &format!("mkdir -p {mp}/d1/sub && cp hello.txt {mp}/d1/sub/f && cp hello.txt {mp}/d1/g"),
    );
    sh_ok(&work, &format!("mv {mp}/hello.txt {mp}/moved.txt"));
    assert!(!m.path("hello.txt").exists());
    assert_eq!(fs::read(m.path("moved.txt")).unwrap(), b"hello, mount\n");
    sh_ok(&work, &format!("mv {mp}/d1 {mp}/a/d2"));
    assert!(!m.path("d1").exists());
    assert_eq!(fs::read(m.path("a/d2/sub/f")).unwrap(), b"hello, mount\n");
    assert_eq!(fs::read(m.path("a/d2/g")).unwrap(), b"hello, mount\n");

    // rm -r.
    sh_ok(&work, &format!("rm -r {mp}/a"));
    assert!(!m.path("a").exists());

    // Truncation: shorter, longer (zeros), to nothing.
    fs::write(m.path("t.bin"), b"0123456789").unwrap();
    sh_ok(&work, &format!("truncate -s 4 {mp}/t.bin"));
    assert_eq!(fs::read(m.path("t.bin")).unwrap(), b"0123");
    sh_ok(&work, &format!("truncate -s 6 {mp}/t.bin"));
    assert_eq!(fs::read(m.path("t.bin")).unwrap(), b"0123\0\0");
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(m.path("t.bin"))
        .unwrap();
    assert_eq!(fs::read(m.path("t.bin")).unwrap(), b"");

    // Appending to a file keeps what was there.
    fs::write(m.path("log.txt"), b"one\n").unwrap();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(m.path("log.txt"))
        .unwrap();
    f.write_all(b"two\n").unwrap();
    drop(f);
    assert_eq!(fs::read(m.path("log.txt")).unwrap(), b"one\ntwo\n");

    // Two processes appending to different files at the same time.
    fs::write(m.path("p1.txt"), b"").unwrap();
    fs::write(m.path("p2.txt"), b"").unwrap();
    let appenders: Vec<Child> = ["p1", "p2"]
        .iter()
        .map(|p| {
            Command::new("sh")
                .args([
                    "-c",
                    &format!("for i in $(seq 1 50); do echo {p}-$i >> {mp}/{p}.txt; done"),
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut a in appenders {
        assert!(a.wait().unwrap().success());
    }
    for p in ["p1", "p2"] {
        let want: String = (1..=50).map(|i| format!("{p}-{i}\n")).collect();
        assert_eq!(
            fs::read_to_string(m.path(&format!("{p}.txt"))).unwrap(),
            want
        );
    }

    // cp -p keeps the modification time (x-amz-meta-mtime, as rclone).
    sh_ok(&work, "touch -d '2001-02-03 04:05:06' old.txt");
    sh_ok(&work, &format!("cp -p old.txt {mp}/old.txt"));
    let t = fs::metadata(m.path("old.txt")).unwrap().mtime();
    assert_eq!(t, fs::metadata(work.join("old.txt")).unwrap().mtime());

    // dpyfs-put -> visible in the mount; written in the mount -> dpyfs-get.
    fs::write(work.join("byput.txt"), b"from dpyfs-put").unwrap();
    let o = tool(
        "dpyfs-put",
        &c.url(),
        &["byput.txt", "mnt/in/byput.txt"],
        &work,
    );
    assert!(o.status.success(), "{o:?}");
    wait_for(5_000, "the put file in the mount", || {
        fs::read(m.path("in/byput.txt")).ok()
    });
    assert_eq!(fs::read(m.path("in/byput.txt")).unwrap(), b"from dpyfs-put");
    fs::write(m.path("bymount.txt"), b"from the mount").unwrap();
    let o = tool(
        "dpyfs-get",
        &c.url(),
        &["mnt/bymount.txt", "got.txt"],
        &work,
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(fs::read(work.join("got.txt")).unwrap(), b"from the mount");

    // Links are refused; df shows the cluster's disks.
    let e = std::os::unix::fs::symlink("moved.txt", m.path("link")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(1), "EPERM: {e}");
    let df = sh_ok(&work, &format!("df -k {mp} | tail -1"));
    let total: u64 = df.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(total > 0, "{df}");
}

#[test]
fn rsync_tar_and_a_large_file() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-bulk");
    let c = cluster_with_bucket(&dir);
    let m = Mounted::start(&c.url(), "mnt/pre", dir.path(), &[]);
    let work = dir.path().join("work");
    let tree = work.join("tree");
    // A tree of a few hundred files of mixed sizes in nested folders, one empty folder.
    for i in 0..300usize {
        let sub = tree.join(format!("d{}/e{}", i % 7, i % 3));
        fs::create_dir_all(&sub).unwrap();
        let len = [0, 1, 100, 5_000, 70_000, 300_000][i % 6];
        fs::write(sub.join(format!("f{i}.bin")), random_bytes(len, i as u64)).unwrap();
    }
    fs::create_dir_all(tree.join("empty/inside")).unwrap();
    let mp = m.mp.to_str().unwrap().to_string();
    sh_ok(&work, &format!("rsync -a tree/ {mp}/tree/"));
    sh_ok(&work, &format!("rsync -a {mp}/tree/ back/"));
    sh_ok(&work, "diff -r tree back");
    // Times came through (rsync -a sets them; the mount keeps them as metadata).
    let a = fs::metadata(tree.join("d1/e1/f1.bin")).unwrap().mtime();
    let b = fs::metadata(work.join("back/d1/e1/f1.bin"))
        .unwrap()
        .mtime();
    assert_eq!(a, b);
    // The keys are under the prefix.
    let o = tool("dpyfs", &c.url(), &["ls", "mnt/pre/tree/d1/e1/"], &work);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("f1.bin"),
        "{o:?}"
    );

    // tar -x into the mount.
    sh_ok(&work, "tar -cf t.tar tree");
    sh_ok(
        &work,
        &format!("mkdir {mp}/untar && tar -xf t.tar -C {mp}/untar"),
    );
    sh_ok(&work, &format!("diff -r tree {mp}/untar/tree"));

    // A large file: cp in, cmp, and random-offset reads match the local copy.
    let big = work.join("big.bin");
    let len: u64 = 64 << 20;
    {
        let mut f = fs::File::create(&big).unwrap();
        std::io::copy(&mut GenReader::new(len, 7), &mut f).unwrap();
    }
    sh_ok(
        &work,
        &format!("cp big.bin {mp}/big.bin && cmp big.bin {mp}/big.bin"),
    );
    let mut local = fs::File::open(&big).unwrap();
    let mut remote = fs::File::open(m.path("big.bin")).unwrap();
    let mut x: u64 = 12345;
    for _ in 0..40 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let off = (x >> 11) % len;
        let n = ((x >> 3) % 300_000) as usize + 1;
        let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
        local.seek(SeekFrom::Start(off)).unwrap();
        let na = read_full(&mut local, &mut a);
        remote.seek(SeekFrom::Start(off)).unwrap();
        let nb = read_full(&mut remote, &mut b);
        assert_eq!(na, nb, "length at {off}");
        assert!(a[..na] == b[..nb], "bytes at {off}+{n}");
    }
    if let Some(rss) = peak_rss_bytes(m.pid()) {
        eprintln!("dpyfs mount peak RSS: {} KiB", rss / 1024);
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        let n = f.read(&mut buf[got..]).unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    got
}

#[test]
fn failures_reach_the_program() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-fail");
    let mut c = cluster_with_bucket(&dir);
    let m = Mounted::start(
        &c.url(),
        BUCKET,
        dir.path(),
        &["--spool-max", "1048576", "--retries", "1"],
    );

    // A full spool: ENOSPC, not a hang; nothing of the file is stored.
    let mut f = fs::File::create(m.path("too-big.bin")).unwrap();
    let e = f.write_all(&vec![7u8; 2 << 20]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(28), "ENOSPC: {e}");
    drop(f);
    let _ = fs::remove_file(m.path("too-big.bin"));

    // The stores are down when a file is opened to append to: its spool cannot be filled
    // from the object, so the open fails (EIO) and nothing (no zeros) is uploaded.
    fs::write(m.path("kept.txt"), b"kept\n").unwrap();
    for s in &mut c.stores {
        s.kill();
    }
    let e = fs::OpenOptions::new()
        .append(true)
        .open(m.path("kept.txt"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5), "EIO from open: {e}");
    for s in &mut c.stores {
        s.restart();
    }
    c.wait_stores_up(2);
    assert_eq!(fs::read(m.path("kept.txt")).unwrap(), b"kept\n");

    // The director dies during a write: close() fails, nothing half-written is visible.
    let mut f = fs::File::create(m.path("during.bin")).unwrap();
    f.write_all(&vec![1u8; 100_000]).unwrap();
    c.director.kill();
    f.write_all(&vec![2u8; 100_000]).unwrap();
    let e = f.sync_all().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5), "EIO from fsync: {e}");
    drop(f);

    // Restarted: the same mount works again, without remounting.
    c.director.restart();
    // Writes need the stores seen up again (before that the director answers 503).
    c.wait_stores_up(2);
    assert!(!m.path("during.bin").exists(), "dropped, not half-stored");
    let o = tool("dpyfs", &c.url(), &["ls", BUCKET], dir.path());
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("during.bin"),
        "a half-written file is visible: {o:?}"
    );
    fs::write(m.path("after.txt"), b"still mounted").unwrap();
    assert_eq!(fs::read(m.path("after.txt")).unwrap(), b"still mounted");
}

#[test]
fn bad_arguments_are_refused_before_mounting() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-args");
    let c = cluster_with_bucket(&dir);
    let url = c.url();
    let mp = dir.path().join("mnt");
    fs::create_dir_all(&mp).unwrap();
    let mps = mp.to_str().unwrap();
    let run = |args: &[&str]| {
        let o = command("dpyfs")
            .args(["--url", &url, "mount"])
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[BUCKET]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("MOUNTPOINT"), "{err}");
    let (code, err) = run(&["--spool-max", "lots", BUCKET, mps]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--spool-max"), "{err}");
    let missing = dir.path().join("nowhere");
    let (code, err) = run(&[BUCKET, missing.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not a folder"), "{err}");
    let (code, err) = run(&["nosuchbucket", mps]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no bucket 'nosuchbucket'"), "{err}");
    assert!(!is_mounted(&mp));
}

/// The files a child process holds open (written, never closed) until it is killed.
/// A child, not this test process: another test's fork here briefly duplicates every
/// descriptor of this process, and the close of that duplicate at its exec is a FUSE
/// flush, which uploads the file (as it should for a close).
const HOLD_OPEN_PY: &str = "import os, sys, time\n\
a = open(sys.argv[1], 'wb'); a.write(b'never closed'); a.flush()\n\
b = open(sys.argv[2], 'wb'); b.write(os.urandom(8 * 1024 * 1024 + 100)); b.flush()\n\
print('written', flush=True)\n\
time.sleep(600)\n";

/// A child process stopped (by its PID) when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The mount process killed with files open: the program's next call fails (ENOTCONN),
/// what was not closed is not stored (a large one's parts already sent stay an invisible
/// incomplete upload), what was closed is; the spool folder holds nothing; after
/// `fusermount3 -u` a new mount at the same place shows the stored files.
#[test]
fn a_killed_mount_loses_only_unclosed_files() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-kill");
    let c = cluster_with_bucket(&dir);
    let mut m = Mounted::start(&c.url(), BUCKET, dir.path(), &[]);
    fs::write(m.path("closed.txt"), b"closed before").unwrap();
    let mut holder = KillOnDrop(
        Command::new("python3")
            .args(["-c", HOLD_OPEN_PY])
            .arg(m.path("open.txt"))
            .arg(m.path("big-open.bin"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed for this test: apt-get install python3"),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "written\n");
    // This process's own open file, for the calls that must fail once the mount is gone.
    let mut probe = fs::File::create(m.path("probe.txt")).unwrap();
    probe.write_all(b"x").unwrap();
    wait_for(MOUNT_WAIT_MS, "a part sent", || {
        pending_uploads(&c).into_iter().next()
    });
    let mut child = m.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let e = probe.sync_all().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(107), "ENOTCONN: {e}");
    let e = probe.write_all(b"more").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(107), "ENOTCONN: {e}");
    drop(probe);
    drop(holder);
    let o = tool("dpyfs", &c.url(), &["ls", BUCKET], dir.path());
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(listed.contains("closed.txt"), "{listed}");
    assert!(!listed.contains("open.txt"), "{listed}");
    assert!(!listed.contains("big-open.bin"), "{listed}");
    let spool_files: Vec<_> = files_under(&dir.path().join("spool"));
    assert!(spool_files.is_empty(), "{spool_files:?}");
    // A dead mount point: detached, then mounted again.
    let s = Command::new("fusermount3")
        .arg("-uz")
        .arg(&m.mp)
        .status()
        .unwrap();
    assert!(s.success());
    drop(m);
    let m = Mounted::start(&c.url(), BUCKET, dir.path(), &[]);
    assert_eq!(fs::read(m.path("closed.txt")).unwrap(), b"closed before");
    assert!(!m.path("big-open.bin").exists());
}

/// Without --allow-other only the mounting user (root here) may enter; with it, others
/// (a Samba or media server's own user) can read and write.
#[test]
fn other_users_only_with_allow_other() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-other");
    let c = cluster_with_bucket(&dir);
    let as_nobody = |script: &str| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
            ])
            .arg(script)
            .output()
            .unwrap()
    };
    {
        let m = Mounted::start(&c.url(), BUCKET, dir.path(), &[]);
        fs::write(m.path("f.txt"), b"shared").unwrap();
        let o = as_nobody(&format!("cat {}", m.path("f.txt").display()));
        assert!(!o.status.success(), "{o:?}");
    }
    let m = Mounted::start(&c.url(), BUCKET, dir.path(), &["--allow-other"]);
    let o = as_nobody(&format!(
        "cat {0}/f.txt && echo new > {0}/by-nobody.txt",
        m.mp.display()
    ));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "shared");
    assert_eq!(fs::read(m.path("by-nobody.txt")).unwrap(), b"new\n");
}

/// Whether process `pid` has ended (gone, or a zombie nobody has reaped yet).
fn ended(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses: "123 (dpyfs) Z ...".
        Ok(s) => s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
    }
}

/// `dpyfs mount --daemon`: starts it and returns the daemon's PID once the command has
/// returned (the folder must be usable at once: no waiting here).
fn start_daemon(url: &str, dir: &Path, mp: &Path) -> u32 {
    let o = command("dpyfs")
        .args(["--url", url, "mount", "--daemon", "--log"])
        .arg(dir.join("daemon.log"))
        .args(["--spool", dir.join("spool").to_str().unwrap(), BUCKET])
        .arg(mp)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let pid: u32 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    if !is_mounted(mp) {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        panic!("not mounted when the command returned: {o:?}");
    }
    pid
}

/// `--daemon` returns once the folder is usable and prints the PID; SIGTERM, SIGINT and
/// `fusermount3 -u` each unmount it and end the process; an error before mounting still
/// reaches the terminal with exit status 1.
#[test]
fn a_daemon_mount_detaches_and_unmounts() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-daemon");
    let c = cluster_with_bucket(&dir);
    let mp = dir.path().join("mnt");
    fs::create_dir_all(&mp).unwrap();
    fs::create_dir_all(dir.path().join("spool")).unwrap();
    let stop_with = |how: &str, pid: u32| {
        let s = match how {
            "fusermount3" => Command::new("fusermount3").arg("-u").arg(&mp).status(),
            sig => Command::new("kill").args([sig, &pid.to_string()]).status(),
        };
        assert!(s.unwrap().success(), "{how}");
        wait_for(MOUNT_WAIT_MS, "the daemon to end", || {
            ended(pid).then_some(())
        });
        assert!(!is_mounted(&mp), "unmounted after {how}");
    };
    for (i, how) in ["-TERM", "-INT", "fusermount3"].iter().enumerate() {
        let pid = start_daemon(&c.url(), dir.path(), &mp);
        let guard = UnmountOnPanic(&mp);
        let name = format!("d{i}.txt");
        fs::write(mp.join(&name), format!("daemon {i}")).unwrap();
        assert_eq!(
            fs::read_to_string(mp.join(&name)).unwrap(),
            format!("daemon {i}")
        );
        stop_with(how, pid);
        drop(guard);
        let o = tool(
            "dpyfs-get",
            &c.url(),
            &[&format!("{BUCKET}/{name}"), "-"],
            dir.path(),
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout), format!("daemon {i}"));
    }
    let log = fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");

    // An error before mounting: the terminal hears it and the command fails.
    let o = command("dpyfs")
        .args(["--url", &c.url(), "mount", "--daemon", "nosuchbucket"])
        .arg(&mp)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no bucket 'nosuchbucket'"), "{err}");
    assert!(!is_mounted(&mp));
}

/// Detaches a mount point left behind when a test fails half-way.
struct UnmountOnPanic<'a>(&'a Path);

impl Drop for UnmountOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() && is_mounted(self.0) {
            let _ = Command::new("fusermount3").arg("-u").arg(self.0).status();
        }
    }
}

/// A server a test puts on top of the mount (smbd, minidlnad), started in the foreground
/// with its output in `log`; stopped by its PID (SIGTERM, then SIGKILL) when dropped.
struct Service {
    child: Child,
    log: PathBuf,
}

impl Service {
    fn start(cmd: &mut Command, log: PathBuf) -> Service {
        let out = fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Service { child, log }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SIGTERM first: smbd then stops the processes it forked for connections.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..50 {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.child.try_wait().unwrap().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.log_text());
        }
    }
}

fn wait_listening(port: u16, what: &str) {
    wait_for(MOUNT_WAIT_MS, what, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
}

/// The share as README's "Mount it" shows it, in a private smbd on a loopback port: every
/// state folder in `dir`, guests let in and acting as the mount's owner.
fn samba_conf(dir: &Path, port: u16, share: &Path) -> PathBuf {
    let d = dir.join("samba");
    let mut global = format!(
        "[global]\n  smb ports = {port}\n  interfaces = 127.0.0.1\n  bind interfaces only = yes\n  \
         disable netbios = yes\n  server role = standalone server\n  map to guest = Bad User\n  \
         load printers = no\n  printcap name = /dev/null\n  disable spoolss = yes\n  \
         log file = {0}/log.smbd\n  passdb backend = tdbsam:{0}/private/passdb.tdb\n",
        d.display()
    );
    for sub in ["private", "lock", "state", "cache", "pid", "ncalrpc"] {
        fs::create_dir_all(d.join(sub)).unwrap();
        let key = match sub {
            "private" => "private dir".to_string(),
            "lock" => "lock directory".to_string(),
            "ncalrpc" => "ncalrpc dir".to_string(),
            other => format!("{other} directory"),
        };
        global.push_str(&format!("  {key} = {}\n", d.join(sub).display()));
    }
    let conf = d.join("smb.conf");
    fs::write(
        &conf,
        format!(
            "{global}\n[photos]\n  path = {}\n  read only = no\n  guest ok = yes\n  force user = root\n",
            share.display()
        ),
    )
    .unwrap();
    conf
}

fn smbclient(port: u16, cwd: &Path, commands: &str) -> String {
    let o = Command::new("smbclient")
        .args(["//127.0.0.1/photos", "-N", "-p", &port.to_string(), "-c"])
        .arg(commands)
        .current_dir(cwd)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && !text.contains("NT_STATUS_"),
        "smbclient -c '{commands}': {text}"
    );
    text
}

/// Samba sharing the mounted folder: smbclient puts a tree in and gets it back out, and
/// the files are in the cluster.
#[test]
fn samba_shares_the_mount() {
    let _one = one_at_a_time();
    need_fuse();
    need_programs(&[("smbd", "samba"), ("smbclient", "smbclient")]);
    let dir = TempDir::new("mount-samba");
    let c = cluster_with_bucket(&dir);
    let m = Mounted::start(&c.url(), BUCKET, dir.path(), &["--allow-other"]);
    let port = free_port();
    let conf = samba_conf(dir.path(), port, &m.mp);
    let smbd = Service::start(
        Command::new("smbd")
            .args(["--foreground", "--debug-stdout", "-s"])
            .arg(&conf),
        dir.path().join("smbd.log"),
    );
    wait_listening(port, "smbd to listen");

    let work = dir.path().join("work");
    let tree = work.join("tree");
    for i in 0..24usize {
        let sub = tree.join(format!("d{}/e{}", i % 3, i % 2));
        fs::create_dir_all(&sub).unwrap();
        let len = [0, 1, 700, 40_000, 1_500_000, 3 << 20][i % 6];
        fs::write(sub.join(format!("f{i}.bin")), random_bytes(len, i as u64)).unwrap();
    }
    smbclient(
        port,
        &work,
        "prompt OFF; recurse ON; lcd tree; mkdir tree; cd tree; mput *",
    );
    sh_ok(&work, &format!("diff -r tree {}/tree", m.mp.display()));
    // In the cluster, not only in the mount's spool.
    let o = tool(
        "dpyfs-get",
        &c.url(),
        &[&format!("{BUCKET}/tree/d1/e1/f1.bin"), "got.bin"],
        &work,
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        fs::read(work.join("got.bin")).unwrap(),
        fs::read(tree.join("d1/e1/f1.bin")).unwrap()
    );
    fs::create_dir_all(work.join("back")).unwrap();
    smbclient(port, &work, "prompt OFF; recurse ON; lcd back; mget tree");
    sh_ok(&work, "diff -r tree back/tree");
    drop(smbd);
}

/// A WAV file of `samples` 8-bit mono samples at 8 kHz.
fn wav(samples: usize, seed: u8) -> Vec<u8> {
    let data: Vec<u8> = (0..samples)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect();
    let mut w = b"RIFF".to_vec();
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    // PCM, 1 channel, 8000 samples/s, 8000 bytes/s, 1-byte frames, 8 bits.
    for (v, n) in [
        (16u32, 4),
        (1, 2),
        (1, 2),
        (8000, 4),
        (8000, 4),
        (1, 2),
        (8, 2),
    ] {
        w.extend_from_slice(&v.to_le_bytes()[..n]);
    }
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    w
}

/// The smallest baseline JPEG: 8x8 grey, one component, one block whose DC and AC
/// coefficients are all zero, with one-code Huffman tables for exactly that.
fn tiny_jpeg() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8]; // SOI
    j.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]); // DQT, table 0: all ones
    j.extend_from_slice(&[1; 64]);
    // SOF0: 8 bits, 8x8, one component (id 1, no subsampling, table 0).
    j.extend_from_slice(&[
        0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00,
    ]);
    // DHT: DC table 0 and AC table 0, each one 1-bit code for symbol 0 (DC 0; end of block).
    for class in [0x00, 0x10] {
        j.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, class, 1]);
        j.extend_from_slice(&[0; 16]);
    }
    // SOS, then the block: "0" (DC diff 0), "0" (EOB), padded with ones; EOI.
    j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    j.extend_from_slice(&[0x3F, 0xFF, 0xD9]);
    j
}

/// A ContentDirectory Browse of `object` (its direct children), as a TV sends it.
fn upnp_browse(port: u16, object: &str) -> String {
    let body = format!(
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>\
         <u:Browse xmlns:u=\"urn:schemas-upnp-org:service:ContentDirectory:1\">\
         <ObjectID>{object}</ObjectID><BrowseFlag>BrowseDirectChildren</BrowseFlag>\
         <Filter>*</Filter><StartingIndex>0</StartingIndex><RequestedCount>100</RequestedCount>\
         <SortCriteria></SortCriteria></u:Browse></s:Body></s:Envelope>"
    );
    let a = request(
        "POST",
        &format!("http://127.0.0.1:{port}/ctl/ContentDir"),
        &[
            ("Content-Type", "text/xml; charset=\"utf-8\""),
            (
                "SOAPAction",
                "\"urn:schemas-upnp-org:service:ContentDirectory:1#Browse\"",
            ),
        ],
        Some(body.as_bytes()),
    )
    .unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    // The DIDL-Lite document travels escaped inside the SOAP answer.
    a.text()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// minidlna indexing the mounted folder: its status page counts the media files, a
/// Browse lists them, and a file it serves is byte for byte the one written.
#[test]
fn minidlna_indexes_the_mount() {
    let _one = one_at_a_time();
    need_fuse();
    need_programs(&[("minidlnad", "minidlna")]);
    let dir = TempDir::new("mount-dlna");
    let c = cluster_with_bucket(&dir);
    let m = Mounted::start(&c.url(), "mnt/media", dir.path(), &["--allow-other"]);
    let tone = wav(8000, 1);
    fs::create_dir_all(m.path("music")).unwrap();
    fs::write(m.path("music/tone.wav"), &tone).unwrap();
    fs::write(m.path("music/beep.wav"), wav(4000, 2)).unwrap();
    fs::create_dir_all(m.path("pictures/2026")).unwrap();
    fs::write(m.path("pictures/2026/grey.jpg"), tiny_jpeg()).unwrap();

    let port = free_port();
    let d = dir.path().join("minidlna");
    fs::create_dir_all(&d).unwrap();
    let conf = d.join("minidlna.conf");
    fs::write(
        &conf,
        format!(
            "media_dir={}\nport={port}\nnetwork_interface=lo\nfriendly_name=dpyfs test\n\
             db_dir={1}/db\nlog_dir={1}/log\ninotify=no\n",
            m.mp.display(),
            d.display()
        ),
    )
    .unwrap();
    let _dlna = Service::start(
        Command::new("minidlnad")
            .arg("-f")
            .arg(&conf)
            .arg("-P")
            .arg(d.join("minidlna.pid"))
            .arg("-S"),
        dir.path().join("minidlnad.log"),
    );
    wait_listening(port, "minidlna to listen");
    // The status page counts what the scan found; the scan runs in the background.
    let status_url = format!("http://127.0.0.1:{port}/");
    wait_for(MOUNT_WAIT_MS, "minidlna's scan of the mount", || {
        let page = get(&status_url).ok()?.text();
        let text: String = page
            .split('<')
            .map(|p| p.split_once('>').map_or(p, |(_, t)| t))
            .collect::<Vec<_>>()
            .join(" ");
        let words: Vec<&str> = text.split_whitespace().collect();
        let count = |kind: &str| {
            words
                .windows(3)
                .find(|w| w[0] == kind && w[1] == "files")
                .and_then(|w| w[2].parse::<i64>().ok())
        };
        (count("Audio") == Some(2) && count("Image") == Some(1)).then_some(())
    });
    // "64" is minidlna's folder view of the media folder: walk it down.
    let mut listing = String::new();
    let mut todo = vec!["64".to_string()];
    while let Some(object) = todo.pop() {
        let answer = upnp_browse(port, &object);
        for part in answer.split("<container id=\"").skip(1) {
            todo.push(part.split('"').next().unwrap().to_string());
        }
        listing.push_str(&answer);
        assert!(listing.len() < 1 << 20, "a runaway walk: {listing}");
    }
    for title in ["tone", "beep", "grey"] {
        assert!(
            listing.contains(&format!("<dc:title>{title}</dc:title>")),
            "{title} not listed: {listing}"
        );
    }
    // The URL of tone.wav: the <res> of the item titled "tone".
    let item = listing
        .split("<item ")
        .find(|i| i.contains("<dc:title>tone</dc:title>"))
        .unwrap();
    let url = item
        .split("<res ")
        .nth(1)
        .and_then(|r| r.split_once('>'))
        .and_then(|(_, r)| r.split_once("</res>"))
        .map(|(u, _)| u.to_string())
        .unwrap();
    let served = get(&url).unwrap();
    assert_eq!(served.status, 200);
    assert!(
        served.body == tone,
        "minidlna served other bytes than tone.wav"
    );
}

/// Uploads pending in the bucket (ListMultipartUploads): (key, upload id).
fn pending_uploads(c: &Cluster) -> Vec<(String, String)> {
    let doc = get(&format!("{}/{BUCKET}?uploads", c.url()))
        .unwrap()
        .text();
    let keys = xml_values(&doc, "Key");
    let ids = xml_values(&doc, "UploadId");
    keys.into_iter().zip(ids).collect()
}

/// The object `key` of the bucket, straight from the director (GET).
fn stored(c: &Cluster, key: &str) -> Vec<u8> {
    let a = get(&format!("{}/{BUCKET}/{key}", c.url())).unwrap();
    assert_eq!(a.status, 200, "{key}: {}", a.text());
    a.body
}

/// A large file goes up in parts while it is written (the parts are in the cluster
/// before close); close completes it; a rewrite below what was sent falls back to one
/// PUT of the right bytes; the director down during a stream is EIO from fsync with
/// nothing visible; fsync of a streamed file commits it.
#[test]
fn large_files_upload_while_written() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-stream");
    let mut c = cluster_with_bucket(&dir);
    let m = Mounted::start(&c.url(), BUCKET, dir.path(), &["--retries", "1"]);
    let part: usize = 8 << 20;
    let data = random_bytes(3 * part + 12_345, 5);

    // Written in 1 MiB writes; before close, parts are already in the cluster.
    let mut f = fs::File::create(m.path("streamed.bin")).unwrap();
    for chunk in data[..2 * part + 1000].chunks(1 << 20) {
        f.write_all(chunk).unwrap();
    }
    let (key, id) = wait_for(MOUNT_WAIT_MS, "an upload in progress", || {
        pending_uploads(&c).into_iter().next()
    });
    assert_eq!(key, "streamed.bin");
    let parts = wait_for(MOUNT_WAIT_MS, "parts sent while writing", || {
        let doc = get(&format!("{}/{BUCKET}/streamed.bin?uploadId={id}", c.url()))
            .unwrap()
            .text();
        let n = xml_values(&doc, "PartNumber").len();
        (n >= 2).then_some(n)
    });
    assert!(parts >= 2);
    f.write_all(&data[2 * part + 1000..]).unwrap();
    drop(f);
    assert!(pending_uploads(&c).is_empty(), "completed at close");
    assert!(stored(&c, "streamed.bin") == data);

    // A write below what was sent: the stream is given up, the file goes up whole.
    let mut f = fs::File::create(m.path("rewritten.bin")).unwrap();
    f.write_all(&data[..2 * part + 5]).unwrap();
    wait_for(MOUNT_WAIT_MS, "a stream", || {
        pending_uploads(&c).into_iter().next()
    });
    f.seek(SeekFrom::Start(100)).unwrap();
    f.write_all(b"rewritten").unwrap();
    f.sync_all().unwrap();
    drop(f);
    let mut want = data[..2 * part + 5].to_vec();
    want[100..109].copy_from_slice(b"rewritten");
    assert!(stored(&c, "rewritten.bin") == want);
    wait_for(MOUNT_WAIT_MS, "the given-up upload aborted", || {
        pending_uploads(&c).is_empty().then_some(())
    });

    // fsync commits a streamed file while it stays open.
    let mut f = fs::File::create(m.path("synced.bin")).unwrap();
    f.write_all(&data[..part + 7]).unwrap();
    f.sync_all().unwrap();
    assert!(stored(&c, "synced.bin") == data[..part + 7]);
    drop(f);

    // The director dies during a stream: fsync is EIO and nothing is visible.
    let mut f = fs::File::create(m.path("lost.bin")).unwrap();
    f.write_all(&data[..part + 10]).unwrap();
    c.director.kill();
    let more = f.write_all(&data[part + 10..2 * part + 20]);
    let e = more.and_then(|()| f.sync_all()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5), "EIO: {e}");
    drop(f);
    c.director.restart();
    c.wait_stores_up(2);
    let o = tool("dpyfs", &c.url(), &["ls", BUCKET], dir.path());
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("lost.bin"),
        "a half-written file is visible: {o:?}"
    );
}

/// Used inodes as `df -i` shows them for the mount.
fn inodes_used(mp: &Path) -> u64 {
    let out = sh_ok(Path::new("/"), &format!("df -i {} | tail -1", mp.display()));
    out.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// The inode table holds what the kernel holds: after the kernel drops its cache
/// (forget), a mount that has seen many files shrinks back (`df -i` counts the table).
#[test]
fn forgotten_inodes_are_freed() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-forget");
    let c = cluster_with_bucket(&dir);
    let m = Mounted::start(&c.url(), BUCKET, dir.path(), &[]);
    let tree = dir.path().join("tree");
    for i in 0..300 {
        let sub = tree.join(format!("d{}", i % 10));
        fs::create_dir_all(&sub).unwrap();
        fs::write(sub.join(format!("f{i}")), format!("{i}")).unwrap();
    }
    sh_ok(dir.path(), &format!("cp -r tree {}/", m.mp.display()));
    // ls -lR looks every name up.
    sh_ok(
        dir.path(),
        &format!("ls -lR {} > /dev/null", m.mp.display()),
    );
    let before = inodes_used(&m.mp);
    assert!(before >= 300, "{before} inodes after looking up 310 names");
    sh_ok(Path::new("/"), "sync && echo 2 > /proc/sys/vm/drop_caches");
    let after = wait_for(MOUNT_WAIT_MS, "the kernel's forgets", || {
        let n = inodes_used(&m.mp);
        (n < 50).then_some(n)
    });
    assert!(after < before);
    // Everything is still there, under numbers handed out again.
    sh_ok(dir.path(), &format!("diff -r tree {}/tree", m.mp.display()));
}

/// Appenders (`echo >> f`: open, append, close, again and again) lose nothing. The
/// kernel sends a close's release without waiting for it, so each open races the last
/// release of the same file; an open once joined a file state on its way out and made an
/// empty spool, and the next append landed behind zeros where the file's lines had been.
#[test]
fn many_appenders_keep_every_line() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-append");
    let c = cluster_with_bucket(&dir);
    let m = Mounted::start(&c.url(), BUCKET, dir.path(), &[]);
    let mp = m.mp.to_str().unwrap().to_string();
    const FILES: usize = 8;
    const LINES: usize = 300;
    // Eight files with one appender each, and one file that two appenders share.
    let mut writers: Vec<(String, String)> = (0..FILES)
        .map(|i| (format!("a{i}"), format!("a{i}.txt")))
        .collect();
    writers.push(("s0".into(), "shared.txt".into()));
    writers.push(("s1".into(), "shared.txt".into()));
    let appenders: Vec<Child> = writers
        .iter()
        .map(|(who, file)| {
            Command::new("sh")
                .args([
                    "-c",
                    &format!("for i in $(seq 1 {LINES}); do echo {who}-$i >> {mp}/{file}; done"),
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut a in appenders {
        assert!(a.wait().unwrap().success());
    }
    for i in 0..FILES {
        let want: String = (1..=LINES).map(|n| format!("a{i}-{n}\n")).collect();
        let got = fs::read_to_string(m.path(&format!("a{i}.txt"))).unwrap();
        assert!(got == want, "a{i}.txt: {got:?}");
    }
    // The two writers' lines interleave, each writer's in order, none lost or zeroed.
    let shared = fs::read_to_string(m.path("shared.txt")).unwrap();
    for who in ["s0", "s1"] {
        let mine: Vec<&str> = shared
            .lines()
            .filter(|l| l.starts_with(&format!("{who}-")))
            .collect();
        let want: Vec<String> = (1..=LINES).map(|n| format!("{who}-{n}")).collect();
        assert!(mine == want, "shared.txt: {shared:?}");
    }
    assert_eq!(
        shared.len(),
        2 * (1..=LINES)
            .map(|n| format!("s0-{n}\n").len())
            .sum::<usize>()
    );
    // And what the cluster stores is what the mount shows.
    drop(m);
    let m = Mounted::start(&c.url(), BUCKET, dir.path(), &[]);
    assert_eq!(fs::read_to_string(m.path("shared.txt")).unwrap(), shared);
}

/// `dpyfs mount --ca` against a director on HTTPS (issue 15): what is written through the
/// mount is read back by dpyfs-get over HTTPS, and the other way round. Without the CA the
/// mount refuses to start, says how to fix it, and mounts nothing.
#[test]
fn a_mount_over_https_trusts_the_ca_it_is_given() {
    let _one = one_at_a_time();
    need_fuse();
    let dir = TempDir::new("mount-https");
    let c = Cluster::start_tls(&dir, 2, 2, &[]);
    let url = c.url();
    assert!(url.starts_with("https://"));
    put(&format!("{url}/{BUCKET}"), b"").unwrap();
    let ca = test_ca().ca.to_str().unwrap();

    let lost = dir.path().join("no-ca");
    fs::create_dir_all(&lost).unwrap();
    let o = command("dpyfs")
        .env_remove("DPYFS_CA")
        .env_remove("AWS_CA_BUNDLE")
        .args(["--url", &url, "mount", BUCKET, lost.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("--ca FILE"), "{err}");
    assert!(!is_mounted(&lost));

    let m = Mounted::start(&url, BUCKET, dir.path(), &["--ca", ca]);
    let work = dir.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let data = random_bytes(5 << 20, 41);
    fs::write(work.join("in.bin"), &data).unwrap();
    let mp = m.mp.to_str().unwrap().to_string();
    sh_ok(&work, &format!("cp in.bin {mp}/in.bin"));
    let o = tool(
        "dpyfs-get",
        &url,
        &["--ca", ca, "-q", &format!("{BUCKET}/in.bin"), "-"],
        &work,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stdout == data,
        "dpyfs-get read other bytes than were written"
    );
    let o = tool(
        "dpyfs-put",
        &url,
        &["--ca", ca, "-q", "in.bin", &format!("{BUCKET}/put.bin")],
        &work,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(fs::read(m.path("put.bin")).unwrap() == data);
}

//! `dpyfs mount`: a real FUSE mount of a real cluster, driven with ordinary programs (cp,
//! cat, ls, mkdir, rm, mv, rsync, tar, truncate, cmp, diff). Needs /dev/fuse and
//! `fusermount3` (Debian's fuse3) and rsync; tests/clients/install.sh installs the last two
//! when missing. Runs as root in CI. A missing /dev/fuse fails the test, saying what to do.
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
    let have = |p: &str| {
        Command::new("which")
            .arg(p)
            .output()
            .unwrap()
            .status
            .success()
    };
    if !have("fusermount3") || !have("rsync") {
        let s = Command::new(manifest_dir().join("tests/clients/install.sh"))
            .status()
            .unwrap();
        assert!(s.success(), "tests/clients/install.sh failed");
    }
    assert!(
        have("fusermount3") && have("rsync"),
        "fusermount3 and rsync are needed: apt-get install --no-install-recommends fuse3 rsync"
    );
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

#[test]
fn files_and_folders_through_the_mount() {
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

/// The mount process killed with a file open: the program's next call fails (ENOTCONN),
/// what was not closed is not stored, what was closed is; the spool folder holds nothing.
#[test]
fn a_killed_mount_loses_only_unclosed_files() {
    need_fuse();
    let dir = TempDir::new("mount-kill");
    let c = cluster_with_bucket(&dir);
    let mut m = Mounted::start(&c.url(), BUCKET, dir.path(), &[]);
    fs::write(m.path("closed.txt"), b"closed before").unwrap();
    let mut f = fs::File::create(m.path("open.txt")).unwrap();
    f.write_all(b"never closed").unwrap();
    let mut child = m.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let e = f.sync_all().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(107), "ENOTCONN: {e}");
    drop(f);
    let o = tool("dpyfs", &c.url(), &["ls", BUCKET], dir.path());
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(listed.contains("closed.txt"), "{listed}");
    assert!(!listed.contains("open.txt"), "{listed}");
    let spool_files: Vec<_> = files_under(&dir.path().join("spool"));
    assert!(spool_files.is_empty(), "{spool_files:?}");
    // Drop detaches the dead mount point.
}

/// Without --allow-other only the mounting user (root here) may enter; with it, others
/// (a Samba or media server's own user) can read and write.
#[test]
fn other_users_only_with_allow_other() {
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

//! The client tools through the real binaries: `dpyfs-put`, `dpyfs-get`, `dpyfs ls/rm/
//! stat/status`, the status page (also in headless Chromium) and the director's metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{chromium, run_chromium};
use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs a client tool against `url` (given as DPYFS_URL) and waits for it.
fn tool(name: &str, url: &str, args: &[&str], cwd: &Path, stdin: Option<&[u8]>) -> Output {
    let mut c = command(name);
    c.args(args)
        .current_dir(cwd)
        .env("DPYFS_URL", url)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("DPYFS_ACCESS_KEY")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(data) = stdin {
        let mut i = child.stdin.take().unwrap();
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = i.write_all(&data);
        });
    }
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit status; stdout:\n{}\nstderr:\n{}",
        out(o),
        err(o)
    );
}

/// Names in a folder (not recursive), sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A child whose stderr is collected by a thread, so a test can wait for a line.
struct Watched {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Watched {
    fn spawn(name: &str, url: &str, args: &[&str], cwd: &Path) -> Watched {
        let mut child = command(name)
            .args(args)
            .current_dir(cwd)
            .env("DPYFS_URL", url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let s = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                s.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Watched { child, stderr }
    }

    fn wait_stderr(&self, what: &str) {
        wait_for(60_000, &format!("{what:?} on stderr"), || {
            self.stderr.lock().unwrap().contains(what).then_some(())
        });
    }

    fn finish(mut self) -> (i32, String) {
        let st = self.child.wait().unwrap();
        // The reader thread ends at EOF, shortly after the child.
        std::thread::sleep(Duration::from_millis(100));
        let e = self.stderr.lock().unwrap().clone();
        (st.code().unwrap_or(-1), e)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn put_and_get_files_stdin_and_trees_with_exit_statuses() {
    let dir = TempDir::new("tools-rt");
    let c = Cluster::start(&dir, 3, 2, &[]);
    let url = c.url();
    let work = dir.path().join("work");
    fs::create_dir_all(work.join("tree/sub/deeper")).unwrap();
    let big = random_bytes(3_000_000, 1);
    fs::write(work.join("tree/big.bin"), &big).unwrap();
    fs::write(
        work.join("tree/sub/sp ace é+%.txt"),
        b"unicode and spaces\n",
    )
    .unwrap();
    fs::write(work.join("tree/sub/deeper/empty"), b"").unwrap();
    fs::write(work.join("one.txt"), b"one\n").unwrap();

    // A missing bucket without --mkbucket: every file reported, exit status 1.
    let o = tool("dpyfs-put", &url, &["one.txt", "nob"], &work, None);
    assert_exit(&o, 1);
    assert!(err(&o).contains("NoSuchBucket"), "{}", err(&o));
    assert!(err(&o).contains("--mkbucket"), "{}", err(&o));
    // --mkbucket creates it.
    let o = tool(
        "dpyfs-put",
        &url,
        &["--mkbucket", "one.txt", "nob"],
        &work,
        None,
    );
    assert_exit(&o, 0);
    assert_eq!(get(&format!("{url}/nob/one.txt")).unwrap().text(), "one\n");

    // One file to an exact key, with a space and unicode in it.
    let o = tool(
        "dpyfs-put",
        &url,
        &["--mkbucket", "tree/big.bin", "bk1/dir/my big é.bin"],
        &work,
        None,
    );
    assert_exit(&o, 0);
    assert!(
        out(&o).is_empty() && err(&o).is_empty(),
        "not quiet when piped"
    );
    let a = get(&format!("{url}/bk1/dir/my%20big%20%C3%A9.bin")).unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.body, big);
    let o = tool("dpyfs-get", &url, &["bk1/dir/my big é.bin"], &work, None);
    assert_exit(&o, 0);
    assert_eq!(fs::read(work.join("my big é.bin")).unwrap(), big);
    let o = tool(
        "dpyfs-get",
        &url,
        &["bk1/dir/my big é.bin", "copy.bin"],
        &work,
        None,
    );
    assert_exit(&o, 0);
    assert_eq!(fs::read(work.join("copy.bin")).unwrap(), big);

    // stdin to stdout.
    let piped = random_bytes(1_500_000, 2);
    let o = tool("dpyfs-put", &url, &["-", "bk1/piped"], &work, Some(&piped));
    assert_exit(&o, 0);
    let o = tool("dpyfs-get", &url, &["bk1/piped", "-"], &work, None);
    assert_exit(&o, 0);
    assert!(o.stdout == piped, "stdout differs from what went in");

    // A tree, recursively, and back: diff -r finds no difference.
    let o = tool(
        "dpyfs-put",
        &url,
        &["-r", "-v", "tree", "bk1/t/"],
        &work,
        None,
    );
    assert_exit(&o, 0);
    assert!(
        err(&o).contains("-> bk1/t/tree/sub/sp ace é+%.txt"),
        "{}",
        err(&o)
    );
    let o = tool(
        "dpyfs-get",
        &url,
        &["-r", "bk1/t/tree", "back"],
        &work,
        None,
    );
    assert_exit(&o, 0);
    let d = Command::new("diff")
        .args(["-r", "tree", "back"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(
        d.status.success(),
        "diff -r:\n{}",
        String::from_utf8_lossy(&d.stdout)
    );

    // Several files, one missing: the others go, the missing one is reported, status 1.
    fs::write(work.join("two.txt"), b"two\n").unwrap();
    let o = tool(
        "dpyfs-put",
        &url,
        &["one.txt", "missing.txt", "two.txt", "tree", "bk1/many/"],
        &work,
        None,
    );
    assert_exit(&o, 1);
    assert!(err(&o).contains("missing.txt: cannot read"), "{}", err(&o));
    assert!(
        err(&o).contains("tree: is a directory (use -r)"),
        "{}",
        err(&o)
    );
    assert_eq!(
        get(&format!("{url}/bk1/many/two.txt")).unwrap().text(),
        "two\n"
    );
    assert_eq!(
        get(&format!("{url}/bk1/many/one.txt")).unwrap().text(),
        "one\n"
    );
    // A missing key: status 1, nothing written.
    let o = tool(
        "dpyfs-get",
        &url,
        &["bk1/nothing-here", "nope"],
        &work,
        None,
    );
    assert_exit(&o, 1);
    assert!(err(&o).contains("NoSuchKey"), "{}", err(&o));
    assert!(!work.join("nope").exists());

    // Usage errors: status 2, and nothing is sent.
    for args in [
        &[][..],
        &["one.txt"][..],
        &["-q", "-v", "one.txt", "bk1/x"][..],
        &["-", "one.txt", "bk1/x"][..],
        &["-", "bk1/"][..],
        &["one.txt", "Not_A_Bucket/x"][..],
        &["--retries", "many", "one.txt", "bk1/x"][..],
        &["--url", "ftp://x", "one.txt", "bk1/x"][..],
        &["--no-such-flag", "one.txt", "bk1/x"][..],
    ] {
        let o = tool("dpyfs-put", &url, args, &work, None);
        assert_exit(&o, 2);
        assert!(
            err(&o).contains("dpyfs-put --help"),
            "{args:?}: {}",
            err(&o)
        );
    }
    for args in [
        &[][..],
        &["bk1/t/"][..],
        &["-r", "bk1/t/", "-"][..],
        &["a", "b", "c"][..],
    ] {
        let o = tool("dpyfs-get", &url, args, &work, None);
        assert_exit(&o, 2);
    }
    let o = tool("dpyfs-get", &url, &["--help"], &work, None);
    assert_exit(&o, 0);
    assert!(out(&o).contains("MD5") && out(&o).contains("size only"));
}

#[test]
fn dpyfs_ls_rm_stat_status() {
    let dir = TempDir::new("tools-cmds");
    let c = Cluster::start(&dir, 3, 2, &[]);
    let url = c.url();
    let work = dir.path().to_path_buf();
    assert_eq!(put(&format!("{url}/photos"), b"").unwrap().status, 200);
    let data = random_bytes(2_500_000, 3);
    for k in ["2024/a.jpg", "2024/b%20c.jpg", "2025/x.jpg", "top.txt"] {
        assert_eq!(
            put(&format!("{url}/photos/{k}"), &data).unwrap().status,
            200
        );
    }
    let o = tool("dpyfs", &url, &["ls"], &work, None);
    assert_exit(&o, 0);
    assert_eq!(out(&o), "photos\n");
    let o = tool("dpyfs", &url, &["ls", "photos"], &work, None);
    assert_eq!(out(&o), "2024/\n2025/\ntop.txt\n");
    let o = tool("dpyfs", &url, &["ls", "-r", "photos/2024/"], &work, None);
    assert_eq!(out(&o), "2024/a.jpg\n2024/b c.jpg\n");
    let o = tool("dpyfs", &url, &["ls", "-l", "photos/2024/b"], &work, None);
    assert_exit(&o, 0);
    let line = out(&o);
    assert!(
        line.contains("2500000") && line.ends_with("2024/b c.jpg\n"),
        "{line}"
    );
    let o = tool("dpyfs", &url, &["ls", "nosuchbucket"], &work, None);
    assert_exit(&o, 1);
    assert!(err(&o).contains("NoSuchBucket"));

    // stat: every chunk is on two stores, named; exit 0.
    let o = tool("dpyfs", &url, &["stat", "photos/2024/b c.jpg"], &work, None);
    assert_exit(&o, 0);
    let s = out(&o);
    assert!(s.contains("size          2500000 bytes"), "{s}");
    assert!(s.contains("chunk 0") && s.contains("manifest"), "{s}");
    for l in s.lines().filter(|l| l.contains("copies on:")) {
        let ids = l.split("copies on: ").nth(1).unwrap();
        assert_eq!(ids.split(", ").count(), 2, "{l}");
        assert!(
            ids.split(", ").all(|i| ["s1", "s2", "s3"].contains(&i)),
            "{l}"
        );
    }
    let o = tool("dpyfs", &url, &["stat", "photos/none"], &work, None);
    assert_exit(&o, 1);
    assert!(err(&o).contains("NoSuchKey"), "{}", err(&o));

    // status: a table with each store, exit 0 while healthy.
    let o = tool("dpyfs", &url, &["status"], &work, None);
    assert_exit(&o, 0);
    let s = out(&o);
    assert!(
        s.contains("5 objects in 1 bucket,") || s.contains("4 objects in 1 bucket,"),
        "{s}"
    );
    for id in ["s1", "s2", "s3"] {
        let line = s
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{s}"));
        assert!(line.contains(" up "), "{line}");
    }
    assert!(s.contains("DISK USED") && s.contains("SCRUB"), "{s}");

    // rm: a key, a missing key (1), a prefix with -r, a non-empty bucket (1), then -r.
    let o = tool("dpyfs", &url, &["rm", "photos/top.txt"], &work, None);
    assert_exit(&o, 0);
    assert_eq!(out(&o), "deleted photos/top.txt\n");
    assert_eq!(get(&format!("{url}/photos/top.txt")).unwrap().status, 404);
    let o = tool("dpyfs", &url, &["rm", "photos/top.txt"], &work, None);
    assert_exit(&o, 1);
    let o = tool("dpyfs", &url, &["rm", "-r", "photos/2024/"], &work, None);
    assert_exit(&o, 0);
    assert_eq!(
        out(&o),
        "deleted photos/2024/a.jpg\ndeleted photos/2024/b c.jpg\n"
    );
    let o = tool("dpyfs", &url, &["rm", "photos"], &work, None);
    assert_exit(&o, 1);
    assert!(err(&o).contains("BucketNotEmpty"), "{}", err(&o));
    let o = tool("dpyfs", &url, &["rm", "-r", "photos"], &work, None);
    assert_exit(&o, 0);
    assert_eq!(
        out(&o),
        "deleted photos/2025/x.jpg\ndeleted bucket photos\n"
    );
    let o = tool("dpyfs", &url, &["ls"], &work, None);
    assert_eq!(out(&o), "");

    // Usage and help of every subcommand.
    for sub in ["ls", "rm", "stat", "status"] {
        let o = tool("dpyfs", &url, &[sub, "--help"], &work, None);
        assert_exit(&o, 0);
        assert!(out(&o).starts_with(&format!("Usage: dpyfs [--url URL] {sub}")));
        assert!(out(&o).contains("Exit status"), "{sub}");
    }
    for args in [
        &["rm"][..],
        &["stat"][..],
        &["status", "x"][..],
        &["ls", "a", "b"][..],
    ] {
        let o = tool("dpyfs", &url, args, &work, None);
        assert_exit(&o, 2);
    }

    // A store down: status says so and exits 1.
    let mut c = c;
    c.stores[2].kill();
    c.wait_stores_up(2);
    let o = tool("dpyfs", &url, &["status"], &work, None);
    assert_exit(&o, 1);
    let line = out(&o)
        .lines()
        .find(|l| l.starts_with("s3"))
        .unwrap()
        .to_string();
    assert!(line.contains("down"), "{line}");
}

#[test]
fn an_interrupted_download_leaves_no_file() {
    let dir = TempDir::new("tools-int");
    let mut c = Cluster::start(&dir, 3, 2, &[]);
    let url = c.url();
    let data = random_bytes(24 << 20, 4);
    assert_eq!(put(&format!("{url}/bkt"), b"").unwrap().status, 200);
    assert_eq!(put(&format!("{url}/bkt/big"), &data).unwrap().status, 200);
    let dest = dir.path().join("dest");
    fs::create_dir_all(&dest).unwrap();
    let partial_started = |d: &Path| {
        wait_for(60_000, "a temporary file with bytes in it", || {
            let e = fs::read_dir(d).ok()?.flatten().find(|e| {
                e.file_name().to_string_lossy().starts_with(".big")
                    && e.metadata().is_ok_and(|m| m.len() > 0)
            })?;
            Some(e.path())
        })
    };

    // SIGTERM (as Ctrl-C) in the middle: status 1, no file, no temporary file.
    let w = Watched::spawn(
        "dpyfs-get",
        &url,
        &["--limit-rate", "2M", "bkt/big", "dest/big"],
        dir.path(),
    );
    partial_started(&dest);
    Command::new("kill")
        .args(["-TERM", &w.child.id().to_string()])
        .status()
        .unwrap();
    let (code, e) = w.finish();
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("interrupted"), "{e}");
    assert!(names(&dest).is_empty(), "left behind: {:?}", names(&dest));

    // The director killed (SIGKILL, by PID) mid-transfer, no retries left: status 1,
    // nothing at DEST and no temporary file.
    let w = Watched::spawn(
        "dpyfs-get",
        &url,
        &[
            "--retries",
            "0",
            "--limit-rate",
            "2M",
            "bkt/big",
            "dest/big",
        ],
        dir.path(),
    );
    partial_started(&dest);
    c.director.kill();
    let (code, e) = w.finish();
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("bkt/big"), "{e}");
    assert!(names(&dest).is_empty(), "left behind: {:?}", names(&dest));

    // With retries, a director back during the back-off: the download starts over and
    // completes, verified.
    c.director.restart();
    c.wait_stores_up(3);
    let w = Watched::spawn(
        "dpyfs-get",
        &url,
        // 8 retries: 39.5 s of back-off in all, ample for a restart on a busy machine.
        &[
            "--retries",
            "8",
            "--limit-rate",
            "8M",
            "bkt/big",
            "dest/big",
        ],
        dir.path(),
    );
    partial_started(&dest);
    c.director.kill();
    w.wait_stderr("retry 1/8");
    c.director.restart();
    let (code, e) = w.finish();
    assert_eq!(code, 0, "{e}");
    assert!(
        fs::read(dest.join("big")).unwrap() == data,
        "content differs"
    );
    assert_eq!(names(&dest), vec!["big".to_string()]);
}

#[test]
fn put_retries_until_a_late_director_answers() {
    let dir = TempDir::new("tools-late");
    let stores: Vec<Daemon> = (1..=3)
        .map(|i| Cluster::store(&dir, i, &["--scrub-rate", "0"]))
        .collect();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let file = dir.path().join("f.bin");
    let data = random_bytes(2_000_000, 5);
    fs::write(&file, &data).unwrap();
    // Nothing listens yet: dpyfs-put retries with back-off.
    let w = Watched::spawn(
        "dpyfs-put",
        &url,
        &[
            "--retries",
            "8",
            "--mkbucket",
            file.to_str().unwrap(),
            "late/f.bin",
        ],
        dir.path(),
    );
    w.wait_stderr("retry 1/8");
    let data_dir = dir.path().join("director");
    let mut args = vec![
        "--listen".to_string(),
        "127.0.0.1:{port}".to_string(),
        "--data".to_string(),
        data_dir.to_str().unwrap().to_string(),
    ];
    for s in &stores {
        args.push("--store".into());
        args.push(s.url());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let _director = Daemon::start_at("dpyfs-director", &argv, dir.path(), port);
    let (code, e) = w.finish();
    assert_eq!(code, 0, "{e}");
    assert!(e.contains(&format!("no director at {url}")), "{e}");
    assert!(get(&format!("{url}/late/f.bin")).unwrap().body == data);
}

/// No cluster running (issue 17): the first refused connection says so and how to start
/// one, and so does the final error once the retries are spent.
#[test]
fn no_director_is_named_with_the_likely_cause() {
    let dir = TempDir::new("tools-nodir");
    let url = format!("http://127.0.0.1:{}", free_port());
    fs::write(dir.path().join("f.txt"), b"f\n").unwrap();
    let hint = format!("no director at {url} — is a cluster running? (`make run` starts one)");
    for (name, args) in [
        ("dpyfs-get", &["--retries", "1", "bkt/f.txt"][..]),
        ("dpyfs-put", &["--retries", "1", "f.txt", "bkt/"][..]),
        ("dpyfs", &["ls"][..]),
        ("dpyfs", &["admin", "store", "list"][..]),
    ] {
        let o = tool(name, &url, args, dir.path(), None);
        assert_exit(&o, 1);
        let e = err(&o);
        let lines: Vec<&str> = e.lines().filter(|l| l.contains(&hint)).collect();
        if name == "dpyfs" {
            // A one-shot command does not retry a refused connection.
            assert_eq!(lines.len(), 1, "{name}: the error alone:\n{e}");
            assert!(!e.contains("retry"), "{name}: {e}");
        } else {
            assert_eq!(lines.len(), 2, "{name}: a retry notice and the error:\n{e}");
            assert!(lines[0].contains("retry 1/1"), "{name}: {e}");
        }
    }
    assert!(!dir.path().join("bkt").exists());
}

/// Runs `script` (util-linux) so that the tool's stderr is a pseudo-terminal.
fn through_a_terminal(cmdline: &str, url: &str, cwd: &Path) -> String {
    let o = Command::new("script")
        .args(["-qec", cmdline, "/dev/null"])
        .current_dir(cwd)
        .env("DPYFS_URL", url)
        .stdin(Stdio::null())
        .output()
        .expect("`script` is needed for the terminal test: apt-get install util-linux");
    assert!(
        o.status.success(),
        "{cmdline}: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn progress_shows_on_a_terminal_and_not_when_piped() {
    let dir = TempDir::new("tools-tty");
    let c = Cluster::start(&dir, 3, 2, &[]);
    let url = c.url();
    fs::write(dir.path().join("p.bin"), random_bytes(4 << 20, 6)).unwrap();
    let put = bin("dpyfs-put").display().to_string();
    let get_bin = bin("dpyfs-get").display().to_string();
    let t = through_a_terminal(
        &format!("{put} --mkbucket --limit-rate 4M p.bin tty/p.bin"),
        &url,
        dir.path(),
    );
    // Redrawn in place with \r; the last line says done, with size, percentage and rate.
    assert!(t.contains('\r'), "{t:?}");
    let last = t
        .rsplit('\r')
        .find(|l| l.contains("done in"))
        .unwrap_or_else(|| panic!("{t:?}"));
    assert!(
        last.contains("4.0 MiB / 4.0 MiB") && last.contains("100%"),
        "{last:?}"
    );
    assert!(last.contains("MiB/s"), "{last:?}");
    // An intermediate line has a percentage below 100 and a time left.
    assert!(
        t.split('\r').any(|l| l.contains("ETA") && l.contains('%')),
        "{t:?}"
    );
    let t = through_a_terminal(&format!("{get_bin} tty/p.bin back.bin"), &url, dir.path());
    assert!(t.contains("100%") && t.contains("done in"), "{t:?}");
    // -q: nothing, even on a terminal.
    let t = through_a_terminal(&format!("{put} -q p.bin tty/q.bin"), &url, dir.path());
    assert!(t.trim().is_empty(), "{t:?}");
    // Piped: no progress output at all.
    let o = tool(
        "dpyfs-put",
        &url,
        &["p.bin", "tty/p2.bin"],
        dir.path(),
        None,
    );
    assert_exit(&o, 0);
    assert!(o.stderr.is_empty() && o.stdout.is_empty(), "{}", err(&o));
    let o = tool(
        "dpyfs-get",
        &url,
        &["tty/p2.bin", "p2.bin"],
        dir.path(),
        None,
    );
    assert_exit(&o, 0);
    assert!(o.stderr.is_empty() && o.stdout.is_empty(), "{}", err(&o));
}

#[test]
fn status_page_and_metrics() {
    let dir = TempDir::new("tools-page");
    let c = Cluster::start(&dir, 3, 2, &[]);
    let url = c.url();
    assert_eq!(put(&format!("{url}/bkt"), b"").unwrap().status, 200);
    assert_eq!(
        put(&format!("{url}/bkt/k"), &random_bytes(100_000, 7))
            .unwrap()
            .status,
        200
    );
    assert_eq!(get(&format!("{url}/bkt/k")).unwrap().status, 200);
    let p = get(&format!("{url}/_dpyfs/")).unwrap();
    assert_eq!(p.status, 200);
    assert!(p.header("content-type").unwrap().starts_with("text/html"));
    let html = p.text();
    for id in ["s1", "s2", "s3"] {
        assert!(html.contains(&format!("id=\"store-{id}\"")), "{id} missing");
    }
    assert!(html.contains("http-equiv=\"refresh\""));
    assert!(
        !html.contains("<script src") && !html.contains("<link"),
        "external assets"
    );
    let m = get(&format!("{url}/metrics")).unwrap().text();
    for line in [
        "# TYPE dpyfs_director_request_duration_seconds histogram",
        "dpyfs_director_request_duration_seconds_bucket{route=\"put_object\",le=\"+Inf\"} 1",
        "dpyfs_director_request_duration_seconds_count{route=\"get_object\"} 1",
        "dpyfs_director_request_duration_seconds_sum{route=\"put_object\"}",
        "dpyfs_director_store_up{store=\"s1\"} 1",
        "dpyfs_director_under_replicated_chunks 0",
        "dpyfs_director_objects 1",
        "dpyfs_director_object_bytes_in_total 100000",
    ] {
        assert!(m.contains(line), "{line} missing in:\n{m}");
    }
}

#[test]
fn status_page_in_headless_chromium() {
    let exe = chromium();
    let dir = TempDir::new("tools-chromium");
    let mut c = Cluster::start(&dir, 3, 2, &[]);
    let url = c.url();
    assert_eq!(put(&format!("{url}/bkt"), b"").unwrap().status, 200);
    assert_eq!(
        put(&format!("{url}/bkt/k"), &random_bytes(5_000_000, 8))
            .unwrap()
            .status,
        200
    );
    // One store down, so the page has something to show in red.
    c.stores[2].kill();
    c.wait_stores_up(2);
    let page = format!("{url}/_dpyfs/");
    let art = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    fs::create_dir_all(&art).unwrap();
    let shot = art.join("status-page.png");
    let _ = fs::remove_file(&shot);
    let o = run_chromium(
        &exe,
        &dir.path().join("profile1"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,900",
        ],
        &page,
    );
    assert!(
        shot.exists() && fs::metadata(&shot).unwrap().len() > 1000,
        "no screenshot from chromium: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(&fs::read(&shot).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let o = run_chromium(&exe, &dir.path().join("profile2"), &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&o.stdout);
    for id in ["s1", "s2", "s3"] {
        assert!(
            dom.contains(&format!("id=\"store-{id}\"")),
            "{id} not in the DOM Chromium built:\n{dom}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(dom.contains("2 of 3 up"), "{dom}");
    assert!(dom.contains("badge down"), "{dom}");
    eprintln!("status page screenshot: {}", shot.display());
}

#[test]
fn recursive_get_and_ls_follow_listing_pages() {
    // More keys than one ListObjectsV2 page (1000) holds.
    let dir = TempDir::new("tools-pages");
    let c = Cluster::start(&dir, 3, 2, &[]);
    let url = c.url();
    let work = dir.path().join("work");
    for i in 0..1005 {
        let sub = work.join(format!("many/d{}", i % 7));
        fs::create_dir_all(&sub).unwrap();
        fs::write(sub.join(format!("f{i:04}")), format!("{i}\n")).unwrap();
    }
    let o = tool(
        "dpyfs-put",
        &url,
        &["-r", "--mkbucket", "many", "pgs/"],
        &work,
        None,
    );
    assert_exit(&o, 0);
    let o = tool("dpyfs", &url, &["ls", "-r", "pgs/many/"], &work, None);
    assert_exit(&o, 0);
    assert_eq!(out(&o).lines().count(), 1005);
    let o = tool("dpyfs", &url, &["ls", "pgs/many/"], &work, None);
    assert_eq!(out(&o).lines().count(), 7, "{}", out(&o));
    let o = tool("dpyfs-get", &url, &["-r", "pgs/many/", "back"], &work, None);
    assert_exit(&o, 0);
    let d = Command::new("diff")
        .args(["-r", "many", "back"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(
        d.status.success(),
        "diff -r:\n{}",
        String::from_utf8_lossy(&d.stdout)
    );
}

/// Runs a tool with these environment variables (and no others of the key kind).
fn tool_env(name: &str, url: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = command(name);
    c.args(args)
        .current_dir(cwd)
        .env("DPYFS_URL", url)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("DPYFS_ACCESS_KEY")
        .env_remove("DPYFS_SECRET_KEY")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn tools_sign_requests_with_keys_from_the_environment() {
    let dir = TempDir::new("tools-keys");
    let keys = dir.path().join("keys.json");
    let o = command("dpyfs")
        .args(["admin", "key", "create", "--keys", keys.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let var = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    let (id, secret) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"));
    let c = Cluster::start(&dir, 3, 2, &["--keys", keys.to_str().unwrap()]);
    let url = c.url();
    let work = dir.path().join("work");
    fs::create_dir_all(work.join("tree/sub")).unwrap();
    let data = random_bytes(2_500_000, 9);
    fs::write(work.join("tree/sub/é x.bin"), &data).unwrap();
    fs::write(work.join("tree/a.txt"), b"a\n").unwrap();
    let dpyfs_keys = [
        ("DPYFS_ACCESS_KEY", id.as_str()),
        ("DPYFS_SECRET_KEY", secret.as_str()),
    ];
    let aws_keys = [
        ("AWS_ACCESS_KEY_ID", id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
    ];

    // Without keys: refused, each failure reported, status 1, nothing stored.
    let o = tool_env(
        "dpyfs-put",
        &url,
        &["--mkbucket", "-r", "tree", "sig/"],
        &work,
        &[],
    );
    assert_exit(&o, 1);
    assert!(err(&o).contains("403"), "{}", err(&o));
    // A wrong secret: SignatureDoesNotMatch, status 1.
    let o = tool_env(
        "dpyfs",
        &url,
        &["ls"],
        &work,
        &[
            ("DPYFS_ACCESS_KEY", id.as_str()),
            ("DPYFS_SECRET_KEY", "not-the-secret"),
        ],
    );
    assert_exit(&o, 1);
    assert!(err(&o).contains("SignatureDoesNotMatch"), "{}", err(&o));

    // Signed (DPYFS_ variables): a tree with a Unicode key, and stdin (chunked, unsigned payload).
    let o = tool_env(
        "dpyfs-put",
        &url,
        &["--mkbucket", "-r", "tree", "sig/"],
        &work,
        &dpyfs_keys,
    );
    assert_exit(&o, 0);
    let o = tool_env(
        "dpyfs-put",
        &url,
        &["-", "sig/from-stdin"],
        &work,
        &dpyfs_keys,
    );
    assert_exit(&o, 0);
    // Signed with the AWS_ variables: back, verified, and the other commands.
    let o = tool_env(
        "dpyfs-get",
        &url,
        &["-r", "sig/tree/", "back"],
        &work,
        &aws_keys,
    );
    assert_exit(&o, 0);
    let d = Command::new("diff")
        .args(["-r", "tree", "back"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(
        d.status.success(),
        "diff -r:\n{}",
        String::from_utf8_lossy(&d.stdout)
    );
    let o = tool_env("dpyfs", &url, &["ls", "-r", "sig"], &work, &aws_keys);
    assert_exit(&o, 0);
    assert_eq!(out(&o), "from-stdin\ntree/a.txt\ntree/sub/é x.bin\n");
    let o = tool_env(
        "dpyfs",
        &url,
        &["stat", "sig/tree/sub/é x.bin"],
        &work,
        &aws_keys,
    );
    assert_exit(&o, 0);
    let o = tool_env("dpyfs", &url, &["status"], &work, &aws_keys);
    assert_exit(&o, 0);
    let o = tool_env("dpyfs", &url, &["rm", "-r", "sig"], &work, &aws_keys);
    assert_exit(&o, 0);
    assert!(out(&o).ends_with("deleted bucket sig\n"), "{}", out(&o));

    // The status page stays open to loopback without a signature, but the recent errors'
    // messages (which may name buckets and keys) are left out of it.
    let mut c = c;
    c.stores[1].kill();
    c.wait_stores_up(2);
    let page = get(&format!("{url}/_dpyfs/")).unwrap();
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("id=\"store-s2\""), "{html}");
    assert!(
        html.contains("sign the request to see the message"),
        "{html}"
    );
    assert!(!html.contains("store s2 (http"), "{html}");
    let o = tool_env("dpyfs", &url, &["status"], &work, &aws_keys);
    assert_exit(&o, 1);
    assert!(out(&o).contains("store s2 (http"), "{}", out(&o));
}

/// A director that stops answering (its board hung; SIGSTOP here) fails a tool's call after
/// the read timeout instead of hanging it, also right after an earlier call: ureq 2 drops
/// the timeouts of a kept-alive connection it reuses, so the tools keep none.
#[test]
fn a_silent_director_fails_a_call_instead_of_hanging_it() {
    use dpyfs::client::{Client, Payload};
    let dir = TempDir::new("tools-silent");
    let c = Cluster::start(&dir, 2, 2, &[]);
    let client = Client::with_read_timeout(&c.url(), Duration::from_secs(2)).unwrap();
    let list = move || client.call("GET", "/", "", &[], Payload::None).map(|_| ());
    list().unwrap();
    list().unwrap();
    let pid = c.director.pid().unwrap().to_string();
    let signal = |sig: &str| {
        let st = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(st.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    // The signal is sent when kill returns; the threads stop a moment later.
    wait_for(10_000, "the director stopped", || {
        let st = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        st.lines()
            .any(|l| l.starts_with("State:") && l.contains("T (stopped)"))
            .then_some(())
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(list().map_err(|e| e.to_string()));
    });
    // A bound on a hang, not a measure of speed: the call has a 2 s read timeout.
    let answer = rx.recv_timeout(Duration::from_secs(60));
    signal("-CONT");
    match answer {
        Ok(Err(e)) => assert!(e.contains("timed out") || e.contains("Timed"), "{e}"),
        Ok(Ok(())) => panic!("a stopped director answered"),
        Err(_) => panic!("the call still waits on a stopped director after 60 s"),
    }
    // The director goes on once it runs again.
    assert_eq!(get(&format!("{}/", c.url())).unwrap().status, 200);
}

//! Test harness: starts the real binaries on 127.0.0.1 with temporary directories.
//!
//! `DPYFS_BIN_DIR` points at another build of the binaries (the ARM ones for
//! `make cross-test`) and `DPYFS_RUNNER` is a command put before each (for example
//! `qemu-aarch64-static`), as ripgrep's `CROSS_RUNNER`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub mod boards;
pub mod browser;
pub mod upkeep;

/// How long a daemon may take to answer its first request (qemu is slow).
pub const START_TIMEOUT_MS: u64 = 30_000;

pub fn bin(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("DPYFS_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    exe.parent().unwrap().parent().unwrap().join(name)
}

pub fn command(name: &str) -> Command {
    let mut c = plain_command(name);
    if tls_mode() {
        // The tools trust the test CA the way a user's shell would (DPYFS_CA).
        c.env("DPYFS_CA", &test_ca().ca);
    }
    c
}

/// `command` without the test CA in the environment (which `test_ca` itself uses).
fn plain_command(name: &str) -> Command {
    match std::env::var("DPYFS_RUNNER").ok().filter(|r| !r.is_empty()) {
        Some(runner) => {
            let mut c = Command::new(runner);
            c.arg(bin(name));
            c
        }
        None => Command::new(bin(name)),
    }
}

/// `DPYFS_TEST_TLS=1`: every `Cluster` (stores with mutual TLS, the director on HTTPS)
/// and every tool started by `command` use the test CA. CI runs a subset of the
/// director, store, repair and tools suites this way (`make test-tls`).
pub fn tls_mode() -> bool {
    std::env::var("DPYFS_TEST_TLS").is_ok_and(|v| v == "1")
}

/// The files of the test CA (`dpyfs ca`, made once per test process): one certificate
/// for 127.0.0.1 and localhost that every daemon serves and the test agent presents.
#[derive(Clone, Debug)]
pub struct TestCa {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA in `dir` with a certificate `name` for `127.0.0.1` and `localhost`, made
    /// by the real `dpyfs ca` (`extra` adds flags to `issue`, e.g. `--days 0`).
    pub fn make(dir: &Path, name: &str, extra: &[&str]) -> TestCa {
        let dir_s = dir.to_str().unwrap();
        if !dir.join("ca.key").exists() {
            run_ok(&["ca", "init", dir_s]);
        }
        let mut issue = vec![
            "ca",
            "issue",
            dir_s,
            name,
            "--ip",
            "127.0.0.1",
            "--dns",
            "localhost",
        ];
        issue.extend_from_slice(extra);
        run_ok(&issue);
        TestCa {
            dir: dir.to_path_buf(),
            ca: dir.join("ca.crt"),
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        }
    }

    /// `--tls-cert`, `--tls-key`, and `--client-ca` for a store or `--ca` for a director.
    pub fn store_args(&self) -> Vec<String> {
        self.args("--client-ca")
    }

    pub fn director_args(&self) -> Vec<String> {
        self.args("--ca")
    }

    fn args(&self, ca_flag: &str) -> Vec<String> {
        [
            "--tls-cert",
            self.cert.to_str().unwrap(),
            "--tls-key",
            self.key.to_str().unwrap(),
            ca_flag,
            self.ca.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

fn run_ok(args: &[&str]) {
    let out = plain_command("dpyfs").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "dpyfs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test process's CA (see `TestCa`), under cargo's temporary folder for tests.
pub fn test_ca() -> &'static TestCa {
    static CA: std::sync::OnceLock<TestCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("test-ca-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        TestCa::make(&dir, "localhost", &[])
    })
}

/// How long `TempDir`'s leak check waits for processes still using the folder to exit.
pub const LEAK_GRACE_MS: u64 = 2_000;

/// A fresh temporary directory, removed when dropped unless the test failed.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = std::env::var("DPYFS_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir());
        let p = base.join(format!(
            "dpyfs-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    /// Also the harness's leak check: a process still running with this folder in its
    /// arguments (a daemon the test started and lost, or one `dpyfs dev` left behind)
    /// would outlive the test with its folder deleted. It is stopped and the test fails.
    fn drop(&mut self) {
        // A short grace for processes already on their way out (a browser's helpers, a
        // daemon whose parent is reaping it); a leaked daemon does not leave by itself.
        let mut leaked = processes_using(&self.0);
        for _ in 0..LEAK_GRACE_MS / 100 {
            if leaked.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            leaked = processes_using(&self.0);
        }
        stop_pids(&leaked);
        if std::thread::panicking() {
            eprintln!("test directory kept for inspection: {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
            assert!(
                leaked.is_empty(),
                "still running at the end of the test (now killed): {leaked:?}"
            );
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running daemon: killed by its PID when dropped; its log is printed if the test fails.
pub struct Daemon {
    pub name: String,
    pub args: Vec<String>,
    pub port: u16,
    pub log: PathBuf,
    /// When set, the daemon runs under `ulimit -n` of this many descriptors.
    pub fd_limit: Option<u64>,
    /// When set, the daemon runs in this network namespace (a board of `boards::Testbed`).
    pub netns: Option<String>,
    /// The address its URL names: 127.0.0.1 unless it runs on a board.
    pub host: String,
    /// Environment variables set for the daemon (besides RUST_LOG), at each (re)start.
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    /// Every PID this value started: checked on drop, so a daemon the test lost track
    /// of fails the test instead of outliving it.
    pids: Vec<u32>,
}

impl Daemon {
    /// Starts `name` with `args`; `{port}` in args is replaced by a free port.
    pub fn start(name: &str, args: &[&str], log_dir: &Path) -> Daemon {
        Daemon::start_at(name, args, log_dir, free_port())
    }

    /// As `start`, on a port chosen by the caller (e.g. one a client already tries).
    pub fn start_at(name: &str, args: &[&str], log_dir: &Path, port: u16) -> Daemon {
        Daemon::start_limited(name, args, log_dir, port, None)
    }

    /// As `start_at`, with at most `fd_limit` open file descriptors when given (the
    /// daemon is started by `sh -c 'ulimit -n N; exec ...'`, so its PID is the daemon's).
    pub fn start_limited(
        name: &str,
        args: &[&str],
        log_dir: &Path,
        port: u16,
        fd_limit: Option<u64>,
    ) -> Daemon {
        let mut d = Daemon::stopped(name, args, log_dir, port);
        d.fd_limit = fd_limit;
        d.restart();
        d
    }

    /// As `start_at`, inside network namespace `netns` (when given) and reached at `host`.
    pub fn start_in(
        netns: Option<&str>,
        host: &str,
        name: &str,
        args: &[&str],
        log_dir: &Path,
        port: u16,
    ) -> Daemon {
        let mut d = Daemon::stopped(name, args, log_dir, port);
        d.netns = netns.map(str::to_string);
        d.host = host.to_string();
        // Boards share port numbers: the address tells their logs apart.
        d.log = log_dir.join(format!("{name}-{host}-{port}.log"));
        d.restart();
        d
    }

    /// The daemon's description, not started; `{port}` in args replaced.
    fn stopped(name: &str, args: &[&str], log_dir: &Path, port: u16) -> Daemon {
        Daemon {
            name: name.to_string(),
            args: args
                .iter()
                .map(|a| a.replace("{port}", &port.to_string()))
                .collect(),
            port,
            log: log_dir.join(format!("{name}-{port}.log")),
            fd_limit: None,
            netns: None,
            host: "127.0.0.1".into(),
            env: Vec::new(),
            child: None,
            pids: Vec::new(),
        }
    }

    /// `https://` when the daemon was given `--tls-cert`.
    pub fn url(&self) -> String {
        let scheme = if self.args.iter().any(|a| a == "--tls-cert") {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// Kills the process if it runs (SIGKILL, by PID), waits for it to exit, then starts
    /// it again and waits until `/status` answers. Killing first matters: a second daemon
    /// on the same data folder refuses to start, and the old one would answer the
    /// readiness check, so a "restart" would test nothing (issue 17).
    pub fn restart(&mut self) {
        self.kill();
        let child = self.spawn();
        self.child = Some(child);
        self.wait_ready();
    }

    /// Starts the process expecting it to refuse to start: waits for it to exit (at most
    /// START_TIMEOUT_MS) and returns its exit status. The daemon must be stopped.
    pub fn run_expecting_exit(&mut self) -> std::process::ExitStatus {
        assert!(
            self.child.is_none(),
            "{} still runs: kill it first",
            self.name
        );
        self.child = Some(self.spawn());
        let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
        loop {
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                self.child = None;
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "{} still runs after {START_TIMEOUT_MS} ms; it was expected to refuse to start",
                self.name
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Spawns the process; `restart` and `run_expecting_exit` keep hold of it.
    fn spawn(&mut self) -> Child {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = match (self.fd_limit, &self.netns) {
            (None, Some(ns)) => {
                // `ip netns exec` execs the program, so the PID stays the daemon's own.
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]);
                if let Some(runner) = std::env::var("DPYFS_RUNNER").ok().filter(|r| !r.is_empty()) {
                    c.arg(runner);
                }
                c.arg(bin(&self.name));
                c
            }
            (None, None) => command(&self.name),
            (Some(n), _) => {
                assert!(
                    self.netns.is_none(),
                    "fd limits on boards are not supported"
                );
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$@\""))
                    .arg("sh");
                if let Some(runner) = std::env::var("DPYFS_RUNNER").ok().filter(|r| !r.is_empty()) {
                    c.arg(runner);
                }
                c.arg(bin(&self.name));
                c
            }
        };
        let child = cmd
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin(&self.name).display()));
        self.pids.push(child.id());
        child
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
        loop {
            // Any HTTP answer means the daemon is serving; so does a TLS handshake that
            // got as far as a certificate of another CA than the test CA.
            match get(&format!("{}/status", self.url())) {
                Ok(_) => return,
                Err(e) if e.contains("TLS certificate refused") => return,
                Err(_) => {}
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(st) = exited {
                panic!(
                    "{} {:?} exited with {st} before answering; log:\n{}",
                    self.name,
                    self.args,
                    fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer within {START_TIMEOUT_MS} ms; log:\n{}",
                self.name,
                fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGKILL, by PID, and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        // `Child` does not kill on drop: a process whose handle was lost still runs. Any
        // PID of ours still alive with our arguments is such a leak; stop it and say so.
        let leaked: Vec<(u32, String)> = self
            .pids
            .iter()
            .filter_map(|&pid| Some(pid).zip(live_cmdline(pid)))
            .filter(|(_, cmd)| self.args.iter().all(|a| cmd.contains(a.as_str())))
            .collect();
        stop_pids(&leaked);
        if std::thread::panicking() {
            eprintln!(
                "--- log of {} {:?} ---\n{}",
                self.name,
                self.args,
                self.log_text()
            );
        } else if !leaked.is_empty() {
            panic!(
                "{} was still running at the end of the test: {leaked:?}",
                self.name
            );
        }
    }
}

/// The command line of a running process (args joined by spaces); None if it is gone or
/// a zombie (exited, not yet reaped).
pub fn live_cmdline(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name, which may itself hold spaces.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(args.join(" "))
}

/// Every live process other than this one whose arguments name `dir` or a path under it.
pub fn processes_using(dir: &Path) -> Vec<(u32, String)> {
    let dir = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Some(cmd) = live_cmdline(pid) else {
            continue;
        };
        // "…-1" is a prefix of "…-12": only the folder itself or a path below it counts.
        let names_dir = cmd
            .match_indices(&dir)
            .any(|(i, _)| matches!(cmd[i + dir.len()..].chars().next(), None | Some('/' | ' ')));
        if names_dir {
            out.push((pid, cmd));
        }
    }
    out
}

/// SIGKILL by PID (the processes a leak check found).
fn stop_pids(procs: &[(u32, String)]) {
    for (pid, _) in procs {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// A plain HTTP answer: status, headers (lowercase names) and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Makes this process's HTTPS connections (`dpyfs::tls::connector()`) trust the test CA
/// and present its certificate; once per process, whoever asks first.
pub fn trust_test_ca() {
    static TLS: std::sync::Once = std::sync::Once::new();
    #[cfg(feature = "tls")]
    TLS.call_once(|| {
        let ca = test_ca();
        dpyfs::tls::set_client(dpyfs::tls::ClientFiles {
            ca: Some(ca.ca.clone()),
            cert: Some(ca.cert.clone()),
            key: Some(ca.key.clone()),
        })
        .unwrap();
    });
}

/// The test agent: HTTPS trusts the test CA and presents its certificate.
fn agent() -> ureq::Agent {
    trust_test_ca();
    ureq::AgentBuilder::new()
        .tls_connector(dpyfs::tls::connector())
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .build()
}

/// Sends a request; any HTTP status is an `Ok` answer, only transport errors are `Err`.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Answer, String> {
    let mut r = agent().request(method, url);
    for (k, v) in headers {
        r = r.set(k, v);
    }
    let res = match body {
        Some(b) => r.send_bytes(b),
        None => r.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or("").to_string();
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    let mut body = Vec::new();
    resp.into_reader()
        .take(1 << 34)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

pub fn get(url: &str) -> Result<Answer, String> {
    request("GET", url, &[], None)
}

pub fn put(url: &str, body: &[u8]) -> Result<Answer, String> {
    request("PUT", url, &[], Some(body))
}

/// Sends raw bytes on a fresh connection and returns everything the server answered
/// until it closed or `timeout` passed (for requests a client library would rewrite).
pub fn raw(port: u16, bytes: &[u8], timeout: Duration) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if out.windows(4).any(|w| w == b"\r\n\r\n") && !out.starts_with(b"HTTP/1.1 100") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Deterministic pseudo-random bytes (xorshift), so failures can be reproduced.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

pub fn sha256_hex(data: &[u8]) -> String {
    dpyfs::hash::Hash::of(data).to_hex()
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Polls `f` until it returns Some, for at most `ms` milliseconds.
pub fn wait_for<T>(ms: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_millis(ms);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {ms} ms waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The test CA when the cluster runs on TLS (`DPYFS_TEST_TLS=1`), else None: what the
/// helpers below pass as `tls` when a test does not choose.
pub fn tls_default() -> Option<&'static TestCa> {
    tls_mode().then(test_ca)
}

/// A director's flags: listen on `{port}`, data in `data`, `replicas`, every store.
pub fn director_args(data: &Path, replicas: usize, stores: &[Daemon]) -> Vec<String> {
    director_args_on(data, replicas, stores, tls_default())
}

/// As `director_args`, on HTTPS with `tls`'s files when given (`--ca` verifies the stores).
pub fn director_args_on(
    data: &Path,
    replicas: usize,
    stores: &[Daemon],
    tls: Option<&TestCa>,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:{port}".into(),
        "--data".into(),
        data.to_str().unwrap().into(),
        "--replicas".into(),
        replicas.to_string(),
    ];
    for s in stores {
        args.extend(["--store".into(), s.url()]);
    }
    if let Some(ca) = tls {
        args.extend(ca.director_args());
    }
    args
}

/// Stores plus a director on loopback, each with its own data directory under `dir`.
pub struct Cluster {
    pub stores: Vec<Daemon>,
    pub director: Daemon,
}

impl Cluster {
    /// `n` stores in zones z1..zn, and a director with `replicas` and `extra` flags.
    pub fn start(dir: &TempDir, n: usize, replicas: usize, extra: &[&str]) -> Cluster {
        Cluster::start_with(dir, n, replicas, extra, &["--scrub-rate", "0"])
    }

    /// As `start`, on HTTPS with the test CA whatever `DPYFS_TEST_TLS` says (stores with
    /// mutual TLS, the director verifying them): for tests of TLS itself.
    pub fn start_tls(dir: &TempDir, n: usize, replicas: usize, extra: &[&str]) -> Cluster {
        Cluster::start_on(
            dir,
            n,
            replicas,
            extra,
            &["--scrub-rate", "0"],
            Some(test_ca()),
        )
    }

    /// Store `i` (1-based), id `s{i}`, zone `z{i}`, data in `dir/store{i}`.
    pub fn store(dir: &TempDir, i: usize, extra: &[&str]) -> Daemon {
        Cluster::store_on(dir, i, extra, tls_default())
    }

    /// As `store`, on HTTPS requiring client certificates of `tls` when given.
    pub fn store_on(dir: &TempDir, i: usize, extra: &[&str], tls: Option<&TestCa>) -> Daemon {
        let data = dir.path().join(format!("store{i}"));
        let (id, zone) = (format!("s{i}"), format!("z{i}"));
        let mut args = vec![
            "--listen",
            "127.0.0.1:{port}",
            "--data",
            data.to_str().unwrap(),
            "--id",
            &id,
            "--zone",
            &zone,
        ];
        if !extra.contains(&"--reserve") {
            args.extend_from_slice(&["--reserve", "0"]);
        }
        let tls_args = tls.map(TestCa::store_args).unwrap_or_default();
        args.extend(tls_args.iter().map(String::as_str));
        args.extend_from_slice(extra);
        Daemon::start("dpyfs-store", &args, dir.path())
    }

    pub fn start_with(
        dir: &TempDir,
        n: usize,
        replicas: usize,
        extra: &[&str],
        store_extra: &[&str],
    ) -> Cluster {
        Cluster::start_on(dir, n, replicas, extra, store_extra, tls_default())
    }

    /// As `start_with`, on HTTPS with `tls`'s files when given, plain HTTP when None.
    pub fn start_on(
        dir: &TempDir,
        n: usize,
        replicas: usize,
        extra: &[&str],
        store_extra: &[&str],
        tls: Option<&TestCa>,
    ) -> Cluster {
        let stores: Vec<Daemon> = (1..=n)
            .map(|i| Cluster::store_on(dir, i, store_extra, tls))
            .collect();
        let mut args = director_args_on(&dir.path().join("director"), replicas, &stores, tls);
        args.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let director = Daemon::start("dpyfs-director", &argv, dir.path());
        let c = Cluster { stores, director };
        c.wait_stores_up(n);
        c
    }

    pub fn url(&self) -> String {
        self.director.url()
    }

    pub fn status(&self) -> serde_json::Value {
        get(&format!("{}/_dpyfs/status", self.url()))
            .unwrap()
            .json()
    }

    /// Waits until the director sees exactly `n` stores up.
    pub fn wait_stores_up(&self, n: usize) {
        wait_for(30_000, &format!("{n} stores up"), || {
            let st = self.status();
            let up = st["stores"]
                .as_array()?
                .iter()
                .filter(|s| s["up"] == true)
                .count();
            (up == n).then_some(())
        });
    }
}

/// The texts of every `<tag>…</tag>` in an XML document, XML entities decoded.
pub fn xml_values(doc: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(
            after[..j]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[j + close.len()..];
    }
    out
}

/// CPU seconds (user + system) a process has used so far, from /proc/PID/stat (Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is the 3rd field of the line,
    // utime and stime the 14th and 15th.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks_per_s())
}

/// `getconf CLK_TCK` (100 on every Linux this runs on; asked once rather than assumed).
fn clock_ticks_per_s() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let o = Command::new("getconf").arg("CLK_TCK").output();
        o.ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Peak resident memory (VmHWM) of a process, in bytes (Linux).
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    rss_field(pid, "VmHWM:")
}

/// Current resident memory (VmRSS) of a process, in bytes (Linux).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    rss_field(pid, "VmRSS:")
}

fn rss_field(pid: u32, field: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// An endless deterministic byte stream (xorshift), `len` bytes long, never held whole.
pub struct GenReader {
    x: u64,
    left: u64,
    pending: [u8; 8],
    pending_len: usize,
}

impl GenReader {
    pub fn new(len: u64, seed: u64) -> GenReader {
        GenReader {
            x: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            left: len,
            pending: [0; 8],
            pending_len: 0,
        }
    }
}

impl Read for GenReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for b in buf[..n].iter_mut() {
            if self.pending_len == 0 {
                self.x ^= self.x << 13;
                self.x ^= self.x >> 7;
                self.x ^= self.x << 17;
                self.pending = self.x.to_le_bytes();
                self.pending_len = 8;
            }
            *b = self.pending[8 - self.pending_len];
            self.pending_len -= 1;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// SHA-256 of everything a reader yields.
pub fn sha256_of_reader(r: &mut dyn Read) -> (u64, String) {
    let mut h = dpyfs::hash::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    (total, h.finish().to_hex())
}

/// Three stores and a group of `n` directors, each director `--peer` of the others,
/// on ports chosen up front so that each can name the others.
pub struct DirectorGroup {
    pub stores: Vec<Daemon>,
    pub directors: Vec<Daemon>,
}

impl DirectorGroup {
    pub fn start(dir: &TempDir, n: usize) -> DirectorGroup {
        let stores: Vec<Daemon> = (1..=3)
            .map(|i| Cluster::store(dir, i, &["--scrub-rate", "0"]))
            .collect();
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let directors = (0..n)
            .map(|i| {
                let data = dir.path().join(format!("director{i}"));
                let mut args = director_args(&data, 2, &stores);
                for (j, p) in ports.iter().enumerate() {
                    if j != i {
                        args.extend(["--peer".into(), format!("http://127.0.0.1:{p}")]);
                    }
                }
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                Daemon::start_at("dpyfs-director", &argv, dir.path(), ports[i])
            })
            .collect();
        let g = DirectorGroup { stores, directors };
        g.wait_settled(&(0..n).collect::<Vec<_>>());
        g
    }

    pub fn status(&self, i: usize) -> Option<serde_json::Value> {
        let a = get(&format!("{}/_dpyfs/status", self.directors[i].url())).ok()?;
        (a.status == 200).then(|| a.json())
    }

    /// Waits until the directors `alive` agree on one leader among them, and each sees
    /// the three stores up; returns the leader's position.
    pub fn wait_settled(&self, alive: &[usize]) -> usize {
        let stores_up = |s: &serde_json::Value| {
            s["stores"]
                .as_array()
                .is_some_and(|a| a.iter().filter(|x| x["up"] == true).count() == 3)
        };
        wait_leader(
            alive,
            |i| self.status(i),
            |i| self.directors[i].url(),
            stores_up,
        )
    }
}

/// Waits until the directors `alive` (their status JSON by `status`, their URLs by `url`)
/// agree on one leader among them and each status passes `ready`; the leader's position.
pub fn wait_leader(
    alive: &[usize],
    status: impl Fn(usize) -> Option<serde_json::Value>,
    url: impl Fn(usize) -> String,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> usize {
    wait_for(60_000, "one leader that every live director knows", || {
        let sts: Vec<serde_json::Value> =
            alive.iter().map(|&i| status(i)).collect::<Option<_>>()?;
        let leader = sts[0]["leader"].as_str()?.to_string();
        let all_agree = sts.iter().all(|s| s["leader"] == leader.as_str());
        let pos = alive.iter().copied().find(|&i| url(i) == leader)?;
        (all_agree && sts.iter().all(&ready)).then_some(pos)
    })
}

/// Every journal line of a director's data folder with its seq, oldest first.
pub fn journal_lines(dir: &Path) -> Vec<(u64, String)> {
    let mut segs: Vec<_> = std::fs::read_dir(dir.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let mut out = Vec::new();
    for s in segs {
        for line in std::fs::read_to_string(&s).unwrap().lines() {
            let json: serde_json::Value =
                serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
            out.push((json["seq"].as_u64().unwrap(), line.to_string()));
        }
    }
    out
}

/// The venv of tests/clients/install.sh (boto3 and aws-cli; the script also installs the
/// apt clients: rclone, s3cmd, restic, curl), installed once per test process, in
/// target/s3-venv. A failed install fails the test saying how to install by hand.
pub fn s3_venv() -> &'static Path {
    static VENV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    VENV.get_or_init(|| {
        // The test binary is target/<profile>/deps/<name>.
        let exe = std::env::current_exe().unwrap();
        let venv = exe.ancestors().nth(3).unwrap().join("s3-venv");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/install.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&venv)
            .stdin(Stdio::null())
            .output()
            .expect("bash is needed");
        assert!(
            out.status.success(),
            "installing the S3 clients failed; run `bash tests/clients/install.sh` as root \
             (it needs apt-get install rclone s3cmd restic curl python3-venv, and PyPI):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        venv
    })
}

/// A key of a keys file, as `dpyfs admin key create` prints it.
pub struct Key {
    pub id: String,
    pub secret: String,
}

/// `dpyfs admin key create --keys FILE` with more flags (`--admin`, `--buckets ..`), as a
/// person would run it.
pub fn key_create_with(keys: &Path, extra: &[&str]) -> Key {
    let mut args = vec!["admin", "key", "create", "--keys", keys.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = command("dpyfs").args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let var = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    Key {
        id: var("AWS_ACCESS_KEY_ID"),
        secret: var("AWS_SECRET_ACCESS_KEY"),
    }
}

/// curl with `args`; (status, body). curl itself failing (no connection) fails the test.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is needed for this test: apt-get install curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

/// curl signed by `key` with `--aws-sigv4`, as the README shows it; (status, body).
pub fn scurl(key: &Key, args: &[&str]) -> (u16, String) {
    let user = format!("{}:{}", key.id, key.secret);
    let mut all = vec!["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", &user];
    all.extend_from_slice(args);
    curl(&all)
}

/// `program` with a cleared environment for an S3 client: HOME is `home` (made, with
/// empty AWS config files), signing as `key_id`/`secret` in us-east-1, and the test CA
/// trusted when the cluster runs on TLS. Callers add what else their client reads.
pub fn s3_client_command(home: &Path, program: &Path, key_id: &str, secret: &str) -> Command {
    fs::create_dir_all(home).unwrap();
    for f in ["aws-config", "aws-credentials"] {
        fs::write(home.join(f), "").unwrap();
    }
    let mut c = Command::new(program);
    c.env_clear()
        .current_dir(home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("AWS_CONFIG_FILE", home.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("NO_PROXY", "*")
        .stdin(Stdio::null());
    if tls_mode() {
        let ca = &test_ca().ca;
        c.env("AWS_CA_BUNDLE", ca).env("SSL_CERT_FILE", ca);
    }
    c
}

/// Runs `c` and fails with what it printed unless it exits 0; returns its stdout.
pub fn run_client(what: &str, c: &mut Command) -> String {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    println!("--- {what} ---\n{stdout}\n{stderr}");
    stdout
}

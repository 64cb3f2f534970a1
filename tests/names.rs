//! Host names on the boards (issue 17 item 8): the director finds its stores, and the tools
//! find the director, by name through `src/resolve` — from a hosts file, from a DNS server
//! (dnsmasq on a loopback address, port 53) and by mDNS (a responder in a network namespace).
//! `make cross-test` runs these with the static ARM binaries under qemu, whose C library
//! could not do the same (cross/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::fs;
use std::net::UdpSocket;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The environment that points the resolver at the test's own files.
struct Names {
    hosts: PathBuf,
    resolv: PathBuf,
}

impl Names {
    fn new(dir: &Path, hosts: &str, resolv: &str) -> Names {
        let n = Names {
            hosts: dir.join("hosts"),
            resolv: dir.join("resolv.conf"),
        };
        fs::write(&n.hosts, hosts).unwrap();
        fs::write(&n.resolv, resolv).unwrap();
        n
    }

    fn command(&self, name: &str) -> Command {
        let mut c = command(name);
        c.env("DPYFS_HOSTS_FILE", &self.hosts)
            .env("DPYFS_RESOLV_CONF", &self.resolv)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("DPYFS_ACCESS_KEY")
            .env_remove("DPYFS_URL")
            .stdin(Stdio::null());
        c
    }

    fn tool(&self, name: &str, args: &[&str], cwd: &Path) -> Output {
        self.command(name)
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    }

    /// A daemon with this environment (common::Daemon passes none), on 127.0.0.1:`port`.
    fn daemon(&self, name: &str, args: &[String], dir: &Path, port: u16) -> Named {
        let log = dir.join(format!("{name}-{port}.log"));
        let out = fs::File::create(&log).unwrap();
        let child = self
            .command(name)
            .args(args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut d = Named { child, log };
        wait_for(START_TIMEOUT_MS, &format!("{name} on port {port}"), || {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("{name} exited ({st}); log:\n{}", d.log_text());
            }
            get(&format!("http://127.0.0.1:{port}/status")).ok()
        });
        d
    }
}

/// A process started by this test; killed by its PID when dropped.
struct Named {
    child: Child,
    log: PathBuf,
}

impl Named {
    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.log_text());
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "{}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// Two stores and a director (N=2) that reaches them as `store_urls`; returns the
/// director's port once both stores are up.
fn cluster(
    names: &Names,
    dir: &Path,
    store_urls: &dyn Fn(u16, usize) -> String,
) -> (Vec<Named>, u16) {
    let mut procs = Vec::new();
    let mut args = vec!["--replicas".to_string(), "2".into()];
    for i in 1..=2 {
        let port = free_port();
        let data = dir.join(format!("store{i}"));
        let a: Vec<String> = [
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data",
            data.to_str().unwrap(),
            "--id",
            &format!("s{i}"),
            "--zone",
            &format!("z{i}"),
            "--reserve",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        procs.push(names.daemon("dpyfs-store", &a, dir, port));
        args.extend(["--store".into(), store_urls(port, i)]);
    }
    let port = free_port();
    let data = dir.join("director");
    args.extend([
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--data".into(),
        data.to_str().unwrap().into(),
    ]);
    procs.push(names.daemon("dpyfs-director", &args, dir, port));
    wait_for(30_000, "2 stores up (reached by name)", || {
        let st = get(&format!("http://127.0.0.1:{port}/_dpyfs/status"))
            .ok()?
            .json();
        let up = st["stores"]
            .as_array()?
            .iter()
            .filter(|s| s["up"] == true)
            .count();
        (up == 2).then_some(())
    });
    (procs, port)
}

/// An object up through `put_url` and back through `get_url`, byte for byte.
fn round_trip(names: &Names, dir: &Path, put_url: &str, get_url: &str) {
    let work = dir.join("work");
    fs::create_dir_all(&work).unwrap();
    let data = random_bytes(300_000, 8);
    fs::write(work.join("up.bin"), &data).unwrap();
    assert_ok(&names.tool(
        "dpyfs-put",
        &["--url", put_url, "--mkbucket", "up.bin", "names/up.bin"],
        &work,
    ));
    assert_ok(&names.tool(
        "dpyfs-get",
        &["--url", get_url, "names/up.bin", "down.bin"],
        &work,
    ));
    assert_eq!(fs::read(work.join("down.bin")).unwrap(), data);
}

/// A name nobody knows: the tool fails at once (no retries asked), naming the host and
/// where it looked.
fn unknown_name_is_reported(names: &Names, dir: &Path, url: &str, host: &str) {
    let o = names.tool(
        "dpyfs-get",
        &["--retries", "0", "--url", url, "names/up.bin", "x.bin"],
        dir,
    );
    assert_eq!(o.status.code(), Some(1), "stderr:\n{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains(host), "{err}");
    assert!(err.contains(names.hosts.to_str().unwrap()), "{err}");
    assert!(!dir.join("x.bin").exists());
}

#[test]
fn names_from_a_hosts_file() {
    let dir = TempDir::new("names-hosts");
    // The resolv.conf names no server: a name missing from the hosts file asks 127.0.0.1,
    // where nothing answers DNS in the test (the message says so).
    let names = Names::new(
        dir.path(),
        "# boards\n127.0.0.1\tpi-store1 pi-store1.home\n127.0.0.1 PI-Store2\n127.0.0.1 director.lan\n",
        "options timeout:1 attempts:1\n",
    );
    let (_procs, port) = cluster(&names, dir.path(), &|p, i| {
        format!("http://pi-store{i}:{p}")
    });
    let url = format!("http://director.lan:{port}");
    round_trip(
        &names,
        dir.path(),
        &url,
        &format!("http://DIRECTOR.lan.:{port}"),
    );
    unknown_name_is_reported(
        &names,
        dir.path(),
        &format!("http://pi-nowhere:{port}"),
        "pi-nowhere",
    );
}

/// dnsmasq answering on `addr`:53 from `records` only; killed by its PID when dropped.
fn dnsmasq(dir: &Path, addr: &str, records: &[&str]) -> Named {
    let root = fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    assert!(
        root,
        "tests/names.rs needs root: dnsmasq must listen on port 53 (resolv.conf has no port)"
    );
    let version = Command::new("dnsmasq").arg("--version").output();
    assert!(
        version.map(|o| o.status.success()).unwrap_or(false),
        "dnsmasq missing: apt-get install --no-install-recommends dnsmasq-base (tests/clients/install.sh does)"
    );
    let log = dir.join("dnsmasq.log");
    let out = fs::File::create(&log).unwrap();
    let child = Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
        ])
        .args([
            "--bind-interfaces",
            &format!("--listen-address={addr}"),
            "--port=53",
        ])
        .args([
            "--log-facility=-",
            "--log-queries",
            "--user=root",
            "--pid-file=",
        ])
        .args(records)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut d = Named { child, log };
    // Ready when it answers a query (the root zone's NS, answered or refused: any reply).
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let query = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(st)) = d.child.try_wait() {
            panic!("dnsmasq exited ({st}); log:\n{}", d.log_text());
        }
        probe.send_to(&query, (addr, 53)).unwrap();
        let mut buf = [0u8; 512];
        if probe.recv_from(&mut buf).is_ok() {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "dnsmasq did not answer on {addr}:53; log:\n{}",
            d.log_text()
        );
    }
}

#[test]
fn names_from_a_dns_server_on_loopback() {
    let dir = TempDir::new("names-dns");
    // A loopback address of its own, so a resolver on 127.0.0.53 or a parallel run is not hit.
    let addr = format!("127.53.{}.{}", std::process::id() % 250 + 1, 53);
    let _dns = dnsmasq(
        dir.path(),
        &addr,
        &[
            "--local=/home/",
            "--host-record=pi-store1.home,127.0.0.1",
            "--host-record=pi-store2.home,127.0.0.1",
            "--host-record=director.home,127.0.0.1",
            "--cname=files.home,director.home",
        ],
    );
    let names = Names::new(
        dir.path(),
        "127.0.0.1 localhost\n",
        &format!("nameserver {addr}\nsearch home\noptions timeout:2 attempts:1\n"),
    );
    // pi-store1 through the search domain, pi-store2.home as given.
    let (_procs, port) = cluster(&names, dir.path(), &|p, i| match i {
        1 => format!("http://pi-store1:{p}"),
        _ => format!("http://pi-store2.home:{p}"),
    });
    // Up through a CNAME, down through the search domain.
    round_trip(
        &names,
        dir.path(),
        &format!("http://files.home:{port}"),
        &format!("http://director:{port}"),
    );
    // NXDOMAIN from the server: not found, quickly.
    unknown_name_is_reported(
        &names,
        dir.path(),
        &format!("http://pi-nowhere.home:{port}"),
        "pi-nowhere.home",
    );
}

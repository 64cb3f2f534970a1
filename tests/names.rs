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
    /// A network namespace every process of the test runs in (the mDNS test's).
    netns: Option<String>,
}

impl Names {
    fn new(dir: &Path, hosts: &str, resolv: &str) -> Names {
        let n = Names {
            hosts: dir.join("hosts"),
            resolv: dir.join("resolv.conf"),
            netns: None,
        };
        fs::write(&n.hosts, hosts).unwrap();
        fs::write(&n.resolv, resolv).unwrap();
        n
    }

    fn command(&self, name: &str) -> Command {
        let mut c = match &self.netns {
            None => command(name),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]);
                if let Some(runner) = std::env::var("DPYFS_RUNNER").ok().filter(|r| !r.is_empty()) {
                    c.arg(runner);
                }
                c.arg(bin(name));
                c
            }
        };
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

    /// A daemon with this environment (common::Daemon passes none), on 127.0.0.1:`port`;
    /// ready when its log says it listens (the test may not reach into its namespace).
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
            d.log_text().contains("listening on http://").then_some(())
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
    let director = procs.last().unwrap();
    wait_for(START_TIMEOUT_MS, "2 stores up (reached by name)", || {
        (director.log_text().matches(") is up").count() == 2).then_some(())
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

/// A network namespace of this test, deleted when dropped.
struct Netns(String);

impl Netns {
    /// A namespace whose loopback carries multicast, as a board's LAN interface does.
    fn new() -> Netns {
        let ns = Netns(format!("dpyfs-names-{}", std::process::id()));
        let ip = |args: &[&str]| {
            let o = Command::new("ip").args(args).output();
            let o = o.unwrap_or_else(|e| {
                panic!("ip (iproute2) missing ({e}): apt-get install iproute2")
            });
            assert!(o.status.success(), "ip {args:?}: {}", text(&o.stderr));
        };
        let _ = Command::new("ip").args(["netns", "del", &ns.0]).output();
        ip(&["netns", "add", &ns.0]);
        ip(&["-n", &ns.0, "link", "set", "lo", "up", "multicast", "on"]);
        ip(&["-n", &ns.0, "route", "add", "224.0.0.0/4", "dev", "lo"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// An mDNS responder standing in for avahi: joins 224.0.0.251 on loopback and answers
/// A questions for the names given (NAME=IP) to the asker, echoing id and question, as
/// RFC 6762 6.7 says for one-shot queries.
const MDNS_RESPONDER: &str = r#"
import socket, struct, sys
names = dict(a.split('=') for a in sys.argv[1:])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('', 5353))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             socket.inet_aton('224.0.0.251') + socket.inet_aton('127.0.0.1'))
print('ready', flush=True)
while True:
    msg, src = s.recvfrom(1500)
    if len(msg) < 12 or msg[4:6] != b'\x00\x01':
        continue
    pos, labels = 12, []
    while pos < len(msg) and msg[pos] != 0:
        labels.append(msg[pos + 1:pos + 1 + msg[pos]].decode('ascii', 'replace'))
        pos += 1 + msg[pos]
    name, qtype = '.'.join(labels).lower(), msg[pos + 1:pos + 3]
    print('query', name, qtype.hex(), flush=True)
    if name not in names or qtype != b'\x00\x01':
        continue
    head = msg[:2] + struct.pack('>HHHHH', 0x8400, 1, 1, 0, 0)
    answer = b'\xc0\x0c' + struct.pack('>HHIH', 1, 0x8001, 10, 4) + socket.inet_aton(names[name])
    s.sendto(head + msg[12:pos + 5] + answer, src)
"#;

#[test]
fn local_names_by_mdns_in_a_network_namespace() {
    let dir = TempDir::new("names-mdns");
    let root = fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    assert!(
        root,
        "tests/names.rs needs root: the mDNS test makes a network namespace"
    );
    let ns = Netns::new();
    let mut names = Names::new(
        dir.path(),
        "127.0.0.1 localhost\n",
        "options timeout:1 attempts:1\n",
    );
    names.netns = Some(ns.0.clone());
    let (log, err) = (
        dir.path().join("responder.log"),
        dir.path().join("responder.err"),
    );
    let responder = Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", "-c", MDNS_RESPONDER])
        .args([
            "pi-store1.local=127.0.0.1",
            "pi-store2.local=127.0.0.1",
            "director.local=127.0.0.1",
        ])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start ip netns exec python3 ({e}): apt-get install iproute2 python3")
        });
    let responder = Named {
        child: responder,
        log,
    };
    wait_for(10_000, "the mDNS responder", || {
        let e = fs::read_to_string(&err).unwrap_or_default();
        assert!(
            e.is_empty(),
            "the mDNS responder failed (apt-get install python3?): {e}"
        );
        responder.log_text().starts_with("ready").then_some(())
    });
    let (_procs, port) = cluster(&names, dir.path(), &|p, i| {
        format!("http://pi-store{i}.local:{p}")
    });
    let url = format!("http://director.local:{port}");
    round_trip(&names, dir.path(), &url, &url);
    assert!(
        responder.log_text().contains("query director.local 0001"),
        "{}",
        responder.log_text()
    );
    // A .local name nobody answers for: mDNS is silent and DNS (127.0.0.1, nothing there)
    // does not know it either.
    unknown_name_is_reported(
        &names,
        dir.path(),
        &format!("http://nas.local:{port}"),
        "nas.local",
    );
}

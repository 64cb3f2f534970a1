//! Several "boards" on one machine: each board is a network namespace with its own address
//! on a private /24, joined to the others by a Linux bridge, every link optionally shaped
//! by `tc tbf` to a board's link rate. The process that creates the testbed is itself a
//! board too (the "host" board): it reaches the bridge through a veth pair of its own, so
//! a client running in this process crosses a shaped link like every other board.
//!
//! Needs root (CI is root) and iproute2; a missing tool fails with how to get it. All
//! traffic stays inside namespaces this value creates, and `Drop` deletes them, the veth
//! pairs and the bridge. Links can be cut and healed (`cut`, `heal`) for partition tests.
//!
//! There is no added latency: the netem qdisc is not in every kernel (it is not in the
//! one this project's CI runs on), and tbf's `latency` only bounds its queue.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::{Daemon, TempDir, get, wait_for};

/// One board: its namespace, its address and the host-side end of its link.
pub struct Board {
    pub name: String,
    pub netns: String,
    pub addr: String,
    /// The veth end attached to the bridge; `ip link set .. down` cuts the board off.
    link: String,
}

pub struct Testbed {
    /// Interface and namespace names start with this; unique per testbed.
    tag: String,
    bridge: String,
    pub boards: Vec<Board>,
    /// The host board's address (this process, reached through `host_link`).
    pub host_addr: String,
    host_link: String,
}

/// Runs `ip ARGS`, failing the caller with ip's own message.
pub fn ip(args: &[&str]) {
    run("ip", args);
}

fn run(program: &str, args: &[&str]) {
    let o = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} missing ({e}): apt-get install --no-install-recommends iproute2")
        });
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `tc qdisc replace` of a token bucket at `rate` (tc's syntax, e.g. `1gbit`) on `dev`,
/// in namespace `netns` when given. The burst is one millisecond's worth at 1 Gbit/s
/// rounded up, enough for TCP to fill the link without letting bursts pass unshaped.
fn shape(netns: Option<&str>, dev: &str, rate: &str) {
    let mut args: Vec<&str> = Vec::new();
    if let Some(ns) = netns {
        args.extend(["-n", ns]);
    }
    args.extend([
        "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "256kb", "latency",
        "20ms",
    ]);
    run("tc", &args);
}

impl Testbed {
    /// Boards named `names`, each in its own namespace; every link shaped to `rate` when
    /// given. Must run as root.
    pub fn new(names: &[&str], rate: Option<&str>) -> Testbed {
        assert!(
            is_root(),
            "the board testbed makes network namespaces: run as root (CI is root)"
        );
        // Short and unique: interface names are at most 15 bytes.
        let n = std::process::id() % 100_000;
        let tag = format!("dpb{n}");
        // A /24 picked from the pid so two testbeds at once do not share one.
        let net = format!("10.{}.{}", 200 + n % 50, (n / 50) % 250);
        let mut tb = Testbed {
            bridge: format!("{tag}br"),
            tag,
            boards: Vec::new(),
            host_addr: format!("{net}.254"),
            host_link: String::new(),
        };
        tb.clear_leftovers();
        ip(&["link", "add", &tb.bridge, "type", "bridge"]);
        ip(&["link", "set", &tb.bridge, "up"]);
        for (i, name) in names.iter().enumerate() {
            let board = tb.add_board(name, &format!("{net}.{}", i + 1), i, rate);
            tb.boards.push(board);
        }
        tb.host_link = tb.add_host(&net, rate);
        tb
    }

    /// A namespace joined to the bridge by a veth pair; `eth0` inside, `<tag>v<i>` outside.
    fn add_board(&self, name: &str, addr: &str, i: usize, rate: Option<&str>) -> Board {
        let netns = format!("{}-{name}", self.tag);
        let link = format!("{}v{i}", self.tag);
        let peer = format!("{}p{i}", self.tag);
        ip(&["netns", "add", &netns]);
        ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &netns]);
        ip(&["-n", &netns, "link", "set", &peer, "name", "eth0"]);
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &netns, "link", "set", "eth0", "up"]);
        ip(&["-n", &netns, "link", "set", "lo", "up"]);
        ip(&["link", "set", &link, "master", &self.bridge, "up"]);
        if let Some(r) = rate {
            // Both directions: the board's sending side inside, its receiving side outside.
            shape(Some(&netns), "eth0", r);
            shape(None, &link, r);
        }
        Board {
            name: name.to_string(),
            netns,
            addr: addr.to_string(),
            link,
        }
    }

    /// This process's own link to the bridge: `<tag>h` holds the host address.
    fn add_host(&self, net: &str, rate: Option<&str>) -> String {
        let near = format!("{}h", self.tag);
        let far = format!("{}hb", self.tag);
        ip(&["link", "add", &near, "type", "veth", "peer", "name", &far]);
        ip(&["addr", "add", &format!("{net}.254/24"), "dev", &near]);
        ip(&["link", "set", &near, "up"]);
        ip(&["link", "set", &far, "master", &self.bridge, "up"]);
        if let Some(r) = rate {
            shape(None, &near, r);
            shape(None, &far, r);
        }
        near
    }

    pub fn board(&self, name: &str) -> &Board {
        self.boards
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("no board {name}"))
    }

    /// Cuts `name` off the bridge (a partition of that one board).
    pub fn cut(&self, name: &str) {
        ip(&["link", "set", &self.board(name).link, "down"]);
    }

    /// Joins `name` to the bridge again.
    pub fn heal(&self, name: &str) {
        ip(&["link", "set", &self.board(name).link, "up"]);
    }

    /// Starts the real binary `bin` inside board `name` (see `Daemon::start_in`).
    pub fn daemon(
        &self,
        name: &str,
        bin: &str,
        args: &[&str],
        log_dir: &std::path::Path,
        port: u16,
    ) -> Daemon {
        let b = self.board(name);
        Daemon::start_in(Some(&b.netns), &b.addr, bin, args, log_dir, port)
    }

    /// A command run inside board `name`: `ip netns exec NS program`, so its PID is the
    /// program's own once it starts.
    pub fn command(&self, name: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.board(name).netns, program]);
        c
    }

    /// Namespaces and links of an earlier testbed with this tag (a run killed before its
    /// `Drop`): removed so that this one can be made.
    fn clear_leftovers(&self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &format!("{}h", self.tag)])
            .output();
        let listed = Command::new("ip").args(["netns", "list"]).output();
        let text = listed
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for ns in text.lines().filter_map(|l| l.split_whitespace().next()) {
            if ns.starts_with(&format!("{}-", self.tag)) {
                let _ = Command::new("ip").args(["netns", "del", ns]).output();
            }
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        for b in &self.boards {
            let _ = Command::new("ip").args(["netns", "del", &b.netns]).output();
        }
        if !self.host_link.is_empty() {
            let _ = Command::new("ip")
                .args(["link", "del", &self.host_link])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

pub const DIRECTOR_PORT: u16 = 7070;
pub const STORE_PORT: u16 = 7071;

/// A cluster on a testbed made with boards `director`, `s1`, `s2`, ...: one store per `sN`
/// board (zone zN) and a director, as on real boards: non-loopback addresses, so stores
/// take a token file and the director serves unsigned requests only with
/// `--allow-anonymous` (the testbed is reachable from nowhere else). Daemons stop before
/// the folder goes.
pub struct BoardCluster {
    pub director: Daemon,
    pub stores: Vec<Daemon>,
    pub dir: TempDir,
}

impl BoardCluster {
    /// `extra`: more director flags.
    pub fn start(tb: &Testbed, replicas: usize, extra: &[&str]) -> BoardCluster {
        let dir = TempDir::new("boards");
        let token = dir.path().join("store.token");
        std::fs::write(
            &token,
            format!("boards-token-{:016x}\n", std::process::id()),
        )
        .unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let token = token.to_str().unwrap().to_string();
        let stores: Vec<Daemon> = tb
            .boards
            .iter()
            .filter(|b| b.name.starts_with('s'))
            .map(|b| store_on(tb, b, &dir, &token))
            .collect();
        let d = tb.board("director");
        let data = dir.path().join("director");
        let mut args = director_args_on(d, &data, replicas, &token, &stores);
        args.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let director = tb.daemon(
            "director",
            "dpyfs-director",
            &argv,
            dir.path(),
            DIRECTOR_PORT,
        );
        let c = BoardCluster {
            director,
            stores,
            dir,
        };
        c.wait_stores_up(c.stores.len());
        c
    }

    /// `key` in `bucket` on the director; an empty key names the bucket.
    pub fn url(&self, bucket: &str, key: &str) -> String {
        let base = format!("{}/{bucket}", self.director.url());
        if key.is_empty() {
            base
        } else {
            format!("{base}/{key}")
        }
    }

    pub fn status(&self) -> serde_json::Value {
        get(&format!("{}/_dpyfs/status", self.director.url()))
            .unwrap()
            .json()
    }

    /// Waits until the director sees exactly `n` stores up.
    pub fn wait_stores_up(&self, n: usize) {
        wait_for(30_000, &format!("{n} stores up on the boards"), || {
            let st = get(&format!("{}/_dpyfs/status", self.director.url())).ok()?;
            let up = st.json()["stores"]
                .as_array()?
                .iter()
                .filter(|s| s["up"] == true)
                .count();
            (up == n).then_some(())
        });
    }
}

/// The flags of a director on board `b`: its address, data in `data`, `replicas`, the
/// stores' token (also the peer token of a group of directors), every store.
pub fn director_args_on(
    b: &Board,
    data: &std::path::Path,
    replicas: usize,
    token: &str,
    stores: &[Daemon],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--listen",
        &format!("{}:{DIRECTOR_PORT}", b.addr),
        "--data",
        data.to_str().unwrap(),
        "--replicas",
        &replicas.to_string(),
        "--store-token-file",
        token,
        "--allow-anonymous",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for s in stores {
        args.extend(["--store".to_string(), s.url()]);
    }
    args
}

/// The store of board `b` (`sN`): id sN, zone zN, data in `dir/storeN`.
pub fn store_on(tb: &Testbed, b: &Board, dir: &TempDir, token: &str) -> Daemon {
    let data = dir.path().join(format!("store-{}", b.name));
    let args = [
        "--listen",
        &format!("{}:{STORE_PORT}", b.addr),
        "--data",
        data.to_str().unwrap(),
        "--id",
        &b.name,
        "--zone",
        &format!("z-{}", b.name),
        "--reserve",
        "0",
        "--scrub-rate",
        "0",
        "--token-file",
        token,
    ];
    tb.daemon(&b.name, "dpyfs-store", &args, dir.path(), STORE_PORT)
}

//! `dpyfs dev`: a whole local cluster in one command. Starts N stores and a director as
//! child processes (the binaries next to the running one), data and logs under one
//! directory, and stops them all on Ctrl-C or SIGTERM. A second start finds all data again.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a daemon may take to answer before `dpyfs dev` gives up.
pub const DEV_START_TIMEOUT_MS: u64 = 20_000;

#[derive(Clone, Debug)]
pub struct DevConfig {
    pub dir: PathBuf,
    pub stores: usize,
    pub replicas: usize,
    /// The director's port; stores take the next ones.
    pub port: u16,
    /// 1, 3 or 5 directors: the first on `port`, the others on the ports after the
    /// stores' (7074 and 7075 beside three stores).
    pub directors: usize,
    /// Where the dpyfs binaries are.
    pub bin_dir: PathBuf,
    /// HTTPS everywhere, with a CA made under `dir/tls/` (`--tls`).
    pub tls: bool,
}

struct Running {
    name: String,
    child: Child,
}

fn spawn(cfg: &DevConfig, name: &str, bin: &str, args: &[String]) -> Result<Running, String> {
    let log_path = cfg.dir.join(format!("{name}.log"));
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let err = log
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let exe = cfg.bin_dir.join(bin);
    let child = Command::new(&exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    Ok(Running {
        name: name.to_string(),
        child,
    })
}

/// Waits until something answers HTTP(S) on `port`, or the child exits.
fn wait_ready(r: &mut Running, scheme: &str, port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_millis(DEV_START_TIMEOUT_MS);
    let agent = ureq::AgentBuilder::new()
        .resolver(crate::resolve::netloc)
        .tls_connector(crate::tls::connector())
        .timeout(Duration::from_millis(500))
        .build();
    loop {
        match agent
            .get(&format!("{scheme}://127.0.0.1:{port}/status"))
            .call()
        {
            Ok(_) | Err(ureq::Error::Status(..)) => return Ok(()),
            Err(_) => {}
        }
        if let Ok(Some(st)) = r.child.try_wait() {
            return Err(format!(
                "{} exited ({st}) before answering; see {}",
                r.name,
                log.display()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not answer on port {port}; see {}",
                r.name,
                log.display()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn stop_all(running: &mut [Running]) {
    for r in running.iter() {
        let _ = crate::sys::terminate(r.child.id());
    }
    for r in running.iter_mut() {
        // A daemon that ignores SIGTERM for 5 s is killed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(r.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
}

/// Refuses to start when a port the cluster needs is taken. Without this check the
/// port's owner (often an earlier `dpyfs dev`) answers the readiness poll, the banner
/// prints, and only then does our daemon die on "address in use", the cause in its log.
fn check_ports(cfg: &DevConfig) -> Result<(), String> {
    for i in 0..cfg.stores + cfg.directors {
        let port = cfg.port + i as u16;
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            let role = match i {
                0 => "the director".to_string(),
                _ if i > cfg.stores => format!("director{}", i - cfg.stores + 1),
                _ => format!("store{i}"),
            };
            let by = port_owner(port)
                .map(|o| format!(" by {o}"))
                .unwrap_or_default();
            return Err(format!(
                "port {port} (for {role}) is taken{by}: {e}. Stop it, or give another \
                 --port (the stores take the {} ports after it)",
                cfg.stores
            ));
        }
    }
    Ok(())
}

/// Which process listens on TCP `port`, as "NAME (pid N)": best effort, from
/// /proc/net/tcp{,6} and /proc/*/fd (Linux; None elsewhere or for another user's process).
fn port_owner(port: u16) -> Option<String> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|t| fs::read_to_string(t).ok())
        .find_map(|table| listening_inode(&table, port))?;
    let socket = format!("socket:[{inode}]");
    for proc_dir in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(fds) = fs::read_dir(proc_dir.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == socket.as_str()));
        if holds {
            let name = fs::read_to_string(proc_dir.path().join("comm")).unwrap_or_default();
            return Some(format!(
                "{} (pid {})",
                name.trim(),
                proc_dir.file_name().to_string_lossy()
            ));
        }
    }
    None
}

/// The socket inode listening on `port` in a /proc/net/tcp table: lines of
/// `sl local_address rem_address st ... inode`, the port in hex, state 0A for LISTEN.
fn listening_inode(table: &str, port: u16) -> Option<u64> {
    const TCP_LISTEN: &str = "0A";
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let local_port = f.get(1)?.rsplit_once(':')?.1;
        let listening =
            u16::from_str_radix(local_port, 16).ok()? == port && *f.get(3)? == TCP_LISTEN;
        listening.then(|| f.get(9)?.parse().ok()).flatten()
    })
}

/// What `dpyfs dev` prints once everything answers: where, and how to use it.
fn print_banner(cfg: &DevConfig, url: &str, tls: Option<&crate::tls::ca::DevCerts>) {
    let dir = cfg.dir.display();
    println!(
        "dpyfs dev: {} at {url}, {} stores on ports {}-{}, {} copies of every chunk",
        match cfg.directors {
            1 => "director".to_string(),
            n => format!("{n} directors (see dpyfs status)"),
        },
        cfg.stores,
        cfg.port + 1,
        cfg.port + cfg.stores as u16,
        cfg.replicas
    );
    println!("data and logs in {dir}; Ctrl-C stops everything.");
    if let Some(t) = tls {
        let ca = t.ca.display();
        println!("HTTPS with the CA {ca}; to trust it in this shell:");
        println!("  export DPYFS_URL={url} DPYFS_CA={ca} AWS_CA_BUNDLE={ca} CURL_CA_BUNDLE={ca}");
    }
    println!(
        "try:  curl -X PUT {url}/demo && echo hello | curl -T - {url}/demo/hello.txt && curl {url}/demo/hello.txt"
    );
}

/// Runs the cluster until SIGINT/SIGTERM or until a daemon dies.
pub fn run(cfg: &DevConfig) -> Result<(), String> {
    check_ports(cfg)?;
    fs::create_dir_all(&cfg.dir)
        .map_err(|e| format!("cannot create {}: {e}", cfg.dir.display()))?;
    crate::sys::catch_stop_signals();
    let mut running = Vec::new();
    let result = start_and_wait(cfg, &mut running);
    stop_all(&mut running);
    if result.is_ok() {
        println!("dpyfs dev: stopped; data kept in {}", cfg.dir.display());
    }
    result
}

/// The director ports: `port`, then (for a group) the ports after the stores'.
fn director_ports(cfg: &DevConfig) -> Vec<u16> {
    let after = cfg.port + cfg.stores as u16;
    std::iter::once(cfg.port)
        .chain((1..cfg.directors).map(|k| after + k as u16))
        .collect()
}

/// Starts the directors (each `--peer` of the others) and waits until each answers.
fn start_directors(
    cfg: &DevConfig,
    running: &mut Vec<Running>,
    token: &str,
    store_urls: &[String],
    tls: Option<&crate::tls::ca::DevCerts>,
) -> Result<(), String> {
    let dir = cfg.dir.display().to_string();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let ports = director_ports(cfg);
    for (k, port) in ports.iter().enumerate() {
        let name = match k {
            0 => "director".to_string(),
            _ => format!("director{}", k + 1),
        };
        let mut args: Vec<String> = vec![
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data".into(),
            format!("{dir}/{name}"),
            "--replicas".into(),
            cfg.replicas.to_string(),
            "--store-token-file".into(),
            token.to_string(),
        ];
        for u in store_urls {
            args.extend(["--store".into(), u.clone()]);
        }
        for p in ports.iter().filter(|p| *p != port) {
            args.extend(["--peer".into(), format!("{scheme}://127.0.0.1:{p}")]);
        }
        args.extend(tls.iter().flat_map(|t| t.director_args()));
        running.push(spawn(cfg, &name, "dpyfs-director", &args)?);
        let last = running.len() - 1;
        wait_ready(
            &mut running[last],
            scheme,
            *port,
            &cfg.dir.join(format!("{name}.log")),
        )?;
    }
    Ok(())
}

fn start_and_wait(cfg: &DevConfig, running: &mut Vec<Running>) -> Result<(), String> {
    let dir = cfg.dir.display().to_string();
    // Even a local cluster's stores answer only its director: the token is made at the
    // first start and kept with the data.
    let token = cfg.dir.join("store.token");
    crate::store::create_token_file(&token)
        .map_err(|e| format!("cannot write {}: {e}", token.display()))?;
    let token = token.display().to_string();
    let tls = match cfg.tls {
        true => Some(crate::tls::ca::DevCerts::ensure(&cfg.dir)?),
        false => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut store_urls = Vec::new();
    for i in 1..=cfg.stores {
        let port = cfg.port + i as u16;
        let name = format!("store{i}");
        let args: Vec<String> = [
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data",
            &format!("{dir}/{name}"),
            "--id",
            &name,
            "--zone",
            &format!("zone{i}"),
            "--token-file",
            &token,
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(tls.iter().flat_map(|t| t.store_args()))
        .collect();
        running.push(spawn(cfg, &name, "dpyfs-store", &args)?);
        let log = cfg.dir.join(format!("{name}.log"));
        let last = running.len() - 1;
        wait_ready(&mut running[last], scheme, port, &log)?;
        store_urls.push(format!("{scheme}://127.0.0.1:{port}"));
    }
    start_directors(cfg, running, &token, &store_urls, tls.as_ref())?;
    let url = format!("{scheme}://127.0.0.1:{}", cfg.port);
    print_banner(cfg, &url, tls.as_ref());
    while !crate::sys::stop_requested() {
        for r in running.iter_mut() {
            if let Ok(Some(st)) = r.child.try_wait() {
                return Err(format!(
                    "{} exited ({st}); see {dir}/{}.log",
                    r.name, r.name
                ));
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_inode_finds_the_listener_of_a_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1B9E 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1B9F 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1
";
        assert_eq!(listening_inode(table, 7070), Some(4242));
        // 7071 has only an established connection, not a listener.
        assert_eq!(listening_inode(table, 7071), None);
        assert_eq!(listening_inode("", 7070), None);
    }
}

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
    /// Where the dpyfs binaries are.
    pub bin_dir: PathBuf,
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

/// Waits until something answers HTTP on `port`, or the child exits.
fn wait_ready(r: &mut Running, port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_millis(DEV_START_TIMEOUT_MS);
    let agent = ureq::AgentBuilder::new()
        .resolver(crate::resolve::netloc)
        .timeout(Duration::from_millis(500))
        .build();
    loop {
        match agent.get(&format!("http://127.0.0.1:{port}/status")).call() {
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

/// Runs the cluster until SIGINT/SIGTERM or until a daemon dies.
pub fn run(cfg: &DevConfig) -> Result<(), String> {
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

fn start_and_wait(cfg: &DevConfig, running: &mut Vec<Running>) -> Result<(), String> {
    let dir = cfg.dir.display().to_string();
    // Even a local cluster's stores answer only its director: the token is made at the
    // first start and kept with the data.
    let token = cfg.dir.join("store.token");
    crate::store::create_token_file(&token)
        .map_err(|e| format!("cannot write {}: {e}", token.display()))?;
    let token = token.display().to_string();
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
        .collect();
        running.push(spawn(cfg, &name, "dpyfs-store", &args)?);
        let log = cfg.dir.join(format!("{name}.log"));
        let last = running.len() - 1;
        wait_ready(&mut running[last], port, &log)?;
        store_urls.push(format!("http://127.0.0.1:{port}"));
    }
    let mut args: Vec<String> = vec![
        "--listen".into(),
        format!("127.0.0.1:{}", cfg.port),
        "--data".into(),
        format!("{dir}/director"),
        "--replicas".into(),
        cfg.replicas.to_string(),
        "--store-token-file".into(),
        token.clone(),
    ];
    for u in &store_urls {
        args.push("--store".into());
        args.push(u.clone());
    }
    running.push(spawn(cfg, "director", "dpyfs-director", &args)?);
    let last = running.len() - 1;
    wait_ready(&mut running[last], cfg.port, &cfg.dir.join("director.log"))?;
    let url = format!("http://127.0.0.1:{}", cfg.port);
    println!(
        "dpyfs dev: director at {url}, {} stores on ports {}-{}, {} copies of every chunk",
        cfg.stores,
        cfg.port + 1,
        cfg.port + cfg.stores as u16,
        cfg.replicas
    );
    println!("data and logs in {dir}; Ctrl-C stops everything.");
    println!(
        "try:  curl -X PUT {url}/demo && echo hello | curl -T - {url}/demo/hello.txt && curl {url}/demo/hello.txt"
    );
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

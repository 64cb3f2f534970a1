//! Headless Chromium for the tests that need a real browser (the status page, a form
//! upload): found on PATH or a clear failure saying how to install it, run with a bound
//! on its time and stopped by its PID.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Debian's `chromium`, or a clear failure saying how to get it.
pub fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(o) = Command::new("which").arg(name).output() {
            if o.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            }
        }
    }
    panic!(
        "headless Chromium is needed for the status page and browser upload tests: apt-get install chromium \
         (.ci/run installs it)"
    );
}

/// Runs chromium headless with `extra` flags; killed by PID if it takes too long.
pub fn run_chromium(exe: &Path, profile: &Path, extra: &[&str], url: &str) -> Output {
    let child = Command::new(exe)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = Arc::new(Mutex::new(false));
    let d = Arc::clone(&done);
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if *d.lock().unwrap() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let o = child.wait_with_output().unwrap();
    *done.lock().unwrap() = true;
    o
}

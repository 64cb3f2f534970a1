//! `dpyfs dev`, and the README's curl recipes and tool examples, run verbatim against it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

/// A base port with `n` free ports after it.
fn free_port_run(n: u16) -> u16 {
    for _ in 0..50 {
        let base = free_port();
        if base > 60000 {
            continue;
        }
        if (1..=n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no run of {n} free ports found");
}

/// A `sh` block of the README: the first one after `<!-- MARKER -->`.
fn readme_block(marker: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find(&format!("<!-- {marker} -->"))
        .unwrap_or_else(|| panic!("marker {marker} in README"));
    let rest = &readme[start..];
    let a = rest.find("```sh\n").unwrap() + 6;
    let b = rest[a..].find("```").unwrap();
    rest[a..a + b].to_string()
}

/// Runs a README block with bash (`set -euo pipefail`) in `dir`, the tools on PATH and
/// DPYFS_URL pointing at the test's cluster.
fn run_block(marker: &str, dir: &std::path::Path, url: &str) {
    let script = readme_block(marker).replace("http://127.0.0.1:7070", url);
    let bin_dir = bin("dpyfs").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail\ncd '{}'\n{script}",
            dir.display()
        ))
        .env("PATH", path)
        .env("DPYFS_URL", url)
        .output()
        .expect("bash and curl are needed: apt-get install curl");
    assert!(
        run.status.success(),
        "README block {marker} failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn dpyfs_dev_runs_a_cluster_that_the_readme_recipes_work_against() {
    let dir = TempDir::new("dev");
    let port = free_port_run(3);
    let data = dir.path().join("data");
    let start = || {
        let mut child = command("dpyfs")
            .args([
                "dev",
                "--dir",
                data.to_str().unwrap(),
                "--port",
                &port.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(
            line.contains(&format!("director at http://127.0.0.1:{port}")),
            "{line}"
        );
        (child, out)
    };
    let (mut child, _out) = start();
    let url = format!("http://127.0.0.1:{port}");
    run_block("readme-recipes", dir.path(), &url);
    run_block("readme-tools", dir.path(), &url);
    // The stores answer only the director (issue 18, item 1): the token was made at the
    // first start, readable by its owner alone.
    let token = data.join("store.token");
    let mode = std::fs::metadata(&token).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", token.display());
    let store = format!("http://127.0.0.1:{}", port + 1);
    assert_eq!(get(&format!("{store}/chunks")).unwrap().status, 401);
    assert_eq!(get(&format!("{store}/status")).unwrap().status, 200);
    // SIGTERM (as Ctrl-C would) stops every daemon; a second start finds the data.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "dpyfs dev exited with {st}");
    let (mut child, _out) = start();
    let g = get(&format!("{url}/demo/hello.txt")).unwrap();
    assert_eq!(g.status, 200);
    assert_eq!(g.text(), "hello, dpyfs\n");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

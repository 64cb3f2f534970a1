//! `dpyfs dev` and the README's curl recipes, run verbatim against it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::io::{BufRead, BufReader};
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

/// The README's curl recipes block (between the `readme-recipes` markers).
fn readme_recipes() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- readme-recipes -->")
        .expect("marker in README");
    let rest = &readme[start..];
    let a = rest.find("```sh\n").unwrap() + 6;
    let b = rest[a..].find("```").unwrap();
    rest[a..a + b].to_string()
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
    let script = readme_recipes().replace("http://127.0.0.1:7070", &url);
    let run = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail\ncd '{}'\n{script}",
            dir.path().display()
        ))
        .output()
        .expect("bash and curl are needed: apt-get install curl");
    assert!(
        run.status.success(),
        "README recipes failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
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

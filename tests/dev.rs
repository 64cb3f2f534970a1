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

/// Issue 17: with one of its ports taken, `dpyfs dev` names the port and what holds it
/// before it prints its banner or starts anything, and exits 1.
#[test]
fn dpyfs_dev_names_a_taken_port_before_starting() {
    let dir = TempDir::new("dev-port");
    let port = free_port_run(3);
    // This test process holds the second store's port.
    let _holder = std::net::TcpListener::bind(("127.0.0.1", port + 2)).unwrap();
    let data = dir.path().join("data");
    let o = command("dpyfs")
        .args(["dev", "--dir", data.to_str().unwrap()])
        .args(["--port", &port.to_string()])
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(!out.contains("director at"), "banner printed:\n{out}");
    assert!(
        err.contains(&format!("port {} (for store2) is taken", port + 2)),
        "{err}"
    );
    assert!(
        err.contains(&format!("(pid {})", std::process::id())),
        "the holder is not named:\n{err}"
    );
    assert!(!data.exists(), "dpyfs dev created its folder anyway");
    // A file as its folder is named as such, before the ports are even looked at.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = command("dpyfs")
        .args(["dev", "--dir", file.to_str().unwrap()])
        .args(["--port", &port.to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("--dir {} is not a directory", file.display())),
        "{err}"
    );
    // Nothing was started: the director's and first store's ports are still free.
    for p in [port, port + 1] {
        assert!(std::net::TcpListener::bind(("127.0.0.1", p)).is_ok(), "{p}");
    }
}

/// Issue 17: `make help` lists every target of the Makefile, and the README names each.
#[test]
fn make_help_and_the_readme_list_every_target() {
    let root = env!("CARGO_MANIFEST_DIR");
    let makefile = std::fs::read_to_string(format!("{root}/Makefile")).unwrap();
    let phony = makefile
        .lines()
        .find_map(|l| l.strip_prefix(".PHONY:"))
        .expect(".PHONY line in the Makefile");
    let o = Command::new("make")
        .args(["-s", "help"])
        .current_dir(root)
        .output()
        .expect("make is needed: apt-get install make");
    assert!(o.status.success(), "{o:?}");
    let help = String::from_utf8_lossy(&o.stdout);
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    for target in phony.split_whitespace() {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("make {target} ")))
            .unwrap_or_else(|| panic!("make help lacks {target}:\n{help}"));
        assert!(
            line.split_whitespace().count() > 2,
            "no description: {line}"
        );
        assert!(
            readme.contains(&format!("make {target}`"))
                || readme.contains(&format!("make {target} ")),
            "README does not name `make {target}`"
        );
    }
}

/// The README's flag tables name every flag the daemons' `--help` lists (issue 17: the
/// director's table had fallen behind).
#[test]
fn readme_flag_tables_list_every_daemon_flag() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for name in ["dpyfs-director", "dpyfs-store"] {
        let start = readme
            .find(&format!("\n## {name}\n"))
            .unwrap_or_else(|| panic!("no section {name}"));
        let section = &readme[start + 1..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        let o = command(name).arg("--help").output().unwrap();
        assert!(o.status.success());
        let help = String::from_utf8_lossy(&o.stdout);
        let flags: Vec<&str> = help
            .split_whitespace()
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(|w| w.trim_end_matches(','))
            .filter(|w| {
                w.chars()
                    .skip(2)
                    .all(|c| c.is_ascii_lowercase() || c == '-')
            })
            .collect();
        assert!(flags.len() > 5, "{help}");
        for flag in flags.iter().filter(|f| **f != "--help") {
            assert!(
                section.contains(&format!("`{flag}`")),
                "README's {name} table lacks `{flag}`"
            );
        }
    }
}

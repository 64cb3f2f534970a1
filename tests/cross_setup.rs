//! `cross/setup.sh` chooses one rustc-web version that every architecture offers (issue 17,
//! item 6). The script runs for real; only apt's commands are stand-ins on `PATH`, fed
//! with the package lists of a mirror caught mid-sync, so no package is installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TempDir;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const NEW: &str = "1.96.0+dfsg1-1~deb12u1";
const OLD: &str = "1.85.0+dfsg3-1~deb12u3";

fn script(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    fs::write(&p, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Stand-ins for apt-cache, apt-get, dpkg-query and dpkg in `dir`. `offers` maps each
/// package to the versions "the mirror" lists; `installed` is what dpkg-query reports.
/// apt-get records its arguments in `dir/apt-get.log`; dpkg passes --compare-versions to
/// the real dpkg.
fn fake_apt(dir: &Path, offers: &[(&str, &[&str])], installed: &[(&str, &str)]) {
    let mut madison = String::from("case \"$2\" in\n");
    for (pkg, versions) in offers {
        madison.push_str(&format!("  {pkg})\n"));
        for v in *versions {
            madison.push_str(&format!(
                "    echo '{pkg} | {v} | http://mirror.invalid bookworm/main Packages'\n"
            ));
        }
        madison.push_str("    ;;\n");
    }
    madison.push_str("esac");
    script(dir, "apt-cache", &madison);
    let mut query = String::from("case \"$3\" in\n");
    for (pkg, v) in installed {
        query.push_str(&format!("  {pkg}) printf 'install ok installed {v}' ;;\n"));
    }
    query.push_str("  *) exit 1 ;;\nesac");
    script(dir, "dpkg-query", &query);
    script(
        dir,
        "apt-get",
        &format!("echo \"$*\" >> {}/apt-get.log", dir.display()),
    );
    // Not root: the script calls sudo, which must not reach the real one.
    script(dir, "sudo", "exec \"$@\"");
    script(
        dir,
        "dpkg",
        "case \"$1\" in\n  --compare-versions) exec /usr/bin/dpkg \"$@\" ;;\n  --print-foreign-architectures) printf 'arm64\\narmhf\\n' ;;\nesac",
    );
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // env.sh --print at the end needs a rustc; the stand-in bin folder comes first.
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    Command::new("bash")
        .arg(root.join("cross/setup.sh"))
        .args(args)
        .env("PATH", path)
        .env("CROSS_RUSTC", "/bin/true")
        .output()
        .unwrap()
}

const OTHERS: [&str; 6] = [
    "gcc-aarch64-linux-gnu",
    "gcc-arm-linux-gnueabihf",
    "libc6-dev-arm64-cross",
    "libc6-dev-armhf-cross",
    "qemu-user-static",
    "file",
];

#[test]
fn a_mirror_mid_sync_gets_the_version_every_architecture_offers() {
    let dir = TempDir::new("cross-setup");
    let new_and_old: &[&str] = &[NEW, OLD];
    let old: &[&str] = &[OLD];
    // As seen: amd64 already has the newer security release, arm64 and armhf do not.
    let offers = [
        ("rustc-web", new_and_old),
        ("libstd-rust-web-dev:amd64", new_and_old),
        ("libstd-rust-web-dev:arm64", old),
        ("libstd-rust-web-dev:armhf", old),
    ];
    let mut installed: Vec<(&str, &str)> = OTHERS.iter().map(|p| (*p, "1")).collect();
    // A machine left with a newer compiler than its ARM libraries.
    installed.push(("rustc-web", NEW));
    installed.push(("libstd-rust-web-dev:amd64", NEW));
    installed.push(("libstd-rust-web-dev:arm64", OLD));
    fake_apt(dir.path(), &offers, &installed);

    let chosen = run(dir.path(), &["--choose"]);
    assert!(chosen.status.success(), "{chosen:?}");
    assert_eq!(String::from_utf8_lossy(&chosen.stdout).trim(), OLD);

    let out = run(dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!("pinning rustc-web {OLD}")),
        "{stdout}"
    );
    let log = fs::read_to_string(dir.path().join("apt-get.log")).unwrap();
    let install = log.lines().find(|l| l.contains("install")).unwrap();
    for p in [
        "rustc-web",
        "libstd-rust-web-dev:amd64",
        "libstd-rust-web-dev:arm64",
        "libstd-rust-web-dev:armhf",
    ] {
        assert!(install.contains(&format!("{p}={OLD}")), "{install}");
    }
    assert!(install.contains("--no-install-recommends"), "{install}");
    assert!(log.lines().any(|l| l.contains("update")), "{log}");
}

#[test]
fn nothing_in_common_stops_with_what_each_architecture_offers() {
    let dir = TempDir::new("cross-setup");
    let new: &[&str] = &[NEW];
    let none: &[&str] = &[];
    let offers = [
        ("rustc-web", new),
        ("libstd-rust-web-dev:amd64", new),
        ("libstd-rust-web-dev:arm64", new),
        ("libstd-rust-web-dev:armhf", none),
    ];
    fake_apt(dir.path(), &offers, &[]);
    let out = run(dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr.contains("libstd-rust-web-dev:armhf: \n"), "{stderr}");
    assert!(
        stderr.contains("run 'apt-get update' and then cross/setup.sh again"),
        "{stderr}"
    );
    let log = fs::read_to_string(dir.path().join("apt-get.log")).unwrap();
    assert!(!log.contains("install"), "nothing installed: {log}");
}

#[test]
fn a_machine_in_step_runs_no_apt_command() {
    let dir = TempDir::new("cross-setup");
    let old: &[&str] = &[OLD];
    let offers = [("rustc-web", old)];
    let mut installed: Vec<(&str, &str)> = OTHERS.iter().map(|p| (*p, "1")).collect();
    for p in [
        "rustc-web",
        "libstd-rust-web-dev:amd64",
        "libstd-rust-web-dev:arm64",
        "libstd-rust-web-dev:armhf",
    ] {
        installed.push((p, OLD));
    }
    fake_apt(dir.path(), &offers, &installed);
    let out = run(dir.path(), &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("everything is installed"),
        "{out:?}"
    );
    assert!(!dir.path().join("apt-get.log").exists());
}

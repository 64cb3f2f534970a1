//! Helpers of the tests that drive repair, garbage collection and fsck through the `dpyfs`
//! command (tests/repair.rs, tests/small_objects.rs).

use super::{Cluster, command, request};
use std::path::Path;
use std::process::Output;

/// Director flags that make repair deterministic in tests: passes only on request, no
/// rate limit, no GC grace.
pub const KNOBS: &[&str] = &[
    "--repair-interval",
    "3600",
    "--repair-rate",
    "0",
    "--gc-grace",
    "0",
];

/// `dpyfs --url <the cluster's director> ARGS`.
pub fn dpyfs(c: &Cluster, args: &[&str]) -> Output {
    command("dpyfs")
        .arg("--url")
        .arg(c.url())
        .args(args)
        .output()
        .unwrap()
}

/// The command's stdout and stderr; fails the test, showing them, unless it succeeded.
pub fn ok(o: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "dpyfs failed ({}):\n{text}", o.status);
    text
}

/// `dpyfs recover` of the cluster's stores into `data`: the arguments.
pub fn recover_args(c: &Cluster, data: &Path) -> Vec<String> {
    let mut args = vec!["recover".to_string()];
    for s in &c.stores {
        args.push("--store".into());
        args.push(s.url());
    }
    args.push("--data".into());
    args.push(data.display().to_string());
    args
}

pub fn mkbucket(c: &Cluster, b: &str) {
    assert_eq!(
        request("PUT", &format!("{}/{b}", c.url()), &[], None)
            .unwrap()
            .status,
        200
    );
}

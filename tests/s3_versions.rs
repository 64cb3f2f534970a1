//! S3 versioning and lifecycle rules (issue 16 item 1) through real clients — boto3
//! (tests/clients/versions_suite.py), aws-cli, rclone `--s3-versions` — and through plain
//! HTTP where the test looks at the stores themselves: garbage collection keeps the chunks
//! of noncurrent versions, `dpyfs recover` brings versions back, and the chunks ten edited
//! versions of a 64 MiB file take. The clients come from tests/clients/install.sh (as in
//! tests/s3_clients.rs) and run with a cleared environment against an open director on
//! 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// `program` with a cleared environment, its HOME in `dir`, dummy keys (the director is
/// open) and an rclone remote `dpy:` for `url`.
fn client(dir: &TempDir, url: &str, program: &str) -> Command {
    let home = dir.path().join("home");
    let mut c = s3_client_command(&home, Path::new(program), "versions", "versions-secret");
    fs::write(home.join("rclone.conf"), "").unwrap();
    c.env(
        "PATH",
        format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            s3_venv().join("bin").display()
        ),
    )
    .env("TMPDIR", &home)
    .env("RCLONE_CONFIG", home.join("rclone.conf"))
    .env("RCLONE_CONFIG_DPY_TYPE", "s3")
    .env("RCLONE_CONFIG_DPY_PROVIDER", "Other")
    .env("RCLONE_CONFIG_DPY_ENDPOINT", url)
    .env("RCLONE_CONFIG_DPY_ACCESS_KEY_ID", "versions")
    .env("RCLONE_CONFIG_DPY_SECRET_ACCESS_KEY", "versions-secret")
    .env("RCLONE_CONFIG_DPY_FORCE_PATH_STYLE", "true")
    .env("RCLONE_RETRIES", "1");
    c
}

/// One case of versions_suite.py against `c`.
fn boto3_case(dir: &TempDir, c: &Cluster, case: &str, extra: &[&str]) {
    let python = s3_venv().join("bin/python");
    let mut cmd = client(dir, &c.url(), python.to_str().unwrap());
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/versions_suite.py"))
        .args(["--endpoint", &c.url(), "--case", case])
        .args(extra);
    run_client(&format!("versions_suite.py --case {case}"), &mut cmd);
}

fn cluster(dir: &TempDir) -> Cluster {
    Cluster::start(dir, 3, 2, &["--gc-grace", "0"])
}

#[test]
fn boto3_version_history_delete_markers_restore_and_errors() {
    let dir = TempDir::new("ver-history");
    let c = cluster(&dir);
    boto3_case(&dir, &c, "history", &[]);
}

#[test]
fn boto3_suspended_bucket_writes_the_null_version() {
    let dir = TempDir::new("ver-suspended");
    let c = cluster(&dir);
    boto3_case(&dir, &c, "suspended", &[]);
}

#[test]
fn boto3_list_object_versions_pages() {
    let dir = TempDir::new("ver-paging");
    let c = cluster(&dir);
    boto3_case(&dir, &c, "paging", &[]);
}

/// The director runs with a day of 2 seconds (`DPYFS_TEST_DAY_SECONDS`), so a rule of one
/// day acts within seconds; GC then frees what the removed versions held.
#[test]
fn lifecycle_expires_noncurrent_versions_and_lone_markers_on_a_short_day() {
    let dir = TempDir::new("ver-lifecycle");
    let mut c = cluster(&dir);
    c.director
        .env
        .push(("DPYFS_TEST_DAY_SECONDS".into(), "2".into()));
    c.director.restart();
    c.wait_stores_up(3);
    boto3_case(&dir, &c, "lifecycle", &["--day-seconds", "2"]);
    // The versions the rules removed (two of docs/a, the lone marker's key) leave their
    // chunks and manifests to GC.
    let gc = run_gc(&c);
    assert!(gc["deleted"].as_u64().unwrap() >= 4, "{gc}");
    let log = c.director.log_text();
    assert!(log.contains("lifecycle: "), "{log}");
}

/// A malformed day length stops the director's start with a message.
#[test]
fn a_bad_test_day_is_refused_at_start() {
    let dir = TempDir::new("ver-badday");
    let store = Cluster::store(&dir, 1, &[]);
    let port = free_port().to_string();
    let args: Vec<String> = director_args(&dir.path().join("director"), 1, &[store])
        .into_iter()
        .map(|a| a.replace("{port}", &port))
        .collect();
    let out = command("dpyfs-director")
        .args(args)
        .env("DPYFS_TEST_DAY_SECONDS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DPYFS_TEST_DAY_SECONDS"), "{err}");
}

#[test]
fn aws_cli_list_object_versions_and_rclone_s3_versions() {
    let dir = TempDir::new("ver-cli");
    let c = cluster(&dir);
    let script = r#"
set -euxo pipefail
EP="--endpoint-url $ENDPOINT"
aws $EP s3api create-bucket --bucket cli
aws $EP s3api put-bucket-versioning --bucket cli --versioning-configuration Status=Enabled
test "$(aws $EP s3api get-bucket-versioning --bucket cli --query Status --output text)" = Enabled
for i in 1 2 3; do
  echo "edit $i" > doc.txt
  aws $EP s3api put-object --bucket cli --key docs/doc.txt --body doc.txt
done
aws $EP s3api list-object-versions --bucket cli > versions.json
test "$(aws $EP s3api list-object-versions --bucket cli --query 'length(Versions)')" = 3
first=$(aws $EP s3api list-object-versions --bucket cli --query 'Versions[2].VersionId' --output text)
aws $EP s3api get-object --bucket cli --key docs/doc.txt --version-id "$first" old.txt
test "$(cat old.txt)" = "edit 1"
rclone lsf -R --files-only --s3-versions dpy:cli > lsf.txt
cat lsf.txt
test "$(grep -c 'doc' lsf.txt)" = 3
test "$(grep -c 'doc-v' lsf.txt)" = 2
# rclone reads old versions through a listing of their folder: a copy restores every
# version under its -vDATE name, and cat of one through --include prints that version.
# (rclone 1.60 cannot open a version named as the remote's root, dpy:cli/docs/doc-v...:
# it asks for the right listing, is answered the versions, and then lists the name as a
# folder; docs/S3.md says so.)
rclone copy --s3-versions dpy:cli/docs restored
test "$(ls restored | wc -l)" = 3
test "$(cat restored/doc.txt)" = "edit 3"
oldest=$(grep 'doc-v' lsf.txt | sort | head -1 | sed 's|^docs/||')
test "$(cat "restored/$oldest")" = "edit 1"
test "$(rclone cat --s3-versions dpy:cli/docs --include "$oldest")" = "edit 1"
aws $EP s3api delete-object --bucket cli --key docs/doc.txt
test "$(aws $EP s3api list-object-versions --bucket cli --query 'length(DeleteMarkers)')" = 1
"#;
    let mut cmd = client(&dir, &c.url(), "bash");
    cmd.arg("-c").arg(script).env("ENDPOINT", c.url());
    run_client("aws-cli and rclone", &mut cmd);
}

fn url(c: &Cluster, path: &str) -> String {
    format!("{}/{path}", c.url())
}

fn enable_versioning(c: &Cluster, bucket: &str) {
    assert_eq!(put(&url(c, bucket), b"").unwrap().status, 200);
    let doc = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let r = put(&url(c, &format!("{bucket}?versioning")), doc).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// PUT of `body`: its version id.
fn put_version(c: &Cluster, path: &str, body: &[u8]) -> String {
    let r = put(&url(c, path), body).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("x-amz-version-id").unwrap().to_string()
}

fn run_gc(c: &Cluster) -> serde_json::Value {
    // A pass that could not list every store is retried (as tests/repair.rs does).
    wait_for(30_000, "a complete gc pass", || {
        let r = request("POST", &url(c, "_dpyfs/gc"), &[], None).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        v["stores_not_listed"]
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(v)
    })
}

/// The `VersionId`s of a ListObjectVersions answer for `bucket`, newest first.
fn version_ids(c: &Cluster, bucket: &str) -> Vec<String> {
    let r = get(&url(c, &format!("{bucket}?versions"))).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    xml_values(&r.text(), "VersionId")
}

/// Noncurrent versions keep their chunks through GC (also across a snapshot and a
/// restart); once a version is deleted for good, GC frees what only it used; fsck counts
/// every version.
#[test]
fn gc_keeps_chunks_of_noncurrent_versions_and_frees_them_after_a_permanent_delete() {
    let dir = TempDir::new("ver-gc");
    let mut c = cluster(&dir);
    enable_versioning(&c, "gcb");
    let (old, new) = (random_bytes(300_000, 1), random_bytes(300_000, 2));
    let v1 = put_version(&c, "gcb/f", &old);
    let v2 = put_version(&c, "gcb/f", &new);
    assert_ne!(v1, v2);
    // Snapshot, restart: the versions are in the snapshot.
    let r = request("POST", &url(&c, "_dpyfs/compact"), &[], None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    c.director.restart();
    c.wait_stores_up(3);
    assert_eq!(version_ids(&c, "gcb"), [v2.clone(), v1.clone()]);
    let gc = run_gc(&c);
    assert_eq!(gc["deleted"], 0, "{gc}");
    let g = get(&url(&c, &format!("gcb/f?versionId={v1}"))).unwrap();
    assert_eq!((g.status, g.body == old), (200, true));
    let fsck = get(&url(&c, "_dpyfs/fsck")).unwrap().json();
    assert_eq!(
        (fsck["objects"].as_u64(), fsck["ok"].as_bool()),
        (Some(2), Some(true)),
        "{fsck}"
    );
    // v1 goes for good: its chunks and manifest become garbage.
    let d = request(
        "DELETE",
        &url(&c, &format!("gcb/f?versionId={v1}")),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(d.status, 204);
    assert_eq!(d.header("x-amz-version-id"), Some(v1.as_str()));
    let gc = run_gc(&c);
    assert!(gc["deleted"].as_u64().unwrap() >= 2, "{gc}");
    let g = get(&url(&c, &format!("gcb/f?versionId={v1}"))).unwrap();
    assert_eq!(g.status, 404);
    assert!(g.text().contains("NoSuchVersion"), "{}", g.text());
    let g = get(&url(&c, "gcb/f")).unwrap();
    assert_eq!((g.status, g.body == new), (200, true));
    assert_eq!(g.header("x-amz-version-id"), Some(v2.as_str()));
}

/// `dpyfs recover` from the stores alone: every version of a versioned bucket comes back
/// (from its manifest), the newest current, with versioning enabled.
#[test]
fn recover_brings_every_version_back() {
    let dir = TempDir::new("ver-recover");
    let mut c = cluster(&dir);
    enable_versioning(&c, "rec");
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| random_bytes(10_000 + i, i as u64)).collect();
    let ids: Vec<String> = bodies.iter().map(|b| put_version(&c, "rec/k", b)).collect();
    c.director.kill();
    fs::remove_dir_all(dir.path().join("director")).unwrap();
    let args = common::upkeep::recover_args(&c, &dir.path().join("director"));
    let text = common::upkeep::ok(&command("dpyfs").args(&args).output().unwrap());
    assert!(text.contains("2 noncurrent versions kept"), "{text}");
    c.director.restart();
    c.wait_stores_up(3);
    let want: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(version_ids(&c, "rec"), want);
    for (id, b) in ids.iter().zip(&bodies) {
        let g = get(&url(&c, &format!("rec/k?versionId={id}"))).unwrap();
        assert_eq!((g.status, &g.body), (200, b));
    }
    let v = get(&url(&c, "rec?versioning")).unwrap().text();
    assert!(v.contains("<Status>Enabled</Status>"), "{v}");
}

/// Ten versions of a 64 MiB file, each a few small edits away from the last, take less
/// than twice the file on the stores: content-defined chunks store only what changed.
#[test]
fn ten_edited_versions_of_64_mib_store_less_than_twice_the_file() {
    const FILE_BYTES: usize = 64 << 20;
    let dir = TempDir::new("ver-dedup");
    // One copy of each chunk, so the stores' bytes are the unique bytes.
    let c = Cluster::start(&dir, 2, 1, &[]);
    enable_versioning(&c, "dedup");
    let mut file = random_bytes(FILE_BYTES, 7);
    let mut ids = Vec::new();
    for v in 0..10u64 {
        if v > 0 {
            // Three edits of 100 bytes at places that differ from version to version.
            for e in 0..3u64 {
                let at = ((v * 7919 + e * 104_729) * 4099) as usize % (FILE_BYTES - 100);
                file[at..at + 100].copy_from_slice(&random_bytes(100, v * 10 + e));
            }
        }
        ids.push(put_version(&c, "dedup/big.bin", &file));
    }
    assert_eq!(version_ids(&c, "dedup").len(), 10);
    let stored: u64 = c
        .stores
        .iter()
        .map(|s| {
            get(&format!("{}/status", s.url())).unwrap().json()["chunks"]["bytes"]
                .as_u64()
                .unwrap()
        })
        .sum();
    println!(
        "ten versions of a {} MiB file: {stored} bytes on the stores ({:.2} x the file)",
        FILE_BYTES >> 20,
        stored as f64 / FILE_BYTES as f64
    );
    assert!(stored < 2 * FILE_BYTES as u64, "{stored} bytes stored");
    let g = get(&url(&c, &format!("dedup/big.bin?versionId={}", ids[9]))).unwrap();
    assert!(g.body == file);
}

/// A group of three directors: versions written through each director get distinct ids
/// and every director lists the same history in the same order; a delete marker made on
/// one is seen by all.
#[test]
fn three_directors_share_one_version_history() {
    let dir = TempDir::new("ver-group");
    let g = DirectorGroup::start(&dir, 3);
    let at = |i: usize, path: &str| format!("{}/{path}", g.directors[i].url());
    assert_eq!(put(&at(0, "grp"), b"").unwrap().status, 200);
    let doc = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    assert_eq!(put(&at(1, "grp?versioning"), doc).unwrap().status, 200);
    let mut ids = Vec::new();
    for round in 0..2 {
        for i in 0..3 {
            let r = put(&at(i, "grp/k"), format!("{round}/{i}").as_bytes()).unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            ids.push(r.header("x-amz-version-id").unwrap().to_string());
        }
    }
    let d = request("DELETE", &at(2, "grp/k"), &[], None).unwrap();
    assert_eq!(d.header("x-amz-delete-marker"), Some("true"));
    let marker = d.header("x-amz-version-id").unwrap().to_string();
    let mut want: Vec<String> = ids.iter().rev().cloned().collect();
    want.insert(0, marker);
    let unique: std::collections::BTreeSet<&String> = want.iter().collect();
    assert_eq!(unique.len(), 7, "{want:?}");
    for i in 0..3 {
        let l = get(&at(i, "grp?versions")).unwrap().text();
        assert_eq!(xml_values(&l, "VersionId"), want, "director {i}: {l}");
        let g = get(&at(i, "grp/k")).unwrap();
        assert_eq!(g.status, 404);
        let old = get(&at(i, &format!("grp/k?versionId={}", ids[0]))).unwrap();
        assert_eq!(old.body, b"0/0");
    }
}

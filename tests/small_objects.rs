//! Small objects in one file (issue 19, item 3): a body of up to 64 KiB rides inside its
//! manifest chunk, so it is one file per copy. Through the real binaries: S3 PUT, GET and
//! Range GET, HEAD, copies, dpyfs-put/dpyfs-get, garbage collection, a director killed
//! with SIGKILL, a lost manifest copy repaired, fsck, and `dpyfs recover`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::upkeep::*;
use common::*;
use md5::{Digest, Md5};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

/// `scatter::INLINE_BYTES_MAX`: the largest inline body.
const INLINE_MAX: usize = 64 * 1024;

fn locate(c: &Cluster, bucket: &str, key: &str) -> Value {
    let r = get(&format!("{}/_dpyfs/object/{bucket}/{key}", c.url())).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Every chunk file on every store of the cluster in `dir`.
fn chunk_files(dir: &TempDir) -> Vec<PathBuf> {
    (1..=3)
        .flat_map(|i| files_under(&dir.path().join(format!("store{i}/chunks"))))
        .collect()
}

fn chunk_path(dir: &TempDir, store: usize, h: &str) -> PathBuf {
    dir.path()
        .join(format!("store{store}/chunks/{}/{}/{h}", &h[0..2], &h[2..4]))
}

/// The stores (1-based) whose disks hold chunk `h`.
fn holders(dir: &TempDir, h: &str) -> Vec<usize> {
    (1..=3)
        .filter(|&i| chunk_path(dir, i, h).is_file())
        .collect()
}

fn md5_hex(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn put_ok(c: &Cluster, bucket: &str, key: &str, body: &[u8]) -> Answer {
    let r = put(&format!("{}/{bucket}/{key}", c.url()), body).unwrap();
    assert_eq!(r.status, 200, "PUT {bucket}/{key}: {}", r.text());
    r
}

fn get_body(c: &Cluster, bucket: &str, key: &str) -> Vec<u8> {
    let r = get(&format!("{}/{bucket}/{key}", c.url())).unwrap();
    assert_eq!(r.status, 200, "GET {bucket}/{key}: {}", r.text());
    r.body
}

#[test]
fn a_small_object_is_its_manifest_and_reads_back_whole_and_in_ranges() {
    let dir = TempDir::new("small-put");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "smb");
    let body = random_bytes(4096, 1);
    let r = put_ok(&c, "smb", "four.bin", &body);
    // The ETag is the body's MD5, as for any single-part object.
    assert_eq!(r.header("etag").unwrap(), format!("\"{}\"", md5_hex(&body)));
    // One file per copy: N=2 files in all, both the manifest, which holds the bytes.
    let loc = locate(&c, "smb", "four.bin");
    assert_eq!(loc["inline"], true, "{loc}");
    assert_eq!(loc["chunks"].as_array().unwrap().len(), 0, "{loc}");
    let files = chunk_files(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let mh = loc["manifest"]["hash"].as_str().unwrap();
    for f in &files {
        assert_eq!(f.file_name().unwrap().to_str().unwrap(), mh);
        let text = fs::read_to_string(f).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("dpyfs-manifest 1"));
        let m: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(m["object"]["inline"], true);
        assert_eq!(m["object"]["chunks"], serde_json::json!([]));
        assert!(m["data"].is_string(), "{m}");
    }
    assert_eq!(get_body(&c, "smb", "four.bin"), body);
    let st = ok(&dpyfs(&c, &["stat", "smb/four.bin"]));
    assert!(st.contains("inline"), "{st}");
    let h = request("HEAD", &format!("{}/smb/four.bin", c.url()), &[], None).unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some("4096"));
    // Range GETs: first byte, a middle span, a suffix, an open end, past the end.
    for (range, want) in [
        ("bytes=0-0", &body[0..1]),
        ("bytes=100-199", &body[100..200]),
        ("bytes=-10", &body[4086..]),
        ("bytes=4000-", &body[4000..]),
        ("bytes=4090-9999", &body[4090..]),
    ] {
        let r = request(
            "GET",
            &format!("{}/smb/four.bin", c.url()),
            &[("range", range)],
            None,
        )
        .unwrap();
        assert_eq!(r.status, 206, "{range}: {}", r.text());
        assert_eq!(r.body, want, "{range}");
    }
    let r = request(
        "GET",
        &format!("{}/smb/four.bin", c.url()),
        &[("range", "bytes=5000-")],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 416);
    // The checksum a client sent is kept and returned, as for chunked objects.
    let r = request(
        "PUT",
        &format!("{}/smb/summed", c.url()),
        &[("x-amz-checksum-crc32", "NhCmhg==")],
        Some(b"hello"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(
        "GET",
        &format!("{}/smb/summed", c.url()),
        &[("x-amz-checksum-mode", "ENABLED")],
        None,
    )
    .unwrap();
    assert_eq!(r.body, b"hello");
    assert_eq!(r.header("x-amz-checksum-crc32"), Some("NhCmhg=="));
}

#[test]
fn the_inline_limit_is_64_kib_and_larger_or_empty_bodies_are_as_before() {
    let dir = TempDir::new("small-edge");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "edge");
    let at = random_bytes(INLINE_MAX, 2);
    let over = random_bytes(INLINE_MAX + 1, 3);
    put_ok(&c, "edge", "at", &at);
    put_ok(&c, "edge", "over", &over);
    put_ok(&c, "edge", "empty", b"");
    let loc = locate(&c, "edge", "at");
    assert_eq!(loc["inline"], true, "{loc}");
    let loc = locate(&c, "edge", "over");
    assert_eq!(loc["inline"], false, "{loc}");
    assert_eq!(loc["chunks"].as_array().unwrap().len(), 1, "{loc}");
    let loc = locate(&c, "edge", "empty");
    assert_eq!(loc["inline"], false, "{loc}");
    assert_eq!(loc["chunks"].as_array().unwrap().len(), 0, "{loc}");
    assert_eq!(get_body(&c, "edge", "at"), at);
    assert_eq!(get_body(&c, "edge", "over"), over);
    assert_eq!(get_body(&c, "edge", "empty"), b"");
    // 3 manifests and the one data chunk of `over`, 2 copies each.
    assert_eq!(chunk_files(&dir).len(), 8);
}

#[test]
fn a_small_put_with_a_wrong_digest_stores_nothing() {
    let dir = TempDir::new("small-bad");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "bad");
    // Content-MD5 of other bytes: refused, with S3's code, and no file written.
    let other = base64_md5(b"other bytes");
    let r = request(
        "PUT",
        &format!("{}/bad/k", c.url()),
        &[("content-md5", &other)],
        Some(b"these bytes"),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        xml_values(&r.text(), "Code").first().map(String::as_str),
        Some("BadDigest")
    );
    // A checksum that does not match: refused the same way.
    let r = request(
        "PUT",
        &format!("{}/bad/k", c.url()),
        &[("x-amz-checksum-crc32", "AAAAAA==")],
        Some(b"hello"),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(get(&format!("{}/bad/k", c.url())).unwrap().status, 404);
    assert!(chunk_files(&dir).is_empty(), "{:?}", chunk_files(&dir));
}

fn base64_md5(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(b))
}

#[test]
fn copies_of_a_small_object_carry_its_bytes() {
    let dir = TempDir::new("small-copy");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "cpb");
    let body = random_bytes(3000, 4);
    put_ok(&c, "cpb", "src", &body);
    // CopyObject: a new inline object with the same bytes and ETag.
    let r = request(
        "PUT",
        &format!("{}/cpb/dst", c.url()),
        &[("x-amz-copy-source", "/cpb/src")],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(locate(&c, "cpb", "dst")["inline"], true);
    // The source may go; the copy stands on its own manifest.
    assert_eq!(
        request("DELETE", &format!("{}/cpb/src", c.url()), &[], None)
            .unwrap()
            .status,
        204
    );
    assert_eq!(get_body(&c, "cpb", "dst"), body);
    // UploadPartCopy of a range of an inline object becomes a chunk of the new object.
    let u = c.url();
    let r = request("POST", &format!("{u}/cpb/multi?uploads"), &[], Some(b"")).unwrap();
    let id = xml_values(&r.text(), "UploadId").pop().unwrap();
    let r = request(
        "PUT",
        &format!("{u}/cpb/multi?partNumber=1&uploadId={id}"),
        &[
            ("x-amz-copy-source", "/cpb/dst"),
            ("x-amz-copy-source-range", "bytes=10-1009"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = xml_values(&r.text(), "ETag").pop().unwrap();
    let xml = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = request(
        "POST",
        &format!("{u}/cpb/multi?uploadId={id}"),
        &[],
        Some(xml.as_bytes()),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get_body(&c, "cpb", "multi"), &body[10..1010]);
    // A completed upload is never inline: its part is a chunk already.
    assert_eq!(locate(&c, "cpb", "multi")["inline"], false);
}

fn tool(name: &str, url: &str, args: &[&str], cwd: &Path) -> Output {
    command(name)
        .args(args)
        .current_dir(cwd)
        .env("DPYFS_URL", url)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("DPYFS_ACCESS_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn dpyfs_put_and_get_of_small_files() {
    let dir = TempDir::new("small-tools");
    let c = Cluster::start(&dir, 3, 2, &[]);
    let work = dir.path().join("work");
    fs::create_dir_all(work.join("tree")).unwrap();
    let mut files = Vec::new();
    for (i, len) in [1usize, 100, 4096, 65_536].into_iter().enumerate() {
        let b = random_bytes(len, 10 + i as u64);
        let name = format!("f{i}.bin");
        fs::write(work.join("tree").join(&name), &b).unwrap();
        files.push((name, b));
    }
    let o = tool(
        "dpyfs-put",
        &c.url(),
        &["--mkbucket", "-r", "tree", "tlb/"],
        &work,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (name, b) in &files {
        let key = format!("tree/{name}");
        assert_eq!(locate(&c, "tlb", &key)["inline"], true, "{key}");
        let out = format!("back-{name}");
        let o = tool("dpyfs-get", &c.url(), &[&format!("tlb/{key}"), &out], &work);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(fs::read(work.join(&out)).unwrap(), *b, "{key}");
    }
}

#[test]
fn gc_keeps_what_small_objects_need_and_takes_what_they_left() {
    let dir = TempDir::new("small-gc");
    let c = Cluster::start(&dir, 3, 2, KNOBS);
    mkbucket(&c, "gcb");
    let keep = random_bytes(2000, 20);
    put_ok(&c, "gcb", "keep", &keep);
    put_ok(&c, "gcb", "gone", b"to be deleted");
    put_ok(&c, "gcb", "over", b"first version");
    let first = locate(&c, "gcb", "over")["manifest"]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    put_ok(&c, "gcb", "over", b"second version");
    let gone = locate(&c, "gcb", "gone")["manifest"]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let r = request("DELETE", &format!("{}/gcb/gone", c.url()), &[], None).unwrap();
    assert_eq!(r.status, 204);
    // (Exit 1 means a store could not be listed this time on a busy machine: try again.)
    wait_for(30_000, "a complete gc pass", || {
        dpyfs(&c, &["admin", "gc"]).status.success().then_some(())
    });
    assert!(
        holders(&dir, &gone).is_empty(),
        "deleted object's manifest kept"
    );
    assert!(
        holders(&dir, &first).is_empty(),
        "replaced version's manifest kept"
    );
    for (key, want) in [("keep", &keep[..]), ("over", b"second version")] {
        let mh = locate(&c, "gcb", key)["manifest"]["hash"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(holders(&dir, &mh).len(), 2, "{key}");
        assert_eq!(get_body(&c, "gcb", key), want);
    }
    ok(&dpyfs(&c, &["fsck", "--deep"]));
}

#[test]
fn a_director_killed_after_small_puts_loses_none_of_them() {
    let dir = TempDir::new("small-kill");
    let mut c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "k9b");
    // Sixteen writers at once, as the bench's small-object row: group commits shared.
    let url = c.url();
    let acked: Vec<(String, Vec<u8>)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..16)
            .map(|t| {
                let url = &url;
                sc.spawn(move || {
                    (0..8)
                        .map(|i| {
                            let key = format!("t{t}/o{i}");
                            let b = random_bytes(4096, (t * 100 + i) as u64);
                            let r = put(&format!("{url}/k9b/{key}"), &b).unwrap();
                            assert_eq!(r.status, 200, "{}", r.text());
                            (key, b)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    // SIGKILL, no shutdown: only what was fsynced before each answer survives.
    c.director.kill();
    c.director.restart();
    c.wait_stores_up(3);
    for (key, b) in &acked {
        assert_eq!(&get_body(&c, "k9b", key), b, "{key}");
    }
}

#[test]
fn a_lost_manifest_copy_is_repaired_and_fsck_sees_it() {
    let dir = TempDir::new("small-repair");
    let c = Cluster::start(&dir, 3, 2, KNOBS);
    mkbucket(&c, "rpb");
    let body = random_bytes(5000, 30);
    put_ok(&c, "rpb", "one", &body);
    let mh = locate(&c, "rpb", "one")["manifest"]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let had = holders(&dir, &mh);
    assert_eq!(had.len(), 2);
    // The disk of one holder loses the file.
    fs::remove_file(chunk_path(&dir, had[0], &mh)).unwrap();
    let f = dpyfs(&c, &["fsck"]);
    assert!(!f.status.success(), "fsck must see the missing copy");
    assert!(
        String::from_utf8_lossy(&f.stdout).contains("UNDER-REPLICATED"),
        "{}",
        String::from_utf8_lossy(&f.stdout)
    );
    // The object still reads from the other copy.
    assert_eq!(get_body(&c, "rpb", "one"), body);
    ok(&dpyfs(&c, &["admin", "repair"]));
    assert!(
        chunk_path(&dir, had[0], &mh).is_file(),
        "repair did not restore the copy"
    );
    ok(&dpyfs(&c, &["fsck", "--deep"]));
    // Both copies gone: the object is reported lost, never answered with other bytes.
    for i in holders(&dir, &mh) {
        fs::remove_file(chunk_path(&dir, i, &mh)).unwrap();
    }
    let r = get(&format!("{}/rpb/one", c.url())).unwrap();
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    assert!(!dpyfs(&c, &["fsck"]).status.success());
}

#[test]
fn recover_rebuilds_small_objects_from_their_manifests() {
    let dir = TempDir::new("small-recover");
    let mut c = Cluster::start(&dir, 3, 2, KNOBS);
    mkbucket(&c, "rcb");
    let small = random_bytes(777, 40);
    let large = random_bytes(300_000, 41);
    put_ok(&c, "rcb", "small", &small);
    put_ok(&c, "rcb", "large", &large);
    put_ok(&c, "rcb", "text", b"version one");
    put_ok(&c, "rcb", "text", b"version two");
    c.director.kill();
    fs::remove_dir_all(dir.path().join("director")).unwrap();
    let args = recover_args(&c, &dir.path().join("director"));
    let text = ok(&command("dpyfs").args(&args).output().unwrap());
    assert!(text.contains("recovered 3 objects in 1 buckets"), "{text}");
    c.director.restart();
    c.wait_stores_up(3);
    assert_eq!(get_body(&c, "rcb", "small"), small);
    assert_eq!(get_body(&c, "rcb", "large"), large);
    assert_eq!(get_body(&c, "rcb", "text"), b"version two");
    assert_eq!(locate(&c, "rcb", "small")["inline"], true);
    ok(&dpyfs(&c, &["fsck"]));
}

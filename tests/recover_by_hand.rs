//! docs/FORMAT.md, "Recover a file by hand", followed literally: the shell block is taken
//! from the document and run against a real cluster's directories (issue 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::process::Command;

fn recovery_script() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/FORMAT.md")).unwrap();
    let at = doc
        .find("<!-- recover-by-hand")
        .expect("marker in FORMAT.md");
    let rest = &doc[at..];
    let start = rest.find("```sh\n").expect("sh block") + "```sh\n".len();
    let end = rest[start..].find("```").unwrap();
    rest[start..start + end].to_string()
}

fn recover(
    dir: &TempDir,
    stores: &str,
    bucket: &str,
    key: &str,
    out: &std::path::Path,
) -> std::process::Output {
    for tool in ["jq", "sha256sum", "md5sum", "base64"] {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{tool} is needed for this test: apt-get install jq coreutils"
        );
    }
    Command::new("bash")
        .arg("-c")
        .arg(recovery_script())
        .env("DIRECTOR", dir.path().join("director"))
        .env("STORES", stores)
        .env("BUCKET", bucket)
        .env("KEY", key)
        .env("OUT", out)
        .output()
        .unwrap()
}

#[test]
fn format_md_recovery_section_gets_files_back() {
    let dir = TempDir::new("recover");
    let mut c = Cluster::start(&dir, 3, 2, &[]);
    let u = c.url();
    assert_eq!(
        request("PUT", &format!("{u}/photos"), &[], None)
            .unwrap()
            .status,
        200
    );
    let early = random_bytes(3 << 20, 61);
    assert_eq!(
        put(&format!("{u}/photos/2023/early.bin"), &early)
            .unwrap()
            .status,
        200
    );
    // A small object is inline: its bytes are in its manifest chunk (issue 19).
    let note = random_bytes(4096, 64);
    assert_eq!(
        put(&format!("{u}/photos/2023/note.bin"), &note)
            .unwrap()
            .status,
        200
    );
    // Compact, so the first objects are only in the snapshot.
    assert_eq!(
        request("POST", &format!("{u}/_dpyfs/compact"), &[], None)
            .unwrap()
            .status,
        200
    );
    let late = random_bytes(5 << 20, 62);
    assert_eq!(
        put(&format!("{u}/photos/2024/beach.jpg"), &late)
            .unwrap()
            .status,
        200
    );
    // A multipart object is journaled as upload_complete, with an ETag that is not the
    // MD5 of its bytes.
    let multi = random_bytes((5 << 20) + 4000, 63);
    let r = request(
        "POST",
        &format!("{u}/photos/multi.bin?uploads"),
        &[],
        Some(b""),
    )
    .unwrap();
    let id = xml_values(&r.text(), "UploadId").pop().unwrap();
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, piece) in [(1, &multi[..5 << 20]), (2, &multi[5 << 20..])] {
        let q = format!("{u}/photos/multi.bin?partNumber={n}&uploadId={id}");
        let r = request("PUT", &q, &[], Some(piece)).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let etag = r.header("etag").unwrap();
        xml += &format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>");
    }
    xml += "</CompleteMultipartUpload>";
    let q = format!("{u}/photos/multi.bin?uploadId={id}");
    let r = request("POST", &q, &[], Some(xml.as_bytes())).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let tiny = b"a line of text\n".to_vec();
    assert_eq!(
        put(&format!("{u}/photos/tiny.txt"), &tiny).unwrap().status,
        200
    );
    assert_eq!(put(&format!("{u}/photos/gone"), b"x").unwrap().status, 200);
    assert_eq!(
        request("DELETE", &format!("{u}/photos/gone"), &[], None)
            .unwrap()
            .status,
        204
    );
    // Every daemon stops: only the disks are left.
    c.director.kill();
    for s in c.stores.iter_mut() {
        s.kill();
    }
    let stores: Vec<String> = (1..=3)
        .map(|i| dir.path().join(format!("store{i}")).display().to_string())
        .collect();
    let stores = stores.join(" ");
    for (key, want) in [
        ("2024/beach.jpg", &late),
        ("2023/early.bin", &early),
        ("multi.bin", &multi),
        ("2023/note.bin", &note),
        ("tiny.txt", &tiny),
    ] {
        let out = dir.path().join("recovered.bin");
        let r = recover(&dir, &stores, "photos", key, &out);
        assert!(
            r.status.success(),
            "recovery of {key} failed:\n{}\n{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(std::fs::read(&out).unwrap() == *want, "{key} differs");
    }
    // A deleted object is reported as such, not recovered.
    let out = dir.path().join("gone.bin");
    let r = recover(&dir, &stores, "photos", "gone", &out);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stdout).contains("deleted"));
    // With one store's disk missing, N=2 still leaves a copy of every chunk.
    let two: Vec<&str> = stores.split(' ').skip(1).collect();
    let out = dir.path().join("two.bin");
    let r = recover(&dir, &two.join(" "), "photos", "2024/beach.jpg", &out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
    assert!(std::fs::read(&out).unwrap() == late);
    let r = recover(&dir, &two.join(" "), "photos", "tiny.txt", &out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
    assert!(std::fs::read(&out).unwrap() == tiny);
}

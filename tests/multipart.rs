//! Multipart uploads (issue 4) against three real stores and a real director, over raw
//! HTTP. Most clusters run with a small `--multipart-min-part` so parts can be small; the
//! EntityTooSmall test uses the default (5 MiB).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use md5::{Digest, Md5};
use std::collections::BTreeSet;
use std::fs;

/// Parts this small are one chunk each (the CDC minimum is 256 KiB), so a part's chunk
/// is the SHA-256 of its bytes.
const SMALL: usize = 200 * 1024;

fn small_parts_cluster(dir: &TempDir, extra: &[&str]) -> Cluster {
    let mut args = vec!["--multipart-min-part", "100K"];
    args.extend_from_slice(extra);
    Cluster::start(dir, 3, 2, &args)
}

fn mkbucket(c: &Cluster, b: &str) {
    let r = request("PUT", &format!("{}/{b}", c.url()), &[], None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

fn md5_hex(data: &[u8]) -> String {
    dpyfs::hash::to_hex(&Md5::digest(data))
}

fn code_of(a: &Answer) -> String {
    xml_values(&a.text(), "Code")
        .first()
        .cloned()
        .unwrap_or_default()
}

fn url(c: &Cluster, bk: &str, q: &str) -> String {
    format!("{}/{bk}{q}", c.url())
}

fn create(c: &Cluster, bk: &str) -> String {
    let r = request("POST", &url(c, bk, "?uploads"), &[], Some(b"")).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<InitiateMultipartUploadResult xmlns="));
    xml_values(&r.text(), "UploadId").pop().unwrap()
}

fn part(c: &Cluster, bk: &str, id: &str, n: u32, data: &[u8]) -> String {
    let r = request(
        "PUT",
        &url(c, bk, &format!("?partNumber={n}&uploadId={id}")),
        &[],
        Some(data),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", md5_hex(data)));
    etag
}

fn complete_xml(parts: &[(u32, &str)]) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    for (n, e) in parts {
        // As botocore sends it: a checksum per part next to number and ETag.
        x.push_str(&format!(
            "<Part><ETag>{}</ETag><PartNumber>{n}</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>",
            e.replace('"', "&quot;")
        ));
    }
    x + "</CompleteMultipartUpload>"
}

fn complete(c: &Cluster, bk: &str, id: &str, parts: &[(u32, &str)]) -> Answer {
    complete_with(c, bk, id, parts, &[])
}

fn complete_with(
    c: &Cluster,
    bk: &str,
    id: &str,
    parts: &[(u32, &str)],
    headers: &[(&str, &str)],
) -> Answer {
    let mut h = vec![("content-type", "application/xml")];
    h.extend_from_slice(headers);
    request(
        "POST",
        &url(c, bk, &format!("?uploadId={id}")),
        &h,
        Some(complete_xml(parts).as_bytes()),
    )
    .unwrap()
}

/// S3's multipart ETag: md5 of the concatenated binary MD5s of the parts, `-count`.
fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut cat = Vec::new();
    for p in parts {
        cat.extend_from_slice(&Md5::digest(p));
    }
    format!("\"{}-{}\"", md5_hex(&cat), parts.len())
}

fn list_parts(c: &Cluster, bk: &str, id: &str, q: &str) -> Answer {
    get(&url(c, bk, &format!("?uploadId={id}{q}"))).unwrap()
}

fn run_gc(c: &Cluster) {
    // A pass that could not list every store is retried (as tests/repair.rs does).
    wait_for(30_000, "a complete gc pass", || {
        let r = request("POST", &format!("{}/_dpyfs/gc", c.url()), &[], None).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        v["stores_not_listed"]
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    });
}

/// Chunk names held by any store.
fn held(dir: &TempDir) -> BTreeSet<String> {
    (1..=3)
        .flat_map(|i| files_under(&dir.path().join(format!("store{i}/chunks"))))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn three_parts_out_of_order_complete_list_and_read_back() {
    let dir = TempDir::new("mp-basic");
    let c = small_parts_cluster(&dir, &[]);
    mkbucket(&c, "mpb");
    let bk = "mpb/dir/big.bin";
    let data = [
        random_bytes(300 * 1024, 1),
        random_bytes(1300 * 1024, 2),
        random_bytes(5000, 3),
    ];
    // rclone's `?uploads=` form.
    // Type, metadata and stored headers given at the start belong to the object made.
    let start_headers = [
        ("Content-Type", "application/x-big"),
        ("Content-Disposition", "attachment"),
        ("x-amz-meta-origin", "test"),
    ];
    let r = request("POST", &url(&c, bk, "?uploads="), &start_headers, Some(b"")).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let id = xml_values(&r.text(), "UploadId").pop().unwrap();
    assert_eq!(xml_values(&r.text(), "Key"), ["dir/big.bin"]);
    let e3 = part(&c, bk, &id, 3, &data[2]);
    let e1 = part(&c, bk, &id, 1, &data[0]);
    let e2 = part(&c, bk, &id, 2, &data[1]);

    // ListParts, whole and in pages.
    let l = list_parts(&c, bk, &id, "");
    assert_eq!(l.status, 200, "{}", l.text());
    assert!(l.text().contains("<ListPartsResult xmlns="));
    assert_eq!(xml_values(&l.text(), "PartNumber"), ["1", "2", "3"]);
    assert_eq!(
        xml_values(&l.text(), "ETag"),
        [e1.as_str(), e2.as_str(), e3.as_str()]
    );
    let sizes: Vec<String> = data.iter().map(|d| d.len().to_string()).collect();
    assert_eq!(xml_values(&l.text(), "Size"), sizes);
    let p1 = list_parts(&c, bk, &id, "&max-parts=2");
    assert_eq!(xml_values(&p1.text(), "PartNumber"), ["1", "2"]);
    assert_eq!(xml_values(&p1.text(), "IsTruncated"), ["true"]);
    assert_eq!(xml_values(&p1.text(), "NextPartNumberMarker"), ["2"]);
    let p2 = list_parts(&c, bk, &id, "&max-parts=2&part-number-marker=2");
    assert_eq!(xml_values(&p2.text(), "PartNumber"), ["3"]);
    assert_eq!(xml_values(&p2.text(), "IsTruncated"), ["false"]);

    // ListMultipartUploads, with a second upload to page through.
    let id2 = create(&c, "mpb/other");
    let u = get(&url(&c, "mpb", "?uploads")).unwrap();
    assert_eq!(u.status, 200, "{}", u.text());
    assert!(u.text().contains("<ListMultipartUploadsResult xmlns="));
    assert_eq!(xml_values(&u.text(), "Key"), ["dir/big.bin", "other"]);
    assert_eq!(
        xml_values(&u.text(), "UploadId"),
        [id.as_str(), id2.as_str()]
    );
    let u1 = get(&url(&c, "mpb", "?uploads&max-uploads=1")).unwrap();
    assert_eq!(xml_values(&u1.text(), "UploadId"), [id.as_str()]);
    assert_eq!(xml_values(&u1.text(), "IsTruncated"), ["true"]);
    let next = format!(
        "?uploads&key-marker={}&upload-id-marker={}",
        xml_values(&u1.text(), "NextKeyMarker")[0],
        xml_values(&u1.text(), "NextUploadIdMarker")[0]
    );
    let u2 = get(&url(&c, "mpb", &next.replace('/', "%2F"))).unwrap();
    assert_eq!(xml_values(&u2.text(), "UploadId"), [id2.as_str()]);
    let up = get(&url(&c, "mpb", "?uploads&prefix=dir/")).unwrap();
    assert_eq!(xml_values(&up.text(), "UploadId"), [id.as_str()]);

    // Complete: the object is the parts in number order, with S3's ETag.
    let r = complete(&c, bk, &id, &[(1, &e1), (2, &e2), (3, &e3)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let want_etag = multipart_etag(&[&data[0], &data[1], &data[2]]);
    assert!(want_etag.ends_with("-3\""));
    assert_eq!(xml_values(&r.text(), "ETag"), [want_etag.as_str()]);
    let whole = data.concat();
    let g = get(&url(&c, bk, "")).unwrap();
    assert_eq!(g.status, 200);
    assert_eq!(sha256_hex(&g.body), sha256_hex(&whole));
    assert_eq!(g.header("etag"), Some(want_etag.as_str()));
    // A range across the part boundary.
    let a = 300 * 1024 - 10;
    let r = request(
        "GET",
        &url(&c, bk, ""),
        &[("range", &format!("bytes={a}-{}", a + 19))],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &whole[a..a + 20]);
    // rclone's HEAD ?versionId=null after an upload; any other version id is invalid.
    let h = request("HEAD", &url(&c, bk, "?versionId=null"), &[], None).unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-type"), Some("application/x-big"));
    assert_eq!(h.header("content-disposition"), Some("attachment"));
    assert_eq!(h.header("x-amz-meta-origin"), Some("test"));
    assert_eq!(h.header("etag"), Some(want_etag.as_str()));
    assert_eq!(
        h.header("content-length"),
        Some(whole.len().to_string().as_str())
    );
    let v = get(&url(&c, bk, "?versionId=3HL4kqtJlcpXroDTDmJ")).unwrap();
    assert_eq!((v.status, code_of(&v)), (400, "InvalidArgument".into()));
    // GET and HEAD ?partNumber=N: the part's bytes, 206, with the part count.
    let mut start = 0;
    for (n, d) in data.iter().enumerate() {
        let q = format!("?partNumber={}", n + 1);
        let pn = get(&url(&c, bk, &q)).unwrap();
        assert_eq!(pn.status, 206, "{}", pn.text());
        assert_eq!(pn.body, *d, "part {}", n + 1);
        assert_eq!(pn.header("x-amz-mp-parts-count"), Some("3"));
        assert_eq!(pn.header("etag"), Some(want_etag.as_str()));
        let range = format!("bytes {start}-{}/{}", start + d.len() - 1, whole.len());
        assert_eq!(pn.header("content-range"), Some(range.as_str()));
        let h = request("HEAD", &url(&c, bk, &q), &[], None).unwrap();
        assert_eq!(h.status, 206);
        let len = d.len().to_string();
        assert_eq!(h.header("content-length"), Some(len.as_str()));
        start += d.len();
    }
    let pn = get(&url(&c, bk, "?partNumber=4")).unwrap();
    assert_eq!((pn.status, code_of(&pn)), (416, "InvalidPartNumber".into()));
    for q in ["?partNumber=0", "?partNumber=10001", "?partNumber=x"] {
        let pn = get(&url(&c, bk, q)).unwrap();
        assert_eq!(
            (pn.status, code_of(&pn)),
            (400, "InvalidArgument".into()),
            "{q}"
        );
    }
    let pn = request(
        "GET",
        &url(&c, bk, "?partNumber=1"),
        &[("range", "bytes=0-1")],
        None,
    )
    .unwrap();
    assert_eq!((pn.status, code_of(&pn)), (400, "InvalidRequest".into()));
    // The upload is gone once completed; the other one stays.
    let l = list_parts(&c, bk, &id, "");
    assert_eq!((l.status, code_of(&l)), (404, "NoSuchUpload".into()));
    let u = get(&url(&c, "mpb", "?uploads")).unwrap();
    assert_eq!(xml_values(&u.text(), "UploadId"), [id2.as_str()]);
    // The completed object is listed with its multipart ETag and size.
    let ls = get(&url(&c, "mpb", "?list-type=2")).unwrap();
    assert_eq!(xml_values(&ls.text(), "Key"), ["dir/big.bin"]);
    assert_eq!(xml_values(&ls.text(), "Size"), [whole.len().to_string()]);
    ok_fsck(&c);
}

/// fsck passes (polled: a store call that timed out marks a store down for a moment, and
/// a repair pass may be moving copies meanwhile; both settle on their own).
fn ok_fsck(c: &Cluster) {
    let mut last = serde_json::Value::Null;
    let settled = (0..60).any(|_| {
        last = get(&format!("{}/_dpyfs/fsck", c.url())).unwrap().json();
        let ok = last["ok"] == true;
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        ok
    });
    assert!(settled, "fsck never passed: {last}");
}

#[test]
fn a_reuploaded_part_replaces_the_old_one() {
    let dir = TempDir::new("mp-replace");
    let c = small_parts_cluster(&dir, &[]);
    mkbucket(&c, "mpb");
    let bk = "mpb/k";
    let id = create(&c, bk);
    let (old, new, last) = (
        random_bytes(150 * 1024, 10),
        random_bytes(160 * 1024, 11),
        random_bytes(10, 12),
    );
    let e_old = part(&c, bk, &id, 1, &old);
    let e_new = part(&c, bk, &id, 1, &new);
    let e2 = part(&c, bk, &id, 2, &last);
    let l = list_parts(&c, bk, &id, "");
    assert_eq!(xml_values(&l.text(), "ETag"), [e_new.as_str(), e2.as_str()]);
    // The replaced part's ETag no longer matches: refused, nothing changes.
    let r = complete(&c, bk, &id, &[(1, &e_old), (2, &e2)]);
    assert_eq!(
        (r.status, code_of(&r)),
        (400, "InvalidPart".into()),
        "{}",
        r.text()
    );
    assert_eq!(get(&url(&c, bk, "")).unwrap().status, 404);
    let r = complete(&c, bk, &id, &[(1, &e_new), (2, &e2)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let g = get(&url(&c, bk, "")).unwrap();
    assert_eq!(g.body, [new.clone(), last.clone()].concat());
    assert_eq!(
        g.header("etag"),
        Some(multipart_etag(&[&new, &last]).as_str())
    );
}

#[test]
fn errors_entity_too_small_invalid_part_order_no_such_upload() {
    let dir = TempDir::new("mp-errors");
    // The default --multipart-min-part (5 MiB).
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "mpb");
    let bk = "mpb/k";
    let id = create(&c, bk);
    let (a, b) = (random_bytes(1000, 20), random_bytes(2000, 21));
    let ea = part(&c, bk, &id, 1, &a);
    let eb = part(&c, bk, &id, 2, &b);
    let unchanged = |c: &Cluster| {
        assert_eq!(
            get(&url(c, bk, "")).unwrap().status,
            404,
            "an object appeared"
        );
        let l = list_parts(c, bk, &id, "");
        assert_eq!(
            xml_values(&l.text(), "PartNumber"),
            ["1", "2"],
            "the upload changed"
        );
    };
    type Case<'a> = (Vec<(u32, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![(1, &ea), (2, &eb)], 400, "EntityTooSmall"),
        (vec![(2, &eb), (1, &ea)], 400, "InvalidPartOrder"),
        (vec![(1, &ea), (1, &ea)], 400, "InvalidPartOrder"),
        (vec![(1, &eb)], 400, "InvalidPart"),
        (vec![(3, &eb)], 400, "InvalidPart"),
        (
            vec![(1, "\"0123456789abcdef0123456789abcdef\"")],
            400,
            "InvalidPart",
        ),
        (vec![], 400, "MalformedXML"),
    ];
    for (parts, status, code) in cases {
        let r = complete(&c, bk, &id, &parts);
        assert_eq!(
            (r.status, code_of(&r).as_str()),
            (status, code),
            "{parts:?}: {}",
            r.text()
        );
        unchanged(&c);
    }
    let post = |q: &str, body: &[u8]| request("POST", &url(&c, bk, q), &[], Some(body)).unwrap();
    let r = post(
        &format!("?uploadId={id}"),
        b"<CompleteMultipartUpload><Part>",
    );
    assert_eq!((r.status, code_of(&r)), (400, "MalformedXML".into()));
    unchanged(&c);
    // Unknown uploads, on every operation; a wrong key counts as unknown.
    let r = complete(&c, bk, "nosuchupload", &[(1, &ea)]);
    assert_eq!((r.status, code_of(&r)), (404, "NoSuchUpload".into()));
    let r = complete(&c, "mpb/other", &id, &[(1, &ea)]);
    assert_eq!((r.status, code_of(&r)), (404, "NoSuchUpload".into()));
    let r = request(
        "PUT",
        &url(&c, bk, "?partNumber=1&uploadId=nope"),
        &[],
        Some(b"x"),
    )
    .unwrap();
    assert_eq!((r.status, code_of(&r)), (404, "NoSuchUpload".into()));
    let r = request("DELETE", &url(&c, bk, "?uploadId=nope"), &[], None).unwrap();
    assert_eq!((r.status, code_of(&r)), (404, "NoSuchUpload".into()));
    let r = list_parts(&c, bk, "nope", "");
    assert_eq!((r.status, code_of(&r)), (404, "NoSuchUpload".into()));
    // Part numbers outside 1..=10000, and a part without an upload id.
    for q in [
        format!("?partNumber=0&uploadId={id}"),
        format!("?partNumber=10001&uploadId={id}"),
        format!("?partNumber=x&uploadId={id}"),
        "?partNumber=1".to_string(),
    ] {
        let r = request("PUT", &url(&c, bk, &q), &[], Some(b"x")).unwrap();
        assert_eq!(
            (r.status, code_of(&r)),
            (400, "InvalidArgument".into()),
            "{q}"
        );
    }
    // An unknown bucket, and an unknown parameter on a multipart route.
    let r = request("POST", &url(&c, "nobucket/k", "?uploads"), &[], Some(b"")).unwrap();
    assert_eq!((r.status, code_of(&r)), (404, "NoSuchBucket".into()));
    let r = get(&url(&c, bk, &format!("?uploadId={id}&tagging"))).unwrap();
    assert_eq!(r.status, 501);
    unchanged(&c);
    // The last part alone may be small.
    let r = complete(&c, bk, &id, &[(2, &eb)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&url(&c, bk, "")).unwrap().body, b);
}

#[test]
fn abort_makes_parts_collectable_while_pending_parts_survive_gc() {
    let dir = TempDir::new("mp-gc");
    let c = small_parts_cluster(&dir, &["--gc-grace", "0"]);
    mkbucket(&c, "mpb");
    let (a, b) = (random_bytes(SMALL, 30), random_bytes(SMALL, 31));
    let (ha, hb) = (sha256_hex(&a), sha256_hex(&b));
    let ida = create(&c, "mpb/a");
    let idb = create(&c, "mpb/b");
    part(&c, "mpb/a", &ida, 1, &a);
    let eb = part(&c, "mpb/b", &idb, 1, &b);
    let h = held(&dir);
    assert!(
        h.contains(&ha) && h.contains(&hb),
        "parts are not on the stores"
    );
    let r = request(
        "DELETE",
        &url(&c, "mpb/a", &format!("?uploadId={ida}")),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let l = list_parts(&c, "mpb/a", &ida, "");
    assert_eq!((l.status, code_of(&l)), (404, "NoSuchUpload".into()));
    run_gc(&c);
    let h = held(&dir);
    assert!(!h.contains(&ha), "the aborted upload's chunk survived gc");
    assert!(h.contains(&hb), "gc collected a pending upload's part");
    // fsck counts the pending upload's part as needing N copies.
    ok_fsck(&c);
    let f = get(&format!("{}/_dpyfs/fsck", c.url())).unwrap().json();
    assert_eq!(f["uploads"], 1, "{f}");
    let r = complete(&c, "mpb/b", &idb, &[(1, &eb)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&url(&c, "mpb/b", "")).unwrap().body, b);
    // Deleting a bucket drops its pending uploads.
    let idc = create(&c, "mpb/c");
    assert_eq!(
        request("DELETE", &url(&c, "mpb/b", ""), &[], None)
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        request("DELETE", &url(&c, "mpb", ""), &[], None)
            .unwrap()
            .status,
        204
    );
    mkbucket(&c, "mpb");
    let l = list_parts(&c, "mpb/c", &idc, "");
    assert_eq!((l.status, code_of(&l)), (404, "NoSuchUpload".into()));
}

#[test]
fn pending_upload_survives_director_kill_and_restart() {
    let dir = TempDir::new("mp-restart");
    let mut c = small_parts_cluster(&dir, &[]);
    mkbucket(&c, "mpb");
    let bk = "mpb/k";
    let data = [
        random_bytes(300 * 1024, 40),
        random_bytes(400 * 1024, 41),
        random_bytes(7, 42),
    ];
    let id = create(&c, bk);
    let e1 = part(&c, bk, &id, 1, &data[0]);
    // Part 1 goes into a snapshot, part 2 only into the journal after it.
    let r = request("POST", &format!("{}/_dpyfs/compact", c.url()), &[], None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let e2 = part(&c, bk, &id, 2, &data[1]);
    c.director.kill();
    c.director.restart();
    c.wait_stores_up(3);
    let u = get(&url(&c, "mpb", "?uploads")).unwrap();
    assert_eq!(xml_values(&u.text(), "UploadId"), [id.as_str()]);
    let l = list_parts(&c, bk, &id, "");
    assert_eq!(xml_values(&l.text(), "ETag"), [e1.as_str(), e2.as_str()]);
    let e3 = part(&c, bk, &id, 3, &data[2]);
    let r = complete(&c, bk, &id, &[(1, &e1), (2, &e2), (3, &e3)]);
    assert_eq!(r.status, 200, "{}", r.text());
    // And the completed object survives another kill.
    c.director.kill();
    c.director.restart();
    c.wait_stores_up(3);
    let g = get(&url(&c, bk, "")).unwrap();
    assert_eq!(sha256_hex(&g.body), sha256_hex(&data.concat()));
    assert_eq!(
        g.header("etag"),
        Some(multipart_etag(&[&data[0], &data[1], &data[2]]).as_str())
    );
    // The part boundaries are journaled with the object: part 2 by number after a restart,
    // and again from a snapshot.
    for round in 0..2 {
        let p = get(&url(&c, bk, "?partNumber=2")).unwrap();
        assert_eq!((p.status, &p.body), (206, &data[1]), "round {round}");
        let r = request("POST", &format!("{}/_dpyfs/compact", c.url()), &[], None).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        c.director.kill();
        c.director.restart();
        c.wait_stores_up(3);
    }
    let u = get(&url(&c, "mpb", "?uploads")).unwrap();
    assert!(xml_values(&u.text(), "UploadId").is_empty());
}

#[test]
fn upload_part_copy_reuses_whole_chunks_and_writes_the_edges() {
    let dir = TempDir::new("mp-copy");
    // Fixed 256 KiB chunks, so which chunks lie wholly in a range is known.
    let c = small_parts_cluster(&dir, &["--chunking", "fixed", "--chunk-size", "256K"]);
    mkbucket(&c, "mpb");
    const K: usize = 256 * 1024;
    let src = random_bytes(12 * K, 50);
    assert_eq!(put(&url(&c, "mpb/src", ""), &src).unwrap().status, 200);
    let src_chunks = chunks_of(&c, "mpb/src");
    assert_eq!(src_chunks.len(), 12);
    let bk = "mpb/dst";
    let id = create(&c, bk);
    let copy = |n: u32, range: Option<&str>, source: &str| {
        let mut h = vec![("x-amz-copy-source", source)];
        if let Some(r) = range {
            h.push(("x-amz-copy-source-range", r));
        }
        request(
            "PUT",
            &url(&c, bk, &format!("?partNumber={n}&uploadId={id}")),
            &h,
            Some(b""),
        )
        .unwrap()
    };
    // Part 2 first (aws-cli copies parts out of order): from inside chunk 6 to inside
    // chunk 11.
    let (a2, b2) = (6 * K + 100, 12 * K - 101);
    let r = copy(2, Some(&format!("bytes={a2}-{b2}")), "/mpb/src");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<CopyPartResult xmlns="));
    let e2 = xml_values(&r.text(), "ETag").pop().unwrap();
    assert_eq!(e2, format!("\"{}\"", md5_hex(&src[a2..=b2])));
    // Part 1: exactly chunks 0..6, all reused.
    let r = copy(
        1,
        Some(&format!("bytes=0-{}", 6 * K + 99)),
        "mpb/src?versionId=null",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e1 = xml_values(&r.text(), "ETag").pop().unwrap();
    // Errors: a range beyond the source, a missing source, a version.
    let r = copy(3, Some(&format!("bytes=0-{}", 12 * K)), "mpb/src");
    assert_eq!((r.status, code_of(&r)), (416, "InvalidRange".into()));
    let r = copy(3, None, "mpb/nothing");
    assert_eq!((r.status, code_of(&r)), (404, "NoSuchKey".into()));
    let r = copy(3, None, "mpb/src?versionId=abc");
    assert_eq!((r.status, code_of(&r)), (400, "InvalidArgument".into()));
    let r = copy(3, Some("bytes=9-2"), "mpb/src");
    assert_eq!((r.status, code_of(&r)), (400, "InvalidArgument".into()));
    // Conditions on the source (s3transfer sends if-match with the ETag it saw).
    let src_etag = format!("\"{}\"", md5_hex(&src));
    let cond = |h: &str, v: &str| {
        request(
            "PUT",
            &url(&c, bk, &format!("?partNumber=3&uploadId={id}")),
            &[("x-amz-copy-source", "mpb/src"), (h, v)],
            Some(b""),
        )
        .unwrap()
    };
    let r = cond(
        "x-amz-copy-source-if-match",
        "\"0123456789abcdef0123456789abcdef\"",
    );
    assert_eq!((r.status, code_of(&r)), (412, "PreconditionFailed".into()));
    let r = cond("x-amz-copy-source-if-none-match", &src_etag);
    assert_eq!((r.status, code_of(&r)), (412, "PreconditionFailed".into()));
    let r = cond(
        "x-amz-copy-source-if-modified-since",
        "Fri, 01 Jan 2100 00:00:00 GMT",
    );
    assert_eq!((r.status, code_of(&r)), (412, "PreconditionFailed".into()));
    let r = cond(
        "x-amz-copy-source-if-unmodified-since",
        "Thu, 01 Jan 1970 00:00:01 GMT",
    );
    assert_eq!((r.status, code_of(&r)), (412, "PreconditionFailed".into()));
    let l = list_parts(&c, bk, &id, "");
    assert_eq!(
        xml_values(&l.text(), "PartNumber"),
        ["1", "2"],
        "a refused copy stored a part"
    );
    // A matching if-match copies (part 3, the whole source; not used in Complete).
    let r = cond("x-amz-copy-source-if-match", &src_etag);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(xml_values(&r.text(), "ETag"), [src_etag.as_str()]);
    let r = complete(&c, bk, &id, &[(1, &e1), (2, &e2)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let g = get(&url(&c, bk, "")).unwrap();
    let want = [&src[..6 * K + 100], &src[a2..=b2]].concat();
    assert_eq!(sha256_hex(&g.body), sha256_hex(&want));
    // Part 1 = chunks 0..6 reused plus a new 100-byte chunk; part 2 = a new edge chunk,
    // chunks 7..11 reused, a new edge chunk.
    let dst = chunks_of(&c, bk);
    assert_eq!(dst.len(), 6 + 1 + 1 + 4 + 1, "{dst:?}");
    assert_eq!(dst[..6], src_chunks[..6]);
    assert_eq!(dst[8..12], src_chunks[7..11]);
    assert_eq!(dst[6], sha256_hex(&src[6 * K..6 * K + 100]));
    assert_eq!(dst[7], sha256_hex(&src[a2..7 * K]));
    assert_eq!(dst[12], sha256_hex(&src[11 * K..=b2]));
    // The copied object survives the source's deletion and a GC pass.
    assert_eq!(
        request("DELETE", &url(&c, "mpb/src", ""), &[], None)
            .unwrap()
            .status,
        204
    );
    run_gc(&c);
    ok_fsck(&c);
    assert_eq!(
        sha256_hex(&get(&url(&c, bk, "")).unwrap().body),
        sha256_hex(&want)
    );
}

/// The object's chunk names, in order.
fn chunks_of(c: &Cluster, bk: &str) -> Vec<String> {
    let v = get(&format!("{}/_dpyfs/object/{bk}", c.url()))
        .unwrap()
        .json();
    v["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hash"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn abandoned_upload_is_aborted_after_max_age() {
    let dir = TempDir::new("mp-expiry");
    let c = small_parts_cluster(&dir, &["--multipart-max-age", "2"]);
    mkbucket(&c, "mpb");
    let id = create(&c, "mpb/old");
    part(&c, "mpb/old", &id, 1, b"abandoned");
    wait_for(30_000, "the abandoned upload to be aborted", || {
        let l = list_parts(&c, "mpb/old", &id, "");
        (l.status == 404).then_some(())
    });
    let u = get(&url(&c, "mpb", "?uploads")).unwrap();
    assert!(xml_values(&u.text(), "UploadId").is_empty(), "{}", u.text());
    // Journaled as an abort, so a restart does not bring it back.
    let journal: String = files_under(&dir.path().join("director/journal"))
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        journal.contains("\"type\":\"upload_abort\"") && journal.contains(&id),
        "{journal}"
    );
}

/// A part whose body does not match its Content-MD5 is refused (400 BadDigest) and not
/// recorded; with the right Content-MD5 it is.
#[test]
fn a_part_with_a_wrong_content_md5_is_refused_and_not_recorded() {
    let dir = TempDir::new("mp-md5");
    let c = small_parts_cluster(&dir, &[]);
    mkbucket(&c, "mpb");
    let bk = "mpb/md5";
    let id = create(&c, bk);
    let data = random_bytes(100_000, 77);
    let b64 = |d: &[u8]| dpyfs::checksum::base64_encode(&Md5::digest(d));
    let u = url(&c, bk, &format!("?partNumber=1&uploadId={id}"));
    let r = request("PUT", &u, &[("Content-MD5", &b64(b"other"))], Some(&data)).unwrap();
    assert_eq!(
        (r.status, code_of(&r).as_str()),
        (400, "BadDigest"),
        "{}",
        r.text()
    );
    assert!(xml_values(&list_parts(&c, bk, &id, "").text(), "PartNumber").is_empty());
    let r = request("PUT", &u, &[("Content-MD5", &b64(&data))], Some(&data)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        xml_values(&list_parts(&c, bk, &id, "").text(), "ETag"),
        [format!("\"{}\"", md5_hex(&data))]
    );
}

/// Issue 16 item 6: CompleteMultipartUpload honours `If-None-Match: *` and `If-Match`
/// like a PUT: a failed condition is 412, the key keeps its object, the upload stays
/// (its parts can still be completed under a condition that holds).
#[test]
fn complete_honours_if_none_match_and_if_match() {
    let dir = TempDir::new("mp-cond");
    let c = small_parts_cluster(&dir, &[]);
    mkbucket(&c, "mpc");
    let bk = "mpc/k";
    let first = random_bytes(1000, 50);
    let r = put(&url(&c, bk, ""), &first).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let first_etag = r.header("etag").unwrap().to_string();
    let data = random_bytes(SMALL, 51);
    let id = create(&c, bk);
    let e1 = part(&c, bk, &id, 1, &data);
    let refused = [
        ("if-none-match", "*"),
        ("if-match", "\"0123456789abcdef0123456789abcdef\""),
    ];
    for h in refused {
        let r = complete_with(&c, bk, &id, &[(1, &e1)], &[h]);
        assert_eq!(
            (r.status, code_of(&r).as_str()),
            (412, "PreconditionFailed"),
            "{h:?}"
        );
        let g = get(&url(&c, bk, "")).unwrap();
        assert_eq!(g.body, first, "{h:?} changed the object");
    }
    // Both headers at once are refused as on PUT (S3 does not define the pair).
    let r = complete_with(
        &c,
        bk,
        &id,
        &[(1, &e1)],
        &[("if-none-match", "*"), ("if-match", "*")],
    );
    assert_eq!((r.status, code_of(&r).as_str()), (501, "NotImplemented"));
    // The upload is still there; with the current ETag the Complete takes effect.
    let r = complete_with(&c, bk, &id, &[(1, &e1)], &[("if-match", &first_etag)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&url(&c, bk, "")).unwrap().body, data);
    // If-None-Match: * on a new key succeeds; If-Match on a missing key is 404.
    let id2 = create(&c, "mpc/new");
    let e = part(&c, "mpc/new", &id2, 1, &data);
    let r = complete_with(&c, "mpc/new2", &id2, &[(1, &e)], &[("if-none-match", "*")]);
    assert_eq!(r.status, 404, "another key's upload: {}", r.text());
    let id3 = create(&c, "mpc/absent");
    let e = part(&c, "mpc/absent", &id3, 1, &data);
    let r = complete_with(&c, "mpc/absent", &id3, &[(1, &e)], &[("if-match", "*")]);
    assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchKey"));
    let r = complete_with(&c, "mpc/new", &id2, &[(1, &e)], &[("if-none-match", "*")]);
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Issue 16 item 6: a client that repeats a Complete after losing the answer gets the
/// same 200 and ETag while the key still holds that object; a different part list, or
/// a key overwritten since, is NoSuchUpload. Survives a restart (the upload id is in
/// the object's record).
#[test]
fn a_repeated_complete_answers_the_same_object() {
    let dir = TempDir::new("mp-retry");
    let mut c = small_parts_cluster(&dir, &[]);
    mkbucket(&c, "mpr");
    let bk = "mpr/k";
    let data = [random_bytes(SMALL, 60), random_bytes(5000, 61)];
    let id = create(&c, bk);
    let e1 = part(&c, bk, &id, 1, &data[0]);
    let e2 = part(&c, bk, &id, 2, &data[1]);
    let parts = [(1, e1.as_str()), (2, e2.as_str())];
    let want = multipart_etag(&[&data[0], &data[1]]);
    let r = complete(&c, bk, &id, &parts);
    assert_eq!(r.status, 200, "{}", r.text());
    for round in 0..2 {
        let seq_before = c.status()["journal"]["last_seq"].clone();
        assert!(seq_before.is_u64());
        let r = complete(&c, bk, &id, &parts);
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        assert_eq!(xml_values(&r.text(), "ETag"), [want.as_str()]);
        // Even under If-None-Match: * (the first Complete made the key exist).
        let r = complete_with(&c, bk, &id, &parts, &[("if-none-match", "*")]);
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        // Another part list of the same upload is not a repeat.
        let r = complete(&c, bk, &id, &parts[..1]);
        assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchUpload"));
        let seq = c.status()["journal"]["last_seq"].clone();
        assert_eq!(
            seq, seq_before,
            "round {round}: a repeat journaled something"
        );
        c.director.kill();
        c.director.restart();
        c.wait_stores_up(3);
    }
    assert_eq!(get(&url(&c, bk, "")).unwrap().body, data.concat());
    // Once the key holds another object, the upload is gone for good.
    assert_eq!(put(&url(&c, bk, ""), b"new").unwrap().status, 200);
    let r = complete(&c, bk, &id, &parts);
    assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchUpload"));
    assert_eq!(get(&url(&c, bk, "")).unwrap().body, b"new");
}

/// Issue 16 item 5, the refusals: CreateMultipartUpload with an unknown checksum algorithm
/// or type, or a type without an algorithm, is 400 and starts nothing; a part without the
/// upload's checksum is 400 InvalidRequest and is not recorded; GetObjectAttributes without
/// or with unknown attributes, or a bad part count, is 400 InvalidArgument.
#[test]
fn checksum_and_attribute_requests_that_are_refused_change_nothing() {
    let dir = TempDir::new("mp-refused");
    let c = small_parts_cluster(&dir, &[]);
    mkbucket(&c, "mpx");
    let bk = "mpx/k";
    for h in [
        vec![("x-amz-checksum-algorithm", "MD5")],
        vec![("x-amz-checksum-type", "COMPOSITE")],
        vec![
            ("x-amz-checksum-algorithm", "SHA256"),
            ("x-amz-checksum-type", "PARTLY"),
        ],
    ] {
        let r = request("POST", &url(&c, bk, "?uploads"), &h, Some(b"")).unwrap();
        assert_eq!(
            (r.status, code_of(&r)),
            (400, "InvalidArgument".into()),
            "{h:?}"
        );
    }
    let u = get(&url(&c, "mpx", "?uploads")).unwrap();
    assert!(xml_values(&u.text(), "UploadId").is_empty(), "{}", u.text());
    let r = request(
        "POST",
        &url(&c, bk, "?uploads"),
        &[("x-amz-checksum-algorithm", "SHA256")],
        Some(b""),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-checksum-algorithm"), Some("SHA256"));
    let id = xml_values(&r.text(), "UploadId").pop().unwrap();
    let q = format!("?partNumber=1&uploadId={id}");
    let r = request("PUT", &url(&c, bk, &q), &[], Some(b"no checksum")).unwrap();
    assert_eq!((r.status, code_of(&r)), (400, "InvalidRequest".into()));
    let l = list_parts(&c, bk, &id, "");
    assert!(
        xml_values(&l.text(), "PartNumber").is_empty(),
        "{}",
        l.text()
    );
    // GetObjectAttributes refusals.
    assert_eq!(put(&url(&c, "mpx/obj", ""), b"x").unwrap().status, 200);
    for h in [
        vec![],
        vec![("x-amz-object-attributes", "ETag,Colour")],
        vec![
            ("x-amz-object-attributes", "ObjectParts"),
            ("x-amz-max-parts", "-1"),
        ],
    ] {
        let r = request("GET", &url(&c, "mpx/obj", "?attributes"), &h, None).unwrap();
        assert_eq!(
            (r.status, code_of(&r)),
            (400, "InvalidArgument".into()),
            "{h:?}"
        );
    }
    let r = request(
        "GET",
        &url(&c, "mpx/obj", "?attributes"),
        &[("x-amz-object-attributes", "ObjectSize")],
        None,
    )
    .unwrap();
    assert_eq!(xml_values(&r.text(), "ObjectSize"), ["1"]);
}

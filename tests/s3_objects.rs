//! S3 object operations beyond plain PUT/GET/DELETE, against the real binaries: CopyObject,
//! DeleteObjects, conditional requests, stored headers, `response-*` overrides and the
//! sub-resources clients probe. Every refusal leaves what is stored as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

fn url(c: &Cluster, path: &str) -> String {
    format!("{}/{path}", c.url())
}

fn mkbucket(c: &Cluster, b: &str) {
    let r = request("PUT", &url(c, b), &[], None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

fn code_of(a: &Answer) -> String {
    xml_values(&a.text(), "Code")
        .into_iter()
        .next()
        .unwrap_or_default()
}

fn status_json(c: &Cluster) -> serde_json::Value {
    c.status()
}

fn chunk_files(dir: &TempDir, stores: usize) -> usize {
    (1..=stores)
        .map(|i| files_under(&dir.path().join(format!("store{i}")).join("chunks")).len())
        .sum()
}

#[test]
fn copy_reuses_chunks_and_keeps_or_replaces_metadata() {
    let dir = TempDir::new("s3-copy");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "src");
    mkbucket(&c, "dst");
    let data = random_bytes(3 << 20, 7);
    let r = request(
        "PUT",
        &url(&c, "src/a%20b.bin"),
        &[
            ("Content-Type", "application/x-test"),
            ("x-amz-meta-colour", "blue"),
            ("Cache-Control", "max-age=60"),
            ("Content-Disposition", "attachment; filename=\"a b.bin\""),
        ],
        Some(&data),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let etag = r.header("etag").unwrap().to_string();
    let files_before = chunk_files(&dir, 3);
    let written_before = status_json(&c)["chunks"]["written"].as_u64().unwrap();

    // COPY (the default): data, type, metadata and headers come along.
    let r = request(
        "PUT",
        &url(&c, "dst/copy"),
        &[("x-amz-copy-source", "/src/a%20b.bin")],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(xml_values(&r.text(), "ETag"), std::slice::from_ref(&etag));
    assert_eq!(xml_values(&r.text(), "LastModified").len(), 1);
    let g = get(&url(&c, "dst/copy")).unwrap();
    assert_eq!(g.body, data);
    assert_eq!(g.header("etag"), Some(etag.as_str()));
    assert_eq!(g.header("content-type"), Some("application/x-test"));
    assert_eq!(g.header("x-amz-meta-colour"), Some("blue"));
    assert_eq!(g.header("cache-control"), Some("max-age=60"));
    // No data chunk was uploaded again: only the copy's manifest is new (one chunk, N
    // copies).
    let written_after = status_json(&c)["chunks"]["written"].as_u64().unwrap();
    assert_eq!(
        written_after,
        written_before + 1,
        "only a manifest is written"
    );
    assert_eq!(chunk_files(&dir, 3), files_before + 2);

    // REPLACE: metadata from the request.
    let r = request(
        "PUT",
        &url(&c, "dst/replaced"),
        &[
            ("x-amz-copy-source", "src/a%20b.bin"),
            ("x-amz-metadata-directive", "REPLACE"),
            ("Content-Type", "text/plain"),
            ("x-amz-meta-shape", "round"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let h = request("HEAD", &url(&c, "dst/replaced"), &[], None).unwrap();
    assert_eq!(h.header("content-type"), Some("text/plain"));
    assert_eq!(h.header("x-amz-meta-shape"), Some("round"));
    assert_eq!(h.header("x-amz-meta-colour"), None);
    assert_eq!(h.header("cache-control"), None);

    // Copying onto itself without REPLACE is refused; with REPLACE it updates metadata.
    let self_copy = [("x-amz-copy-source", "/src/a%20b.bin")];
    let r = request("PUT", &url(&c, "src/a%20b.bin"), &self_copy, None).unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (400, "InvalidRequest"));
    let r = request(
        "PUT",
        &url(&c, "src/a%20b.bin"),
        &[self_copy[0], ("x-amz-metadata-directive", "REPLACE")],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let h = request("HEAD", &url(&c, "src/a%20b.bin"), &[], None).unwrap();
    assert_eq!(h.header("x-amz-meta-colour"), None);
    assert_eq!(get(&url(&c, "src/a%20b.bin")).unwrap().body, data);

    // Failures change nothing.
    for (headers, status, code) in [
        (
            vec![("x-amz-copy-source", "/src/missing")],
            404,
            "NoSuchKey",
        ),
        (
            vec![("x-amz-copy-source", "/nobucket/x")],
            404,
            "NoSuchBucket",
        ),
        (vec![("x-amz-copy-source", "nokey")], 400, "InvalidArgument"),
        (
            vec![
                ("x-amz-copy-source", "/src/a%20b.bin"),
                ("x-amz-metadata-directive", "MERGE"),
            ],
            400,
            "InvalidArgument",
        ),
        (
            vec![
                ("x-amz-copy-source", "/src/a%20b.bin"),
                ("x-amz-copy-source-if-match", "\"nope\""),
            ],
            412,
            "PreconditionFailed",
        ),
        (
            vec![
                ("x-amz-copy-source", "/src/a%20b.bin"),
                ("x-amz-copy-source-if-none-match", etag.as_str()),
            ],
            412,
            "PreconditionFailed",
        ),
        (
            vec![
                ("x-amz-copy-source", "/src/a%20b.bin"),
                ("x-amz-acl", "public-reed"),
            ],
            400,
            "InvalidArgument",
        ),
    ] {
        let r = request("PUT", &url(&c, "dst/copy"), &headers, None).unwrap();
        assert_eq!(
            (r.status, code_of(&r).as_str()),
            (status, code),
            "{headers:?}: {}",
            r.text()
        );
        assert_eq!(get(&url(&c, "dst/copy")).unwrap().body, data);
    }
    // A copy into a missing bucket.
    let r = request(
        "PUT",
        &url(&c, "nobucket/x"),
        &[("x-amz-copy-source", "/src/a%20b.bin")],
        None,
    )
    .unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchBucket"));
}

#[test]
fn conditional_reads_and_writes() {
    let dir = TempDir::new("s3-cond");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "cond");
    let u = url(&c, "cond/k");
    let r = put(&u, b"one").unwrap();
    let etag = r.header("etag").unwrap().to_string();
    let lm = get(&u)
        .unwrap()
        .header("last-modified")
        .unwrap()
        .to_string();
    let long_ago = "Mon, 01 Jan 2001 00:00:00 GMT";
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    for method in ["GET", "HEAD"] {
        for (h, v, status) in [
            ("If-Match", etag.as_str(), 200),
            ("If-Match", "\"other\"", 412),
            ("If-Match", "*", 200),
            ("If-None-Match", etag.as_str(), 304),
            ("If-None-Match", "\"other\"", 200),
            ("If-Modified-Since", lm.as_str(), 304),
            ("If-Modified-Since", long_ago, 200),
            ("If-Unmodified-Since", long_ago, 412),
            ("If-Unmodified-Since", future, 200),
        ] {
            let r = request(method, &u, &[(h, v)], None).unwrap();
            assert_eq!(r.status, status, "{method} {h}: {v}");
            if status == 304 {
                assert_eq!(r.header("etag"), Some(etag.as_str()));
                assert!(r.body.is_empty());
            }
            if status == 412 && method == "GET" {
                assert_eq!(code_of(&r), "PreconditionFailed");
            }
            if status == 200 && method == "GET" {
                assert_eq!(r.body, b"one");
            }
        }
    }

    // If-None-Match: * creates only.
    let create_only = [("If-None-Match", "*")];
    let r = request("PUT", &u, &create_only, Some(b"two")).unwrap();
    assert_eq!(
        (r.status, code_of(&r).as_str()),
        (412, "PreconditionFailed")
    );
    assert_eq!(get(&u).unwrap().body, b"one");
    let fresh = url(&c, "cond/fresh");
    assert_eq!(
        request("PUT", &fresh, &create_only, Some(b"new"))
            .unwrap()
            .status,
        200
    );
    assert_eq!(get(&fresh).unwrap().body, b"new");

    // Many writers race to create one key with If-None-Match: *; exactly one wins.
    let race = url(&c, "cond/race");
    let winners: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let race = race.clone();
                s.spawn(move || {
                    let body = format!("writer {i}");
                    request(
                        "PUT",
                        &race,
                        &[("If-None-Match", "*")],
                        Some(body.as_bytes()),
                    )
                    .unwrap()
                    .status
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .inspect(|s| assert!(*s == 200 || *s == 412, "status {s}"))
            .filter(|s| *s == 200)
            .count()
    });
    assert_eq!(winners, 1);

    // If-Match on a write: only over the version named.
    let r = request("PUT", &u, &[("If-Match", "\"other\"")], Some(b"three")).unwrap();
    assert_eq!(r.status, 412);
    assert_eq!(get(&u).unwrap().body, b"one");
    let r = request("PUT", &u, &[("If-Match", etag.as_str())], Some(b"three")).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(get(&u).unwrap().body, b"three");
    let r = request(
        "PUT",
        &url(&c, "cond/none"),
        &[("If-Match", "*")],
        Some(b"x"),
    )
    .unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchKey"));
    assert_eq!(get(&url(&c, "cond/none")).unwrap().status, 404);
}

#[test]
fn stored_headers_overrides_and_versions() {
    let dir = TempDir::new("s3-headers");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "hdr");
    let u = url(&c, "hdr/page.html.gz");
    let sent = [
        ("Content-Type", "text/html"),
        // Kept byte for byte, the space after the comma too.
        ("Content-Encoding", "deflate, gzip"),
        ("Content-Disposition", "inline"),
        ("Cache-Control", "no-cache"),
        ("Content-Language", "fr"),
        ("Expires", "Thu, 01 Dec 2033 16:00:00 GMT"),
        ("x-amz-meta-Mixed-Case", "value"),
    ];
    assert_eq!(
        request("PUT", &u, &sent, Some(b"zipped")).unwrap().status,
        200
    );
    for method in ["GET", "HEAD"] {
        let r = request(method, &u, &[], None).unwrap();
        for (h, v) in &sent[..6] {
            assert_eq!(r.header(&h.to_ascii_lowercase()), Some(*v), "{method} {h}");
        }
        assert_eq!(r.header("x-amz-meta-mixed-case"), Some("value"));
    }
    // response-* overrides replace the stored values on GET.
    let r = get(&format!(
        "{u}?response-content-type=application%2Foctet-stream&response-content-disposition=attachment%3B%20filename%3D%22x.gz%22&response-cache-control=max-age%3D5"
    ))
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"zipped");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"x.gz\"")
    );
    assert_eq!(r.header("cache-control"), Some("max-age=5"));
    // aws-chunked is framing, never stored as the object's encoding.
    let r = request(
        "PUT",
        &url(&c, "hdr/plain"),
        &[
            ("Content-Encoding", "gzip, aws-chunked"),
            ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("x-amz-decoded-content-length", "1"),
        ],
        Some(b"1\r\nz\r\n0\r\n\r\n"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let g = get(&url(&c, "hdr/plain")).unwrap();
    assert_eq!(g.body, b"z");
    assert_eq!(g.header("content-encoding"), Some("gzip"));
    // The only version of an unversioned object is "null".
    let r = request("HEAD", &format!("{u}?versionId=null"), &[], None).unwrap();
    assert_eq!(r.status, 200);
    let r = get(&format!("{u}?versionId=3HL4kqtJlcpXroDTDmJ")).unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (400, "InvalidArgument"));
    // ListObjects v1 names the owner; v2 only with fetch-owner.
    let v1 = get(&url(&c, "hdr")).unwrap().text();
    assert_eq!(xml_values(&v1, "ID"), ["dpyfs", "dpyfs"]);
    let v2 = get(&url(&c, "hdr?list-type=2")).unwrap().text();
    assert!(xml_values(&v2, "ID").is_empty());
    let v2 = get(&url(&c, "hdr?list-type=2&fetch-owner=true"))
        .unwrap()
        .text();
    assert_eq!(xml_values(&v2, "ID"), ["dpyfs", "dpyfs"]);
}

#[test]
fn delete_objects_in_one_request() {
    let dir = TempDir::new("s3-multidelete");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "many");
    for i in 0..20 {
        put(&url(&c, &format!("many/k{i:02}")), b"x").unwrap();
    }
    let doc = |keys: &[&str], quiet: bool| {
        let mut s = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        );
        if quiet {
            s.push_str("<Quiet>true</Quiet>");
        }
        for k in keys {
            s.push_str(&format!("<Object><Key>{k}</Key></Object>"));
        }
        s + "</Delete>"
    };
    // Verbose: every key reported, deleting a missing key succeeds.
    let body = doc(&["k00", "k01", "absent", "a &amp; b"], false);
    let r = request("POST", &url(&c, "many?delete"), &[], Some(body.as_bytes())).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert_eq!(xml_values(&t, "Key"), ["k00", "k01", "absent", "a & b"]);
    assert!(xml_values(&t, "Code").is_empty());
    assert_eq!(get(&url(&c, "many/k00")).unwrap().status, 404);
    assert_eq!(get(&url(&c, "many/k02")).unwrap().status, 200);
    // Quiet: only errors are listed; a bad key is an error for that key alone.
    let body = doc(&["k02", "k03", "bad&#0;key"], true);
    let r = request("POST", &url(&c, "many?delete="), &[], Some(body.as_bytes())).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert_eq!(xml_values(&t, "Code"), ["InvalidArgument"]);
    assert_eq!(xml_values(&t, "Key").len(), 1);
    assert_eq!(get(&url(&c, "many/k02")).unwrap().status, 404);
    assert_eq!(get(&url(&c, "many/k03")).unwrap().status, 404);
    // Malformed or oversized requests delete nothing.
    let too_many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    for (body, code) in [
        (
            "<Delete><Object><Key>k04</Key></Object>".to_string(),
            "MalformedXML",
        ),
        ("<Other/>".to_string(), "MalformedXML"),
        ("<Delete/>".to_string(), "MalformedXML"),
        (
            "<!DOCTYPE d [<!ENTITY x 'k04'>]><Delete><Object><Key>&x;</Key></Object></Delete>"
                .to_string(),
            "MalformedXML",
        ),
        (doc(&too_many, true), "MalformedXML"),
    ] {
        let r = request("POST", &url(&c, "many?delete"), &[], Some(body.as_bytes())).unwrap();
        assert_eq!((r.status, code_of(&r).as_str()), (400, code), "{body:.80}");
    }
    assert_eq!(get(&url(&c, "many/k04")).unwrap().status, 200);
    let r = request(
        "POST",
        &url(&c, "nobucket?delete"),
        &[],
        Some(doc(&["a"], false).as_bytes()),
    )
    .unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchBucket"));
    // The deletions are journaled: they hold across a director restart. The restart is a
    // real one (a new PID), and the listing after it is the new director's.
    let listed = |c: &Cluster| xml_values(&get(&url(c, "many")).unwrap().text(), "Key");
    let before = listed(&c);
    assert_eq!(before.len(), 16);
    for gone in ["k00", "k01", "k02", "k03"] {
        assert!(
            !before.contains(&gone.to_string()),
            "{gone} listed: {before:?}"
        );
    }
    let mut c = c;
    let old_pid = c.director.pid();
    c.director.restart();
    assert_ne!(c.director.pid(), old_pid, "the director was not restarted");
    // The port answers a moment before the start-up line is in the log: wait for it.
    wait_for(10_000, "the second start in the director's log", || {
        (c.director.log_text().matches("director listening").count() == 2).then_some(())
    });
    assert_eq!(listed(&c), before);
    assert_eq!(get(&url(&c, "many/k00")).unwrap().status, 404);
    assert_eq!(get(&url(&c, "many/k04")).unwrap().status, 200);
}

#[test]
fn sub_resources_clients_probe() {
    let dir = TempDir::new("s3-subres");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "probe");
    put(&url(&c, "probe/obj"), b"data").unwrap();
    // Documents that say "nothing configured".
    for (q, root) in [
        ("versioning", "VersioningConfiguration"),
        ("location", "LocationConstraint"),
        ("logging", "BucketLoggingStatus"),
        ("acl", "AccessControlPolicy"),
        ("requestPayment", "RequestPaymentConfiguration"),
    ] {
        let r = get(&url(&c, &format!("probe?{q}"))).unwrap();
        assert_eq!(r.status, 200, "?{q}: {}", r.text());
        assert!(r.text().contains(&format!("<{root}")), "?{q}: {}", r.text());
    }
    let acl = get(&url(&c, "probe/obj?acl")).unwrap().text();
    assert_eq!(xml_values(&acl, "Permission"), ["FULL_CONTROL"]);
    let tags = get(&url(&c, "probe/obj?tagging")).unwrap();
    assert_eq!(tags.status, 200);
    assert!(tags.text().contains("<TagSet></TagSet>"));
    // S3's own "not configured" answers.
    for (q, code) in [
        ("policy", "NoSuchBucketPolicy"),
        ("cors", "NoSuchCORSConfiguration"),
        ("lifecycle", "NoSuchLifecycleConfiguration"),
        ("tagging", "NoSuchTagSet"),
        (
            "encryption",
            "ServerSideEncryptionConfigurationNotFoundError",
        ),
        ("website", "NoSuchWebsiteConfiguration"),
        ("object-lock", "ObjectLockConfigurationNotFoundError"),
    ] {
        let r = get(&url(&c, &format!("probe?{q}"))).unwrap();
        assert_eq!((r.status, code_of(&r).as_str()), (404, code), "?{q}");
    }
    // Probing a missing bucket says so.
    let r = get(&url(&c, "nobucket?versioning")).unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchBucket"));
    let r = get(&url(&c, "probe/missing?acl")).unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchKey"));
    // Owner-only ACLs are accepted (s3cmd sets one after each upload), and so are ACLs
    // with grants (tests/s3_acl.rs has the rest); unknown canned ACLs are refused.
    let owner_acl = get(&url(&c, "probe/obj?acl")).unwrap().body;
    let r = request("PUT", &url(&c, "probe/obj?acl"), &[], Some(&owner_acl)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(
        "PUT",
        &url(&c, "probe?acl"),
        &[("x-amz-acl", "private")],
        Some(b""),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let public = String::from_utf8(owner_acl.clone()).unwrap().replace(
        "</AccessControlList>",
        "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList>",
    );
    let r = request(
        "PUT",
        &url(&c, "probe/obj?acl"),
        &[],
        Some(public.as_bytes()),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let acl = get(&url(&c, "probe/obj?acl")).unwrap().text();
    assert_eq!(xml_values(&acl, "Permission"), ["FULL_CONTROL", "READ"]);
    let r = request(
        "PUT",
        &url(&c, "probe/obj"),
        &[("x-amz-acl", "public-reed")],
        Some(b"new"),
    )
    .unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (400, "InvalidArgument"));
    assert_eq!(get(&url(&c, "probe/obj")).unwrap().body, b"data");
    // Changing settings dpyfs does not have is refused; removing them succeeds.
    let r = request(
        "PUT",
        &url(&c, "probe?cors"),
        &[],
        Some(b"<CORSConfiguration><CORSRule></CORSRule></CORSConfiguration>"),
    )
    .unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (501, "NotImplemented"));
    let r = request("DELETE", &url(&c, "probe?policy"), &[], None).unwrap();
    assert_eq!(r.status, 204);
    // The bucket and object are untouched by all of the above.
    assert_eq!(get(&url(&c, "probe/obj")).unwrap().body, b"data");
    assert_eq!(
        request("HEAD", &url(&c, "probe"), &[], None)
            .unwrap()
            .status,
        200
    );
}

/// With fewer live stores than copies, copies, multipart parts and completions are refused
/// (503 InsufficientStores) and nothing is journaled; reads of what exists go on.
#[test]
fn copy_and_multipart_writes_need_n_live_stores_and_change_nothing() {
    let dir = TempDir::new("s3-down");
    let mut c = Cluster::start(&dir, 3, 2, &["--multipart-min-part", "1"]);
    mkbucket(&c, "down");
    put(&url(&c, "down/src"), b"source bytes").unwrap();
    let r = request("POST", &url(&c, "down/mp?uploads"), &[], Some(b"")).unwrap();
    let id = xml_values(&r.text(), "UploadId").pop().unwrap();
    let part1 = request(
        "PUT",
        &url(&c, &format!("down/mp?partNumber=1&uploadId={id}")),
        &[],
        Some(b"part one"),
    )
    .unwrap();
    assert_eq!(part1.status, 200);
    c.stores[0].kill();
    c.stores[1].kill();
    c.wait_stores_up(1);
    let seq_before = c.status()["journal"]["last_seq"].clone();
    let refused = [
        request(
            "PUT",
            &url(&c, "down/copy"),
            &[("x-amz-copy-source", "/down/src")],
            None,
        ),
        request(
            "PUT",
            &url(&c, &format!("down/mp?partNumber=2&uploadId={id}")),
            &[],
            Some(b"part two"),
        ),
        request(
            "POST",
            &url(&c, &format!("down/mp?uploadId={id}")),
            &[],
            Some(
                format!(
                    "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
                    part1.header("etag").unwrap()
                )
                .as_bytes(),
            ),
        ),
    ];
    for r in refused {
        let r = r.unwrap();
        assert_eq!(
            (r.status, code_of(&r).as_str()),
            (503, "InsufficientStores"),
            "{}",
            r.text()
        );
    }
    assert_eq!(c.status()["journal"]["last_seq"], seq_before);
    assert_eq!(get(&url(&c, "down/copy")).unwrap().status, 404);
    assert_eq!(get(&url(&c, "down/mp")).unwrap().status, 404);
    let parts = get(&url(&c, &format!("down/mp?uploadId={id}"))).unwrap();
    assert_eq!(xml_values(&parts.text(), "PartNumber"), ["1"]);
}

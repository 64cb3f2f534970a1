//! Signed requests against the real director (issue 4, authentication): curl's
//! `--aws-sigv4`, presigned URLs, every refusal, bucket-limited keys, keys created and
//! deleted while the director runs, and the open (keyless) director's rules.
//!
//! Requests are signed by curl wherever it can; `dpyfs::sigv4` signs only what curl cannot
//! express (a skewed date, presigned URLs), and those functions are checked against the
//! AWS examples in `src/sigv4.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dpyfs::sigv4::{self, Credentials};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `dpyfs admin key create --keys FILE [--buckets ..]`, as a person would run it.
fn key_create(keys: &Path, buckets: Option<&str>) -> Key {
    match buckets {
        Some(b) => key_create_with(keys, &["--buckets", b]),
        None => key_create_with(keys, &[]),
    }
}

fn dpyfs(args: &[&str]) -> Output {
    command("dpyfs").args(args).output().unwrap()
}

/// A cluster of one store and a director with `--keys FILE` (created with one full key).
fn keyed_cluster(dir: &TempDir) -> (Cluster, PathBuf, Key) {
    let keys = dir.path().join("keys.json");
    let admin = key_create(&keys, None);
    let c = Cluster::start(dir, 1, 1, &["--keys", keys.to_str().unwrap()]);
    (c, keys, admin)
}

fn code_of(body: &str) -> String {
    xml_values(body, "Code")
        .first()
        .cloned()
        .unwrap_or_default()
}

fn keys_in(body: &str) -> Vec<String> {
    xml_values(body, "Key")
}

#[test]
fn curl_aws_sigv4_puts_gets_lists_and_deletes() {
    let dir = TempDir::new("auth-curl");
    let (c, _keys, k) = keyed_cluster(&dir);
    let u = c.url();
    assert_eq!(scurl(&k, &["-X", "PUT", &format!("{u}/photos")]).0, 200);
    let f = dir.path().join("f.bin");
    let data = random_bytes(300_000, 7);
    std::fs::write(&f, &data).unwrap();
    // Keys with a space, a plus, a tilde, unicode and folders.
    for key in ["plain.bin", "a%20b+c~d.bin", "dir/%C3%A9t%C3%A9.bin"] {
        let url = format!("{u}/photos/{key}");
        let (st, body) = scurl(&k, &["-T", f.to_str().unwrap(), &url]);
        assert_eq!(st, 200, "PUT {key}: {body}");
        let out = dir.path().join("got.bin");
        let (st, _) = scurl(&k, &["-o", out.to_str().unwrap(), &url]);
        assert_eq!(st, 200, "GET {key}");
        assert_eq!(sha256_hex(&std::fs::read(&out).unwrap()), sha256_hex(&data));
    }
    // Listing, with a query curl sends unsorted and a prefix with a space.
    let (st, body) = scurl(&k, &[&format!("{u}/photos?prefix=a%20b&list-type=2")]);
    assert_eq!(st, 200, "{body}");
    assert_eq!(keys_in(&body), vec!["a b+c~d.bin"]);
    let (st, body) = scurl(&k, &[&format!("{u}/photos?list-type=2")]);
    assert_eq!(st, 200);
    assert_eq!(keys_in(&body).len(), 3);
    let (st, body) = scurl(&k, &[&format!("{u}/")]);
    assert_eq!(
        (st, xml_values(&body, "Name")),
        (200, vec!["photos".into()])
    );
    // The header curl can be told to send is signed as well.
    let (st, _) = scurl(
        &k,
        &[
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "-X",
            "PUT",
            "--data-binary",
            "some text",
            &format!("{u}/photos/data.txt"),
        ],
    );
    assert_eq!(st, 200);
    // Without the header, curl signs the hash of a --data body: read and checked.
    let (st, body) = scurl(
        &k,
        &[
            "-X",
            "PUT",
            "--data-binary",
            "from --data",
            &format!("{u}/photos/data2.txt"),
        ],
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        scurl(&k, &[&format!("{u}/photos/data2.txt")]).1,
        "from --data"
    );
    for key in [
        "data2.txt",
        "plain.bin",
        "a%20b+c~d.bin",
        "dir/%C3%A9t%C3%A9.bin",
        "data.txt",
    ] {
        let (st, _) = scurl(&k, &["-X", "DELETE", &format!("{u}/photos/{key}")]);
        assert_eq!(st, 204, "DELETE {key}");
    }
    let (_, body) = scurl(&k, &[&format!("{u}/photos?list-type=2")]);
    assert!(keys_in(&body).is_empty(), "{body}");
}

#[test]
fn unsigned_and_wrongly_signed_requests_are_refused_and_store_nothing() {
    let dir = TempDir::new("auth-refused");
    let (c, _keys, k) = keyed_cluster(&dir);
    let u = c.url();
    assert_eq!(scurl(&k, &["-X", "PUT", &format!("{u}/photos")]).0, 200);
    let f = dir.path().join("f.txt");
    std::fs::write(&f, b"payload").unwrap();
    let f = f.to_str().unwrap();
    let obj = format!("{u}/photos/x.txt");

    let (st, body) = curl(&["-T", f, &obj]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    let (st, body) = curl(&[&format!("{u}/photos?list-type=2")]);
    assert_eq!((st, code_of(&body).as_str()), (403, "AccessDenied"));
    let (st, body) = curl(&[&format!("{u}/")]);
    assert_eq!((st, code_of(&body).as_str()), (403, "AccessDenied"));
    let (st, _) = curl(&["-X", "PUT", &format!("{u}/newbucket")]);
    assert_eq!(st, 403);

    let wrong = Key {
        id: k.id.clone(),
        secret: "not-the-secret".into(),
    };
    let (st, body) = scurl(&wrong, &["-T", f, &obj]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );
    // A --data body with a wrong secret is read, and still refused.
    let (st, body) = scurl(&wrong, &["-X", "PUT", "--data-binary", "x", &obj]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (403, "SignatureDoesNotMatch")
    );
    let unknown = Key {
        id: "DPYFSNOSUCHKEY000000".into(),
        secret: k.secret.clone(),
    };
    let (st, body) = scurl(&unknown, &["-T", f, &obj]);
    assert_eq!((st, code_of(&body).as_str()), (403, "InvalidAccessKeyId"));

    // A date 20 minutes off: signed by sigv4::sign_headers (checked against AWS's
    // example), since curl always signs with the current time.
    let creds = Credentials {
        access_key: k.id.clone(),
        secret_key: k.secret.clone(),
    };
    let host = format!("127.0.0.1:{}", c.director.port);
    let now = dpyfs::timefmt::now_ms() / 1000;
    for at in [now - 20 * 60, now + 20 * 60] {
        let headers = sigv4::sign_headers(
            &creds,
            "us-east-1",
            "PUT",
            "/photos/x.txt",
            "",
            &host,
            &[],
            &sigv4::sha256_hex(b"payload"),
            at,
        );
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = request("PUT", &obj, &h, Some(b"payload")).unwrap();
        assert_eq!(
            (r.status, code_of(&r.text()).as_str()),
            (403, "RequestTimeTooSkewed"),
            "{}",
            r.text()
        );
    }
    // The same signer with the right time is accepted (the refusal was the date).
    let headers = sigv4::sign_headers(
        &creds,
        "us-east-1",
        "GET",
        "/photos",
        "list-type=2",
        &host,
        &[],
        sigv4::EMPTY_SHA256,
        now,
    );
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = request("GET", &format!("{u}/photos?list-type=2"), &h, None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // Nothing was stored by any refused request.
    assert!(keys_in(&r.text()).is_empty(), "{}", r.text());
    let (_, body) = scurl(&k, &[&format!("{u}/")]);
    assert_eq!(xml_values(&body, "Name"), vec!["photos".to_string()]);
    // A malformed header is a 400.
    let (st, body) = curl(&["-H", "Authorization: AWS4-HMAC-SHA256 Credential=x", &obj]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (400, "AuthorizationHeaderMalformed")
    );
    // The secret never reaches the log.
    assert!(!c.director.log_text().contains(&k.secret));
}

#[test]
fn presigned_get_works_until_it_expires() {
    let dir = TempDir::new("auth-presign");
    let (c, _keys, k) = keyed_cluster(&dir);
    let u = c.url();
    assert_eq!(scurl(&k, &["-X", "PUT", &format!("{u}/photos")]).0, 200);
    let f = dir.path().join("f.txt");
    std::fs::write(&f, b"shared by link").unwrap();
    let (st, _) = scurl(
        &k,
        &["-T", f.to_str().unwrap(), &format!("{u}/photos/a%20b.txt")],
    );
    assert_eq!(st, 200);
    let creds = Credentials {
        access_key: k.id.clone(),
        secret_key: k.secret.clone(),
    };
    let host = format!("127.0.0.1:{}", c.director.port);
    let now = dpyfs::timefmt::now_ms() / 1000;
    let path = "/photos/a%20b.txt";
    let q = sigv4::presign_query(&creds, "eu-west-1", "GET", path, &host, 3600, now);
    let (st, body) = curl(&[&format!("{u}{path}?{q}")]);
    assert_eq!((st, body.as_str()), (200, "shared by link"));
    // Expired: signed two hours ago for one hour.
    let old = sigv4::presign_query(&creds, "eu-west-1", "GET", path, &host, 3600, now - 7200);
    let (st, body) = curl(&[&format!("{u}{path}?{old}")]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    assert!(body.contains("expired"), "{body}");
    // Another object, or another method, with the same query: refused.
    let (st, body) = curl(&[&format!("{u}/photos/other.txt?{q}")]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (403, "SignatureDoesNotMatch")
    );
    let (st, _) = curl(&["-X", "DELETE", &format!("{u}{path}?{q}")]);
    assert_eq!(st, 403);
    // Longer than seven days: malformed.
    let long = q.replace("X-Amz-Expires=3600", "X-Amz-Expires=604801");
    let (st, body) = curl(&[&format!("{u}{path}?{long}")]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (400, "AuthorizationQueryParametersError")
    );
    // The object is still there.
    assert_eq!(scurl(&k, &[&format!("{u}{path}")]).1, "shared by link");
}

#[test]
fn a_bucket_limited_key_touches_only_its_buckets() {
    let dir = TempDir::new("auth-limited");
    let (c, keys, admin) = keyed_cluster(&dir);
    let u = c.url();
    for b in ["photos", "private"] {
        assert_eq!(scurl(&admin, &["-X", "PUT", &format!("{u}/{b}")]).0, 200);
    }
    let lim = key_create(&keys, Some("photos,music"));
    let f = dir.path().join("f.txt");
    std::fs::write(&f, b"mine").unwrap();
    let f = f.to_str().unwrap();
    assert_eq!(scurl(&lim, &["-T", f, &format!("{u}/photos/a.txt")]).0, 200);
    assert_eq!(scurl(&lim, &[&format!("{u}/photos/a.txt")]).1, "mine");
    // Another bucket: refused, nothing stored.
    let (st, body) = scurl(&lim, &["-T", f, &format!("{u}/private/a.txt")]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    let (st, _) = scurl(&lim, &[&format!("{u}/private?list-type=2")]);
    assert_eq!(st, 403);
    let (_, body) = scurl(&admin, &[&format!("{u}/private?list-type=2")]);
    assert!(keys_in(&body).is_empty(), "{body}");
    let (_, body) = scurl(&admin, &[&format!("{u}/private/a.txt")]);
    assert_eq!(code_of(&body), "NoSuchKey");
    // Copying out of another bucket is refused (the source bucket is checked too).
    assert_eq!(
        scurl(&admin, &["-T", f, &format!("{u}/private/secret.txt")]).0,
        200
    );
    let (st, body) = scurl(
        &lim,
        &[
            "-X",
            "PUT",
            "-H",
            "x-amz-copy-source: /private/secret.txt",
            &format!("{u}/photos/stolen.txt"),
        ],
    );
    assert_eq!(
        (st, code_of(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    let (st, _) = scurl(&lim, &[&format!("{u}/photos/stolen.txt")]);
    assert_eq!(st, 404);
    // Creating a bucket outside the list is refused; inside it is fine.
    let (st, body) = scurl(&lim, &["-X", "PUT", &format!("{u}/other")]);
    assert_eq!((st, code_of(&body).as_str()), (403, "AccessDenied"));
    assert_eq!(scurl(&lim, &["-X", "PUT", &format!("{u}/music")]).0, 200);
    // ListBuckets shows only its buckets; the admin key sees all three.
    let (_, body) = scurl(&lim, &[&format!("{u}/")]);
    assert_eq!(xml_values(&body, "Name"), vec!["music", "photos"]);
    let (_, body) = scurl(&admin, &[&format!("{u}/")]);
    assert_eq!(
        xml_values(&body, "Name"),
        vec!["music", "photos", "private"]
    );
    // Cluster routes need a key without a bucket list.
    let (st, _) = scurl(&lim, &["-X", "POST", &format!("{u}/_dpyfs/repair")]);
    assert_eq!(st, 403);
    let (st, _) = scurl(&admin, &["-X", "POST", &format!("{u}/_dpyfs/repair")]);
    assert_eq!(st, 202);
}

#[test]
fn keys_created_and_deleted_take_effect_without_a_restart() {
    let dir = TempDir::new("auth-reload");
    let (c, keys, admin) = keyed_cluster(&dir);
    let u = c.url();
    assert_eq!(scurl(&admin, &["-X", "PUT", &format!("{u}/photos")]).0, 200);
    let pid = c.director.pid();
    let new = key_create_with(&keys, &["--admin"]);
    // Used at once: an unknown key makes the director look at the file again.
    let (st, body) = scurl(&new, &[&format!("{u}/photos?list-type=2")]);
    assert_eq!(st, 200, "{body}");
    let list = dpyfs(&["admin", "key", "list", "--keys", keys.to_str().unwrap()]);
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(text.contains(&new.id) && text.contains(&admin.id), "{text}");
    assert!(!text.contains(&new.secret) && !text.contains(&admin.secret));
    let del = dpyfs(&[
        "admin",
        "key",
        "delete",
        &new.id,
        "--keys",
        keys.to_str().unwrap(),
    ]);
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    // Refused once the director has looked at the file again (at most a second later).
    wait_for(10_000, "the deleted key to be refused", || {
        let (st, body) = scurl(&new, &[&format!("{u}/photos?list-type=2")]);
        (st == 403).then(|| assert_eq!(code_of(&body), "InvalidAccessKeyId"))
    });
    assert_eq!(scurl(&admin, &[&format!("{u}/photos?list-type=2")]).0, 200);
    assert_eq!(c.director.pid(), pid, "the director was not restarted");
    // Deleting a key that does not exist fails.
    let again = dpyfs(&[
        "admin",
        "key",
        "delete",
        &new.id,
        "--keys",
        keys.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
}

#[test]
fn cluster_routes_need_a_signature_but_status_and_metrics_stay_open_on_loopback() {
    let dir = TempDir::new("auth-admin");
    let (c, _keys, admin) = keyed_cluster(&dir);
    let u = c.url();
    assert_eq!(curl(&[&format!("{u}/_dpyfs/status")]).0, 200);
    assert_eq!(curl(&[&format!("{u}/metrics")]).0, 200);
    for (m, path) in [
        ("POST", "/_dpyfs/repair"),
        ("GET", "/_dpyfs/stores"),
        ("POST", "/_dpyfs/gc"),
    ] {
        let (st, body) = curl(&["-X", m, &format!("{u}{path}")]);
        assert_eq!(
            (st, code_of(&body).as_str()),
            (403, "AccessDenied"),
            "{path}"
        );
    }
    // `dpyfs admin` signs with the usual AWS variables.
    let unsigned = dpyfs(&["--url", &u, "admin", "store", "list"]);
    assert!(!unsigned.status.success());
    let signed = command("dpyfs")
        .args(["--url", &u, "admin", "store", "list"])
        .env("AWS_ACCESS_KEY_ID", &admin.id)
        .env("AWS_SECRET_ACCESS_KEY", &admin.secret)
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    assert!(String::from_utf8_lossy(&signed.stdout).contains("s1"));
    // One credentials rule for every tool: the DPYFS_* pair wins over the AWS_* pair, and
    // half a pair counts as unset.
    let admin_with = |env: &[(&str, &str)]| {
        let mut c = command("dpyfs");
        c.args(["--url", &u, "admin", "store", "list"]);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let dpyfs_wins = admin_with(&[
        ("DPYFS_ACCESS_KEY", &admin.id),
        ("DPYFS_SECRET_KEY", &admin.secret),
        ("AWS_ACCESS_KEY_ID", "NOSUCHKEY"),
        ("AWS_SECRET_ACCESS_KEY", "nosecret"),
    ]);
    assert!(
        dpyfs_wins.status.success(),
        "{}",
        String::from_utf8_lossy(&dpyfs_wins.stderr)
    );
    let half_pair = admin_with(&[
        ("DPYFS_ACCESS_KEY", &admin.id),
        ("AWS_ACCESS_KEY_ID", "NOSUCHKEY"),
        ("AWS_SECRET_ACCESS_KEY", "nosecret"),
    ]);
    assert!(!half_pair.status.success());
    assert!(
        String::from_utf8_lossy(&half_pair.stderr).contains("InvalidAccessKeyId"),
        "{}",
        String::from_utf8_lossy(&half_pair.stderr)
    );
}

#[test]
fn an_open_director_serves_signed_and_unsigned_requests() {
    let dir = TempDir::new("auth-open");
    let c = Cluster::start(&dir, 1, 1, &[]);
    let u = c.url();
    assert_eq!(curl(&["-X", "PUT", &format!("{u}/photos")]).0, 200);
    let any = Key {
        id: "ANYKEY".into(),
        secret: "anysecret".into(),
    };
    let f = dir.path().join("f.txt");
    std::fs::write(&f, b"open").unwrap();
    let (st, body) = scurl(&any, &["-T", f.to_str().unwrap(), &format!("{u}/photos/x")]);
    assert_eq!(st, 200, "{body}");
    assert_eq!(curl(&[&format!("{u}/photos/x")]).1, "open");
}

#[test]
fn a_non_loopback_listen_address_needs_keys_or_allow_anonymous() {
    let dir = TempDir::new("auth-listen");
    let port = free_port().to_string();
    let listen = format!("0.0.0.0:{port}");
    let data = dir.path().join("d");
    let out = command("dpyfs-director")
        .args(["--listen", &listen, "--data", data.to_str().unwrap()])
        .args(["--store", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--allow-anonymous"),
        "{err}"
    );
    assert!(!data.exists(), "nothing may be created before the refusal");
    // With --allow-anonymous it starts, and says so.
    let d = Daemon::start(
        "dpyfs-director",
        &[
            "--listen",
            "0.0.0.0:{port}",
            "--data",
            data.to_str().unwrap(),
            "--store",
            "http://127.0.0.1:1",
            "--allow-anonymous",
        ],
        dir.path(),
    );
    let log = d.log_text();
    assert!(
        log.contains("WARN") && log.contains("anyone who can reach"),
        "{log}"
    );
}

/// A signed streaming upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, as the SDKs send over
/// https): every chunk signature is checked; one changed byte is refused and stores nothing.
#[test]
fn signed_streaming_uploads_are_checked_chunk_by_chunk() {
    let dir = TempDir::new("auth-stream");
    let (c, _keys, k) = keyed_cluster(&dir);
    let creds = Credentials {
        access_key: k.id.clone(),
        secret_key: k.secret.clone(),
    };
    let host = format!("127.0.0.1:{}", c.director.port);
    let signed = |method: &str, path: &str, extra: &[(String, String)], payload: &str| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut h = extra.to_vec();
        h.extend(sigv4::sign_headers(
            &creds,
            "us-east-1",
            method,
            path,
            "",
            &host,
            extra,
            payload,
            now,
        ));
        h
    };
    let as_refs = |h: &[(String, String)]| -> Vec<(String, String)> { h.to_vec() };
    let send = |method: &str, path: &str, h: &[(String, String)], body: Option<&[u8]>| {
        let refs: Vec<(&str, &str)> = h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        request(method, &format!("{}{path}", c.url()), &refs, body).unwrap()
    };
    let h = signed("PUT", "/stream", &[], sigv4::EMPTY_SHA256);
    assert_eq!(send("PUT", "/stream", &h, None).status, 200);

    let data = random_bytes(150_000, 42);
    let body_for = |data: &[u8], tamper: bool| {
        let extra = vec![
            ("content-encoding".to_string(), "aws-chunked".to_string()),
            (
                "x-amz-decoded-content-length".to_string(),
                data.len().to_string(),
            ),
        ];
        let h = signed("PUT", "/stream/obj", &extra, sigv4::STREAMING_PAYLOAD);
        let auth = h.iter().find(|(k, _)| k == "authorization").unwrap();
        let seed = auth.1.rsplit("Signature=").next().unwrap().to_string();
        let date = h.iter().find(|(k, _)| k == "x-amz-date").unwrap().1.clone();
        let scope = sigv4::Scope {
            date: date[..8].to_string(),
            region: "us-east-1".into(),
            service: "s3".into(),
        };
        let key = sigv4::signing_key(&k.secret, &scope.date, "us-east-1", "s3");
        let mut prev = seed;
        let mut out = Vec::new();
        let mut pieces: Vec<&[u8]> = data.chunks(65_536).collect();
        pieces.push(&[]);
        for p in pieces {
            let sig = sigv4::chunk_signature(&key, &date, &scope, &prev, &sigv4::sha256_hex(p));
            out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", p.len()).as_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
            prev = sig;
        }
        if tamper {
            // One byte of the second chunk's data.
            let i = out.len() / 2;
            out[i] ^= 1;
        }
        (as_refs(&h), out)
    };
    let (h, body) = body_for(&data, false);
    let r = send("PUT", "/stream/obj", &h, Some(&body));
    assert_eq!(r.status, 200, "{}", r.text());
    let hg = signed("GET", "/stream/obj", &[], sigv4::EMPTY_SHA256);
    let g = send("GET", "/stream/obj", &hg, None);
    assert_eq!(g.status, 200);
    assert_eq!(g.body, data);

    let other = random_bytes(150_000, 43);
    let (h, body) = body_for(&other, true);
    let r = send("PUT", "/stream/obj", &h, Some(&body));
    assert_eq!(
        (r.status, code_of(&r.text()).as_str()),
        (403, "SignatureDoesNotMatch"),
        "{}",
        r.text()
    );
    let g = send(
        "GET",
        "/stream/obj",
        &signed("GET", "/stream/obj", &[], sigv4::EMPTY_SHA256),
        None,
    );
    assert_eq!(g.body, data, "the refused upload replaced the object");
}

/// Signature Version 2 presigned URLs (what boto3's `generate_presigned_url` and
/// `aws s3 presign` make by default): accepted until they expire; altered ones refused.
#[test]
fn version_2_presigned_urls_work_until_they_expire() {
    let dir = TempDir::new("auth-v2");
    let (c, _keys, k) = keyed_cluster(&dir);
    let (st, _) = scurl(&k, &["-X", "PUT", &format!("{}/old", c.url())]);
    assert_eq!(st, 200);
    let (st, _) = scurl(&k, &["-T", "-", &format!("{}/old/k%20v2", c.url())]);
    assert_eq!(st, 200);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let presign = |path: &str, expires: u64| {
        let sts = sigv4::v2_string_to_sign("GET", path, "", &[], &expires.to_string());
        let sig =
            dpyfs::checksum::base64_encode(&sigv4::hmac_sha1(k.secret.as_bytes(), sts.as_bytes()));
        format!(
            "{}{path}?AWSAccessKeyId={}&Expires={expires}&Signature={}",
            c.url(),
            k.id,
            dpyfs::http::percent_encode(&sig, false)
        )
    };
    let (st, body) = curl(&[&presign("/old/k%20v2", now + 300)]);
    assert_eq!(st, 200, "{body}");
    let (st, body) = curl(&[&presign("/old/k%20v2", now - 1)]);
    assert_eq!((st, code_of(&body).as_str()), (403, "AccessDenied"));
    let altered = presign("/old/k%20v2", now + 300).replace("/old/k%20v2", "/old/other");
    let (st, body) = curl(&[&altered]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (403, "SignatureDoesNotMatch")
    );
    let bad_expires = presign("/old/k%20v2", now + 300).replace("Expires=", "Expires=soon");
    let (st, body) = curl(&[&bad_expires]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (400, "AuthorizationQueryParametersError")
    );
    let other_key = presign("/old/k%20v2", now + 300).replace(&k.id, "DPYFSNOSUCHKEY0000");
    let (st, body) = curl(&[&other_key]);
    assert_eq!((st, code_of(&body).as_str()), (403, "InvalidAccessKeyId"));
}

/// Issue 18, item 2: an `x-amz-*` header that the signature does not cover is refused, so a
/// presigned PUT URL (or a captured UNSIGNED-PAYLOAD PUT, replayed) cannot be turned into a
/// copy of another bucket's object by adding `x-amz-copy-source`.
#[test]
fn unsigned_amz_headers_cannot_change_a_signed_request() {
    let dir = TempDir::new("auth-unsigned-hdr");
    let (c, _keys, k) = keyed_cluster(&dir);
    let u = c.url();
    for b in ["photos", "secret"] {
        assert_eq!(scurl(&k, &["-X", "PUT", &format!("{u}/{b}")]).0, 200);
    }
    let f = dir.path().join("doc.txt");
    std::fs::write(&f, b"private words").unwrap();
    assert_eq!(
        scurl(&k, &["-T", f.to_str().unwrap(), &format!("{u}/secret/doc")]).0,
        200
    );
    let creds = Credentials {
        access_key: k.id.clone(),
        secret_key: k.secret.clone(),
    };
    let host = format!("127.0.0.1:{}", c.director.port);
    let now = dpyfs::timefmt::now_ms() / 1000;
    let path = "/photos/shared.txt";
    let q = sigv4::presign_query(&creds, "us-east-1", "PUT", path, &host, 3600, now);
    let url = format!("{u}{path}?{q}");

    // The presigned PUT with a copy source added: refused, and nothing is copied.
    let (st, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        "x-amz-copy-source: /secret/doc",
        "--data-binary",
        "",
        &url,
    ]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    assert!(body.contains("x-amz-copy-source"), "{body}");
    assert_eq!(scurl(&k, &[&format!("{u}{path}")]).0, 404);
    // Metadata the signer did not choose is refused the same way.
    let (st, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        "x-amz-meta-owner: mallory",
        "--data-binary",
        "mine",
        &url,
    ]);
    assert_eq!(
        (st, code_of(&body).as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    // The URL as it was signed still works.
    let (st, body) = curl(&["-X", "PUT", "--data-binary", "mine", &url]);
    assert_eq!(st, 200, "{body}");

    // A header-signed UNSIGNED-PAYLOAD PUT, replayed with a copy source added.
    let target = "/photos/replayed.txt";
    let signed = sigv4::sign_headers(
        &creds,
        "us-east-1",
        "PUT",
        target,
        "",
        &host,
        &[],
        sigv4::UNSIGNED_PAYLOAD,
        now,
    );
    let mut headers: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let honest = request("PUT", &format!("{u}{target}"), &headers, Some(b"as signed")).unwrap();
    assert_eq!(honest.status, 200, "{}", honest.text());
    headers.push(("x-amz-copy-source", "/secret/doc"));
    let replay = request("PUT", &format!("{u}{target}"), &headers, Some(b"")).unwrap();
    assert_eq!(replay.status, 403, "{}", replay.text());
    assert_eq!(code_of(&replay.text()), "AccessDenied");
    let (st, body) = scurl(&k, &[&format!("{u}{target}")]);
    assert_eq!((st, body.as_str()), (200, "as signed"));
}

/// Issue 16 item 6: a signed upload that will be refused (a wrong secret, a bucket the
/// key may not use, a bucket that does not exist, a failed `If-None-Match`) is answered
/// before the body is invited: no `100 Continue`, so the client sends no byte of it. The
/// accepted upload is invited. (A request signed over its body's hash without saying so
/// in `x-amz-content-sha256` must be read to be checked: see docs/S3.md.)
#[test]
fn refused_signed_uploads_do_not_invite_the_body() {
    let dir = TempDir::new("auth-expect");
    let (c, keys, k) = keyed_cluster(&dir);
    let other = key_create(&keys, Some("elsewhere"));
    let u = c.url();
    assert_eq!(scurl(&k, &["-X", "PUT", &format!("{u}/mine")]).0, 200);
    let f = dir.path().join("big.bin");
    // Over 1 MiB: every curl version sends `Expect: 100-continue` for it.
    std::fs::write(&f, random_bytes(2 << 20, 9)).unwrap();
    let f = f.to_str().unwrap();
    // The first key's own upload first, then each refused one.
    let wrong = Key {
        id: k.id.clone(),
        secret: "0".repeat(40),
    };
    let cases: [(&Key, &str, &[&str], u16, &str); 5] = [
        (&k, "mine/ok", &[], 200, ""),
        (&wrong, "mine/x", &[], 403, "SignatureDoesNotMatch"),
        (&other, "mine/x", &[], 403, "AccessDenied"),
        (&k, "nobucket/x", &[], 404, "NoSuchBucket"),
        (
            &k,
            "mine/ok",
            &["-H", "If-None-Match: *"],
            412,
            "PreconditionFailed",
        ),
    ];
    for (key, path, extra, status, code) in cases {
        let user = format!("{}:{}", key.id, key.secret);
        let mut args = vec![
            "-sv",
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            &user,
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "-T",
            f,
        ];
        args.extend_from_slice(extra);
        let url = format!("{u}/{path}");
        args.push(&url);
        let out = Command::new("curl")
            .args(&args)
            .output()
            .expect("curl is needed for this test: apt-get install curl");
        let trace = String::from_utf8_lossy(&out.stderr);
        assert!(trace.contains("> Expect: 100-continue"), "{trace}");
        assert!(
            trace.contains(&format!("< HTTP/1.1 {status}")),
            "{path}: {trace}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(code),
            "{path}"
        );
        let invited = trace.contains("< HTTP/1.1 100 Continue");
        assert_eq!(invited, status == 200, "{path} {status}: {trace}");
    }
}

/// Issue 16 item 2: a bucket belongs to the key that created it. Another key gets
/// AccessDenied on it (objects, listings, copies from it) and 409 BucketAlreadyExists when
/// it tries to create it; ListBuckets shows each key its own; an admin key (the first key
/// of a file, or `--admin`) sees everything, including the buckets from before owners.
/// Owners survive a snapshot and a kill -9.
#[test]
fn buckets_belong_to_the_key_that_made_them() {
    let dir = TempDir::new("auth-owner");
    let (mut c, keys, admin) = keyed_cluster(&dir);
    let u = c.url();
    assert_eq!(scurl(&admin, &["-X", "PUT", &format!("{u}/shared")]).0, 200);
    let alice = key_create(&keys, None);
    let bob = key_create(&keys, None);
    let list = dpyfs(&["admin", "key", "list", "--keys", keys.to_str().unwrap()]);
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.contains("(all, admin)") && text.contains("(its own)"),
        "{text}"
    );
    assert_eq!(scurl(&alice, &["-X", "PUT", &format!("{u}/alice")]).0, 200);
    assert_eq!(scurl(&bob, &["-X", "PUT", &format!("{u}/bob")]).0, 200);
    let f = dir.path().join("f");
    std::fs::write(&f, b"alice's").unwrap();
    let (st, _) = scurl(
        &alice,
        &["-T", f.to_str().unwrap(), &format!("{u}/alice/k")],
    );
    assert_eq!(st, 200);
    for round in 0..2 {
        let names = |k: &Key| xml_values(&scurl(k, &[&format!("{u}/")]).1, "Name");
        assert_eq!(names(&alice), ["alice"], "round {round}");
        assert_eq!(names(&bob), ["bob"], "round {round}");
        assert_eq!(names(&admin), ["alice", "bob", "shared"], "round {round}");
        // Bob may not read, list, write or copy from alice's bucket, nor re-create it.
        for args in [
            vec![format!("{u}/alice/k")],
            vec![format!("{u}/alice?list-type=2")],
            vec![
                "-T".into(),
                f.to_str().unwrap().into(),
                format!("{u}/alice/k"),
            ],
            vec!["-X".into(), "DELETE".into(), format!("{u}/alice/k")],
            vec![
                "-X".into(),
                "PUT".into(),
                "-H".into(),
                "x-amz-copy-source: alice/k".into(),
                format!("{u}/bob/stolen"),
            ],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (st, body) = scurl(&bob, &args);
            assert_eq!(
                (st, code_of(&body).as_str()),
                (403, "AccessDenied"),
                "{args:?}"
            );
        }
        let (st, body) = scurl(&bob, &["-X", "PUT", &format!("{u}/alice")]);
        assert_eq!((st, code_of(&body).as_str()), (409, "BucketAlreadyExists"));
        // Alice re-creating her own is 200; she may not touch the admin's bucket.
        assert_eq!(scurl(&alice, &["-X", "PUT", &format!("{u}/alice")]).0, 200);
        let (st, body) = scurl(&alice, &[&format!("{u}/shared?list-type=2")]);
        assert_eq!((st, code_of(&body).as_str()), (403, "AccessDenied"));
        // Neither may use the cluster routes; the admin may, and reads alice's object.
        let (st, _) = scurl(&alice, &["-X", "POST", &format!("{u}/_dpyfs/repair")]);
        assert_eq!(st, 403);
        assert_eq!(
            scurl(&admin, &[&format!("{u}/alice/k")]),
            (200, "alice's".into())
        );
        assert_eq!(scurl(&bob, &[&format!("{u}/bob/stolen")]).0, 404);
        let r = scurl(&admin, &["-X", "POST", &format!("{u}/_dpyfs/compact")]);
        assert_eq!(r.0, 200, "{}", r.1);
        c.director.kill();
        c.director.restart();
        c.wait_stores_up(1);
    }
    // A key made with --admin sees every bucket.
    let second = key_create_with(&keys, &["--admin"]);
    assert_eq!(scurl(&second, &[&format!("{u}/alice/k")]).0, 200);
    let bad = dpyfs(&[
        "admin",
        "key",
        "create",
        "--admin",
        "--buckets",
        "x1x",
        "--keys",
        keys.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
}

//! POST Object (issue 16 item 4): browser form uploads with a SigV4 POST policy, against
//! a director with keys. Policies are made by boto3's `generate_presigned_post`
//! (tests/clients/post_policy.py) and posted by curl `-F`, as a page's form would; every
//! refusal is checked to store nothing. A real headless Chromium submits the form of the
//! director's upload page (`/_dpyfs/upload?bucket=B`), and the page itself is served only
//! to a key that owns the bucket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{chromium, run_chromium};
use common::*;
use serde_json::{Value, json};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// A director with keys (one store), and two ordinary keys: `owner` creates the buckets,
/// `other` owns none of them.
struct Env {
    // The cluster first: it is stopped before its directory is checked and removed.
    c: Cluster,
    dir: TempDir,
    owner: Key,
    other: Key,
}

fn start(tag: &str, buckets: &[&str]) -> Env {
    let dir = TempDir::new(tag);
    let keys = dir.path().join("keys.json");
    let owner = key_create_with(&keys, &[]);
    let other = key_create_with(&keys, &[]);
    let c = Cluster::start(&dir, 1, 1, &["--keys", keys.to_str().unwrap()]);
    let env = Env {
        c,
        dir,
        owner,
        other,
    };
    for b in buckets {
        let (status, body) = env.scurl(&env.owner, &["-X", "PUT", &env.url(b)]);
        assert_eq!(status, 200, "create {b}: {body}");
    }
    env
}

/// What curl saw of an answer.
struct Posted {
    status: u16,
    headers: String,
    body: String,
}

impl Posted {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn code(&self) -> String {
        xml_values(&self.body, "Code")
            .first()
            .cloned()
            .unwrap_or_default()
    }

    fn message(&self) -> String {
        xml_values(&self.body, "Message")
            .first()
            .cloned()
            .unwrap_or_default()
    }
}

/// curl with `args`; fails the test if curl itself fails.
fn curl(args: &[&str]) -> Posted {
    let tmp = std::env::temp_dir().join(format!(
        "dpyfs-s3-post-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let (hdr, body) = (tmp.with_extension("h"), tmp.with_extension("b"));
    let out = Command::new("curl")
        .args([
            "-sS",
            "-D",
            hdr.to_str().unwrap(),
            "-o",
            body.to_str().unwrap(),
        ])
        .args(["-w", "%{http_code}"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl is needed for this test: apt-get install curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = Posted {
        status: String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
        headers: fs::read_to_string(&hdr).unwrap_or_default(),
        body: String::from_utf8_lossy(&fs::read(&body).unwrap_or_default()).into_owned(),
    };
    let _ = fs::remove_file(hdr);
    let _ = fs::remove_file(body);
    p
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.c.url())
    }

    /// curl signing as `key` (`--aws-sigv4`, as the README shows); (status, body).
    fn scurl(&self, key: &Key, args: &[&str]) -> (u16, String) {
        let user = format!("{}:{}", key.id, key.secret);
        let mut all = vec!["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", &user];
        all.extend_from_slice(args);
        let p = curl(&all);
        (p.status, p.body)
    }

    /// An object's bytes as `owner` reads them (None when it is not there).
    fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--fail",
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
                "--user",
            ])
            .arg(format!("{}:{}", self.owner.id, self.owner.secret))
            .arg(self.url(&format!("{bucket}/{}", key.replace(' ', "%20"))))
            .output()
            .unwrap();
        out.status.success().then_some(out.stdout)
    }

    /// The keys in `bucket`, as `owner` lists them.
    fn keys(&self, bucket: &str) -> Vec<String> {
        let (status, body) =
            self.scurl(&self.owner, &[&self.url(&format!("{bucket}?list-type=2"))]);
        assert_eq!(status, 200, "{body}");
        xml_values(&body, "Key")
    }

    /// boto3's presigned POST for `bucket`/`key`, signed by `signer`: (url, fields).
    fn policy(
        &self,
        signer: &Key,
        bucket: &str,
        key: &str,
        expires_secs: i64,
        fields: Value,
        conditions: Value,
    ) -> (String, Vec<(String, String)>) {
        let python = s3_venv().join("bin/python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/post_policy.py");
        let out = Command::new(python)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("AWS_ACCESS_KEY_ID", &signer.id)
            .env("AWS_SECRET_ACCESS_KEY", &signer.secret)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .arg(script)
            .args([&self.c.url(), bucket, key, &expires_secs.to_string()])
            .args([fields.to_string(), conditions.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "post_policy.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let fields = v["fields"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        (v["url"].as_str().unwrap().to_string(), fields)
    }
}

/// POSTs a form: `fields` in order, then the file `data` named `filename`, as curl `-F`.
fn post(
    dir: &TempDir,
    url: &str,
    fields: &[(String, String)],
    data: &[u8],
    filename: &str,
) -> Posted {
    let file = dir.path().join("upload.bin");
    fs::write(&file, data).unwrap();
    let mut args: Vec<String> = Vec::new();
    for (k, v) in fields {
        args.push("--form-string".into());
        args.push(format!("{k}={v}"));
    }
    args.push("-F".into());
    args.push(format!("file=@{};filename={filename}", file.display()));
    args.push(url.to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&refs)
}

fn with(fields: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut f = fields.to_vec();
    for (k, v) in extra {
        match f.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => f.push((k.to_string(), v.to_string())),
        }
    }
    f
}

#[test]
fn boto3_presigned_posts_store_and_answer_as_s3() {
    let env = start("s3-post-ok", &["forms", "history"]);
    let data = random_bytes(300_000, 16);
    // 201: the PostResponse document, `${filename}` replaced, metadata and type stored.
    let (url, fields) = env.policy(
        &env.owner,
        "forms",
        "up/${filename}",
        600,
        json!({"success_action_status": "201", "Content-Type": "image/png", "x-amz-meta-who": "form"}),
        json!([
            {"success_action_status": "201"},
            ["starts-with", "$Content-Type", "image/"],
            ["eq", "$x-amz-meta-who", "form"],
            ["content-length-range", 1, 1_000_000],
        ]),
    );
    assert_eq!(url, env.url("forms"));
    let p = post(&env.dir, &url, &fields, &data, "photo.png");
    assert_eq!(p.status, 201, "{}", p.body);
    assert_eq!(xml_values(&p.body, "Bucket"), ["forms"]);
    assert_eq!(xml_values(&p.body, "Key"), ["up/photo.png"]);
    let etag = xml_values(&p.body, "ETag")[0].clone();
    assert_eq!(p.header("etag").as_deref(), Some(etag.as_str()));
    assert!(xml_values(&p.body, "Location")[0].ends_with("/forms/up/photo.png"));
    assert_eq!(env.object("forms", "up/photo.png").unwrap(), data);
    let head = curl(&[
        "-I",
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        &format!("{}:{}", env.owner.id, env.owner.secret),
        &env.url("forms/up/photo.png"),
    ]);
    assert_eq!(head.header("content-type").as_deref(), Some("image/png"));
    assert_eq!(head.header("x-amz-meta-who").as_deref(), Some("form"));

    // success_action_redirect: 303 to the page with bucket, key and ETag.
    let (url, fields) = env.policy(
        &env.owner,
        "forms",
        "redirected",
        600,
        json!({"success_action_redirect": "http://127.0.0.1:9/done?x=1"}),
        json!([{"success_action_redirect": "http://127.0.0.1:9/done?x=1"}]),
    );
    let p = post(&env.dir, &url, &fields, b"small", "a.txt");
    assert_eq!(p.status, 303, "{}", p.body);
    let loc = p.header("location").unwrap();
    assert!(
        loc.starts_with("http://127.0.0.1:9/done?x=1&bucket=forms&key=redirected&etag=%22"),
        "{loc}"
    );
    assert_eq!(env.object("forms", "redirected").unwrap(), b"small");

    // No status asked: 204, as S3. An empty file is a valid upload.
    let (url, fields) = env.policy(&env.owner, "forms", "empty", 600, json!({}), json!([]));
    let p = post(&env.dir, &url, &fields, b"", "e");
    assert_eq!(p.status, 204, "{}", p.body);
    assert_eq!(env.object("forms", "empty").unwrap(), b"");

    // An `acl` field the policy covers is the object's ACL, as `x-amz-acl` on a PUT:
    // a public-read upload is readable by plain curl, a private neighbour is not.
    let (url, fields) = env.policy(
        &env.owner,
        "forms",
        "shared",
        600,
        json!({"acl": "public-read"}),
        json!([{"acl": "public-read"}]),
    );
    let p = post(&env.dir, &url, &fields, b"for all", "s");
    assert_eq!(p.status, 204, "{}", p.body);
    let open = curl(&[&env.url("forms/shared")]);
    assert_eq!((open.status, open.body.as_str()), (200, "for all"));
    let closed = curl(&[&env.url("forms/empty")]);
    assert_eq!(
        (closed.status, closed.code()),
        (403, "AccessDenied".to_string())
    );

    // A versioned bucket: the upload is a new version, named in x-amz-version-id.
    let conf = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let (status, body) = env.scurl(
        &env.owner,
        &["-X", "PUT", "--data", conf, &env.url("history?versioning")],
    );
    assert_eq!(status, 200, "{body}");
    let mut versions = Vec::new();
    for text in [&b"one"[..], b"two"] {
        let (url, fields) = env.policy(&env.owner, "history", "k", 600, json!({}), json!([]));
        let p = post(&env.dir, &url, &fields, text, "k");
        assert_eq!(p.status, 204, "{}", p.body);
        let v = p.header("x-amz-version-id").expect("no x-amz-version-id");
        assert_ne!(v, "null");
        versions.push(v);
    }
    assert_ne!(versions[0], versions[1]);
    assert_eq!(env.object("history", "k").unwrap(), b"two");
    let (status, body) = env.scurl(
        &env.owner,
        &[&env.url(&format!("history/k?versionId={}", versions[0]))],
    );
    assert_eq!((status, body.as_str()), (200, "one"));
}

#[test]
fn refused_posts_answer_s3_codes_and_store_nothing() {
    let env = start("s3-post-refused", &["forms", "other"]);
    let data = random_bytes(300_000, 17);
    let conditions = json!([
        ["starts-with", "$key", "up/"],
        ["content-length-range", 1, 100_000]
    ]);
    let (url, fields) = env.policy(
        &env.owner,
        "forms",
        "up/${filename}",
        600,
        json!({}),
        conditions.clone(),
    );
    let check = |what: &str, p: Posted, status: u16, code: &str, message: &str| {
        assert_eq!(
            (p.status, p.code().as_str()),
            (status, code),
            "{what}: {}",
            p.body
        );
        assert!(p.message().contains(message), "{what}: {}", p.body);
    };
    check(
        "too large",
        post(&env.dir, &url, &fields, &data, "big.bin"),
        400,
        "EntityTooLarge",
        "exceeds the maximum allowed size",
    );
    check(
        "too small",
        post(&env.dir, &url, &fields, b"", "none.bin"),
        400,
        "EntityTooSmall",
        "smaller than the minimum",
    );
    check(
        "starts-with mismatch",
        post(
            &env.dir,
            &url,
            &with(&fields, &[("key", "down/x")]),
            b"x",
            "x",
        ),
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\", \"up/\"]",
    );
    check(
        "extra field",
        post(
            &env.dir,
            &url,
            &with(&fields, &[("x-amz-meta-sneaky", "1")]),
            b"x",
            "x",
        ),
        403,
        "AccessDenied",
        "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky",
    );
    let mut sig = with(&fields, &[]);
    let s = sig
        .iter_mut()
        .find(|(k, _)| k == "x-amz-signature")
        .unwrap();
    let flipped = if s.1.ends_with('0') { '1' } else { '0' };
    s.1 = format!("{}{flipped}", &s.1[..s.1.len() - 1]);
    check(
        "wrong signature",
        post(&env.dir, &url, &sig, b"x", "x"),
        403,
        "SignatureDoesNotMatch",
        "signature",
    );
    check(
        "wrong bucket",
        post(&env.dir, &env.url("other"), &fields, b"x", "x"),
        403,
        "AccessDenied",
        "Policy Condition failed: [\"eq\", \"$bucket\", \"forms\"]",
    );
    let (url_old, old) = env.policy(
        &env.owner,
        "forms",
        "up/${filename}",
        -60,
        json!({}),
        json!([]),
    );
    check(
        "expired",
        post(&env.dir, &url_old, &old, b"x", "x"),
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    );
    let stranger = Key {
        id: "DPYFSNOSUCHKEY000000".into(),
        secret: "whatever".into(),
    };
    let (_, unknown) = env.policy(&stranger, "forms", "up/x", 600, json!({}), json!([]));
    check(
        "unknown key",
        post(&env.dir, &url, &unknown, b"x", "x"),
        403,
        "InvalidAccessKeyId",
        "DPYFSNOSUCHKEY000000",
    );
    let (_, theirs) = env.policy(&env.other, "forms", "up/x", 600, json!({}), json!([]));
    check(
        "a key that does not own the bucket",
        post(&env.dir, &url, &theirs, b"x", "x"),
        403,
        "AccessDenied",
        "may not touch the bucket 'forms'",
    );
    check(
        "no policy",
        post(&env.dir, &url, &[("key".into(), "up/x".into())], b"x", "x"),
        403,
        "AccessDenied",
        "signed",
    );
    let pad = "p".repeat(70 * 1024);
    check(
        "fields too large",
        post(
            &env.dir,
            &url,
            &with(&fields, &[("x-ignore-pad", &pad)]),
            b"x",
            "x",
        ),
        400,
        "MaxPostPreDataLengthExceeded",
        "too large",
    );
    check(
        "a public-read acl",
        post(
            &env.dir,
            &url,
            &with(&fields, &[("acl", "public-read")]),
            b"x",
            "x",
        ),
        403,
        "AccessDenied",
        "Extra input fields: acl",
    );
    let (url_meta, meta) = env.policy(
        &env.owner,
        "forms",
        "up/m",
        600,
        json!({"x-amz-meta-name": "café"}),
        json!([["starts-with", "$x-amz-meta-name", ""]]),
    );
    check(
        "a non-ASCII metadata value",
        post(&env.dir, &url_meta, &meta, b"x", "x"),
        400,
        "InvalidArgument",
        "printable ASCII",
    );
    let without_key: Vec<(String, String)> =
        fields.iter().filter(|(k, _)| k != "key").cloned().collect();
    check(
        "no key field",
        post(&env.dir, &url, &without_key, b"x", "x"),
        400,
        "InvalidArgument",
        "must contain a field named 'key'",
    );
    let mut no_file: Vec<String> = Vec::new();
    for (k, v) in &fields {
        no_file.push("--form-string".into());
        no_file.push(format!("{k}={v}"));
    }
    no_file.push(url.clone());
    let refs: Vec<&str> = no_file.iter().map(String::as_str).collect();
    check(
        "no file",
        curl(&refs),
        400,
        "InvalidArgument",
        "exactly one file",
    );
    check(
        "not form-data",
        curl(&[
            "-H",
            "Content-Type: multipart/form-data",
            "--data-binary",
            "x",
            &url,
        ]),
        400,
        "MalformedPOSTRequest",
        "no boundary",
    );
    // A body cut before the file's closing boundary is not stored as a shorter file.
    let port: u16 = env.c.url().rsplit(':').next().unwrap().parse().unwrap();
    let mut body = String::new();
    for (k, v) in &fields {
        body.push_str(&format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut\"\r\n\r\nhalf of it");
    let request = format!(
        "POST /forms HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = raw(port, request.as_bytes(), std::time::Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("IncompleteBody"), "{answer}");
    assert!(env.keys("forms").is_empty(), "{:?}", env.keys("forms"));
    assert!(env.keys("other").is_empty(), "{:?}", env.keys("other"));
}

/// The upload page, fetched as `key` (None: unsigned).
fn upload_page(env: &Env, key: Option<&Key>, bucket: &str) -> (u16, String) {
    let url = env.url(&format!("_dpyfs/upload?bucket={bucket}"));
    match key {
        Some(k) => env.scurl(k, &[&url]),
        None => {
            let p = curl(&[&url]);
            (p.status, p.body)
        }
    }
}

#[test]
fn the_upload_page_is_for_the_bucket_owner_and_holds_no_secret() {
    let env = start("s3-post-page", &["forms"]);
    let (status, page) = upload_page(&env, Some(&env.owner), "forms");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    assert!(
        page.contains(&format!("action=\"{}\"", env.url("forms"))),
        "{page}"
    );
    assert!(page.contains("name=\"x-amz-signature\""), "{page}");
    assert!(page.contains(&env.owner.id), "{page}");
    assert!(
        !page.contains(&env.owner.secret),
        "the secret key is in the page"
    );
    for (who, key) in [("another key", Some(&env.other)), ("unsigned", None)] {
        let (status, body) = upload_page(&env, key, "forms");
        assert_eq!(status, 403, "{who}: {body}");
        assert!(body.contains("AccessDenied"), "{who}: {body}");
    }
    // Without ?bucket=: the buckets the key may write, as links (none for `other`).
    let (status, body) = env.scurl(&env.owner, &[&env.url("_dpyfs/upload")]);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<a href=\"?bucket=forms\">forms</a>"),
        "{body}"
    );
    let (status, body) = env.scurl(&env.other, &[&env.url("_dpyfs/upload")]);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("forms"), "{body}");
    let (status, body) = upload_page(&env, Some(&env.owner), "nosuch");
    assert_eq!(status, 404, "{body}");
    // The status page (open to loopback) leads to it and signs nothing itself.
    let p = curl(&[&env.url("_dpyfs/")]);
    assert_eq!(p.status, 200);
    assert!(p.body.contains("href=\"/_dpyfs/upload\""), "{}", p.body);
    assert!(!p.body.contains("x-amz-signature"), "{}", p.body);
}

#[test]
fn headless_chromium_uploads_through_the_form_page() {
    let exe = chromium();
    let env = start("s3-post-browser", &["forms"]);
    let (status, page) = upload_page(&env, Some(&env.owner), "forms");
    assert_eq!(status, 200, "{page}");
    // What a person does by hand: choose a file and press Upload. The script makes the
    // file (every byte value, 300 000 bytes: more than one inline object) and submits.
    let script = "<script>\n\
        const bytes = new Uint8Array(300000);\n\
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 255;\n\
        const dt = new DataTransfer();\n\
        dt.items.add(new File([bytes], 'from browser.bin', {type: 'application/x-test'}));\n\
        const form = document.getElementById('upload');\n\
        form.querySelector('input[type=file]').files = dt.files;\n\
        form.querySelector('input[name=key]').value = 'browser/${filename}';\n\
        form.submit();\n\
        </script>";
    let html = env.dir.path().join("upload.html");
    fs::write(&html, page.replace("</body>", &format!("{script}</body>"))).unwrap();
    let o = run_chromium(
        &exe,
        &env.dir.path().join("profile"),
        &["--dump-dom", "--virtual-time-budget=20000"],
        &format!("file://{}", html.display()),
    );
    let dom = String::from_utf8_lossy(&o.stdout);
    let want: Vec<u8> = (0..300_000u32)
        .map(|i| ((i * 7 + (i >> 8)) & 255) as u8)
        .collect();
    let got = env
        .object("forms", "browser/from browser.bin")
        .unwrap_or_else(|| {
            panic!(
                "the browser's upload is not stored; keys {:?}; DOM:\n{dom}\n{}",
                env.keys("forms"),
                String::from_utf8_lossy(&o.stderr)
            )
        });
    assert!(
        got == want,
        "the stored bytes differ from the browser's file"
    );
    // The answer the browser showed: the 201 PostResponse the page asked for.
    assert!(
        dom.contains("PostResponse") || dom.contains("browser/from browser.bin"),
        "{dom}"
    );
}

/// The hidden fields of an upload page, in order.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    page.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("<input type=\"hidden\" name=\"")?;
            let (name, rest) = rest.split_once("\" value=\"")?;
            let (value, _) = rest.split_once('"')?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

#[test]
fn an_open_director_takes_plain_forms_and_still_checks_policies() {
    let dir = TempDir::new("s3-post-open");
    let c = Cluster::start(&dir, 1, 1, &[]);
    assert_eq!(put(&format!("{}/open", c.url()), b"").unwrap().status, 200);
    // A form without any policy: served, as every request of an open director.
    let plain = [("key".to_string(), "plain/${filename}".to_string())];
    let p = post(
        &dir,
        &format!("{}/open", c.url()),
        &plain,
        b"no policy",
        "p.txt",
    );
    assert_eq!(p.status, 204, "{}", p.body);
    let got = get(&format!("{}/open/plain/p.txt", c.url())).unwrap();
    assert_eq!(got.body, b"no policy");
    // The upload page needs no signature here and carries an unsigned policy, whose
    // conditions still hold.
    let chooser = curl(&[&format!("{}/_dpyfs/upload", c.url())]);
    assert!(chooser.body.contains("?bucket=open"), "{}", chooser.body);
    let page = curl(&[&format!("{}/_dpyfs/upload?bucket=open", c.url())]);
    assert_eq!(page.status, 200, "{}", page.body);
    let fields = hidden_fields(&page.body);
    assert!(fields.iter().any(|(n, _)| n == "policy"), "{}", page.body);
    assert!(
        !fields.iter().any(|(n, _)| n == "x-amz-signature"),
        "{}",
        page.body
    );
    let form = with(&fields, &[("key", "paged")]);
    let p = post(
        &dir,
        &format!("{}/open", c.url()),
        &form,
        b"from the page",
        "x",
    );
    assert_eq!(p.status, 201, "{}", p.body);
    assert_eq!(
        get(&format!("{}/open/paged", c.url())).unwrap().body,
        b"from the page"
    );
    let extra = with(&form, &[("key", "extra"), ("x-amz-meta-a", "1")]);
    let p = post(&dir, &format!("{}/open", c.url()), &extra, b"x", "x");
    assert_eq!(
        (p.status, p.code().as_str()),
        (403, "AccessDenied"),
        "{}",
        p.body
    );
    assert_eq!(get(&format!("{}/open/extra", c.url())).unwrap().status, 404);
}

/// An unsigned form (no policy) is an anonymous upload: stored where the bucket's ACL lets
/// everyone write (public-read-write), as S3 does, and refused alike for a private bucket
/// and a missing one, with nothing stored.
#[test]
fn unsigned_forms_write_only_where_an_acl_lets_everyone_write() {
    let env = start("s3-post-acl", &["drop", "closed"]);
    let (status, body) = env.scurl(
        &env.owner,
        &[
            "-X",
            "PUT",
            "-H",
            "x-amz-acl: public-read-write",
            &env.url("drop?acl"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let form = |key: &str| vec![("key".to_string(), key.to_string())];
    let p = post(
        &env.dir,
        &env.url("drop"),
        &form("in/${filename}"),
        b"anon",
        "a.txt",
    );
    assert_eq!(p.status, 204, "{}", p.body);
    assert_eq!(env.object("drop", "in/a.txt").unwrap(), b"anon");
    // Setting the object's ACL needs WRITE_ACP, which public-read-write does not give.
    let with_acl = with(&form("in/b"), &[("acl", "public-read")]);
    let p = post(&env.dir, &env.url("drop"), &with_acl, b"x", "b");
    assert_eq!((p.status, p.code()), (403, "AccessDenied".to_string()));
    for bucket in ["closed", "missing"] {
        let p = post(&env.dir, &env.url(bucket), &form("k"), b"x", "k");
        assert_eq!(
            (p.status, p.code()),
            (403, "AccessDenied".to_string()),
            "{bucket}"
        );
        assert!(p.message().contains("signed POST policy"), "{}", p.body);
    }
    assert_eq!(env.keys("drop"), ["in/a.txt"]);
    assert!(env.keys("closed").is_empty());
}

/// A key with a bucket list signs policies for its own buckets only: a WRITE grant to
/// every key (or to it by id) on another bucket does not widen its list, while the same
/// grant lets a key without a list upload there.
#[test]
fn a_bucket_list_bounds_a_policy_signer_whatever_the_grants() {
    let dir = TempDir::new("s3-post-list");
    let keys = dir.path().join("keys.json");
    let owner = key_create_with(&keys, &[]);
    let other = key_create_with(&keys, &[]);
    let listed = key_create_with(&keys, &["--buckets", "mine"]);
    let c = Cluster::start(&dir, 1, 1, &["--keys", keys.to_str().unwrap()]);
    let env = Env {
        c,
        dir,
        owner,
        other,
    };
    let grant = format!(
        "x-amz-grant-write: uri=\"http://acs.amazonaws.com/groups/global/AuthenticatedUsers\", id=\"{}\"",
        listed.id
    );
    let (status, body) = env.scurl(&env.owner, &["-X", "PUT", "-H", &grant, &env.url("shared")]);
    assert_eq!(status, 200, "{body}");
    let (url, fields) = env.policy(&env.other, "shared", "by-other", 600, json!({}), json!([]));
    let p = post(&env.dir, &url, &fields, b"other", "f");
    assert_eq!(p.status, 204, "{}", p.body);
    let (url, fields) = env.policy(&listed, "shared", "by-listed", 600, json!({}), json!([]));
    let p = post(&env.dir, &url, &fields, b"listed", "f");
    assert_eq!(
        (p.status, p.code()),
        (403, "AccessDenied".to_string()),
        "{}",
        p.body
    );
    assert_eq!(env.keys("shared"), ["by-other"]);
}

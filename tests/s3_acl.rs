//! S3 ACLs (issue 16 item 3) against a director with keys: canned ACLs and
//! `x-amz-grant-*` on buckets and objects, GET/PUT `?acl`, and what they open — to plain
//! curl without a signature, and to a second key — while anonymous requests stay refused
//! everywhere else (even about whether a bucket exists). Signed requests are curl's
//! `--aws-sigv4`; boto3 and aws-cli come from tests/clients/install.sh (`s3_venv`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A director with keys: an admin, the owner `alice`, a second key `bob`, and `carol`,
/// whose bucket list names only `carols`.
struct Keyed {
    c: Cluster,
    admin: Key,
    alice: Key,
    bob: Key,
    carol: Key,
}

fn keyed(dir: &TempDir) -> Keyed {
    let keys: PathBuf = dir.path().join("keys.json");
    let admin = key_create_with(&keys, &[]);
    let alice = key_create_with(&keys, &[]);
    let bob = key_create_with(&keys, &[]);
    let carol = key_create_with(&keys, &["--buckets", "carols"]);
    let c = Cluster::start(dir, 1, 1, &["--keys", keys.to_str().unwrap()]);
    Keyed {
        c,
        admin,
        alice,
        bob,
        carol,
    }
}

fn code_of(body: &str) -> String {
    xml_values(body, "Code")
        .first()
        .cloned()
        .unwrap_or_default()
}

/// (status, S3 error code) of an answer.
fn refusal((status, body): (u16, String)) -> (u16, String) {
    (status, code_of(&body))
}

fn denied() -> (u16, String) {
    (403, "AccessDenied".to_string())
}

impl Keyed {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.c.url())
    }

    /// A PUT of `body` to `path` signed by `key`, with extra headers; the status.
    fn put(&self, key: &Key, path: &str, body: &str, headers: &[&str]) -> (u16, String) {
        let url = self.url(path);
        let mut args = vec!["-X", "PUT", "--data-binary", body];
        for h in headers {
            args.extend(["-H", h]);
        }
        args.push(&url);
        scurl(key, &args)
    }

    fn get(&self, key: &Key, path: &str) -> (u16, String) {
        scurl(key, &[&self.url(path)])
    }

    /// An unsigned request: `curl -X METHOD URL`, as anyone on the network can send it.
    fn anon(&self, method: &str, path: &str) -> (u16, String) {
        let url = self.url(path);
        match method {
            "PUT" => curl(&["-X", "PUT", "--data-binary", "anonymous words", &url]),
            "HEAD" => curl(&["-I", &url]),
            m => curl(&["-X", m, &url]),
        }
    }

    /// The grants of a GET `?acl` answer: (grantee id or group URI, permission).
    fn grants(&self, key: &Key, path: &str) -> Vec<(String, String)> {
        let (st, body) = self.get(key, path);
        assert_eq!(st, 200, "GET {path}: {body}");
        let perms = xml_values(&body, "Permission");
        let mut who = Vec::new();
        for g in body.split("<Grant>").skip(1) {
            let id = xml_values(g, "ID").into_iter().next();
            who.push(
                id.or_else(|| xml_values(g, "URI").into_iter().next())
                    .unwrap(),
            );
        }
        who.into_iter().zip(perms).collect()
    }
}

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

/// Public-read objects and buckets by plain curl; public-read-write takes anonymous
/// writes; anonymous stays refused everywhere else, with the same answer whether a
/// bucket exists or not. CreateBucket honours `x-amz-acl` (it used to ignore it).
#[test]
fn public_read_and_public_read_write_open_exactly_what_they_say() {
    let dir = TempDir::new("acl-public");
    let k = keyed(&dir);
    let (alice, bob) = (&k.alice, &k.bob);
    assert_eq!(k.put(alice, "pub", "", &["x-amz-acl: public-read"]).0, 200);
    assert_eq!(k.put(alice, "priv", "", &[]).0, 200);
    let open = ["x-amz-acl: public-read"];
    assert_eq!(k.put(alice, "pub/open.txt", "open words", &open).0, 200);
    assert_eq!(k.put(alice, "pub/closed.txt", "closed words", &[]).0, 200);
    assert_eq!(k.put(alice, "priv/open.txt", "open words", &open).0, 200);

    // The public object, by plain curl; its private neighbour is refused.
    assert_eq!(k.anon("GET", "pub/open.txt"), (200, "open words".into()));
    assert_eq!(k.anon("HEAD", "pub/open.txt").0, 200);
    assert_eq!(k.anon("GET", "priv/open.txt"), (200, "open words".into()));
    assert_eq!(refusal(k.anon("GET", "pub/closed.txt")), denied());
    assert_eq!(k.anon("HEAD", "pub/closed.txt").0, 403);
    // Response overrides are for signed requests (as S3): no public object as a page.
    let html = "pub/open.txt?response-content-type=text/html";
    assert_eq!(refusal(k.anon("GET", html)), (400, "InvalidRequest".into()));
    assert_eq!(k.get(bob, html), (200, "open words".into()));
    // The public bucket lists; a missing key in it is 404 to whoever may list it.
    let (st, body) = k.anon("GET", "pub?list-type=2");
    assert_eq!(st, 200, "{body}");
    assert_eq!(xml_values(&body, "Key"), ["closed.txt", "open.txt"]);
    assert_eq!(refusal(k.anon("GET", "pub/gone.txt")).1, "NoSuchKey");
    // Nothing else: writes, deletes, ACLs, the private bucket's listing and keys.
    for (m, path) in [
        ("PUT", "pub/new.txt"),
        ("DELETE", "pub/open.txt"),
        ("GET", "pub/open.txt?acl"),
        ("GET", "pub?acl"),
        ("PUT", "pub?acl"),
        ("DELETE", "pub"),
        ("GET", "pub?versioning"),
        ("GET", "priv"),
        ("GET", "priv/gone.txt"),
        ("PUT", "priv/new.txt"),
        ("GET", ""),
    ] {
        assert_eq!(refusal(k.anon(m, path)), denied(), "{m} {path}");
    }
    assert_eq!(k.get(alice, "pub/open.txt").0, 200);
    assert_eq!(k.get(alice, "pub/new.txt").0, 404);
    // A missing bucket, a bad bucket name and a private bucket answer alike.
    let priv_answer = k.anon("GET", "priv/x");
    assert_eq!(refusal(priv_answer.clone()), denied());
    for path in ["nosuch/x", "nosuch", "Bad_Name/x"] {
        let a = k.anon("GET", path);
        assert_eq!(refusal(a.clone()), denied(), "{path}");
        assert_eq!(
            xml_values(&a.1, "Message"),
            xml_values(&priv_answer.1, "Message")
        );
    }
    assert_eq!(refusal(k.anon("PUT", "nosuch")), denied());
    assert_eq!(refusal(k.anon("PUT", "priv")), denied());
    // Another key reads what everyone may read, and no more.
    assert_eq!(k.get(bob, "pub?list-type=2").0, 200);
    assert_eq!(k.get(bob, "pub/open.txt").0, 200);
    assert_eq!(refusal(k.get(bob, "pub/closed.txt")), denied());
    assert_eq!(refusal(k.put(bob, "pub/bob.txt", "b", &[])), denied());

    // public-read-write: anonymous PUT and DELETE of objects, which belong to the bucket's
    // owner (private to her unless the writer may also set ACLs, which anonymous may not).
    assert_eq!(
        k.put(alice, "drop", "", &["x-amz-acl: public-read-write"])
            .0,
        200
    );
    assert_eq!(k.anon("PUT", "drop/up.txt").0, 200);
    assert_eq!(k.get(alice, "drop/up.txt"), (200, "anonymous words".into()));
    assert_eq!(refusal(k.anon("GET", "drop/up.txt")), denied());
    let acl = k.grants(alice, "drop/up.txt?acl");
    assert_eq!(acl, [(alice.id.clone(), "FULL_CONTROL".into())]);
    let url = k.url("drop/acl.txt");
    let with_acl = curl(&["-X", "PUT", "-H", "x-amz-acl: public-read", "-d", "x", &url]);
    assert_eq!(refusal(with_acl), denied());
    assert_eq!(k.anon("DELETE", "drop/up.txt").0, 204);
    assert_eq!(k.get(alice, "drop/up.txt").0, 404);
    assert_eq!(refusal(k.anon("DELETE", "drop")), denied());
    assert_eq!(refusal(k.anon("PUT", "drop?acl")), denied());
    assert_eq!(k.get(alice, "drop").0, 200);

    // The ACLs are journaled: a restarted director (journal replay) keeps them.
    let mut c = k.c;
    c.director.restart();
    c.wait_stores_up(1);
    let k = Keyed { c, ..k };
    assert_eq!(k.anon("GET", "pub/open.txt"), (200, "open words".into()));
    assert_eq!(k.anon("GET", "pub?list-type=2").0, 200);
    assert_eq!(refusal(k.anon("GET", "pub/closed.txt")), denied());
    assert_eq!(k.anon("PUT", "drop/again.txt").0, 200);
}

/// `authenticated-read` opens an object to every key and to nobody unsigned; a grant by
/// id opens it to that key only, for what it grants; owner ids agree everywhere.
#[test]
fn authenticated_read_and_grants_to_another_key() {
    let dir = TempDir::new("acl-grants");
    let k = keyed(&dir);
    let (alice, bob) = (&k.alice, &k.bob);
    assert_eq!(k.put(alice, "team", "", &[]).0, 200);
    let auth = ["x-amz-acl: authenticated-read"];
    assert_eq!(k.put(alice, "team/auth.txt", "for keys", &auth).0, 200);
    assert_eq!(k.get(bob, "team/auth.txt"), (200, "for keys".into()));
    assert_eq!(refusal(k.anon("GET", "team/auth.txt")), denied());

    let grant = format!("x-amz-grant-read: id=\"{}\"", bob.id);
    assert_eq!(k.put(alice, "team/bob.txt", "for bob", &[&grant]).0, 200);
    assert_eq!(k.get(bob, "team/bob.txt"), (200, "for bob".into()));
    assert_eq!(refusal(k.anon("GET", "team/bob.txt")), denied());
    // READ is not WRITE, nor READ_ACP, nor a listing of the bucket.
    assert_eq!(
        refusal(k.put(bob, "team/bob.txt", "mine now", &[])),
        denied()
    );
    assert_eq!(refusal(k.get(bob, "team/bob.txt?acl")), denied());
    assert_eq!(refusal(k.get(bob, "team?list-type=2")), denied());
    assert_eq!(k.get(alice, "team/bob.txt"), (200, "for bob".into()));
    let acl = k.grants(alice, "team/bob.txt?acl");
    assert_eq!(
        acl,
        [
            (alice.id.clone(), "FULL_CONTROL".into()),
            (bob.id.clone(), "READ".into())
        ]
    );

    // WRITE on the bucket by a grant header on PUT ?acl: bob writes, alice owns.
    let grant = format!("x-amz-grant-write: id=\"{}\"", bob.id);
    assert_eq!(k.put(alice, "team?acl", "", &[&grant]).0, 200);
    assert_eq!(k.put(bob, "team/from-bob.txt", "bob wrote", &[]).0, 200);
    assert_eq!(refusal(k.get(bob, "team/from-bob.txt")), denied());
    assert_eq!(k.get(alice, "team/from-bob.txt").0, 200);
    assert_eq!(refusal(k.get(bob, "team?acl")), denied());

    // One owner id everywhere: ListBuckets, the listing's Owner, the ACL documents.
    let (_, list) = k.get(alice, "");
    assert_eq!(xml_values(&list, "ID"), std::slice::from_ref(&alice.id));
    let (_, objects) = k.get(alice, "team");
    assert!(xml_values(&objects, "ID").iter().all(|id| *id == alice.id));
    let acl = k.grants(alice, "team?acl");
    assert_eq!(acl[0], (alice.id.clone(), "FULL_CONTROL".into()));
    // A bucket without an owner key (made by `dpyfs recover` or before owners) is the
    // admin keys', whose id is `dpyfs`; an admin key's own bucket names the admin key.
    assert_eq!(k.put(&k.admin, "adminbkt", "", &[]).0, 200);
    assert_eq!(k.grants(&k.admin, "adminbkt?acl")[0].0, k.admin.id);

    // Journaled: after a restart bob still reads his object and writes into the bucket.
    let mut c = k.c;
    c.director.restart();
    c.wait_stores_up(1);
    let k = Keyed { c, ..k };
    assert_eq!(k.get(&k.bob, "team/bob.txt").0, 200);
    assert_eq!(k.put(&k.bob, "team/later.txt", "x", &[]).0, 200);
    assert_eq!(refusal(k.anon("GET", "team/auth.txt")), denied());
}

/// Every refusal answers a code and stores nothing.
#[test]
fn bad_acls_are_refused_and_store_nothing() {
    let dir = TempDir::new("acl-refusals");
    let k = keyed(&dir);
    let alice = &k.alice;
    let bad: &[(&str, &str, u16, &str)] = &[
        ("x-amz-acl: public", "", 400, "InvalidArgument"),
        (
            "x-amz-grant-read: id=\"NOSUCHKEY\"",
            "",
            400,
            "InvalidArgument",
        ),
        (
            "x-amz-grant-read: emailAddress=\"a@example.com\"",
            "",
            400,
            "UnresolvableGrantByEmailAddress",
        ),
        ("x-amz-grant-read: id", "", 400, "InvalidArgument"),
        ("x-amz-acl: aws-exec-read", "", 501, "NotImplemented"),
        ("x-amz-acl: log-delivery-write", "", 501, "NotImplemented"),
        (
            "x-amz-grant-read: uri=\"http://acs.amazonaws.com/groups/s3/LogDelivery\"",
            "",
            400,
            "InvalidArgument",
        ),
    ];
    for (h, body, status, code) in bad {
        // CreateBucket: the bucket is not made.
        let a = refusal(k.put(alice, "newbkt", body, &[h]));
        assert_eq!(a, (*status, code.to_string()), "CreateBucket {h}");
        assert_eq!(scurl(alice, &["-I", &k.url("newbkt")]).0, 404, "{h}");
        // PutObject: the object is not stored.
        if k.get(alice, "bkt").0 == 404 {
            assert_eq!(k.put(alice, "bkt", "", &[]).0, 200);
        }
        let a = refusal(k.put(alice, "bkt/k", "words", &[h]));
        assert_eq!(a, (*status, code.to_string()), "PutObject {h}");
        assert_eq!(k.get(alice, "bkt/k").0, 404, "{h}");
    }
    // A canned ACL and grant headers together.
    let both = ["x-amz-acl: public-read", "x-amz-grant-read: id=\"x\""];
    assert_eq!(
        refusal(k.put(alice, "bkt/k", "w", &both)).1,
        "InvalidRequest"
    );
    assert_eq!(k.get(alice, "bkt/k").0, 404);

    // PUT ?acl: a malformed document, an unknown grantee, an unknown permission,
    // nothing at all, and a document with headers; the ACL stays private.
    assert_eq!(k.put(alice, "bkt/k", "words", &[]).0, 200);
    let private = [(alice.id.clone(), "FULL_CONTROL".to_string())];
    let doc = |grantee: &str, perm: &str| {
        format!(
            "<AccessControlPolicy><Owner><ID>{}</ID></Owner><AccessControlList><Grant>\
             <Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:type=\"Group\">{grantee}</Grantee><Permission>{perm}</Permission></Grant>\
             </AccessControlList></AccessControlPolicy>",
            alice.id
        )
    };
    let all = format!("<URI>{ALL_USERS}</URI>");
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (
            "<AccessControlPolicy><Acc".into(),
            vec![],
            "MalformedACLError",
        ),
        ("<Tagging/>".into(), vec![], "MalformedACLError"),
        (doc("<ID>NOSUCHKEY</ID>", "READ"), vec![], "InvalidArgument"),
        (doc(&all, "EVERYTHING"), vec![], "MalformedACLError"),
        (doc("", "READ"), vec![], "MalformedACLError"),
        (String::new(), vec![], "MissingSecurityHeader"),
        (
            doc(&all, "READ"),
            vec!["x-amz-acl: public-read"],
            "UnexpectedContent",
        ),
    ];
    for path in ["bkt/k?acl", "bkt?acl"] {
        for (body, headers, code) in &cases {
            let a = refusal(k.put(alice, path, body, headers));
            assert_eq!(a, (400, code.to_string()), "{path} {body}");
            assert_eq!(k.grants(alice, path), private, "{path} {body}");
        }
    }
    assert_eq!(refusal(k.anon("GET", "bkt/k")), denied());
    // Another key's bucket ACL is not one's to change or read.
    assert_eq!(
        refusal(k.put(&k.bob, "bkt?acl", "", &["x-amz-acl: public-read"])),
        denied()
    );
    assert_eq!(refusal(k.get(&k.bob, "bkt?acl")), denied());
    // ?acl of a missing object or bucket, for the owner.
    assert_eq!(refusal(k.get(alice, "bkt/none?acl")).1, "NoSuchKey");
    assert_eq!(refusal(k.get(alice, "nobkt?acl")).1, "NoSuchBucket");
}

/// CopyObject and CreateMultipartUpload take `x-amz-acl` for the object they make (a copy
/// does not keep its source's); an upload's listings name the bucket's owner.
#[test]
fn copies_and_uploads_carry_their_acl() {
    let dir = TempDir::new("acl-copy-upload");
    let k = keyed(&dir);
    let alice = &k.alice;
    assert_eq!(k.put(alice, "src", "", &[]).0, 200);
    let open = "x-amz-acl: public-read";
    assert_eq!(
        k.put(alice, "src/public.txt", "copied words", &[open]).0,
        200
    );
    // A copy without x-amz-acl is private; with one, it has that ACL.
    let from = "x-amz-copy-source: /src/public.txt";
    assert_eq!(k.put(alice, "src/copy.txt", "", &[from]).0, 200);
    assert_eq!(refusal(k.anon("GET", "src/copy.txt")), denied());
    assert_eq!(k.put(alice, "src/open-copy.txt", "", &[from, open]).0, 200);
    assert_eq!(
        k.anon("GET", "src/open-copy.txt"),
        (200, "copied words".into())
    );
    // Another key copies a public object out of a bucket that is not its own into its own.
    assert_eq!(k.put(&k.bob, "bobs", "", &[]).0, 200);
    assert_eq!(k.put(&k.bob, "bobs/got.txt", "", &[from]).0, 200);
    assert_eq!(k.get(&k.bob, "bobs/got.txt"), (200, "copied words".into()));
    let private = "x-amz-copy-source: /src/copy.txt";
    assert_eq!(
        refusal(k.put(&k.bob, "bobs/not.txt", "", &[private])),
        denied()
    );
    assert_eq!(k.get(&k.bob, "bobs/not.txt").0, 404);

    // A multipart upload started with public-read: the completed object is public.
    let (st, body) = scurl(
        alice,
        &["-X", "POST", "-H", open, &k.url("src/big.bin?uploads")],
    );
    assert_eq!(st, 200, "{body}");
    let id = xml_values(&body, "UploadId").remove(0);
    let part = k.url(&format!("src/big.bin?partNumber=1&uploadId={id}"));
    let (st, _) = scurl(alice, &["-X", "PUT", "--data-binary", "one part", &part]);
    assert_eq!(st, 200);
    let (st, parts) = k.get(alice, &format!("src/big.bin?uploadId={id}"));
    assert_eq!(st, 200, "{parts}");
    assert_eq!(
        xml_values(&parts, "ID"),
        [alice.id.clone(), alice.id.clone()]
    );
    let (_, uploads) = k.get(alice, "src?uploads");
    assert_eq!(
        xml_values(&uploads, "ID"),
        [alice.id.clone(), alice.id.clone()]
    );
    assert_eq!(refusal(k.anon("GET", "src/big.bin")).1, "AccessDenied");
    let etag = xml_values(&parts, "ETag").remove(0);
    let done = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part>\
         </CompleteMultipartUpload>"
    );
    let url = k.url(&format!("src/big.bin?uploadId={id}"));
    let (st, body) = scurl(alice, &["-X", "POST", "--data-binary", &done, &url]);
    assert_eq!(st, 200, "{body}");
    assert_eq!(k.anon("GET", "src/big.bin"), (200, "one part".into()));
    // An upload with a bad ACL is never started.
    let (st, body) = scurl(
        alice,
        &[
            "-X",
            "POST",
            "-H",
            "x-amz-acl: open",
            &k.url("src/bad.bin?uploads"),
        ],
    );
    assert_eq!((st, code_of(&body).as_str()), (400, "InvalidArgument"));
    let (_, uploads) = k.get(alice, "src?uploads");
    assert!(xml_values(&uploads, "UploadId").is_empty(), "{uploads}");
}

/// `?acl&versionId=`: each version of a key has its own ACL, and a read of a version
/// checks that version's.
#[test]
fn each_version_has_its_own_acl() {
    let dir = TempDir::new("acl-versions");
    let k = keyed(&dir);
    let alice = &k.alice;
    assert_eq!(k.put(alice, "ver", "", &[]).0, 200);
    let on = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    assert_eq!(k.put(alice, "ver?versioning", on, &[]).0, 200);
    assert_eq!(k.put(alice, "ver/k", "first", &[]).0, 200);
    assert_eq!(k.put(alice, "ver/k", "second", &[]).0, 200);
    let (_, list) = k.get(alice, "ver?versions");
    let ids = xml_values(&list, "VersionId");
    let (v2, v1) = (&ids[0], &ids[1]);
    let open = ["x-amz-acl: public-read"];
    assert_eq!(
        k.put(alice, &format!("ver/k?acl&versionId={v1}"), "", &open)
            .0,
        200
    );
    assert_eq!(
        k.anon("GET", &format!("ver/k?versionId={v1}")),
        (200, "first".into())
    );
    assert_eq!(refusal(k.anon("GET", "ver/k")), denied());
    assert_eq!(
        refusal(k.anon("GET", &format!("ver/k?versionId={v2}"))),
        denied()
    );
    let acl = |v: &str| k.grants(alice, &format!("ver/k?acl&versionId={v}"));
    assert_eq!(acl(v1).len(), 2);
    assert_eq!(acl(v1)[1], (ALL_USERS.to_string(), "READ".to_string()));
    assert_eq!(acl(v2).len(), 1);
    assert_eq!(k.grants(alice, "ver/k?acl").len(), 1);
    // An unknown version is 404 NoSuchVersion for the owner, and stores nothing.
    let none = "ver/k?acl&versionId=00000000000000000000000000000000";
    let a = refusal(k.put(alice, none, "", &open));
    assert_eq!(a.0, 404, "{a:?}");
    // A new version of the key starts private; the old one keeps its grant.
    assert_eq!(k.put(alice, "ver/k", "third", &[]).0, 200);
    assert_eq!(
        k.anon("GET", &format!("ver/k?versionId={v1}")),
        (200, "first".into())
    );
    assert_eq!(refusal(k.anon("GET", "ver/k")), denied());
}

/// A request naming `?acl` and another sub-resource is answered by the first one it
/// names, and judged as that route: READ_ACP / WRITE_ACP give neither a bucket's
/// versioning nor its lifecycle (whose rules delete versions for good) nor its version
/// listing, nor an object's attributes. A grant of READ on a bucket answers a missing
/// key's GET (404) but lets nobody set the ACL of a key that does not exist yet.
#[test]
fn acl_beside_another_subresource_grants_only_the_acl() {
    let dir = TempDir::new("acl-two-subs");
    let k = keyed(&dir);
    let alice = &k.alice;
    let everyone = format!("uri=\"{ALL_USERS}\"");
    let read_acp = format!("x-amz-grant-read-acp: {everyone}");
    let write_acp = format!("x-amz-grant-write-acp: {everyone}");
    let grants = [read_acp.as_str(), write_acp.as_str()];
    assert_eq!(k.put(alice, "acp", "", &grants).0, 200);
    assert_eq!(k.put(alice, "acp/k", "words", &grants).0, 200);
    let anon_put =
        |path: &str, body: &str| refusal(curl(&["-X", "PUT", "--data-binary", body, &k.url(path)]));
    let on = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let expire = "<LifecycleConfiguration><Rule><ID>gone</ID><Filter><Prefix></Prefix>\
                  </Filter><Status>Enabled</Status><NoncurrentVersionExpiration>\
                  <NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>\
                  </LifecycleConfiguration>";
    for (path, body) in [
        ("acp?versioning&acl", on),
        ("acp?lifecycle&acl", expire),
        ("acp/k?tagging&acl", "<Tagging><TagSet/></Tagging>"),
    ] {
        assert_eq!(anon_put(path, body), denied(), "PUT {path}");
    }
    let (_, versioning) = k.get(alice, "acp?versioning");
    assert!(xml_values(&versioning, "Status").is_empty(), "{versioning}");
    assert_eq!(refusal(k.get(alice, "acp?lifecycle")).0, 404);
    let attrs = k.url("acp/k?attributes&acl");
    let a = curl(&["-H", "x-amz-object-attributes: ETag,ObjectSize", &attrs]);
    assert_eq!(refusal(a), denied());
    assert_eq!(refusal(k.anon("GET", "acp?versions&acl")), denied());
    // The grants themselves still hold.
    assert_eq!(k.anon("GET", "acp?acl").0, 200);
    assert_eq!(k.anon("GET", "acp/k?acl").0, 200);
    assert_eq!(
        k.put(alice, "rdpub", "", &["x-amz-acl: public-read"]).0,
        200
    );
    assert_eq!(refusal(k.anon("GET", "rdpub/none")).1, "NoSuchKey");
    let url = k.url("rdpub/none?acl");
    let set = curl(&["-X", "PUT", "-H", "x-amz-acl: public-read", &url]);
    assert_eq!(refusal(set), denied());
}

/// WRITE on a bucket writes and deletes its objects (a delete marker in a versioned
/// bucket), but removing a version for good is the bucket owner's alone, as S3
/// (DeleteObjectVersion): versioning still guards a public-read-write bucket, through
/// DELETE `?versionId=` and through each `<VersionId>` of a DeleteObjects.
#[test]
fn write_grants_do_not_delete_versions_for_good() {
    let dir = TempDir::new("acl-versions-write");
    let k = keyed(&dir);
    let (alice, bob) = (&k.alice, &k.bob);
    let writers = format!("x-amz-grant-write: uri=\"{ALL_USERS}\", id=\"{}\"", bob.id);
    assert_eq!(k.put(alice, "wvers", "", &[&writers]).0, 200);
    let on = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    assert_eq!(k.put(alice, "wvers?versioning", on, &[]).0, 200);
    assert_eq!(k.put(alice, "wvers/k", "first", &[]).0, 200);
    assert_eq!(k.put(alice, "wvers/k", "second", &[]).0, 200);
    let versions = || xml_values(&k.get(alice, "wvers?versions").1, "VersionId");
    let ids = versions();
    let v1 = ids[1].clone();
    let one = format!("wvers/k?versionId={v1}");
    assert_eq!(refusal(k.anon("DELETE", &one)), denied());
    let bob_delete = scurl(bob, &["-X", "DELETE", &k.url(&one)]);
    assert_eq!(refusal(bob_delete), denied());
    let doc = format!(
        "<Delete><Object><Key>k</Key><VersionId>{v1}</VersionId></Object>\
         <Object><Key>other</Key></Object></Delete>"
    );
    let (st, body) = curl(&["-X", "POST", "--data-binary", &doc, &k.url("wvers?delete")]);
    assert_eq!(st, 200, "{body}");
    assert_eq!(xml_values(&body, "Code"), ["AccessDenied"], "{body}");
    assert_eq!(xml_values(&body, "Key"), ["k", "other"], "{body}");
    // Both versions are kept (beside the delete marker `other` got).
    let kept = versions();
    assert!(ids.iter().all(|id| kept.contains(id)), "{kept:?}");
    // A delete marker is a write like any other; the owner removes versions.
    assert_eq!(k.anon("DELETE", "wvers/k").0, 204);
    assert_eq!(scurl(alice, &["-X", "DELETE", &k.url(&one)]).0, 204);
    assert!(!versions().contains(&v1));
}

/// A key with a bucket list stays within it: grants on other buckets (to
/// AuthenticatedUsers, to everyone, or to the key itself) do not widen it, for listings,
/// reads, writes and a copy's source. Another key takes what the same grants give.
#[test]
fn a_bucket_list_bounds_a_key_whatever_the_grants() {
    let dir = TempDir::new("acl-bucket-list");
    let k = keyed(&dir);
    let (alice, bob, carol) = (&k.alice, &k.bob, &k.carol);
    assert_eq!(k.put(carol, "carols", "", &[]).0, 200);
    let who = format!(
        "uri=\"http://acs.amazonaws.com/groups/global/AuthenticatedUsers\", id=\"{}\"",
        carol.id
    );
    let read = format!("x-amz-grant-read: {who}");
    let write = format!("x-amz-grant-write: {who}");
    assert_eq!(k.put(alice, "shared", "", &[&read, &write]).0, 200);
    assert_eq!(k.put(alice, "shared/k", "shared words", &[&read]).0, 200);
    assert_eq!(k.put(alice, "pub", "", &["x-amz-acl: public-read"]).0, 200);
    let open = ["x-amz-acl: public-read"];
    assert_eq!(k.put(alice, "pub/k", "public words", &open).0, 200);
    for key in [bob, carol] {
        let mine = key.id == bob.id;
        let want = |st: u16| if mine { st } else { 403 };
        assert_eq!(k.get(key, "shared?list-type=2").0, want(200));
        assert_eq!(k.get(key, "shared/k").0, want(200));
        assert_eq!(k.get(key, "pub/k").0, want(200));
        assert_eq!(k.put(key, "shared/new", "w", &[]).0, want(200));
        let dest = if mine { "bobs/copy" } else { "carols/copy" };
        if mine {
            assert_eq!(k.put(key, "bobs", "", &[]).0, 200);
        }
        let from = "x-amz-copy-source: /shared/k";
        assert_eq!(k.put(key, dest, "", &[from]).0, want(200), "{dest}");
    }
    assert_eq!(k.get(carol, "carols/copy").0, 404);
    assert_eq!(k.get(alice, "shared?list-type=2").0, 200);
}

/// READ on a bucket lists its uploads in progress but not their parts, whose ETags are
/// the MD5s of bytes that may become a private object; WRITE lists them.
#[test]
fn reading_a_bucket_lists_uploads_not_their_parts() {
    let dir = TempDir::new("acl-parts");
    let k = keyed(&dir);
    let alice = &k.alice;
    let writers = format!("x-amz-grant-write: id=\"{}\"", k.bob.id);
    let readers = format!("x-amz-grant-read: uri=\"{ALL_USERS}\"");
    assert_eq!(k.put(alice, "upl", "", &[&readers, &writers]).0, 200);
    let (st, body) = scurl(alice, &["-X", "POST", &k.url("upl/big?uploads")]);
    assert_eq!(st, 200, "{body}");
    let id = xml_values(&body, "UploadId").remove(0);
    let part = k.url(&format!("upl/big?partNumber=1&uploadId={id}"));
    assert_eq!(
        scurl(alice, &["-X", "PUT", "--data-binary", "secret", &part]).0,
        200
    );
    let (st, uploads) = k.anon("GET", "upl?uploads");
    assert_eq!(st, 200, "{uploads}");
    assert_eq!(xml_values(&uploads, "UploadId"), std::slice::from_ref(&id));
    let parts = format!("upl/big?uploadId={id}");
    assert_eq!(refusal(k.anon("GET", &parts)), denied());
    let (st, listed) = k.get(&k.bob, &parts);
    assert_eq!(st, 200, "{listed}");
    assert_eq!(xml_values(&listed, "PartNumber"), ["1"]);
}

/// `dpyfs recover` rebuilds from manifests, which do not hold ACLs (a grant withdrawn
/// later could not be withdrawn from the manifest): objects come back private, in
/// buckets of the admin keys.
#[test]
fn recover_brings_objects_back_private() {
    let dir = TempDir::new("acl-recover");
    let k = keyed(&dir);
    assert_eq!(
        k.put(&k.alice, "rec", "", &["x-amz-acl: public-read"]).0,
        200
    );
    let open = ["x-amz-acl: public-read"];
    assert_eq!(k.put(&k.alice, "rec/k", "recovered", &open).0, 200);
    assert_eq!(k.anon("GET", "rec/k").0, 200);
    let mut c = k.c;
    c.director.kill();
    fs::remove_dir_all(dir.path().join("director")).unwrap();
    let args = common::upkeep::recover_args(&c, &dir.path().join("director"));
    common::upkeep::ok(&command("dpyfs").args(&args).output().unwrap());
    c.director.restart();
    c.wait_stores_up(1);
    let k = Keyed { c, ..k };
    assert_eq!(refusal(k.anon("GET", "rec/k")), denied());
    assert_eq!(refusal(k.anon("GET", "rec")), denied());
    assert_eq!(k.get(&k.admin, "rec/k"), (200, "recovered".into()));
    assert_eq!(
        k.grants(&k.admin, "rec/k?acl"),
        [("dpyfs".to_string(), "FULL_CONTROL".to_string())]
    );
}

/// `program` from the S3 client venv with a cleared environment, signing as `key`.
fn client(dir: &TempDir, program: &str, key: &Key) -> Command {
    let home = dir.path().join("home");
    let program = s3_venv().join("bin").join(program);
    s3_client_command(&home, &program, &key.id, &key.secret)
}

/// boto3's get/put_object_acl and get/put_bucket_acl (canned, grant headers and
/// AccessControlPolicy documents) in tests/clients/acl_suite.py; aws-cli's
/// `s3api put-bucket-acl --acl public-read` opens a bucket's listing to plain curl.
#[test]
fn boto3_and_aws_cli_read_and_set_acls() {
    let dir = TempDir::new("acl-clients");
    let k = keyed(&dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/acl_suite.py");
    let mut py = client(&dir, "python", &k.alice);
    py.arg(script)
        .args(["--endpoint", &k.c.url(), "--other-id", &k.bob.id]);
    let out = run_client("acl_suite.py", &mut py);
    assert!(out.contains("acl suite: ok"), "{out}");

    assert_eq!(k.put(&k.alice, "cli", "", &[]).0, 200);
    assert_eq!(refusal(k.anon("GET", "cli")), denied());
    let mut aws = client(&dir, "aws", &k.alice);
    aws.args([
        "s3api",
        "put-bucket-acl",
        "--bucket",
        "cli",
        "--acl",
        "public-read",
    ])
    .args(["--endpoint-url", &k.c.url()]);
    run_client("aws s3api put-bucket-acl", &mut aws);
    assert_eq!(k.anon("GET", "cli").0, 200);
    let mut aws = client(&dir, "aws", &k.alice);
    aws.args(["s3api", "get-bucket-acl", "--bucket", "cli"])
        .args(["--endpoint-url", &k.c.url()]);
    let out = run_client("aws s3api get-bucket-acl", &mut aws);
    assert!(
        out.contains(ALL_USERS) && out.contains(&k.alice.id),
        "{out}"
    );
}

/// On a group of three directors the ACL records go through the leader like every other
/// write: set through one director, each of the others answers with them. (The group is
/// open, without keys: ACLs are stored and shown there, and grant nothing more.)
#[test]
fn three_directors_share_acls() {
    let dir = TempDir::new("acl-group");
    let g = DirectorGroup::start(&dir, 3);
    let at = |i: usize, path: &str| format!("{}/{path}", g.directors[i].url());
    let ok = |method: &str, url: &str, headers: &[(&str, &str)]| {
        let body: &[u8] = if url.ends_with("?acl") { b"" } else { b"words" };
        let r = request(method, url, headers, Some(body)).unwrap();
        assert_eq!(r.status, 200, "{method} {url}: {}", r.text());
    };
    ok("PUT", &at(0, "grp"), &[("x-amz-acl", "public-read")]);
    ok(
        "PUT",
        &at(1, "grp/k"),
        &[("x-amz-acl", "authenticated-read")],
    );
    ok("PUT", &at(2, "grp/k2"), &[]);
    ok(
        "PUT",
        &at(2, "grp/k2?acl"),
        &[("x-amz-acl", "public-read-write")],
    );
    let uri = |i: usize, path: &str| xml_values(&get(&at(i, path)).unwrap().text(), "URI");
    for i in 0..3 {
        assert_eq!(uri(i, "grp?acl"), [ALL_USERS], "director {i}");
        assert_eq!(
            uri(i, "grp/k?acl"),
            ["http://acs.amazonaws.com/groups/global/AuthenticatedUsers"],
            "director {i}"
        );
        assert_eq!(uri(i, "grp/k2?acl"), [ALL_USERS, ALL_USERS], "director {i}");
    }
}

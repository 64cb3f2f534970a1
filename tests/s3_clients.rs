//! The real S3 clients users point at dpyfs — boto3, aws-cli, rclone, s3cmd, restic, curl —
//! run against a real cluster (three stores, a director), each in its own test so a failure
//! names the client; the `https_*` tests run each against a director on HTTPS, given the
//! cluster's CA the way that client takes one. `tests/clients/install.sh` installs them when
//! missing (apt: rclone, s3cmd, restic, curl; pip: boto3 and aws-cli into target/s3-venv).
//! Every client runs with a cleared environment: HOME, its config and credential files in
//! the test's temporary directory, no proxies, no instance metadata lookups, so nothing
//! touches the machine's real configuration or any address but 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const REGION: &str = "us-east-1";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A client's sandbox: its HOME and config files live in `dir`.
struct Sandbox {
    home: PathBuf,
}

impl Sandbox {
    fn new(dir: &TempDir) -> Sandbox {
        let home = dir.path().join("home");
        fs::create_dir_all(&home).unwrap();
        // Empty files, so no client falls back to the real ones.
        fs::write(home.join("aws-config"), "").unwrap();
        fs::write(home.join("aws-credentials"), "").unwrap();
        fs::write(home.join("rclone.conf"), "").unwrap();
        Sandbox { home }
    }

    /// `program` with a cleared environment; `keys` become AWS_ACCESS_KEY_ID/SECRET.
    fn cmd(&self, program: &str, keys: Option<&Keys>) -> Command {
        let venv_bin = s3_venv().join("bin");
        let mut c = Command::new(program);
        c.env_clear()
            .current_dir(&self.home)
            .env(
                "PATH",
                format!(
                    "{}:/usr/local/bin:/usr/bin:/bin:{}",
                    venv_bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("HOME", &self.home)
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("TMPDIR", &self.home)
            .env("AWS_CONFIG_FILE", self.home.join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.join("aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_REGION", REGION)
            .env("RCLONE_CONFIG", self.home.join("rclone.conf"))
            .env("NO_PROXY", "*")
            .stdin(Stdio::null());
        if let Some(k) = keys {
            c.env("AWS_ACCESS_KEY_ID", &k.access)
                .env("AWS_SECRET_ACCESS_KEY", &k.secret);
        }
        if tls_mode() {
            // The cluster is on HTTPS (`make test-tls`): each client is given the test CA
            // the way it reads one.
            let ca = &test_ca().ca;
            c.env("AWS_CA_BUNDLE", ca)
                .env("CURL_CA_BUNDLE", ca)
                .env("SSL_CERT_FILE", ca)
                .env("REQUESTS_CA_BUNDLE", ca);
        }
        c
    }

    /// A bash script in the sandbox, `set -euxo pipefail`.
    fn bash(&self, script: &str, keys: Option<&Keys>) -> Command {
        let mut c = self.cmd("bash", keys);
        c.arg("-c").arg(format!("set -euxo pipefail\n{script}"));
        c
    }
}

/// Runs `c`, prints what it said, and fails naming `what` unless it exits 0.
fn run_ok(what: &str, c: &mut Command) -> Output {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            out.status
        );
    }
    println!("--- {what} stdout ---\n{stdout}\n--- {what} stderr ---\n{stderr}");
    out
}

/// An access key of the director's keys file.
#[derive(Clone, Debug)]
struct Keys {
    access: String,
    secret: String,
}

/// `dpyfs admin key create --keys FILE [--buckets a,b]`; `buckets` limits the key to those.
/// It prints `AWS_ACCESS_KEY_ID=...` and `AWS_SECRET_ACCESS_KEY=...`.
fn create_key(file: &Path, buckets: &[&str]) -> Keys {
    let mut c = command("dpyfs");
    c.args(["admin", "key", "create", "--keys", file.to_str().unwrap()]);
    if !buckets.is_empty() {
        c.args(["--buckets", &buckets.join(",")]);
    }
    let out = run_ok("dpyfs admin key create", &mut c);
    parse_key(&String::from_utf8_lossy(&out.stdout)).unwrap_or_else(|| {
        panic!("no access key and secret in the output of dpyfs admin key create")
    })
}

/// The access key id and secret in `dpyfs admin key create`'s output: JSON with fields named
/// like access_key/secret_key, or `name: value` / `name=value` lines.
fn parse_key(text: &str) -> Option<Keys> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text.trim()) {
        let obj = v.as_object()?;
        let find = |part: &str| {
            obj.iter()
                .find(|(k, _)| k.to_ascii_lowercase().contains(part))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string)
        };
        return Some(Keys {
            access: find("access")?,
            secret: find("secret")?,
        });
    }
    let mut access = None;
    let mut secret = None;
    for line in text.lines() {
        let Some((name, value)) = line.split_once([':', '=']) else {
            continue;
        };
        let (name, value) = (name.to_ascii_lowercase(), value.trim().to_string());
        if name.contains("secret") {
            secret = Some(value);
        } else if name.contains("access") || name.contains("key id") {
            access = Some(value);
        }
    }
    Some(Keys {
        access: access?,
        secret: secret?,
    })
}

/// A cluster of three stores whose director checks signatures with a fresh keys file.
struct KeyedCluster {
    cluster: Cluster,
    keys: Keys,
    /// A second key that may touch only the bucket `limited`.
    limited: Keys,
}

fn keyed_cluster(dir: &TempDir) -> KeyedCluster {
    keyed_cluster_on(dir, tls_default())
}

/// As `keyed_cluster`, on HTTPS with `tls`'s files when given.
fn keyed_cluster_on(dir: &TempDir, tls: Option<&TestCa>) -> KeyedCluster {
    let file = dir.path().join("keys");
    let keys = create_key(&file, &[]);
    let limited = create_key(&file, &["limited"]);
    let keys_flag = ["--keys", file.to_str().unwrap()];
    let cluster = Cluster::start_on(dir, 3, 2, &keys_flag, &["--scrub-rate", "0"], tls);
    KeyedCluster {
        cluster,
        keys,
        limited,
    }
}

fn python_suite(sb: &Sandbox, what: &str, args: &[&str], keys: Option<&Keys>) {
    let mut c = sb.cmd(s3_venv().join("bin/python").to_str().unwrap(), keys);
    c.arg(manifest_dir().join("tests/clients/boto3_suite.py"))
        .args(args);
    run_ok(what, &mut c);
}

fn boto3_signed(checksums: &str) {
    let dir = TempDir::new("boto3");
    let kc = keyed_cluster(&dir);
    let sb = Sandbox::new(&dir);
    let url = kc.cluster.url();
    let mut args = vec!["--endpoint", &url, "--checksums", checksums];
    let limited = format!("{}:{}", kc.limited.access, kc.limited.secret);
    if checksums == "when_supported" {
        // The authentication cases once: signature failures, presigned URLs, limited keys.
        args.extend(["--auth", "--limited-key", &limited]);
    }
    python_suite(&sb, &format!("boto3 ({checksums})"), &args, Some(&kc.keys));
}

/// boto3 with default checksums (CRC32 sent on every upload): every operation of issue 4,
/// every error code, signature failures, presigned GET and PUT, a bucket-limited key.
#[test]
fn boto3_signed_checksums_when_supported() {
    boto3_signed("when_supported");
}

/// boto3 sending checksums only where an operation requires them (the pre-2025 behaviour).
#[test]
fn boto3_signed_checksums_when_required() {
    boto3_signed("when_required");
}

/// boto3 unsigned (botocore.UNSIGNED) against an open director with no keys file.
#[test]
fn boto3_unsigned_open_director() {
    let dir = TempDir::new("boto3-open");
    let cluster = Cluster::start(&dir, 3, 2, &[]);
    let sb = Sandbox::new(&dir);
    let url = cluster.url();
    python_suite(
        &sb,
        "boto3 (unsigned)",
        &[
            "--endpoint",
            &url,
            "--unsigned",
            "--checksums",
            "when_supported",
        ],
        None,
    );
}

/// A directory tree of mixed files for the sync tests: `n` files in nested directories,
/// among them an empty one, tiny ones, names with spaces and UTF-8, and one of `big` bytes.
fn make_tree(root: &Path, n: usize, big: usize) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for i in 0..n {
        let sub = match i % 4 {
            0 => "".to_string(),
            1 => "docs/".to_string(),
            2 => format!("docs/deep/{}/", i % 3),
            _ => "späce dir/".to_string(),
        };
        let name = format!("{sub}file {i}.bin");
        let len = match i {
            0 => 0,
            1 => big,
            _ => (i * 997) % 70_000,
        };
        let p = root.join(&name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, random_bytes(len, i as u64 + 1)).unwrap();
        files.push(p);
    }
    files
}

/// aws-cli: `aws s3 cp` of 40 MiB up and down (multipart), sync of a tree, ls, presign + curl,
/// and an s3 -> s3 copy of a >8 MiB object (UploadPartCopy with ranges).
#[test]
fn aws_cli() {
    let dir = TempDir::new("awscli");
    let kc = keyed_cluster(&dir);
    let sb = Sandbox::new(&dir);
    let home = &sb.home;
    fs::write(home.join("big.bin"), random_bytes(40 << 20, 40)).unwrap();
    make_tree(&home.join("tree"), 20, 3 << 20);
    let script = format!(
        r#"
E="--endpoint-url {url}"
aws --version
aws $E s3 mb s3://cli
aws $E s3 cp big.bin s3://cli/dir/big.bin
aws $E s3 cp s3://cli/dir/big.bin big.down
test "$(sha256sum < big.bin)" = "$(sha256sum < big.down)"
aws $E s3api head-object --bucket cli --key dir/big.bin > head.json
grep -q '"ContentLength": 41943040' head.json
grep -q -- '-[0-9]*\\"' head.json   # a multipart ETag "<md5>-<parts>"
aws $E s3 cp s3://cli/dir/big.bin s3://cli/copy/big.bin
aws $E s3 cp s3://cli/copy/big.bin big.copy
test "$(sha256sum < big.bin)" = "$(sha256sum < big.copy)"
aws $E s3 sync tree s3://cli/tree
aws $E s3 sync s3://cli/tree tree.down
diff -r tree tree.down
aws $E s3 sync tree s3://cli/tree > again.txt
test ! -s again.txt    # nothing left to upload
aws $E s3 ls s3://cli/ > ls.txt
grep -q 'PRE dir/' ls.txt
grep -q 'PRE tree/' ls.txt
aws $E s3 ls --recursive s3://cli/tree/ > lsr.txt
test "$(wc -l < lsr.txt)" = 20
aws $E s3 ls > buckets.txt
grep -q ' cli$' buckets.txt
echo 'presigned hello' > small.txt
aws $E s3 cp small.txt s3://cli/small.txt
aws $E s3 rm --recursive s3://cli/tree
# presign with SigV4 (asked for in the config file) ...
printf '[default]\ns3 =\n    signature_version = s3v4\n' > v4-config
U="$(AWS_CONFIG_FILE=v4-config aws $E s3 presign s3://cli/small.txt --expires-in 300)"
case "$U" in *X-Amz-Signature=*) ;; *) exit 1;; esac
curl -fsS "$U" -o small.down
cmp small.txt small.down
# ... and as aws-cli v1 does by default for us-east-1: SigV2 (AWSAccessKeyId, Signature)
U="$(aws $E s3 presign s3://cli/small.txt --expires-in 300)"
curl -fsS "$U" -o small.down2
cmp small.txt small.down2
aws $E s3 rm s3://cli/small.txt
aws $E s3 rm --recursive s3://cli/
aws $E s3 rb s3://cli
"#,
        url = kc.cluster.url()
    );
    run_ok("aws-cli", &mut sb.bash(&script, Some(&kc.keys)));
}

/// rclone with an S3 remote (provider Other) given by environment variables: sync up a tree
/// of 50 mixed files (empty, tiny, 20 MiB), check, sync down, diff -r.
#[test]
fn rclone() {
    let dir = TempDir::new("rclone");
    let kc = keyed_cluster(&dir);
    let sb = Sandbox::new(&dir);
    make_tree(&sb.home.join("tree"), 50, 20 << 20);
    let mut c = sb.bash(
        r#"
rclone version
rclone mkdir dpy:rcl
rclone sync tree dpy:rcl/tree
rclone check tree dpy:rcl/tree
rclone sync dpy:rcl/tree down
diff -r tree down
rclone lsf -R dpy:rcl/tree > lsf.txt
test "$(grep -vc '/$' lsf.txt)" = 50
rclone size dpy:rcl/tree
echo changed > 'tree/docs/deep/2/file 2.bin'
rm 'tree/späce dir/file 3.bin'
rclone sync tree dpy:rcl/tree
rclone check tree dpy:rcl/tree
rclone purge dpy:rcl
"#,
        Some(&kc.keys),
    );
    c.env("RCLONE_CONFIG_DPY_TYPE", "s3")
        .env("RCLONE_CONFIG_DPY_PROVIDER", "Other")
        .env("RCLONE_CONFIG_DPY_ENDPOINT", kc.cluster.url())
        .env("RCLONE_CONFIG_DPY_ACCESS_KEY_ID", &kc.keys.access)
        .env("RCLONE_CONFIG_DPY_SECRET_ACCESS_KEY", &kc.keys.secret)
        .env("RCLONE_CONFIG_DPY_REGION", REGION)
        .env("RCLONE_CONFIG_DPY_FORCE_PATH_STYLE", "true")
        .env("RCLONE_VERBOSE", "1")
        // No retries: a request dpyfs gets wrong fails the test instead of being retried.
        .env("RCLONE_RETRIES", "1")
        .env("RCLONE_LOW_LEVEL_RETRIES", "1");
    run_ok("rclone", &mut c);
}

/// s3cmd with a generated config (path style, http, SigV4): mb, put, ls, get, del, rb; its
/// MD5 check on download must pass.
#[test]
fn s3cmd() {
    let dir = TempDir::new("s3cmd");
    let kc = keyed_cluster(&dir);
    let sb = Sandbox::new(&dir);
    let host = format!("127.0.0.1:{}", kc.cluster.director.port);
    fs::write(
        sb.home.join("s3cfg"),
        format!(
            "[default]\naccess_key = {}\nsecret_key = {}\nhost_base = {host}\n\
             host_bucket = {host}\nuse_https = False\nsignature_v2 = False\n\
             bucket_location = {REGION}\n",
            kc.keys.access, kc.keys.secret
        ),
    )
    .unwrap();
    fs::write(sb.home.join("small.txt"), "hello s3cmd\n").unwrap();
    fs::write(sb.home.join("mid.bin"), random_bytes(3 << 20, 7)).unwrap();
    let script = r#"
S="s3cmd -c s3cfg"
s3cmd --version
$S mb s3://s3c
$S ls
$S put small.txt s3://s3c/small.txt
$S put mid.bin s3://s3c/dir/mid.bin
$S ls s3://s3c > ls.txt
grep -q 's3://s3c/small.txt' ls.txt
grep -q 'DIR .*s3://s3c/dir/' ls.txt
$S ls -r s3://s3c > lsr.txt
grep -q 's3://s3c/dir/mid.bin' lsr.txt
$S info s3://s3c/small.txt
$S get s3://s3c/small.txt small.down 2> get.err
cat get.err >&2
! grep -qi 'md5' get.err   # s3cmd warns when the MD5 of what it got differs from the ETag
cmp small.txt small.down
$S get s3://s3c/dir/mid.bin mid.down 2> get2.err
cat get2.err >&2
! grep -qi 'md5' get2.err
cmp mid.bin mid.down
$S del s3://s3c/small.txt
$S del s3://s3c/dir/mid.bin
$S ls -r s3://s3c > empty.txt
test ! -s empty.txt
$S rb s3://s3c
"#;
    run_ok("s3cmd", &mut sb.bash(script, Some(&kc.keys)));
}

/// curl --aws-sigv4 (signed) put/get/list/delete, as the README shows.
#[test]
fn curl_sigv4() {
    let dir = TempDir::new("curl-sigv4");
    let kc = keyed_cluster(&dir);
    let sb = Sandbox::new(&dir);
    let script = format!(
        r#"
U={url}
S=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
curl -fsS "${{S[@]}}" -X PUT $U/sig
echo 'hello, signed dpyfs' > hello.txt
curl -fsS "${{S[@]}}" -T hello.txt $U/sig/hello.txt
curl -fsS "${{S[@]}}" $U/sig/hello.txt -o hello.down
cmp hello.txt hello.down
curl -fsS "${{S[@]}}" "$U/sig?list-type=2" | grep -q '<Key>hello.txt</Key>'
# unsigned, and wrongly signed, requests are refused with S3 error codes
test "$(curl -sS -o unsigned.xml -w '%{{http_code}}' $U/sig/hello.txt)" = 403
grep -q '<Code>AccessDenied</Code>' unsigned.xml
test "$(curl -sS -o bad.xml -w '%{{http_code}}' --aws-sigv4 aws:amz:us-east-1:s3 --user "$AWS_ACCESS_KEY_ID:wrong" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" $U/sig/hello.txt)" = 403
grep -q '<Code>SignatureDoesNotMatch</Code>' bad.xml
curl -fsS "${{S[@]}}" -X DELETE $U/sig/hello.txt
test "$(curl -sS "${{S[@]}}" -o /dev/null -w '%{{http_code}}' $U/sig/hello.txt)" = 404
curl -fsS "${{S[@]}}" -X DELETE $U/sig
"#,
        url = kc.cluster.url()
    );
    run_ok("curl --aws-sigv4", &mut sb.bash(&script, Some(&kc.keys)));
}

/// The ways a client can find a CA in its environment: cleared for the HTTPS tests below,
/// so each client trusts the cluster only through the flag or variable it is given.
const CA_ENV_VARS: [&str; 4] = [
    "AWS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
];

/// One client against an HTTPS director (issue 15): a signed cluster on TLS with the test
/// CA, and in the sandbox three files to upload and read back, `zero.bin` (0 B),
/// `five.bin` (5 MiB, one PUT) and `forty.bin` (40 MiB, multipart where the client does it).
struct Https {
    kc: KeyedCluster,
    sb: Sandbox,
}

const HTTPS_FILES: [(&str, usize); 3] = [("zero", 0), ("five", 5 << 20), ("forty", 40 << 20)];

impl Https {
    fn start(dir: &TempDir) -> Https {
        let kc = keyed_cluster_on(dir, Some(test_ca()));
        assert!(kc.cluster.url().starts_with("https://"));
        let sb = Sandbox::new(dir);
        for (i, (name, len)) in HTTPS_FILES.iter().enumerate() {
            fs::write(
                sb.home.join(format!("{name}.bin")),
                random_bytes(*len, 150 + i as u64),
            )
            .unwrap();
        }
        Https { kc, sb }
    }

    /// `script` in the sandbox with no CA in the environment, after a prelude that sets
    /// `U` (the director's https URL) and `CA` (the test CA's file) and defines `check B`:
    /// each `X.down` equals `X.bin`, and the ETags of `B/X.bin` (asked by curl --cacert)
    /// say one PUT for the 5 MiB file and a multipart upload for the 40 MiB one when
    /// `multipart` is set.
    fn bash(&self, script: &str, multipart: bool) -> Command {
        let forty_etag = if multipart {
            r#"[0-9a-f]\{32\}-[0-9]\+"#
        } else {
            r#"[0-9a-f]\{32\}"#
        };
        let prelude = format!(
            r#"
U={url}
CA={ca}
check() {{
  for f in zero five forty; do cmp $f.bin $f.down; done
  local H=(--cacert "$CA" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
  curl -fsSI "${{H[@]}}" "$U/$1/zero.bin" | tr -d '\r' | grep -qix 'etag: "d41d8cd98f00b204e9800998ecf8427e"'
  curl -fsSI "${{H[@]}}" "$U/$1/five.bin" | tr -d '\r' | grep -qix 'etag: "[0-9a-f]\{{32\}}"'
  curl -fsSI "${{H[@]}}" "$U/$1/forty.bin" | tr -d '\r' | grep -qix 'etag: "{forty_etag}"'
  curl -fsSI "${{H[@]}}" "$U/$1/forty.bin" | tr -d '\r' | grep -qix 'content-length: 41943040'
}}
"#,
            url = self.kc.cluster.url(),
            ca = test_ca().ca.display(),
        );
        let mut c = self
            .sb
            .bash(&format!("{prelude}{script}"), Some(&self.kc.keys));
        for var in CA_ENV_VARS {
            c.env_remove(var);
        }
        c
    }
}

/// rclone over HTTPS, trusting the cluster by `--ca-cert`: the three files up (40 MiB in
/// 5 MiB parts) and down.
#[test]
fn https_rclone_with_ca_cert() {
    let dir = TempDir::new("https-rclone");
    let h = Https::start(&dir);
    let mut c = h.bash(
        r#"
R=(rclone --ca-cert "$CA" --s3-upload-cutoff 8M --s3-chunk-size 5M)
"${R[@]}" mkdir dpy:rcl
for f in zero five forty; do "${R[@]}" copyto $f.bin dpy:rcl/$f.bin; done
for f in zero five forty; do "${R[@]}" copyto dpy:rcl/$f.bin $f.down; done
check rcl
"${R[@]}" check . dpy:rcl --include '*.bin'
"${R[@]}" purge dpy:rcl
"#,
        true,
    );
    c.env("RCLONE_CONFIG_DPY_TYPE", "s3")
        .env("RCLONE_CONFIG_DPY_PROVIDER", "Other")
        .env("RCLONE_CONFIG_DPY_ENDPOINT", h.kc.cluster.url())
        .env("RCLONE_CONFIG_DPY_ACCESS_KEY_ID", &h.kc.keys.access)
        .env("RCLONE_CONFIG_DPY_SECRET_ACCESS_KEY", &h.kc.keys.secret)
        .env("RCLONE_CONFIG_DPY_REGION", REGION)
        .env("RCLONE_CONFIG_DPY_FORCE_PATH_STYLE", "true")
        .env("RCLONE_RETRIES", "1")
        .env("RCLONE_LOW_LEVEL_RETRIES", "1");
    run_ok("rclone over HTTPS", &mut c);
}

/// s3cmd over HTTPS (`use_https`), trusting the cluster by `--ca-certs`: 40 MiB goes up in
/// its default 15 MB parts; its MD5 check of each download passes.
#[test]
fn https_s3cmd_with_ca_certs() {
    let dir = TempDir::new("https-s3cmd");
    let h = Https::start(&dir);
    let host = format!("127.0.0.1:{}", h.kc.cluster.director.port);
    fs::write(
        h.sb.home.join("s3cfg"),
        format!(
            "[default]\naccess_key = {}\nsecret_key = {}\nhost_base = {host}\n\
             host_bucket = {host}\nuse_https = True\nsignature_v2 = False\n\
             bucket_location = {REGION}\n",
            h.kc.keys.access, h.kc.keys.secret
        ),
    )
    .unwrap();
    let script = r#"
S=(s3cmd -c s3cfg --ca-certs="$CA")
"${S[@]}" mb s3://s3c
for f in zero five forty; do "${S[@]}" put $f.bin s3://s3c/$f.bin; done
for f in zero five forty; do
  "${S[@]}" get s3://s3c/$f.bin $f.down 2> get.err
  cat get.err >&2
  ! grep -qi 'md5' get.err
done
check s3c
"${S[@]}" del --recursive --force s3://s3c
"${S[@]}" rb s3://s3c
"#;
    run_ok("s3cmd over HTTPS", &mut h.bash(script, true));
}

/// restic over HTTPS with `--cacert`: a backup of the three files, a check that reads every
/// pack back, a restore. restic uploads each pack with one PUT (its S3 backend asks for
/// multipart only beyond 200 MiB), so the packs are large single PUTs here (`--pack-size 64`).
#[test]
fn https_restic_with_cacert() {
    let dir = TempDir::new("https-restic");
    let h = Https::start(&dir);
    let script = r#"
restic version
export RESTIC_PASSWORD=dpyfs-test-password
R=(restic --cacert "$CA" --no-cache -r "s3:$U/rst")
"${R[@]}" init
mkdir data
cp zero.bin five.bin forty.bin data/
"${R[@]}" backup --pack-size 64 data
"${R[@]}" check --read-data
"${R[@]}" restore latest --target restored
back="$(dirname "$(find restored -name forty.bin)")"
diff -r data "$back"
"#;
    let mut c = h.bash(script, false);
    run_ok("restic over HTTPS", &mut c);
}

/// curl over HTTPS with `--cacert`, signed: the 0 B and 5 MiB files by PUT, the 40 MiB one
/// by a multipart upload done by hand, whose CompleteMultipartUpload names the object by
/// its https:// URL.
#[test]
fn https_curl_with_cacert() {
    let dir = TempDir::new("https-curl");
    let h = Https::start(&dir);
    let script = r#"
S=(--cacert "$CA" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
curl -fsS "${S[@]}" -X PUT $U/crl
curl -fsS "${S[@]}" -T zero.bin $U/crl/zero.bin
curl -fsS "${S[@]}" -T five.bin $U/crl/five.bin
curl -fsS "${S[@]}" -X POST "$U/crl/forty.bin?uploads" > create.xml
ID="$(sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p' create.xml)"
test -n "$ID"
split -b 16M -d forty.bin part.
n=1
parts=""
for p in part.*; do
  curl -fsS "${S[@]}" -T $p -D headers.txt -o /dev/null "$U/crl/forty.bin?partNumber=$n&uploadId=$ID"
  E="$(tr -d '\r' < headers.txt | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')"
  parts="$parts<Part><PartNumber>$n</PartNumber><ETag>$E</ETag></Part>"
  n=$((n + 1))
done
test $n = 4
echo "<CompleteMultipartUpload>$parts</CompleteMultipartUpload>" > complete.xml
curl -fsS "${S[@]}" -X POST --data-binary @complete.xml "$U/crl/forty.bin?uploadId=$ID" > done.xml
cat done.xml
grep -q "<Location>$U/crl/forty.bin</Location>" done.xml
: > zero.down   # curl writes no file for an empty body
for f in zero five forty; do curl -fsS "${S[@]}" $U/crl/$f.bin -o $f.down; done
check crl
for f in zero five forty; do curl -fsS "${S[@]}" -X DELETE $U/crl/$f.bin; done
curl -fsS "${S[@]}" -X DELETE $U/crl
"#;
    run_ok("curl over HTTPS", &mut h.bash(script, true));
}

/// aws-cli over HTTPS, trusting the cluster by `AWS_CA_BUNDLE`: `aws s3 cp` of the three
/// files up (botocore's aws-chunked framing with trailing checksums over TLS; 40 MiB in
/// 8 MiB parts) and down, and the low-level multipart calls, whose answer carries the
/// object's https:// Location.
#[test]
fn https_aws_cli_with_aws_ca_bundle() {
    let dir = TempDir::new("https-awscli");
    let h = Https::start(&dir);
    let script = r#"
export AWS_CA_BUNDLE="$CA"
E=(--endpoint-url "$U")
aws "${E[@]}" s3 mb s3://awc
for f in zero five forty; do aws "${E[@]}" s3 cp $f.bin s3://awc/$f.bin; done
for f in zero five forty; do aws "${E[@]}" s3 cp s3://awc/$f.bin $f.down; done
check awc
ID="$(aws "${E[@]}" s3api create-multipart-upload --bucket awc --key low.bin --query UploadId --output text)"
head -c 6000000 forty.bin > low.1
aws "${E[@]}" s3api upload-part --bucket awc --key low.bin --part-number 1 --body low.1 --upload-id "$ID" --query ETag --output text > etag.txt
printf '{"Parts":[{"PartNumber":1,"ETag":%s}]}' "$(cat etag.txt)" > parts.json
aws "${E[@]}" s3api complete-multipart-upload --bucket awc --key low.bin --upload-id "$ID" --multipart-upload file://parts.json > done.json
cat done.json
grep -q "\"Location\": \"$U/awc/low.bin\"" done.json
aws "${E[@]}" s3 rm --recursive s3://awc/
aws "${E[@]}" s3 rb s3://awc
"#;
    run_ok("aws-cli over HTTPS", &mut h.bash(script, true));
}

/// Plain unsigned curl against an open director (no keys file).
fn curl_unsigned_script(url: &str) -> String {
    format!(
        r#"
U={url}
curl -fsS -X PUT $U/open
echo 'hello, open dpyfs' > hello.txt
curl -fsS -T hello.txt $U/open/hello.txt
curl -fsS $U/open/hello.txt -o hello.down
cmp hello.txt hello.down
curl -fsS "$U/open?list-type=2" | grep -q '<Key>hello.txt</Key>'
curl -fsS "$U/open" | grep -q '<Key>hello.txt</Key>'
curl -fsSI $U/open/hello.txt | grep -qi '^etag: "'
curl -fsS -X DELETE $U/open/hello.txt
test "$(curl -sS -o missing.xml -w '%{{http_code}}' $U/open/hello.txt)" = 404
grep -q '<Code>NoSuchKey</Code>' missing.xml
curl -fsS -X DELETE $U/open
"#
    )
}

#[test]
fn curl_unsigned_open_director() {
    let dir = TempDir::new("curl-open");
    let cluster = Cluster::start(&dir, 3, 2, &[]);
    let sb = Sandbox::new(&dir);
    run_ok(
        "curl (unsigned)",
        &mut sb.bash(&curl_unsigned_script(&cluster.url()), None),
    );
}

/// A base port with `n` free ports after it.
fn free_port_run(n: u16) -> u16 {
    for _ in 0..50 {
        let base = free_port();
        if base > 60000 {
            continue;
        }
        if (0..=n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no run of {n} free ports found");
}

/// `make run`'s cluster (`dpyfs dev`): unsigned curl and the boto3 suite (unsigned) against
/// it. On its default port 7070 when 7070-7073 are free, else on a free run of ports.
#[test]
fn dev_cluster_curl_and_boto3() {
    let dir = TempDir::new("dev-clients");
    let default_free = (7070..=7073).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
    let port = if default_free { 7070 } else { free_port_run(3) };
    let data = dir.path().join("data");
    let mut child = command("dpyfs")
        .args([
            "dev",
            "--dir",
            data.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Killed by PID whatever happens below.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            stop_by_pid(&mut self.0);
        }
    }
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _stop = Stop(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    assert!(line.contains(&format!("director at {url}")), "{line}");
    let sb = Sandbox::new(&dir);
    run_ok(
        "curl (unsigned, dpyfs dev)",
        &mut sb.bash(&curl_unsigned_script(&url), None),
    );
    python_suite(
        &sb,
        "boto3 (unsigned, dpyfs dev)",
        &[
            "--endpoint",
            &url,
            "--unsigned",
            "--checksums",
            "when_supported",
        ],
        None,
    );
}

/// SIGTERM by PID (dpyfs dev stops its daemons on it), then SIGKILL if it lingers; reaped.
fn stop_by_pid(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn parse_key_reads_json_and_lines() {
    let k = parse_key(r#"{"access_key":"DPYAAA","secret_key":"sss"}"#).unwrap();
    assert_eq!((k.access.as_str(), k.secret.as_str()), ("DPYAAA", "sss"));
    let k = parse_key("Access key id: DPYBBB\nSecret access key: s/t+u\n").unwrap();
    assert_eq!((k.access.as_str(), k.secret.as_str()), ("DPYBBB", "s/t+u"));
    let k = parse_key("AWS_ACCESS_KEY_ID=DPYCCC\nAWS_SECRET_ACCESS_KEY=a+b/c=\n").unwrap();
    assert_eq!((k.access.as_str(), k.secret.as_str()), ("DPYCCC", "a+b/c="));
    assert!(parse_key("nothing here").is_none());
}

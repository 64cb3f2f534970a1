//! HTTPS with the cluster's own CA (issue 15): `dpyfs ca`, stores requiring client
//! certificates, a director on HTTPS verifying its stores, the tools with `--ca`,
//! `DPYFS_CA` and `AWS_CA_BUNDLE`, rotation without a restart, expiry warnings, and every
//! bad input refused with a log line while the daemon goes on serving.
//!
//! Clients other than our own are curl (`--cacert`, `--cert`, `--key`), as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn dpyfs(args: &[&str]) -> Output {
    command("dpyfs").args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// curl with `args`; returns (exit code, stdout + stderr).
fn curl(args: &[&str]) -> (i32, String) {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .expect("curl is needed: apt-get install curl");
    (o.status.code().unwrap_or(-1), text(&o))
}

/// curl to `url` trusting `ca`, presenting `client` (a `TestCa`'s cert and key) if given.
fn curl_tls(url: &str, ca: &Path, client: Option<&TestCa>) -> (i32, String) {
    let mut args = vec!["--cacert", ca.to_str().unwrap()];
    if let Some(c) = client {
        args.extend([
            "--cert",
            c.cert.to_str().unwrap(),
            "--key",
            c.key.to_str().unwrap(),
        ]);
    }
    args.push(url);
    curl(&args)
}

/// A store on HTTPS requiring client certificates of `ca`.
fn tls_store(dir: &TempDir, ca: &TestCa) -> Daemon {
    let data = dir.path().join("store");
    let mut args = vec![
        "--listen".to_string(),
        "127.0.0.1:{port}".into(),
        "--data".into(),
        data.to_str().unwrap().into(),
        "--scrub-rate".into(),
        "0".into(),
    ];
    args.extend(ca.store_args());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start("dpyfs-store", &argv, dir.path())
}

#[test]
fn ca_init_issue_show_and_their_refusals() {
    let dir = TempDir::new("tls-ca");
    let ca_dir = dir.path().join("ca");
    let ca = ca_dir.to_str().unwrap();
    let o = dpyfs(&["ca", "init", ca]);
    assert!(o.status.success(), "{}", text(&o));
    let mode = |f: &str| {
        std::fs::metadata(ca_dir.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("ca.key"), 0o600);
    let o = dpyfs(&[
        "ca",
        "issue",
        ca,
        "nas",
        "--ip",
        "10.1.2.3",
        "--dns",
        "nas.local",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(mode("nas.key"), 0o600);
    let o = dpyfs(&["ca", "show", ca_dir.join("nas.crt").to_str().unwrap()]);
    let shown = text(&o);
    assert!(o.status.success(), "{shown}");
    assert!(shown.contains("subject:    nas\n"), "{shown}");
    assert!(shown.contains("nas.local, 10.1.2.3"), "{shown}");
    assert!(shown.contains("days left"), "{shown}");
    let o = dpyfs(&["ca", "show", ca_dir.join("ca.crt").to_str().unwrap()]);
    assert!(text(&o).contains("(CA)"), "{}", text(&o));

    // A second init would orphan every certificate: refused, the key unchanged.
    let key = std::fs::read(ca_dir.join("ca.key")).unwrap();
    let o = dpyfs(&["ca", "init", ca]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("exists already"), "{}", text(&o));
    assert_eq!(std::fs::read(ca_dir.join("ca.key")).unwrap(), key);
    // Bad names and addresses, a missing CA, a file that is no certificate.
    let o = dpyfs(&["ca", "issue", ca, "../evil", "--ip", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!dir.path().join("evil.crt").exists());
    let o = dpyfs(&["ca", "issue", ca, "x", "--ip", "not-an-ip"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = dpyfs(&[
        "ca",
        "issue",
        dir.path().join("none").to_str().unwrap(),
        "x",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = dpyfs(&["ca", "show", ca_dir.join("nas.key").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no certificate"), "{}", text(&o));
    let o = dpyfs(&["ca", "frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn store_with_client_ca_refuses_bad_clients_and_goes_on_serving() {
    let dir = TempDir::new("tls-mtls");
    let ca = TestCa::make(&dir.path().join("ca"), "store", &[]);
    let director = TestCa::make(&ca.dir, "director", &[]);
    let expired = TestCa::make(&ca.dir, "expired", &["--days", "0"]);
    let foreign = TestCa::make(&dir.path().join("other"), "intruder", &[]);
    let store = tls_store(&dir, &ca);
    let status = format!("{}/status", store.url());
    assert!(status.starts_with("https://"));

    let (code, out) = curl_tls(&status, &ca.ca, Some(&director));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"chunks\""), "{out}");

    let refusals = [
        (None, "peer sent no certificates"),
        (Some(&foreign), "UnknownIssuer"),
        (Some(&expired), "certificate expired"),
    ];
    for (client, why) in refusals {
        let (code, out) = curl_tls(&status, &ca.ca, client);
        assert_ne!(code, 0, "{why}: {out}");
        wait_for(10_000, why, || {
            let log = store.log_text();
            log.lines()
                .any(|l| l.contains("refused a TLS connection") && l.contains(why))
                .then_some(())
        });
    }
    // Plain HTTP to the TLS port: a readable 400, and a log line.
    let (code, out) = curl(&[&status.replace("https://", "http://")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("speaks HTTPS only"), "{out}");
    assert!(store.log_text().contains("plain HTTP from 127.0.0.1"));

    // The store is unaffected by all of this.
    let (code, out) = curl_tls(&status, &ca.ca, Some(&director));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn tls_hello_on_a_plain_port_is_logged_and_closed() {
    let dir = TempDir::new("tls-plain");
    let store = Cluster::store(&dir, 1, &[]);
    let https = format!("{}/status", store.url().replace("http://", "https://"));
    let (code, out) = curl(&["--insecure", &https]);
    assert_ne!(code, 0, "{out}");
    wait_for(10_000, "the TLS-hello log line", || {
        store.log_text().contains("a TLS hello from").then_some(())
    });
    assert!(get(&format!("{}/status", store.url())).unwrap().status == 200);
}

#[test]
fn a_wrong_host_name_is_refused_by_the_tools() {
    let dir = TempDir::new("tls-name");
    let ca_dir = dir.path().join("ca");
    let ca = ca_dir.to_str().unwrap();
    assert!(dpyfs(&["ca", "init", ca]).status.success());
    // A certificate for another host only.
    assert!(
        dpyfs(&["ca", "issue", ca, "elsewhere", "--dns", "elsewhere.example"])
            .status
            .success()
    );
    let tls = TestCa {
        dir: ca_dir.clone(),
        ca: ca_dir.join("ca.crt"),
        cert: ca_dir.join("elsewhere.crt"),
        key: ca_dir.join("elsewhere.key"),
    };
    let d = dir.path().join("director");
    let args = [
        "--listen".to_string(),
        "127.0.0.1:{port}".into(),
        "--data".into(),
        d.to_str().unwrap().into(),
        "--store".into(),
        "http://127.0.0.1:9".into(),
        "--tls-cert".into(),
        tls.cert.to_str().unwrap().into(),
        "--tls-key".into(),
        tls.key.to_str().unwrap().into(),
    ];
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let director = Daemon::start("dpyfs-director", &argv, dir.path());
    let o = command("dpyfs")
        .args([
            "--ca",
            tls.ca.to_str().unwrap(),
            "--url",
            &director.url(),
            "status",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("not valid for name"), "{}", text(&o));
    // curl agrees, and so does a dpyfs-get, which does not retry a refused certificate.
    let (code, out) = curl_tls(&format!("{}/status", director.url()), &tls.ca, None);
    assert_ne!(code, 0, "{out}");
    let o = command("dpyfs-get")
        .args([
            "--ca",
            tls.ca.to_str().unwrap(),
            "--url",
            &director.url(),
            "bucket/key",
            "-",
        ])
        .output()
        .unwrap();
    assert!(text(&o).contains("not valid for name"), "{}", text(&o));
    assert!(!text(&o).contains("retry"), "{}", text(&o));
}

/// Three stores with mutual TLS and a director on HTTPS (the test CA): the tools, given
/// the CA by flag or by environment, store and read back; `dpyfs status` warns of a
/// certificate close to its expiry.
#[test]
fn a_whole_cluster_over_https_with_the_tools() {
    let dir = TempDir::new("tls-cluster");
    let ca = TestCa::make(&dir.path().join("ca"), "localhost", &[]);
    // The director's own certificate expires in 10 days: a warning, not a failure.
    let short = TestCa::make(&ca.dir, "director", &["--days", "10"]);
    let stores: Vec<Daemon> = (1..=3)
        .map(|i| {
            let mut extra = ca.store_args();
            extra.extend(["--scrub-rate".into(), "0".into()]);
            let argv: Vec<&str> = extra.iter().map(String::as_str).collect();
            Cluster::store(&dir, i, &argv)
        })
        .collect();
    let data = dir.path().join("director");
    let mut args = vec![
        "--listen".to_string(),
        "127.0.0.1:{port}".into(),
        "--data".into(),
        data.to_str().unwrap().into(),
        "--replicas".into(),
        "2".into(),
    ];
    for s in &stores {
        assert!(s.url().starts_with("https://"));
        args.extend(["--store".to_string(), s.url()]);
    }
    args.extend(short.director_args());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let director = Daemon::start("dpyfs-director", &argv, dir.path());
    let url = director.url();
    let ca_path = ca.ca.to_str().unwrap();

    let src = dir.path().join("five.bin");
    let data = random_bytes(5 << 20, 15);
    std::fs::write(&src, &data).unwrap();
    let o = command("dpyfs-put")
        .args(["--ca", ca_path, "--url", &url, "--mkbucket", "-q"])
        .arg(&src)
        .arg("tls")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // The stores sent the chunks on to each other (chain replication) over mutual TLS.
    let forwarded: u64 = stores
        .iter()
        .map(|s| {
            let (code, body) = curl_tls(&format!("{}/status", s.url()), &ca.ca, Some(&short));
            assert_eq!(code, 0, "{body}");
            let st: serde_json::Value = serde_json::from_str(&body).unwrap();
            st["forwarded"]["bytes"].as_u64().unwrap()
        })
        .sum();
    assert!(
        forwarded >= 4 << 20,
        "only {forwarded} bytes forwarded between stores"
    );
    // DPYFS_CA, then AWS_CA_BUNDLE, as the environment gives them.
    for var in ["DPYFS_CA", "AWS_CA_BUNDLE"] {
        let o = command("dpyfs-get")
            .env_remove("DPYFS_CA")
            .env(var, ca_path)
            .args(["--url", &url, "-q", "tls/five.bin", "-"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{var}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.stdout == data, "{var}: the bytes differ");
    }
    let o = command("dpyfs")
        .env("DPYFS_CA", ca_path)
        .args(["--url", &url, "ls", "tls"])
        .output()
        .unwrap();
    assert!(text(&o).contains("five.bin"), "{}", text(&o));
    let o = command("dpyfs")
        .args(["--ca", ca_path, "--url", &url, "status"])
        .output()
        .unwrap();
    let st = text(&o);
    assert!(
        st.contains("3 up") || st.matches(" up ").count() >= 3,
        "{st}"
    );
    assert!(
        st.contains("warning: certificate") && st.contains("director.crt expires in"),
        "{st}"
    );
    let (code, page) = curl_tls(&format!("{url}/_dpyfs/"), &ca.ca, None);
    assert_eq!(code, 0, "{page}");
    assert!(
        page.contains("director.crt expires in"),
        "the status page shows the warning"
    );
    // Without the CA the tools refuse the director's certificate, and say how to fix it.
    let o = command("dpyfs")
        .env_remove("DPYFS_CA")
        .env_remove("AWS_CA_BUNDLE")
        .args(["--url", &url, "ls", "tls"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("--ca FILE"), "{}", text(&o));
}

/// A store's certificate re-issued on disk is served to new connections without a
/// restart: first valid for another name only, then for 127.0.0.1.
#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = TempDir::new("tls-rotate");
    let ca_dir = dir.path().join("ca");
    let ca = ca_dir.to_str().unwrap();
    assert!(dpyfs(&["ca", "init", ca]).status.success());
    assert!(
        dpyfs(&["ca", "issue", ca, "store", "--dns", "old.example"])
            .status
            .success()
    );
    let client = TestCa::make(&ca_dir, "director", &[]);
    let tls = TestCa {
        dir: ca_dir.clone(),
        ca: ca_dir.join("ca.crt"),
        cert: ca_dir.join("store.crt"),
        key: ca_dir.join("store.key"),
    };
    let store = tls_store(&dir, &tls);
    let pid = store.pid();
    let status = format!("{}/status", store.url());
    let (code, out) = curl_tls(&status, &tls.ca, Some(&client));
    assert_ne!(
        code, 0,
        "the old certificate does not name 127.0.0.1: {out}"
    );
    assert!(
        dpyfs(&["ca", "issue", ca, "store", "--ip", "127.0.0.1"])
            .status
            .success()
    );
    wait_for(15_000, "the renewed certificate", || {
        (curl_tls(&status, &tls.ca, Some(&client)).0 == 0).then_some(())
    });
    assert_eq!(store.pid(), pid, "the same process serves it");
    assert!(store.log_text().contains("read") && store.log_text().contains("again"));

    // Renewed again (100 days) while requests keep coming, each on a new connection:
    // not one fails, and the new expiry is served.
    let expiry = |days: &str| {
        let v = curl(&[
            "-v",
            "--cacert",
            tls.ca.to_str().unwrap(),
            "--cert",
            client.cert.to_str().unwrap(),
            "--key",
            client.key.to_str().unwrap(),
            &status,
        ])
        .1;
        let line = v
            .lines()
            .find(|l| l.contains("expire date"))
            .unwrap_or("")
            .to_string();
        (!days.is_empty() && line.contains(days)).then_some(line)
    };
    let load = {
        let (status, ca, client) = (status.clone(), tls.ca.clone(), client.clone());
        std::thread::spawn(move || {
            (0..40)
                .map(|_| curl_tls(&status, &ca, Some(&client)))
                .filter(|(code, _)| *code != 0)
                .collect::<Vec<_>>()
        })
    };
    assert!(
        dpyfs(&[
            "ca",
            "issue",
            ca,
            "store",
            "--ip",
            "127.0.0.1",
            "--days",
            "100"
        ])
        .status
        .success()
    );
    let failed = load.join().unwrap();
    assert!(
        failed.is_empty(),
        "requests failed during the renewal: {failed:?}"
    );
    let in_100_days =
        dpyfs::timefmt::http_date((dpyfs::timefmt::now_ms() / 1000 + 100 * 86_400) * 1000);
    // curl prints "expire date: Mar 16 06:00:00 2027 GMT": the month, day and year match.
    let parts: Vec<&str> = in_100_days.split_whitespace().collect();
    let (day, month, year) = (parts[1].trim_start_matches('0'), parts[2], parts[3]);
    wait_for(15_000, "the 100-day certificate", || {
        let line = expiry(year)?;
        (line.contains(month) && line.contains(&format!(" {day} "))).then_some(())
    });
}

/// `dpyfs dev --tls`: a CA in the data folder, the whole cluster on HTTPS, and the lines
/// that make a shell trust it; curl and the tools work with them.
#[test]
fn dpyfs_dev_tls_runs_the_cluster_on_https() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("tls-dev");
    let port = loop {
        let p = free_port();
        if p < 60000 && (1..=2).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok()) {
            break p;
        }
    };
    let data = dir.path().join("data");
    let mut child = command("dpyfs")
        .args([
            "dev",
            "--tls",
            "--stores",
            "2",
            "--port",
            &port.to_string(),
            "--dir",
        ])
        .arg(&data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    while let Some(Ok(l)) = lines.next() {
        banner.push_str(&l);
        banner.push('\n');
        if l.starts_with("try:") {
            break;
        }
    }
    let ca = data.join("tls").join("ca.crt");
    let url = format!("https://127.0.0.1:{port}");
    let result = std::panic::catch_unwind(|| {
        assert!(banner.contains(&format!("director at {url}")), "{banner}");
        assert!(
            banner.contains(&format!("DPYFS_CA={}", ca.display())),
            "{banner}"
        );
        let (code, out) = curl_tls(&format!("{url}/devbucket"), &ca, None);
        assert_eq!(code, 0, "{out}");
        let (code, out) = curl(&[
            "--cacert",
            ca.to_str().unwrap(),
            "-X",
            "PUT",
            &format!("{url}/devbucket"),
        ]);
        assert_eq!(code, 0, "{out}");
        let o = command("dpyfs")
            .env("DPYFS_CA", &ca)
            .args(["--url", &url, "status"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let st = text(&o);
        assert!(st.contains(&url) && st.contains("up"), "{st}");
        // The stores speak HTTPS and want a client certificate.
        let (code, _) = curl_tls(&format!("https://127.0.0.1:{}/status", port + 1), &ca, None);
        assert_ne!(code, 0);
    });
    let _ = dpyfs::sys::terminate(child.id());
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// The URLs a director writes for itself name the scheme it serves: a completed multipart
/// upload's `Location` is https:// on a TLS listener and http:// on a plain one.
#[test]
fn a_completed_upload_is_located_by_the_scheme_it_was_sent_over() {
    let dir = TempDir::new("tls-location");
    let tls = Cluster::start_on(&dir, 1, 1, &[], &["--scrub-rate", "0"], Some(test_ca()));
    let plain_dir = TempDir::new("plain-location");
    let plain = Cluster::start_on(&plain_dir, 1, 1, &[], &["--scrub-rate", "0"], None);
    for (cluster, scheme) in [(&tls, "https"), (&plain, "http")] {
        let url = cluster.url();
        assert!(url.starts_with(&format!("{scheme}://")), "{url}");
        assert_eq!(put(&format!("{url}/loc"), b"").unwrap().status, 200);
        let object = format!("{url}/loc/a%20b/c.bin");
        let created = request("POST", &format!("{object}?uploads"), &[], Some(b"")).unwrap();
        assert_eq!(created.status, 200, "{}", created.text());
        let id = xml_values(&created.text(), "UploadId").remove(0);
        let part = put(&format!("{object}?partNumber=1&uploadId={id}"), b"one part").unwrap();
        assert_eq!(part.status, 200, "{}", part.text());
        let etag = part.header("etag").unwrap().to_string();
        let body = format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>\
             <ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
        );
        let done = request(
            "POST",
            &format!("{object}?uploadId={id}"),
            &[],
            Some(body.as_bytes()),
        )
        .unwrap();
        assert_eq!(done.status, 200, "{}", done.text());
        assert_eq!(
            xml_values(&done.text(), "Location"),
            std::slice::from_ref(&object)
        );
        assert_eq!(get(&object).unwrap().body, b"one part");
    }
}

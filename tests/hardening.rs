//! The HTTP edge under attack (issue 18 items 3, 4, 5, 7 and 9): raw requests a client
//! library would never send, against the real `dpyfs-store` and `dpyfs-director`. Each
//! test checks the answer, that the connection is closed where it must be, and that the
//! daemon goes on serving afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a test waits for an answer the daemon should give at once.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// What the server sent on one connection and whether it closed it.
struct Exchange {
    text: String,
    closed: bool,
}

impl Exchange {
    fn status(&self) -> u16 {
        self.text
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {:?}", self.text))
    }

    /// How many responses came (each carries one `Server` header).
    fn responses(&self) -> usize {
        self.text.matches("\r\nServer: ").count()
    }
}

/// Reads everything until the server closes (or `wait` passes without a byte).
fn read_all(s: &mut TcpStream, wait: Duration) -> Exchange {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false;
            }
            // A reset after the answer also means the server closed.
            Err(_) => break true,
        }
    };
    Exchange {
        text: String::from_utf8_lossy(&out).into_owned(),
        closed,
    }
}

/// Sends `bytes` on a new connection (write errors ignored: the server may close early)
/// and reads the answer until the server closes.
fn exchange(port: u16, bytes: &[u8]) -> Exchange {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = s.write_all(bytes);
    // Half-closed, as a client that has sent all it will: the server's lingering close then
    // ends at once.
    let _ = s.shutdown(std::net::Shutdown::Write);
    read_all(&mut s, ANSWER_WAIT)
}

fn assert_refused(port: u16, what: &str, bytes: &[u8], status: u16) {
    let ex = exchange(port, bytes);
    assert_eq!(ex.status(), status, "{what}: {:?}", ex.text);
    assert!(ex.closed, "{what}: the connection stayed open");
    assert_eq!(
        ex.responses(),
        1,
        "{what}: leftover bytes answered: {:?}",
        ex.text
    );
    assert!(
        ex.text.to_ascii_lowercase().contains("connection: close"),
        "{what}: {:?}",
        ex.text
    );
}

fn assert_serving(url: &str) {
    let r = get(url).unwrap();
    assert_eq!(r.status, 200, "{url}: {}", r.text());
}

fn one_store_cluster(dir: &TempDir, extra: &[&str]) -> Cluster {
    Cluster::start(dir, 1, 1, extra)
}

/// Item 3: a request line or header over 16 KiB, a head over 64 KiB or over 100 headers is
/// refused (414/431) and the connection closed; a 64 MiB header line costs no memory.
#[test]
fn oversized_request_heads_are_refused_and_memory_stays_flat() {
    let dir = TempDir::new("edge-heads");
    let c = one_store_cluster(&dir, &[]);
    let store = &c.stores[0];
    let daemons = [(store, "/status"), (&c.director, "/_dpyfs/status")];
    for (d, path) in daemons {
        let status_url = format!("{}{path}", d.url());
        let long = "a".repeat(20 * 1024);
        let line = format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Long: {long}\r\n\r\n");
        assert_refused(d.port, "a 20 KiB header", line.as_bytes(), 431);
        let uri = format!("GET /{long} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_refused(d.port, "a 20 KiB request line", uri.as_bytes(), 414);
        let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
        let req = format!("GET /status HTTP/1.1\r\n{many}\r\n");
        assert_refused(d.port, "101 headers", req.as_bytes(), 431);
        let eight = "b".repeat(8 * 1024);
        let big: String = (0..9).map(|i| format!("X-B{i}: {eight}\r\n")).collect();
        let req = format!("GET /status HTTP/1.1\r\n{big}\r\n");
        assert_refused(d.port, "a 72 KiB head", req.as_bytes(), 431);
        // A 15 KiB header is within the limits and answered normally.
        let ok = format!(
            "GET {path} HTTP/1.0\r\nX-Ok: {}\r\n\r\n",
            "c".repeat(15_000)
        );
        let ex = exchange(d.port, ok.as_bytes());
        assert_eq!(ex.status(), 200, "{:?}", ex.text);

        // A 64 MiB header line, sent as fast as the daemon takes it.
        let pid = d.pid().unwrap();
        let before = rss_bytes(pid).unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_write_timeout(Some(ANSWER_WAIT)).unwrap();
        let _ = s.write_all(b"GET /status HTTP/1.1\r\nX-Huge: ");
        let block = vec![b'h'; 1 << 20];
        let mut sent = 0u64;
        for _ in 0..64 {
            if s.write_all(&block).is_err() {
                break;
            }
            sent += 1 << 20;
        }
        drop(s);
        let after = rss_bytes(pid).unwrap();
        assert!(
            after < before + (16 << 20),
            "RSS grew from {before} to {after} bytes after a {sent}-byte header"
        );
        assert_serving(&status_url);
    }
}

/// Item 7: the request smuggling shapes are refused with 400 and the connection closed; the
/// bytes after them are never answered as a second request, and nothing is stored.
#[test]
fn smuggling_framings_are_refused_and_nothing_is_stored() {
    let dir = TempDir::new("edge-smuggle");
    let c = one_store_cluster(&dir, &[]);
    assert_eq!(
        request("PUT", &format!("{}/smug", c.url()), &[], None)
            .unwrap()
            .status,
        200
    );
    let body = b"hello";
    let hex = sha256_hex(body);
    let then = "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
    let shapes: &[(&str, &str, &str)] = &[
        (
            "two different lengths",
            "Content-Length: 5\r\nContent-Length: 40\r\n",
            "hello",
        ),
        (
            "two equal lengths",
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            "hello",
        ),
        (
            "length and chunked",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "chunked and length",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        ("gzip coding", "Transfer-Encoding: gzip\r\n", "hello"),
        (
            "gzip, chunked",
            "Transfer-Encoding: gzip, chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "two codings",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        ("a signed length", "Content-Length: +5\r\n", "hello"),
        ("a list length", "Content-Length: 5, 5\r\n", "hello"),
        (
            "a space before the colon",
            "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n",
            "hello",
        ),
        (
            "a folded line",
            "Content-Length: 5\r\n Transfer-Encoding: chunked\r\n",
            "hello",
        ),
    ];
    let targets = [
        (c.stores[0].port, format!("/chunks/{hex}")),
        (c.director.port, "/smug/k".to_string()),
    ];
    for (port, path) in &targets {
        for (what, headers, payload) in shapes {
            let req = format!("PUT {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n{payload}{then}");
            assert_refused(*port, what, req.as_bytes(), 400);
        }
        let req = format!(
            "PUT {path} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        );
        assert_refused(*port, "chunked in HTTP/1.0", req.as_bytes(), 400);
    }
    let chunks = files_under(&dir.path().join("store1").join("chunks"));
    assert!(chunks.is_empty(), "stored: {chunks:?}");
    let r = get(&format!("{}/smug/k", c.url())).unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
    // One clean chunked upload on a kept-alive connection, then a second request on it.
    let req = format!(
        "PUT /chunks/{hex} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{then}"
    );
    let mut s = TcpStream::connect(("127.0.0.1", c.stores[0].port)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let ex = read_all(&mut s, ANSWER_WAIT);
    assert!(ex.text.starts_with("HTTP/1.1 201"), "{:?}", ex.text);
    assert_eq!(ex.responses(), 3, "{:?}", ex.text);
}

/// Item 9: an HTTP/0.9 line is answered at once; a head trickled one byte a second is cut
/// off at its deadline (15 s) with 408, long before the idle timeout (60 s).
#[test]
fn http09_lines_and_slow_heads_are_closed() {
    let dir = TempDir::new("edge-slowhead");
    let c = one_store_cluster(&dir, &[]);
    for (port, path) in [
        (c.stores[0].port, "/status"),
        (c.director.port, "/_dpyfs/status"),
    ] {
        for (what, bytes, status) in [
            ("GET / CRLF", &b"GET /\r\n"[..], 400),
            ("GET / LF", &b"GET /\n"[..], 400),
            ("HTTP/0.9", &b"GET / HTTP/0.9\r\n\r\n"[..], 505),
            ("HTTP/2.0", &b"GET / HTTP/2.0\r\n\r\n"[..], 505),
            (
                "bare CR",
                &b"GET /status HTTP/1.1\r\nX: a\rb\r\n\r\n"[..],
                400,
            ),
        ] {
            assert_refused(port, what, bytes, status);
        }
        // A line-feed-only request is a request.
        let ex = exchange(port, format!("GET {path} HTTP/1.0\n\n").as_bytes());
        assert_eq!(ex.status(), 200, "{:?}", ex.text);
    }
    // Slowloris, on both daemons at once.
    let mut conns: Vec<TcpStream> = [c.stores[0].port, c.director.port]
        .iter()
        .map(|p| {
            let mut s = TcpStream::connect(("127.0.0.1", *p)).unwrap();
            s.write_all(b"GET /status HTTP/1.1\r\nX-Slow: ").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(900)))
                .unwrap();
            s
        })
        .collect();
    let mut answers: Vec<Option<String>> = vec![None; conns.len()];
    let mut buf = [0u8; 1024];
    for _ in 0..50 {
        for (s, a) in conns.iter_mut().zip(answers.iter_mut()) {
            if a.is_some() {
                continue;
            }
            let _ = s.write_all(b"x");
            match s.read(&mut buf) {
                Ok(n) => *a = Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => *a = Some(format!("error {e}")),
            }
        }
        if answers.iter().all(Option::is_some) {
            break;
        }
    }
    for a in &answers {
        let a = a.as_deref().unwrap_or("no answer within 50 bytes");
        assert!(a.starts_with("HTTP/1.1 408"), "{a:?}");
    }
    assert_serving(&format!("{}/status", c.stores[0].url()));
    assert_serving(&format!("{}/_dpyfs/status", c.url()));
}

/// Opens a body upload and sends its head and `first` body bytes.
fn open_upload(port: u16, path: &str, len: usize, first: usize) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!("PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&vec![b'z'; first]).unwrap();
    s
}

/// Item 4: 40 connections trickling bodies to each daemon hold more than all its upload
/// workers, yet `/status` and `/_dpyfs/status` answer at once (reserve workers); each slow
/// body is then dropped by the minimum rate rule, and the daemons serve as before.
#[test]
fn trickled_bodies_do_not_starve_status_and_are_dropped() {
    let dir = TempDir::new("edge-trickle");
    let c = one_store_cluster(&dir, &[]);
    assert_eq!(
        request("PUT", &format!("{}/slow", c.url()), &[], None)
            .unwrap()
            .status,
        200
    );
    let len = 1 << 20;
    let hex = sha256_hex(&vec![b'z'; len]);
    let mut conns = Vec::new();
    for i in 0..40 {
        conns.push(open_upload(
            c.stores[0].port,
            &format!("/chunks/{hex}"),
            len,
            10,
        ));
        conns.push(open_upload(
            c.director.port,
            &format!("/slow/k{i}"),
            len,
            10,
        ));
    }
    // Status pages answer while the bodies trickle: with a short client timeout, since a
    // starved daemon would answer only once slow bodies are cut (20 s at the earliest).
    let quick = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    for _ in 0..3 {
        for url in [
            format!("{}/status", c.stores[0].url()),
            format!("{}/_dpyfs/status", c.url()),
            format!("{}/metrics", c.stores[0].url()),
        ] {
            let r = quick.get(&url).call();
            assert!(matches!(&r, Ok(a) if a.status() == 200), "{url}: {r:?}");
        }
        for s in conns.iter_mut() {
            let _ = s.write_all(b"z");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // Keep trickling (a byte a second) until the daemons drop every slow body.
    let start = Instant::now();
    let mut open: Vec<bool> = vec![true; conns.len()];
    let mut buf = [0u8; 4096];
    while open.iter().any(|o| *o) && start.elapsed() < Duration::from_secs(240) {
        for (s, o) in conns.iter_mut().zip(open.iter_mut()) {
            if !*o {
                continue;
            }
            let _ = s.write_all(b"z");
            s.set_nonblocking(true).unwrap();
            match s.read(&mut buf) {
                Ok(_) => *o = false,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => *o = false,
            }
            s.set_nonblocking(false).unwrap();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let left = open.iter().filter(|o| **o).count();
    assert_eq!(left, 0, "{left} slow bodies still held after 240 s");
    assert_serving(&format!("{}/status", c.stores[0].url()));
    assert_serving(&format!("{}/_dpyfs/status", c.url()));
    let r = put(&format!("{}/slow/after", c.url()), b"fine").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Item 4: on a keyed director an unsigned upload is refused at once, and the connection
/// is closed rather than drained (the body is never read, so no worker waits for it).
#[test]
fn refused_uploads_close_instead_of_draining() {
    let dir = TempDir::new("edge-refused");
    let keys = dir.path().join("keys.json");
    let out = command("dpyfs")
        .args(["admin", "key", "create", "--keys", keys.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = one_store_cluster(&dir, &["--keys", keys.to_str().unwrap()]);
    // 40 refused uploads whose bodies never come: each is answered and closed.
    let mut conns: Vec<TcpStream> = (0..40)
        .map(|i| open_upload(c.director.port, &format!("/b/k{i}"), 1 << 30, 100))
        .collect();
    for s in conns.iter_mut() {
        let ex = read_all(s, ANSWER_WAIT);
        assert_eq!(ex.status(), 403, "{:?}", ex.text);
        assert!(ex.closed, "the refused upload's connection stayed open");
        assert!(ex.text.to_ascii_lowercase().contains("connection: close"));
    }
    // With Expect: 100-continue, the refusal comes without inviting the body.
    let mut s = TcpStream::connect(("127.0.0.1", c.director.port)).unwrap();
    s.write_all(
        b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let ex = read_all(&mut s, ANSWER_WAIT);
    assert!(ex.text.starts_with("HTTP/1.1 403"), "{:?}", ex.text);
    assert!(ex.closed);
    assert_serving(&format!("{}/_dpyfs/status", c.url()));
}

/// Item 5: beyond `--connections-max` a connection is answered 503 and closed, logged; the
/// daemon serves again once the others go.
#[test]
fn connections_beyond_the_cap_are_refused() {
    let dir = TempDir::new("edge-cap");
    let c = one_store_cluster(&dir, &["--connections-max", "8"]);
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(("127.0.0.1", c.director.port)).unwrap())
        .collect();
    // The held connections are accepted one by one; once eight are counted, the next is
    // refused.
    let refused = wait_for(20_000, "a refused connection", || {
        // Nothing is sent: the refusal comes at once, unasked.
        let mut t = TcpStream::connect(("127.0.0.1", c.director.port)).unwrap();
        let ex = read_all(&mut t, Duration::from_secs(2));
        ex.text.starts_with("HTTP/1.1 503").then_some(ex)
    });
    assert!(refused.closed);
    drop(held);
    wait_for(10_000, "the director to serve again", || {
        get(&format!("{}/_dpyfs/status", c.url()))
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(
        c.director
            .log_text()
            .contains("connections are open (the limit)")
    );
}

/// Item 5: a store limited to 64 file descriptors, hit by 300 connections at once: no
/// panic, the connections beyond what fits are refused, and it serves afterwards.
#[test]
fn a_low_descriptor_limit_and_a_connection_flood_leave_the_store_serving() {
    let dir = TempDir::new("edge-fds");
    let data = dir.path().join("data");
    let port = free_port();
    let args = [
        "--listen",
        "127.0.0.1:{port}",
        "--data",
        data.to_str().unwrap(),
        "--reserve",
        "0",
        "--connections-max",
        "10000",
    ];
    let s = Daemon::start_limited("dpyfs-store", &args, dir.path(), port, Some(64));
    let body = random_bytes(100_000, 5);
    let hex = sha256_hex(&body);
    assert_eq!(
        put(&format!("{}/chunks/{hex}", s.url()), &body)
            .unwrap()
            .status,
        201
    );
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Ok(mut t) = TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(2),
        ) {
            let _ = t.write_all(format!("GET /chunks/{hex} HTTP/1.1\r\nHost: x\r\n").as_bytes());
            flood.push(t);
        }
    }
    drop(flood);
    let r = wait_for(30_000, "the store to serve again", || {
        get(&format!("{}/chunks/{hex}", s.url()))
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(r.body == body);
    let log = s.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("at most 16 connections"), "{log}");
}

/// Issue 16 item 6: a raw non-ASCII byte in an `x-amz-meta-*` value is answered 400 with a
/// reason that says what to do, logged without RUST_LOG, and stores nothing; the same
/// connection's earlier object and the daemon are unaffected.
#[test]
fn a_non_ascii_metadata_value_is_answered_400_logged_and_not_stored() {
    let dir = TempDir::new("edge-utf8");
    let c = one_store_cluster(&dir, &[]);
    let u = c.url();
    assert_eq!(
        request("PUT", &format!("{u}/meta"), &[], None)
            .unwrap()
            .status,
        200
    );
    let head = "PUT /meta/cafe HTTP/1.1\r\nHost: x\r\nx-amz-meta-name: caf\u{e9}\r\nContent-Length: 5\r\n\r\nhello";
    assert_refused(
        c.director.port,
        "a UTF-8 metadata value",
        head.as_bytes(),
        400,
    );
    // Latin-1, as Python's http.client encodes a str header, is refused the same way.
    let mut latin1 = b"PUT /meta/cafe HTTP/1.1\r\nHost: x\r\nx-amz-meta-name: caf".to_vec();
    latin1.extend_from_slice(b"\xe9\r\nContent-Length: 5\r\n\r\nhello");
    assert_refused(c.director.port, "a Latin-1 metadata value", &latin1, 400);
    let ex = exchange(c.director.port, head.as_bytes());
    assert!(ex.text.contains("outside ASCII"), "{:?}", ex.text);
    assert_eq!(get(&format!("{u}/meta/cafe")).unwrap().status, 404);
    let log = wait_for(5_000, "the refusal in the log", || {
        let log = c.director.log_text();
        log.contains("INFO  tiny_http::client] refused a request from")
            .then_some(log)
    });
    assert!(
        log.contains("400 the request head holds a byte outside ASCII"),
        "{log}"
    );
    assert_serving(&format!("{}/_dpyfs/status", c.url()));
}

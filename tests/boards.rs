//! The cluster on a testbed of boards (network namespaces joined by a bridge, as
//! `make bench-boards` uses): real addresses instead of loopback, store tokens on the
//! wire, and a store cut off the network while clients write. Runs as root (CI is root).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::boards::{BoardCluster, Testbed};
use common::*;
use std::process::Command;

fn namespaces() -> String {
    let o = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_cluster_on_boards_serves_and_survives_a_store_cut_off() {
    let tb = Testbed::new(&["director", "s1", "s2", "s3"], Some("1gbit"));
    let tags: Vec<String> = tb.boards.iter().map(|b| b.netns.clone()).collect();
    {
        let c = BoardCluster::start(&tb, 2, &[]);
        assert_eq!(put(&c.url("boards", ""), b"").unwrap().status, 200);
        let body = random_bytes(3 << 20, 1);
        assert_eq!(put(&c.url("boards", "before"), &body).unwrap().status, 200);
        assert_eq!(get(&c.url("boards", "before")).unwrap().body, body);

        // A store whose link is down: the director notices, places on the other two, and
        // every write is still acknowledged with two copies.
        tb.cut("s1");
        c.wait_stores_up(2);
        let during = random_bytes(2 << 20, 2);
        assert_eq!(
            put(&c.url("boards", "during"), &during).unwrap().status,
            200
        );
        assert_eq!(get(&c.url("boards", "during")).unwrap().body, during);
        assert_eq!(get(&c.url("boards", "before")).unwrap().body, body);

        tb.heal("s1");
        c.wait_stores_up(3);
        let after = random_bytes(1 << 20, 3);
        assert_eq!(put(&c.url("boards", "after"), &after).unwrap().status, 200);
        assert_eq!(get(&c.url("boards", "after")).unwrap().body, after);

        // The store on its board refuses a request without the token, on the wire.
        let s1 = &c.stores[0];
        let r = get(&format!("{}/chunks", s1.url())).unwrap();
        assert_eq!(r.status, 401, "{}", r.text());
    }
    drop(tb);
    let left = namespaces();
    for ns in tags {
        assert!(
            !left.contains(&ns),
            "namespace {ns} outlived its testbed:\n{left}"
        );
    }
}

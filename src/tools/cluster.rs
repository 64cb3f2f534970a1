//! `dpyfs ls`, `dpyfs rm`, `dpyfs stat` and `dpyfs status`: the namespace and the cluster
//! for people, with exit statuses for scripts (0 fine, 1 failed or unhealthy, 2 usage).

use super::progress::bytes;
use super::{EXIT_FAILED, EXIT_OK, Remote};
use crate::client::{Client, Listed};
use crate::http::percent_encode;
use crate::human::count;
use serde_json::Value;

const PROGRAM: &str = "dpyfs";

fn fail(what: &str, e: &dyn std::fmt::Display) -> u8 {
    super::report_failure(PROGRAM, what, e);
    EXIT_FAILED
}

/// `dpyfs ls [-l] [-r] [bucket[/prefix]]`: buckets, or the keys and folders under a
/// prefix (folders end with `/`; `-r` lists every key instead).
pub fn ls(
    client: &Client,
    target: Option<&str>,
    long: bool,
    recursive: bool,
) -> Result<u8, String> {
    let Some(t) = target else {
        return Ok(match client.list_buckets() {
            Ok(bs) => {
                for (name, created) in bs {
                    if long {
                        println!("{created:<24}  {name}");
                    } else {
                        println!("{name}");
                    }
                }
                EXIT_OK
            }
            Err(e) => fail("list buckets", &e),
        });
    };
    let r = Remote::parse(t)?;
    let delimiter = if recursive { None } else { Some("/") };
    let entries = match client.list(&r.bucket, &r.key, delimiter) {
        Ok(e) => e,
        Err(e) => return Ok(fail(t, &e)),
    };
    let mut entries = entries;
    entries.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    for e in &entries {
        match (e, long) {
            (Listed::Prefix(p), false) => println!("{p}"),
            (Listed::Prefix(p), true) => println!("{:>12}  {:<24}  {:<34}  {p}", "DIR", "", ""),
            (Listed::Object { key, .. }, false) => println!("{key}"),
            (
                Listed::Object {
                    key,
                    size,
                    etag,
                    modified,
                },
                true,
            ) => {
                println!("{size:>12}  {modified:<24}  {etag:<34}  {key}")
            }
        }
    }
    Ok(EXIT_OK)
}

fn name_of(l: &Listed) -> &str {
    match l {
        Listed::Prefix(p) => p,
        Listed::Object { key, .. } => key,
    }
}

/// `dpyfs rm bucket/key`, `dpyfs rm -r bucket/prefix/` (every key under it),
/// `dpyfs rm bucket` (an empty bucket) and `dpyfs rm -r bucket` (its objects, then it).
pub fn rm(client: &Client, target: &str, recursive: bool) -> Result<u8, String> {
    let r = Remote::parse(target)?;
    if !recursive && !r.key.is_empty() {
        return Ok(match client.head_object(&r.bucket, &r.key) {
            Ok(None) => fail(
                target,
                &"no such key (use -r for everything under a prefix)",
            ),
            Err(e) => fail(target, &e),
            Ok(Some(_)) => match client.delete_object(&r.bucket, &r.key) {
                Ok(()) => {
                    println!("deleted {}/{}", r.bucket, r.key);
                    EXIT_OK
                }
                Err(e) => fail(target, &e),
            },
        });
    }
    let mut failed = 0;
    if recursive {
        let prefix = r.folder_prefix();
        let listed = match client.list(&r.bucket, &prefix, None) {
            Ok(l) => l,
            Err(e) => return Ok(fail(target, &e)),
        };
        if listed.is_empty() && !r.key.is_empty() {
            return Ok(fail(target, &"no objects under this prefix"));
        }
        for l in listed {
            if let Listed::Object { key, .. } = l {
                match client.retrying(&key, || client.delete_object(&r.bucket, &key)) {
                    Ok(()) => println!("deleted {}/{key}", r.bucket),
                    Err(e) => failed += fail(&format!("{}/{key}", r.bucket), &e),
                }
            }
        }
    }
    if r.key.is_empty() && failed == 0 {
        match client.delete_bucket(&r.bucket) {
            Ok(()) => println!("deleted bucket {}", r.bucket),
            Err(e) => failed += fail(&r.bucket, &e),
        }
    }
    Ok(if failed == 0 { EXIT_OK } else { EXIT_FAILED })
}

/// `dpyfs stat bucket/key`: size, ETag, and every chunk with the stores that hold a
/// copy (asked of the stores now) and those placement wants.
pub fn stat(client: &Client, target: &str) -> Result<u8, String> {
    let r = Remote::parse(target)?;
    if r.key.is_empty() {
        return Err("give bucket/key".into());
    }
    let path = format!(
        "object/{}/{}?copies=1",
        percent_encode(&r.bucket, false),
        percent_encode(&r.key, true)
    );
    let v = match client.admin_json(&path) {
        Ok(v) => v,
        Err(e) => return Ok(fail(target, &e)),
    };
    print!("{}", stat_text(&v));
    let short = v["chunks"].as_array().into_iter().flatten().any(|c| {
        c["held_by"].as_array().map_or(0, Vec::len) < v["replicas"].as_u64().unwrap_or(0) as usize
    });
    Ok(if short { EXIT_FAILED } else { EXIT_OK })
}

pub fn stat_text(v: &Value) -> String {
    let size = v["size"].as_u64().unwrap_or(0);
    let chunks = v["chunks"].as_array().cloned().unwrap_or_default();
    let mut s = format!(
        "{}/{}\n  size          {size} bytes ({})\n  etag          {}\n  content-type  {}\n  modified      {}\n  chunks        {} ({} copies each wanted)\n",
        v["bucket"].as_str().unwrap_or("?"),
        v["key"].as_str().unwrap_or("?"),
        bytes(size),
        v["etag"].as_str().unwrap_or("?"),
        v["content_type"].as_str().unwrap_or("?"),
        crate::timefmt::iso8601(v["mtime"].as_u64().unwrap_or(0)),
        chunks.len(),
        v["replicas"],
    );
    if v["inline"] == true {
        s.push_str("  inline        the bytes are in the manifest (a small object)\n");
    }
    let line = |label: &str, c: &Value| {
        let ids = |k: &str| -> Vec<String> {
            c[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        };
        let held = ids("held_by");
        let wanted = ids("placement");
        let missing: Vec<&String> = wanted.iter().filter(|w| !held.contains(w)).collect();
        // The manifest's length is not in the object record.
        let len = match c["len"].as_u64() {
            Some(n) if n > 0 => format!("{n:>8} bytes"),
            _ => format!("{:>14}", ""),
        };
        let mut l = format!(
            "  {label:<9} {}  {len}  copies on: {}",
            c["hash"].as_str().unwrap_or("?"),
            if held.is_empty() {
                "NONE".to_string()
            } else {
                held.join(", ")
            }
        );
        if !missing.is_empty() {
            let m: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            l.push_str(&format!("  (placement also wants: {})", m.join(", ")));
        }
        l.push('\n');
        l
    };
    for (i, c) in chunks.iter().enumerate() {
        s.push_str(&line(&format!("chunk {i}"), c));
    }
    s.push_str(&line("manifest", &v["manifest"]));
    s
}

/// `dpyfs status`: the director and a table of stores. Exit status 1 when a store is
/// down or chunks are under-replicated or lost.
pub fn status(client: &Client) -> u8 {
    match client.admin_json("status") {
        Ok(v) => {
            let (text, healthy) = status_text(&v, client.url());
            print!("{text}");
            if healthy { EXIT_OK } else { EXIT_FAILED }
        }
        Err(e) => fail("status", &e),
    }
}

pub fn status_text(v: &Value, url: &str) -> (String, bool) {
    let rep = &v["repair"];
    let under = rep["under_replicated"].as_u64().unwrap_or(0);
    let lost = rep["lost_chunks"].as_u64().unwrap_or(0);
    let mut s = format!(
        "director {url}  version {}  up {}\n  {} in {}, {} copies of every chunk\n  journal {} (seq {})\n  repair: {}, passes so far: {}; {under} under-replicated, {lost} lost, {} waiting for down stores\n",
        v["version"].as_str().unwrap_or("?"),
        super::progress::duration(v["uptime_seconds"].as_f64().unwrap_or(0.0)),
        count(v["objects"].as_u64().unwrap_or(0), "object", "objects"),
        count(v["buckets"].as_u64().unwrap_or(0), "bucket", "buckets"),
        v["replicas"],
        bytes(
            v.pointer("/journal/bytes")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        ),
        v.pointer("/journal/last_seq")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        if rep["running"] == true {
            "running"
        } else {
            "idle"
        },
        rep["passes"],
        rep["waiting_for_down_stores"],
    );
    for w in v["tls_warnings"].as_array().into_iter().flatten() {
        s.push_str(&format!("  warning: {}\n", w.as_str().unwrap_or("")));
    }
    push_directors(&mut s, v);
    let all_up = push_store_table(&mut s, v);
    let errors = v["recent_errors"].as_array().cloned().unwrap_or_default();
    if !errors.is_empty() {
        s.push_str("\nrecent errors:\n");
        for e in errors.iter().rev().take(5) {
            s.push_str(&format!(
                "  {}  {}\n",
                crate::timefmt::iso8601(e["time_ms"].as_u64().unwrap_or(0)),
                e["message"].as_str().unwrap_or("")
            ));
        }
    }
    (s, all_up && under == 0 && lost == 0)
}

/// The group of directors (issue 13): this one's role, the leader, each director.
fn push_directors(s: &mut String, v: &Value) {
    let Some(directors) = v["directors"].as_array() else {
        return;
    };
    s.push_str(&format!(
        "  directors: {}, this one {} in term {}, leader {}\n",
        directors.len(),
        v["role"].as_str().unwrap_or("?"),
        v["term"],
        v["leader"].as_str().unwrap_or("none"),
    ));
    for d in directors {
        let behind = match d["behind"].as_u64() {
            Some(n) => format!(", {n} records behind"),
            None => String::new(),
        };
        s.push_str(&format!(
            "    {:<17} {} {}{behind}\n",
            d["id"],
            d["url"].as_str().unwrap_or("?"),
            if d["up"] == true {
                "up"
            } else {
                "not heard from"
            },
        ));
    }
}

/// The table of stores under `dpyfs status`, with how old its figures are; true when every
/// store is up.
fn push_store_table(s: &mut String, v: &Value) -> bool {
    s.push_str(&format!(
        "\n{:<12} {:<10} {:<8} {:>10} {:>10} {:>5} {:>10} {:>8}  {}\n",
        "STORE", "ZONE", "STATE", "DISK USED", "DISK FREE", "USE%", "DPYFS", "CHUNKS", "SCRUB"
    ));
    let mut all_up = true;
    let mut ages_ms: Vec<u64> = Vec::new();
    for st in v["stores"].as_array().into_iter().flatten() {
        let state = crate::status_page::store_state(st);
        all_up &= st["up"] == true;
        let (total, free) = crate::status_page::disk_bytes(st);
        let (used, free_s, pct) = match (total, free) {
            (Some(t), Some(f)) if t > 0 => (
                bytes(t - f.min(t)),
                bytes(f),
                format!("{:.0}%", (t - f.min(t)) as f64 * 100.0 / t as f64),
            ),
            _ => ("-".into(), "-".into(), "-".into()),
        };
        ages_ms.extend(st["status_age_ms"].as_u64());
        s.push_str(&format!(
            "{:<12} {:<10} {:<8} {:>10} {:>10} {:>5} {:>10} {:>8}  {}\n",
            st["id"].as_str().unwrap_or("?"),
            st["zone"].as_str().unwrap_or("?"),
            state,
            used,
            free_s,
            pct,
            st.pointer("/status/chunks/bytes")
                .and_then(Value::as_u64)
                .map_or("-".into(), bytes),
            st.pointer("/status/chunks/count")
                .and_then(Value::as_u64)
                .map_or("-".into(), |n| n.to_string()),
            crate::status_page::scrub_summary(st),
        ));
    }
    // The director polls each store every few seconds: right after uploads the figures
    // may trail the disks, so say how old they are.
    if let (Some(lo), Some(hi)) = (ages_ms.iter().min(), ages_ms.iter().max()) {
        let secs = |ms: &u64| super::progress::duration(*ms as f64 / 1000.0);
        let range = if secs(lo) == secs(hi) {
            secs(hi)
        } else {
            format!("{}-{}", secs(lo), secs(hi))
        };
        s.push_str(&format!(
            "(store figures as of the director's last poll, {range} ago; DPYFS is the \
             chunks' own bytes, DISK USED the whole file system's)\n"
        ));
    }
    all_up
}

//! `GET /_dpyfs/`: the cluster's status page for people. One self-contained HTML document
//! (inline CSS, no scripts, no external assets) rendered from the same JSON as
//! `/_dpyfs/status`, reloading itself every `REFRESH_SECS` with a meta refresh.
//! Also the store summaries `dpyfs status` prints, so page and command agree.

use crate::human::{bytes, count, duration};
use crate::timefmt::iso8601;
use serde_json::Value;
use std::fmt::Write;

/// The page reloads itself this often.
pub const REFRESH_SECS: u32 = 5;

/// `up`, `down`, `lost` or `draining`.
/// A store's disk (total, free) bytes from its entry in the director's status JSON.
pub fn disk_bytes(st: &Value) -> (Option<u64>, Option<u64>) {
    let field = |f: &str| {
        st.pointer(&format!("/status/disk/{f}"))
            .and_then(Value::as_u64)
    };
    (field("total_bytes"), field("free_bytes"))
}

pub fn store_state(st: &Value) -> &'static str {
    if st["draining"] == true {
        "draining"
    } else if st["up"] == true {
        "up"
    } else if st["lost"] == true {
        "lost"
    } else {
        "down"
    }
}

/// The scrubber's state from a store's `/status` (as the director last saw it).
pub fn scrub_summary(st: &Value) -> String {
    let Some(s) = st.pointer("/status/scrub") else {
        return "unknown".into();
    };
    if s["enabled"] != true {
        return "off".into();
    }
    let chunks = st
        .pointer("/status/chunks/count")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let passes = s["passes"].as_u64().unwrap_or(0);
    let in_pass = s["pass_chunks"].as_u64().unwrap_or(0);
    let mut out = if in_pass > 0 && chunks > 0 {
        format!(
            "pass {}: {:.0}%",
            passes + 1,
            (in_pass as f64 * 100.0 / chunks as f64).min(100.0)
        )
    } else if passes > 0 {
        format!(
            "{}, last {}",
            count(passes, "pass", "passes"),
            iso8601(s["last_pass_end"].as_u64().unwrap_or(0) * 1000)
        )
    } else {
        "first pass pending".into()
    };
    let bad = s["corrupt_found"].as_u64().unwrap_or(0);
    if bad > 0 {
        let _ = write!(out, ", {bad} corrupt found");
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}\
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .5em}\
.sub{color:#666}.grid{display:flex;flex-wrap:wrap;gap:12px}\
.store{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 12px;width:330px}\
.store h3{margin:0 0 4px;font-size:1.05em}.badge{display:inline-block;padding:0 7px;border-radius:9px;color:#fff;font-size:.85em;margin-left:6px}\
.up{background:#2a8a3a}.down{background:#c0392b}.lost{background:#7b241c}.draining{background:#b9770e}\
.bar{display:flex;height:14px;background:#e5e5e5;border-radius:3px;overflow:hidden;margin:6px 0 2px}\
.fill{height:100%;background:#3b78c4}.fill.high{background:#d35400}.fill.own{background:#1d3f6e}\
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:.95em}\
.kv td:first-child{color:#555}.err{color:#c0392b}.ok{color:#2a8a3a}code{font-size:.9em}td:first-child{white-space:nowrap}";

/// A way to a browser upload form (`GET /_dpyfs/upload?bucket=B`, POST Object). The status
/// page is served unsigned to loopback clients, so it signs nothing itself: the form page
/// it leads to does, for a key that owns the bucket (or for anyone on an open director).
const UPLOAD_SECTION: &str = "<h2>Upload a file</h2>\
<div><a href=\"/_dpyfs/upload\">Upload a file from this browser</a> (POST Object: a form with a \
policy signed for one hour, never a secret key).</div>\
<div class=\"sub\">On a director with keys the form page must be signed by a key that may write \
the bucket: save it with a signed request \
(<code>curl --aws-sigv4 aws:amz:us-east-1:s3 --user KEY:SECRET \
'DIRECTOR_URL/_dpyfs/upload?bucket=NAME' &gt; upload.html</code>) and open the file.</div>\n";

/// The whole page for a `/_dpyfs/status` document.
pub fn render(status: &Value) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>dpyfs cluster</title><style>{STYLE}</style></head><body>\n"
    );
    let _ = writeln!(
        h,
        "<h1>dpyfs cluster</h1><div class=\"sub\">director {} &middot; up {} &middot; \
         {} in {} &middot; {} copies of every chunk &middot; journal {} (seq {}) \
         &middot; refreshes every {REFRESH_SECS} s</div>",
        esc(status["version"].as_str().unwrap_or("?")),
        duration(status["uptime_seconds"].as_f64().unwrap_or(0.0)),
        count(status["objects"].as_u64().unwrap_or(0), "object", "objects"),
        count(status["buckets"].as_u64().unwrap_or(0), "bucket", "buckets"),
        status["replicas"],
        bytes(
            status
                .pointer("/journal/bytes")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        ),
        status
            .pointer("/journal/last_seq")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    );
    for w in status["tls_warnings"].as_array().into_iter().flatten() {
        let _ = writeln!(
            h,
            "<div class=\"err\">{}</div>",
            esc(w.as_str().unwrap_or(""))
        );
    }
    render_repair(&mut h, &status["repair"]);
    let stores = status["stores"].as_array().cloned().unwrap_or_default();
    let up = stores.iter().filter(|s| s["up"] == true).count();
    let _ = writeln!(
        h,
        "<h2>Stores: {up} of {} up</h2><div class=\"grid\">",
        stores.len()
    );
    for st in &stores {
        render_store(&mut h, st);
    }
    h.push_str("</div>\n");
    render_errors(&mut h, status["recent_errors"].as_array());
    h.push_str(UPLOAD_SECTION);
    h.push_str("</body></html>\n");
    h
}

fn render_repair(h: &mut String, r: &Value) {
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    let health = if n("lost_chunks") > 0 {
        format!(
            "<span class=\"err\">{} LOST</span>",
            count(n("lost_chunks"), "chunk", "chunks")
        )
    } else if n("under_replicated") > 0 {
        format!(
            "<span class=\"err\">{} under-replicated</span>",
            count(n("under_replicated"), "chunk", "chunks")
        )
    } else if n("passes") == 0 {
        "no repair pass yet".into()
    } else {
        "<span class=\"ok\">every chunk has its copies</span>".into()
    };
    let _ = writeln!(
        h,
        "<h2>Replica health</h2><table class=\"kv\"><tr><td>state</td><td>{health}</td></tr>\
         <tr><td>repair</td><td>{}; passes so far: {}; last finished {}</td></tr>\
         <tr><td>last pass</td><td>{} checked, {} made, {} failed, {} waiting for down stores</td></tr></table>",
        if r["running"] == true {
            "running"
        } else {
            "idle"
        },
        n("passes"),
        if n("finished_ms") > 0 {
            iso8601(n("finished_ms"))
        } else {
            "never".into()
        },
        count(n("chunks_checked"), "chunk", "chunks"),
        count(n("copies_made"), "copy", "copies"),
        n("copies_failed"),
        n("waiting_for_down_stores"),
    );
}

fn render_store(h: &mut String, st: &Value) {
    let state = store_state(st);
    let id = esc(st["id"].as_str().unwrap_or("?"));
    let (total, free) = disk_bytes(st);
    let _ = write!(
        h,
        "<div class=\"store\" id=\"store-{id}\"><h3>{id}<span class=\"badge {state}\">{state}</span></h3>\
         <div class=\"sub\">{} &middot; zone {}</div>",
        esc(st["url"].as_str().unwrap_or("?")),
        esc(st["zone"].as_str().unwrap_or("?")),
    );
    let chunks = st.pointer("/status/chunks/count").and_then(Value::as_u64);
    let chunk_bytes = st.pointer("/status/chunks/bytes").and_then(Value::as_u64);
    match (total, free) {
        (Some(t), Some(f)) if t > 0 => {
            // The disk's use is the whole file system's (several stores on one disk show
            // the same); dpyfs's own chunks are the darker part of the bar.
            let used = t - f.min(t);
            let pct = used as f64 * 100.0 / t as f64;
            let own = chunk_bytes.unwrap_or(0).min(used);
            let own_pct = own as f64 * 100.0 / t as f64;
            let _ = write!(
                h,
                "<div class=\"bar\" title=\"disk {pct:.0}% used, dpyfs {own_pct:.0}%\">\
                 <div class=\"fill own\" style=\"width:{own_pct:.1}%\"></div>\
                 <div class=\"fill{}\" style=\"width:{:.1}%\"></div></div>\
                 <div>disk {} used of {} ({pct:.0}%), {} free{}</div>",
                if pct >= 90.0 { " high" } else { "" },
                pct - own_pct,
                bytes(used),
                bytes(t),
                bytes(f),
                chunk_bytes.map_or(String::new(), |b| format!("; dpyfs {}", bytes(b))),
            );
        }
        _ => h.push_str("<div class=\"bar\"></div><div>disk: unknown (no answer yet)</div>"),
    }
    if let Some(c) = chunks {
        let _ = write!(h, "<div>{}</div>", count(c, "chunk", "chunks"));
    }
    if let Some(ms) = st["status_age_ms"].as_u64() {
        let _ = write!(
            h,
            "<div class=\"sub\">figures {} old</div>",
            duration(ms as f64 / 1000.0)
        );
    }
    let _ = write!(h, "<div>scrub: {}</div>", esc(&scrub_summary(st)));
    if let Some(d) = st["down_seconds"].as_u64() {
        let _ = write!(
            h,
            "<div class=\"err\">down for {}</div>",
            duration(d as f64)
        );
    }
    if let Some(e) = st["last_error"].as_str() {
        let _ = write!(h, "<div class=\"err\">last error: {}</div>", esc(e));
    }
    h.push_str("</div>\n");
}

fn render_errors(h: &mut String, errors: Option<&Vec<Value>>) {
    let errors = errors.cloned().unwrap_or_default();
    h.push_str("<h2>Recent errors</h2>");
    if errors.is_empty() {
        h.push_str("<div class=\"ok\">none</div>\n");
        return;
    }
    h.push_str("<table><tr><th>time (UTC)</th><th>level</th><th>message</th></tr>");
    for e in errors.iter().rev() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            iso8601(e["time_ms"].as_u64().unwrap_or(0)),
            esc(e["level"].as_str().unwrap_or("")),
            esc(e["message"].as_str().unwrap_or(""))
        );
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn page_shows_every_store_escaped() {
        let st = json!({
            "version": "0.1.0", "uptime_seconds": 5, "objects": 1, "buckets": 1, "replicas": 2,
            "journal": {"bytes": 100, "last_seq": 3},
            "repair": {"passes": 1, "under_replicated": 2},
            "stores": [
                {"id": "s1", "url": "http://a", "zone": "z1", "up": true,
                 "status_age_ms": 1500,
                 "status": {"disk": {"total_bytes": 1000, "free_bytes": 250},
                            "chunks": {"count": 4, "bytes": 40},
                            "scrub": {"enabled": true, "passes": 0, "pass_chunks": 2}}},
                {"id": "<s2>", "url": "http://b", "zone": "z2", "up": false, "down_seconds": 30,
                 "last_error": "refused"}
            ],
            "recent_errors": [{"time_ms": 0, "level": "warn", "message": "store <s2> is down"}]
        });
        let p = render(&st);
        assert!(p.contains("id=\"store-s1\""));
        assert!(p.contains("&lt;s2&gt;"));
        assert!(!p.contains("<s2>"));
        assert!(p.contains("width:4.0%"), "dpyfs's part of the bar");
        assert!(p.contains("width:71.0%"), "the rest of the disk's use");
        assert!(p.contains("dpyfs 40 B"));
        assert!(p.contains("1 object in 1 bucket "));
        assert!(p.contains("<div>4 chunks</div>"));
        assert!(p.contains("figures 1.5s old"));
        assert!(p.contains("pass 1: 50%"));
        assert!(p.contains("2 chunks under-replicated"));
        assert!(p.contains("store &lt;s2&gt; is down"));
        assert!(!p.contains("<script"));
        assert!(!p.contains("http://") || p.matches("http://").count() == 2);
    }
}

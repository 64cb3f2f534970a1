//! The `dpyfs` command's talks with a running director (`/_dpyfs/...`): store membership,
//! repair, garbage collection and fsck. Prints for people; exit codes for scripts.

use crate::client::Client;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long `dpyfs admin repair` waits for a pass to finish.
pub const REPAIR_WAIT_MS: u64 = 3_600_000;
/// How long one admin call may wait for its answer: GC and a deep fsck answer only when
/// their pass is done.
pub const ADMIN_READ_TIMEOUT_SECS: u64 = 3600;

/// `dpyfs admin` and `dpyfs fsck` over the tools' client (`crate::client`): the same
/// request, signing, credentials and error decoding as every other tool.
pub struct Admin {
    client: Client,
}

impl Admin {
    /// Err for a URL the client refuses (not `http://HOST[:PORT]`).
    pub fn new(url: &str) -> Result<Admin, String> {
        let client = Client::with_read_timeout(url, Duration::from_secs(ADMIN_READ_TIMEOUT_SECS))?;
        Ok(Admin { client })
    }

    /// One call to `/_dpyfs/<path>`, not retried: a POST such as `repair` must not be
    /// repeated, and a refused connection is reported at once.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.client
            .admin_call(method, path, body.as_ref())
            .map_err(|e| e.to_string())
    }

    fn get(&self, path: &str) -> Result<Value, String> {
        self.send("GET", path, None)
    }

    fn post(&self, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.send("POST", path, body)
    }

    pub fn store_add(
        &self,
        url: &str,
        zone: Option<&str>,
        weight: Option<f64>,
    ) -> Result<String, String> {
        let v = self.post(
            "stores",
            Some(json!({"url": url, "zone": zone, "weight": weight})),
        )?;
        Ok(format!(
            "added store {} at {url}",
            v["id"].as_str().unwrap_or("?")
        ))
    }

    pub fn store_list(&self) -> Result<String, String> {
        let v = self.get("stores")?;
        let mut out = format!(
            "{:<20} {:<28} {:<10} {:>8} {:<8} {}\n",
            "ID", "URL", "ZONE", "WEIGHT", "STATE", "CHUNKS"
        );
        for s in v.as_array().into_iter().flatten() {
            let state = if s["draining"] == true {
                "draining"
            } else if s["up"] == true {
                "up"
            } else if s["lost"] == true {
                "lost"
            } else {
                "down"
            };
            out.push_str(&format!(
                "{:<20} {:<28} {:<10} {:>8.1} {:<8} {}\n",
                s["id"].as_str().unwrap_or("?"),
                s["url"].as_str().unwrap_or("?"),
                s["zone"].as_str().unwrap_or("?"),
                s["weight"].as_f64().unwrap_or(0.0),
                state,
                s.pointer("/status/chunks/count")
                    .and_then(Value::as_u64)
                    .map_or("-".into(), |n| n.to_string()),
            ));
        }
        Ok(out)
    }

    pub fn store_drain(&self, id: &str) -> Result<String, String> {
        self.post(&format!("stores/{id}/drain"), None)?;
        Ok(format!(
            "store {id} is draining; `dpyfs admin repair` moves its chunks away"
        ))
    }

    pub fn store_remove(&self, id: &str) -> Result<String, String> {
        self.send("DELETE", &format!("stores/{id}"), None)?;
        Ok(format!("store {id} removed"))
    }

    /// Starts a pass and (unless `wait` is false) waits for it; Ok(true) when the cluster
    /// is fully replicated afterwards.
    pub fn repair(&self, wait: bool) -> Result<(String, bool), String> {
        let before = self.get("repair")?["passes"].as_u64().unwrap_or(0);
        self.post("repair", None)?;
        if !wait {
            return Ok(("repair requested".into(), true));
        }
        let deadline = Instant::now() + Duration::from_millis(REPAIR_WAIT_MS);
        loop {
            let r = self.get("repair")?;
            if r["passes"].as_u64().unwrap_or(0) > before && r["running"] == false {
                let ok = r["under_replicated"] == 0 && r["lost_chunks"] == 0;
                return Ok((repair_text(&r), ok));
            }
            if Instant::now() > deadline {
                return Err("the repair pass did not finish in time".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Ok((report, complete)): incomplete when a store could not be listed (its
    /// unreferenced chunks wait for the next pass).
    pub fn gc(&self, dry_run: bool) -> Result<(String, bool), String> {
        let v = self.post(if dry_run { "gc?dry-run=1" } else { "gc" }, None)?;
        let verb = if dry_run { "would delete" } else { "deleted" };
        let (n, b) = if dry_run {
            (v["candidates"].as_u64(), v["candidate_bytes"].as_u64())
        } else {
            (v["deleted"].as_u64(), v["deleted_bytes"].as_u64())
        };
        let mut text = format!(
            "gc: {verb} {} unreferenced chunk copies ({} bytes); kept {} younger than {} s and {} in use by uploads",
            n.unwrap_or(0),
            b.unwrap_or(0),
            v["too_young"],
            v["grace_secs"],
            v["in_flight"]
        );
        let missed: Vec<&str> = v["stores_not_listed"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for m in &missed {
            text.push_str(&format!("\nincomplete: store not listed: {m}"));
        }
        Ok((text, missed.is_empty() && v["failed"] == 0))
    }

    /// Ok((report, healthy)).
    pub fn fsck(&self, deep: bool) -> Result<(String, bool), String> {
        let v = self.get(if deep { "fsck?deep=1" } else { "fsck" })?;
        let mut out = String::new();
        for (kind, list) in [
            ("LOST", &v["lost"]),
            ("UNDER-REPLICATED", &v["under_replicated"]),
        ] {
            for o in list.as_array().into_iter().flatten() {
                let chunks: Vec<String> = o["chunks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        format!(
                            "{}…({} copies)",
                            &c["hash"].as_str().unwrap_or("")
                                [..12.min(c["hash"].as_str().unwrap_or("").len())],
                            c["copies"]
                        )
                    })
                    .collect();
                out.push_str(&format!(
                    "{kind} {}: {}\n",
                    o["object"].as_str().unwrap_or("?"),
                    chunks.join(", ")
                ));
            }
        }
        for s in v["stores_not_listed"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "store not listed: {}\n",
                s.as_str().unwrap_or("?")
            ));
        }
        let ok = v["ok"] == true;
        out.push_str(&format!(
            "fsck{}: {} objects, {} multipart uploads in progress, {} chunks, {} verified copies (N={}): {} under-replicated, {} lost — {}\n",
            if deep { " --deep" } else { "" },
            v["objects"],
            v["uploads"],
            v["chunks"],
            v["copies_verified"],
            v["replicas"],
            v["under_replicated_objects"],
            v["lost_objects"],
            if ok { "OK" } else { "NOT OK" }
        ));
        Ok((out, ok))
    }
}

fn repair_text(r: &Value) -> String {
    let mut s = format!(
        "repair: {} chunks checked, {} copies made ({} bytes), {} surplus removed, {} under-replicated, {} lost, {} waiting for down stores\n",
        r["chunks_checked"],
        r["copies_made"],
        r["bytes_copied"],
        r["surplus_removed"],
        r["under_replicated"],
        r["lost_chunks"],
        r["waiting_for_down_stores"]
    );
    for l in r["lost"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "LOST chunk {} of {}\n",
            l["hash"].as_str().unwrap_or("?"),
            l["objects"]
        ));
    }
    s
}

/// `dpyfs admin key ...`: these edit the keys file itself (a running director re-reads it
/// within a second); they do not talk to the director.
pub mod keys {
    use crate::s3::keys::{KeyEntry, generate_key, update_keys_file};
    use crate::s3::names::valid_bucket_name;
    use std::path::Path;

    /// `--buckets a,b` to a list, each name checked.
    pub fn parse_buckets(s: &str) -> Result<Vec<String>, String> {
        let list: Vec<String> = s
            .split(',')
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty())
            .collect();
        if list.is_empty() {
            return Err("--buckets needs at least one bucket name".into());
        }
        for b in &list {
            if !valid_bucket_name(b) {
                return Err(format!("{b:?} is not a valid bucket name"));
            }
        }
        Ok(list)
    }

    /// Makes a key and adds it to the file (created, mode 0600, if missing). Returns the
    /// lines for stdout (`AWS_ACCESS_KEY_ID=...`, `AWS_SECRET_ACCESS_KEY=...`: the only
    /// time the secret is shown) and a note for people. The key is an admin key when
    /// `admin` says so, or when it is the file's first key without a bucket list (whoever
    /// sets up the cluster); otherwise it owns the buckets it creates and sees no others.
    pub fn create(
        path: &Path,
        buckets: Option<Vec<String>>,
        admin: bool,
    ) -> Result<(String, String), String> {
        if admin && buckets.is_some() {
            return Err(
                "an admin key sees every bucket: --admin and --buckets exclude each other".into(),
            );
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let k = update_keys_file(path, move |kf| {
            let first = !kf.keys.iter().any(KeyEntry::is_admin);
            let k = generate_key(buckets.clone(), admin || (first && buckets.is_none()))?;
            kf.keys.push(k.clone());
            Ok(k)
        })?;
        let out = format!(
            "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
            k.access_key, k.secret_key
        );
        let note = format!(
            "key {} added to {} ({}); the secret is shown only this once. A director started \
             with --keys {} uses it within a second.",
            k.access_key,
            path.display(),
            describe(&k),
            path.display()
        );
        Ok((out, note))
    }

    fn describe(k: &KeyEntry) -> String {
        match &k.buckets {
            _ if k.is_admin() => "an admin key: every bucket and the cluster routes".into(),
            None => "the buckets it creates; --admin makes a key that sees all".into(),
            Some(b) => format!("buckets {}", b.join(",")),
        }
    }

    /// The keys, without their secrets.
    pub fn list(path: &Path) -> Result<String, String> {
        let kf = crate::s3::keys::KeysFile::load(path)?;
        let mut out = format!("{:<24} {:<22} {}\n", "ACCESS KEY ID", "CREATED", "BUCKETS");
        for k in &kf.keys {
            out.push_str(&format!(
                "{:<24} {:<22} {}\n",
                k.access_key,
                crate::timefmt::iso8601(k.created * 1000)
                    .split('.')
                    .next()
                    .unwrap_or(""),
                match &k.buckets {
                    _ if k.is_admin() => "(all, admin)".into(),
                    None => "(its own)".into(),
                    Some(b) => b.join(","),
                }
            ));
        }
        Ok(out)
    }

    /// Removes a key; an unknown id is an error.
    pub fn delete(path: &Path, id: &str) -> Result<String, String> {
        if !path.exists() {
            return Err(format!("{} does not exist", path.display()));
        }
        update_keys_file(path, |kf| {
            let before = kf.keys.len();
            kf.keys.retain(|k| k.access_key != id);
            if kf.keys.len() == before {
                return Err(format!("no key {id} in {}", path.display()));
            }
            Ok(())
        })?;
        Ok(format!(
            "key {id} deleted from {}; a running director refuses it within a second",
            path.display()
        ))
    }
}

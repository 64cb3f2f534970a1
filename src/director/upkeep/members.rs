//! Membership: stores that answer for the first time (or at a new URL) are journaled, and
//! `dpyfs admin store add/drain/remove` change the members. Removal is refused while a
//! store holds the only copy of a referenced chunk, which the holdings merge tells.

use crate::director::Director;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::records::Record;

impl Director {
    /// Polls the stores; journals stores that answered for the first time (or at a new
    /// URL). Returns true when membership changed.
    pub fn poll_stores(&self) -> bool {
        let mut changed = false;
        for d in self.stores.poll() {
            let rec = match self.read_index().members.get(&d.id) {
                Some(m) if m.url == d.url => None,
                Some(_) => Some(Record::StoreMove {
                    id: d.id.clone(),
                    url: d.url.clone(),
                }),
                None => Some(Record::StoreAdd {
                    id: d.id.clone(),
                    url: d.url.clone(),
                    zone: d.zone.clone(),
                    weight: d.capacity_weight,
                }),
            };
            if let Some(r) = rec {
                match self.commit(&r) {
                    Ok(_) => {
                        log::info!("store {} at {} joined the cluster", d.id, d.url);
                        changed = true;
                    }
                    Err(e) if e.status_and_code().1 == "StoreExists" => {
                        // Another director journaled it first; the next poll sees it.
                        log::debug!(
                            "store {} at {} joined through another director",
                            d.id,
                            d.url
                        );
                        continue;
                    }
                    Err(e) => {
                        // Kept pending: the next poll tries again (a group of directors
                        // may have no leader yet).
                        log::warn!("cannot journal store {} at {} yet: {e}", d.id, d.url);
                        continue;
                    }
                }
            }
            self.stores.forget_pending(&d.url);
        }
        if changed {
            // Learn the new member's liveness now rather than at the next poll.
            self.stores.poll();
        }
        changed
    }

    /// Adds a store by URL; its identity comes from its `/status`.
    pub fn add_store(&self, url: &str, zone: Option<&str>, weight: Option<f64>) -> Result<String> {
        let url = url.trim_end_matches('/').to_string();
        let v = self.stores.client.status(&url).map_err(|e| {
            DirectorError::BadRequest("StoreUnreachable", format!("{url} does not answer: {e}"))
        })?;
        let id = v
            .get("id")
            .and_then(|i| i.as_str())
            .ok_or_else(|| {
                DirectorError::BadRequest("NotAStore", format!("{url} is not a dpyfs-store"))
            })?
            .to_string();
        let known = self.read_index().members.get(&id).map(|m| m.url.clone());
        let rec = match known {
            Some(u) if u == url => {
                return Err(DirectorError::BadRequest(
                    "StoreExists",
                    format!("store '{id}' at {url} is already a member"),
                ));
            }
            Some(_) => Record::StoreMove {
                id: id.clone(),
                url,
            },
            None => Record::StoreAdd {
                id: id.clone(),
                url,
                zone: zone
                    .map(str::to_string)
                    .or_else(|| v.get("zone").and_then(|z| z.as_str()).map(str::to_string))
                    .unwrap_or_else(|| "default".into()),
                weight: weight.unwrap_or_else(|| {
                    let total = v
                        .pointer("/disk/total_bytes")
                        .and_then(|t| t.as_u64())
                        .unwrap_or(0);
                    (total as f64 / (1u64 << 30) as f64)
                        .max(crate::director::data::placement::WEIGHT_MIN)
                }),
            },
        };
        self.commit(&rec)?;
        self.stores.poll();
        self.repairer.request();
        Ok(id)
    }

    /// Marks a store draining: it takes no new copies and repair moves its chunks away.
    pub fn drain_store(&self, id: &str) -> Result<()> {
        self.commit(&Record::StoreDrain { id: id.to_string() })?;
        self.repairer.request();
        Ok(())
    }

    /// Removes a store, refused while it holds the only copy of any referenced chunk (or
    /// while that cannot be checked because another store cannot be listed).
    pub fn remove_store(&self, id: &str) -> Result<()> {
        let target = self
            .stores
            .snapshot()
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| DirectorError::BadRequest("NoSuchStore", format!("no store '{id}'")))?;
        let refs = super::holdings::referenced(&self.read_index());
        let mut only_here = 0u64;
        let failed = self.scan_holdings(
            &refs,
            &mut |seen| {
                let elsewhere = seen
                    .holders
                    .iter()
                    .any(|(i, size)| *i != target && super::holdings::right_size(seen.len, *size));
                only_here += u64::from(!elsewhere);
            },
            &mut |_, _| {},
        );
        let other_failed: Vec<_> = failed.iter().filter(|(i, _)| *i != target).collect();
        if !other_failed.is_empty() {
            return Err(DirectorError::Conflict(
                "StoreRemovalUnsafe",
                format!(
                    "cannot check the other stores ({} could not be listed); try again when all are up",
                    other_failed.len()
                ),
            ));
        }
        if only_here > 0 {
            return Err(DirectorError::Conflict(
                "StoreHoldsOnlyCopies",
                format!(
                    "store '{id}' still holds the only copy of {only_here} chunk(s): drain it and wait for repair"
                ),
            ));
        }
        self.commit(&Record::StoreRemove { id: id.to_string() })?;
        self.repairer.request();
        Ok(())
    }
}

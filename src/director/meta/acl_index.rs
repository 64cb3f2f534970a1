//! The ACL records (`bucket_acl`, `object_acl`) applied to the index: the ACL half of
//! `Index::validate` and `Index::apply`, as upload_index.rs is for uploads.

use super::acl::Acl;
use super::index::{Index, ObjectMeta, Version};
use super::records::Record;
use crate::director::error::{DirectorError, Result};
use std::sync::Arc;

impl Index {
    /// Checks a `bucket_acl` or `object_acl` record: the bucket, and the object version,
    /// exist, and the ACL is one this director writes.
    pub(super) fn validate_acl(&self, r: &Record) -> Result<()> {
        let acl = match r {
            Record::BucketAcl { bucket, acl } => {
                self.bucket(bucket)?;
                acl
            }
            Record::ObjectAcl {
                bucket,
                key,
                version,
                acl,
            } => {
                match self.object_version(bucket, key, version.as_deref())? {
                    Version::Object(_) => {}
                    Version::Marker { .. } => {
                        return Err(DirectorError::MethodNotAllowed(
                            "a delete marker has no ACL".into(),
                        ));
                    }
                }
                acl
            }
            _ => return Ok(()),
        };
        Acl::from_record(acl).map_err(DirectorError::Internal)?;
        Ok(())
    }

    /// Applies a validated `bucket_acl` or `object_acl` record. An object version is
    /// shared (`Arc`) with readers in flight: it is replaced by a copy with the new ACL.
    pub(super) fn apply_acl(&mut self, r: &Record) -> std::result::Result<(), String> {
        match r {
            Record::BucketAcl { bucket, acl } => {
                if let Some(b) = self.buckets.get_mut(bucket) {
                    b.acl = Acl::from_record(acl)?;
                }
            }
            Record::ObjectAcl {
                bucket,
                key,
                version,
                acl,
            } => {
                let acl = Acl::from_record(acl)?;
                let Some(b) = self.buckets.get_mut(bucket) else {
                    return Ok(());
                };
                let with_acl = |o: &Arc<ObjectMeta>| {
                    Arc::new(ObjectMeta {
                        acl: acl.clone(),
                        ..ObjectMeta::clone(o)
                    })
                };
                let id = version.as_deref();
                if let Some(o) = b
                    .objects
                    .get_mut(key)
                    .filter(|o| o.version.as_deref() == id)
                {
                    *o = with_acl(o);
                    return Ok(());
                }
                let older = b.history.get_mut(key).into_iter().flatten();
                for v in older {
                    if let Version::Object(o) = v {
                        if o.version.as_deref() == id {
                            *o = with_acl(o);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;
    use serde_json::json;

    fn record(v: serde_json::Value, seq: u64) -> Record {
        let mut m = v.as_object().unwrap().clone();
        m.insert("seq".into(), seq.into());
        m.insert("v".into(), 1.into());
        Record::from_map(m).unwrap().1
    }

    /// Records written before ACLs replay unchanged (private); `object_acl` reaches a
    /// noncurrent version too; a snapshot keeps bucket and object ACLs.
    #[test]
    fn acl_records_replay_and_survive_a_snapshot() {
        let h = Hash::of(b"x").to_hex();
        let obj = |v: &str| {
            json!({"size":1,"mtime":1,"etag":"e","content_type":"t","chunks":[[h,1]],
                   "manifest":h,"version":v})
        };
        let v1 = "00000000000000000000000000000001";
        let v2 = "00000000000000000000000000000002";
        let mut i = Index::default();
        let old = [
            json!({"type":"bucket_create","bucket":"bkt","created":0,"owner":"AK1"}),
            json!({"type":"bucket_versioning","bucket":"bkt","status":"Enabled"}),
            json!({"type":"object_put","bucket":"bkt","key":"k","object":obj(v1)}),
            json!({"type":"object_put","bucket":"bkt","key":"k","object":obj(v2)}),
        ];
        for (n, r) in old.into_iter().enumerate() {
            i.replay(n as u64 + 1, &record(r, n as u64 + 1)).unwrap();
        }
        assert!(i.bucket("bkt").unwrap().acl.is_private());
        let public = json!([["AllUsers", "READ"]]);
        let acls = [
            json!({"type":"bucket_acl","bucket":"bkt","acl":public}),
            json!({"type":"object_acl","bucket":"bkt","key":"k","version":v1,"acl":public}),
        ];
        for (n, r) in acls.into_iter().enumerate() {
            i.replay(n as u64 + 5, &record(r, n as u64 + 5)).unwrap();
        }
        let check = |i: &Index| {
            let b = i.bucket("bkt").unwrap();
            assert!(!b.acl.is_private());
            assert!(b.objects["k"].acl.is_private());
            match b.version("k", Some(v1)).unwrap() {
                Version::Object(o) => assert!(!o.acl.is_private()),
                Version::Marker { .. } => panic!("a marker"),
            }
        };
        check(&i);
        check(&Index::from_snapshot(&i.to_snapshot().unwrap()).unwrap());
        // An ACL of a missing version or bucket, or an unknown grantee, does not apply.
        let bad = [
            json!({"type":"object_acl","bucket":"bkt","key":"k",
                   "version":"00000000000000000000000000000009","acl":[]}),
            json!({"type":"bucket_acl","bucket":"nope","acl":[]}),
            json!({"type":"bucket_acl","bucket":"bkt","acl":[["Everyone","READ"]]}),
        ];
        for r in bad {
            assert!(i.replay(9, &record(r, 9)).is_err());
        }
    }
}

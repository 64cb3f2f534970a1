//! Access control lists of buckets and object versions, in memory and as records hold
//! them. S3's XML, headers and the rule of who may do what are in `s3::acl`; this file
//! knows only what a grant is.
//!
//! An ACL lists grants beyond the owner's: the owner (a bucket's owner; an object
//! belongs to its bucket's owner) always has FULL_CONTROL and is never listed. An empty
//! list is `private`. As records hold it, an ACL is `[[grantee, permission], ...]`, the
//! grantee `AllUsers`, `AuthenticatedUsers` or `id:<access key id>`.
//!
//! The `bucket_acl` and `object_acl` records are applied to the index in acl_index.rs, so
//! that this file, which the index and the records name, names neither.

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grantee {
    /// Everyone, signed or not (S3's `.../groups/global/AllUsers`).
    AllUsers,
    /// Any request signed by a key of this director (`.../groups/global/AuthenticatedUsers`).
    AuthenticatedUsers,
    /// One key, by its access key id (its canonical id).
    Key(String),
}

/// What a grant allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// A bucket: list it. An object: read it.
    Read,
    /// A bucket: write and delete objects in it. (Not granted on objects, as S3.)
    Write,
    ReadAcp,
    WriteAcp,
    /// All of the above.
    FullControl,
}

impl Permission {
    /// S3's names, which the records use too.
    pub const ALL: [(Permission, &'static str); 5] = [
        (Permission::Read, "READ"),
        (Permission::Write, "WRITE"),
        (Permission::ReadAcp, "READ_ACP"),
        (Permission::WriteAcp, "WRITE_ACP"),
        (Permission::FullControl, "FULL_CONTROL"),
    ];

    pub fn parse(s: &str) -> Option<Permission> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(p, _)| *p)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("FULL_CONTROL", |(_, n)| n)
    }

    /// Whether holding `self` gives `wanted`.
    fn covers(self, wanted: Permission) -> bool {
        self == wanted || self == Permission::FullControl
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// The grants of a bucket or an object version beyond the owner's; empty: private.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    pub grants: Vec<Grant>,
}

/// An ACL as journal records, snapshots and object records hold it.
pub type AclRecord = Vec<(String, String)>;

/// Who sent a request, as an ACL sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requester<'a> {
    Anonymous,
    Key(&'a str),
}

impl Acl {
    pub fn is_private(&self) -> bool {
        self.grants.is_empty()
    }

    /// Whether a grant gives `who` the permission `wanted`.
    pub fn allows(&self, who: Requester<'_>, wanted: Permission) -> bool {
        self.grants.iter().any(|g| {
            let mine = match (&g.grantee, who) {
                (Grantee::AllUsers, _) => true,
                (Grantee::AuthenticatedUsers, Requester::Key(_)) => true,
                (Grantee::Key(id), Requester::Key(k)) => id == k,
                _ => false,
            };
            mine && g.permission.covers(wanted)
        })
    }

    pub fn to_record(&self) -> AclRecord {
        self.grants
            .iter()
            .map(|g| {
                let who = match &g.grantee {
                    Grantee::AllUsers => "AllUsers".to_string(),
                    Grantee::AuthenticatedUsers => "AuthenticatedUsers".to_string(),
                    Grantee::Key(id) => format!("id:{id}"),
                };
                (who, g.permission.as_str().to_string())
            })
            .collect()
    }

    /// The ACL a record holds; an unknown grantee or permission is an error (a record
    /// this director did not write).
    pub fn from_record(r: &AclRecord) -> std::result::Result<Acl, String> {
        let mut grants = Vec::with_capacity(r.len());
        for (who, perm) in r {
            let grantee = match who.as_str() {
                "AllUsers" => Grantee::AllUsers,
                "AuthenticatedUsers" => Grantee::AuthenticatedUsers,
                other => match other.strip_prefix("id:") {
                    Some(id) if !id.is_empty() => Grantee::Key(id.to_string()),
                    _ => return Err(format!("unknown ACL grantee {who:?}")),
                },
            };
            let permission = Permission::parse(perm)
                .ok_or_else(|| format!("unknown ACL permission {perm:?}"))?;
            grants.push(Grant {
                grantee,
                permission,
            });
        }
        Ok(Acl { grants })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_allow_whom_they_name() {
        let acl = Acl::from_record(&vec![
            ("AllUsers".into(), "READ".into()),
            ("id:AK2".into(), "FULL_CONTROL".into()),
            ("AuthenticatedUsers".into(), "READ_ACP".into()),
        ])
        .unwrap();
        assert!(acl.allows(Requester::Anonymous, Permission::Read));
        assert!(!acl.allows(Requester::Anonymous, Permission::Write));
        assert!(!acl.allows(Requester::Anonymous, Permission::ReadAcp));
        assert!(acl.allows(Requester::Key("AK1"), Permission::ReadAcp));
        assert!(!acl.allows(Requester::Key("AK1"), Permission::WriteAcp));
        assert!(acl.allows(Requester::Key("AK2"), Permission::WriteAcp));
        assert_eq!(Acl::from_record(&acl.to_record()).unwrap(), acl);
        assert!(Acl::default().is_private());
        assert!(Acl::from_record(&vec![("Everyone".into(), "READ".into())]).is_err());
        assert!(Acl::from_record(&vec![("id:".into(), "READ".into())]).is_err());
        assert!(Acl::from_record(&vec![("AllUsers".into(), "ALL".into())]).is_err());
    }
}

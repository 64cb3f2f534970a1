//! S3 ACLs: canned ACLs and `x-amz-grant-*` headers, the `AccessControlPolicy` document
//! of GET and PUT `?acl`, and the one rule of what an ACL lets a request do
//! (`permits`). The grants themselves are `meta::acl`.
//!
//! Canonical ids: a key's canonical id is its access key id. A bucket's owner is the key
//! that created it; an object belongs to its bucket's owner (whoever wrote it), so an
//! object's ACL and a bucket's name the same owner. Buckets without an owner (made
//! without keys, before owners, or by `dpyfs recover`) belong to the admin keys, whose
//! shared canonical id is `OWNER_ID` (`dpyfs`).
//!
//! An ACL only adds: the owner, admin keys and keys whose bucket list names the bucket
//! keep what `auth::Access::check_bucket` gives them; a request that fails that check
//! is let through when an ACL grants what it needs. Anonymous requests get nothing else;
//! a key with a bucket list gets nothing from ACLs outside it (`outside_list`).

use super::DirectorApi;
use super::auth::{Access, Principal};
use super::multipart_routes::{self, Op};
use super::object_routes::{first_subresource, parse_copy_source, read_small_body};
use super::object_versions::{object_to_read, requested_version, with_version_id};
use super::target::{OWNER_ID, Target, owner_elem, owner_id, parse_target, xml};
use crate::director::error::{DirectorError, Result};
use crate::director::meta::acl::{Acl, Grant, Grantee, Permission};
use crate::director::meta::index::Index;
use crate::director::meta::records::Record;
use crate::http::{Request, Response};
use crate::s3::xml::{Doc, Element};

/// Most grants one ACL may hold (S3's limit).
pub const GRANTS_MAX: usize = 100;

const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The `x-amz-grant-*` headers and the permission each grants.
const GRANT_HEADERS: &[(&str, Permission)] = &[
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
    ("x-amz-grant-full-control", Permission::FullControl),
];

fn invalid(msg: String) -> DirectorError {
    DirectorError::BadRequest("InvalidArgument", msg)
}

fn malformed(msg: String) -> DirectorError {
    DirectorError::BadRequest("MalformedACLError", msg)
}

/// A canned ACL by name. `bucket-owner-read` and `bucket-owner-full-control` grant the
/// bucket's owner on an object, who owns every object of its bucket already: they are
/// `private`. `aws-exec-read` and `log-delivery-write` grant AWS services dpyfs does not
/// have: 501. Any other name is 400.
fn canned(name: &str) -> Result<Acl> {
    let all = |p| Grant {
        grantee: Grantee::AllUsers,
        permission: p,
    };
    let grants = match name {
        "private" | "bucket-owner-read" | "bucket-owner-full-control" => vec![],
        "public-read" => vec![all(Permission::Read)],
        "public-read-write" => vec![all(Permission::Read), all(Permission::Write)],
        "authenticated-read" => vec![Grant {
            grantee: Grantee::AuthenticatedUsers,
            permission: Permission::Read,
        }],
        "aws-exec-read" | "log-delivery-write" => {
            return Err(DirectorError::NotImplemented(format!(
                "the canned ACL {name:?} (it grants an AWS service dpyfs does not have)"
            )));
        }
        other => {
            return Err(invalid(format!(
                "x-amz-acl {other:?} is not a canned ACL (private, public-read, \
                 public-read-write, authenticated-read, bucket-owner-read, \
                 bucket-owner-full-control)"
            )));
        }
    };
    Ok(Acl { grants })
}

/// The grantee a group URI names.
fn group(uri: &str) -> Result<Grantee> {
    match uri {
        ALL_USERS_URI => Ok(Grantee::AllUsers),
        AUTHENTICATED_USERS_URI => Ok(Grantee::AuthenticatedUsers),
        other => Err(invalid(format!(
            "the group {other:?} is not one dpyfs knows (AllUsers, AuthenticatedUsers)"
        ))),
    }
}

fn by_email(email: &str) -> DirectorError {
    DirectorError::BadRequest(
        "UnresolvableGrantByEmailAddress",
        format!("dpyfs keys have no e-mail addresses; grant {email:?} by its id (access key id)"),
    )
}

/// The grantees of one `x-amz-grant-*` value: `id="..."`, `uri="..."`, comma-separated.
fn header_grantees(h: &str, value: &str) -> Result<Vec<Grantee>> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (kind, v) = item
            .split_once('=')
            .ok_or_else(|| invalid(format!("{h}: {item:?} is not type=\"value\"")))?;
        let v = v.trim().trim_matches('"');
        out.push(match kind.trim().to_ascii_lowercase().as_str() {
            "id" => Grantee::Key(v.to_string()),
            "uri" => group(v)?,
            "emailaddress" => return Err(by_email(v)),
            other => return Err(invalid(format!("{h}: unknown grantee type {other:?}"))),
        });
    }
    if out.is_empty() {
        return Err(invalid(format!("{h} names no grantee")));
    }
    Ok(out)
}

/// Checks every key a grant names (`known`: an access key id of this director), drops
/// grants the owner holds anyway (to `owner`, the resource's owner, or to the admin
/// keys) and repeats, and bounds the list.
fn resolve(acl: Acl, owner: &str, known: &dyn Fn(&str) -> bool) -> Result<Acl> {
    let mut grants: Vec<Grant> = Vec::new();
    for g in acl.grants {
        if let Grantee::Key(id) = &g.grantee {
            if id == owner || id == OWNER_ID {
                continue;
            }
            if !known(id) {
                return Err(invalid(format!(
                    "the grantee id {id:?} is not a key of this director (a canonical id \
                     is an access key id)"
                )));
            }
        }
        if !grants.contains(&g) {
            grants.push(g);
        }
    }
    if grants.len() > GRANTS_MAX {
        return Err(malformed(format!(
            "an ACL holds at most {GRANTS_MAX} grants, not {}",
            grants.len()
        )));
    }
    Ok(Acl { grants })
}

/// The ACL a request's headers set (`x-amz-acl`, or `x-amz-grant-*`), None when it has
/// none. `owner` is the canonical id of the resource's owner, `known` tells the key ids.
pub fn from_headers(
    req: &Request<'_>,
    owner: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<Option<Acl>> {
    let canned_name = req.header("x-amz-acl").map(str::trim);
    let mut grants = Vec::new();
    for (h, p) in GRANT_HEADERS {
        if let Some(v) = req.header(h) {
            for grantee in header_grantees(h, v)? {
                grants.push(Grant {
                    grantee,
                    permission: *p,
                });
            }
        }
    }
    let acl = match (canned_name, grants.is_empty()) {
        (None, true) => return Ok(None),
        (Some(_), false) => {
            return Err(DirectorError::BadRequest(
                "InvalidRequest",
                "x-amz-acl and x-amz-grant-* headers cannot be used together".into(),
            ));
        }
        (Some(name), true) => canned(name)?,
        (None, false) => Acl { grants },
    };
    resolve(acl, owner, known).map(Some)
}

/// Whether a request carries ACL headers (a write that sets an ACL needs WRITE_ACP).
fn has_acl_headers(req: &Request<'_>) -> bool {
    req.header("x-amz-acl").is_some() || GRANT_HEADERS.iter().any(|(h, _)| req.header(h).is_some())
}

/// The ACL of a PUT `?acl`: its headers, or an `AccessControlPolicy` document in `body`
/// (not both, and not neither). The document's `<Owner>` is not checked: an ACL does not
/// change who owns a bucket or object.
pub fn from_request(
    req: &Request<'_>,
    body: &str,
    owner: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<Acl> {
    let headers = from_headers(req, owner, known)?;
    match (headers, body.trim().is_empty()) {
        (Some(acl), true) => Ok(acl),
        (Some(_), false) => Err(DirectorError::BadRequest(
            "UnexpectedContent",
            "a PUT ?acl carries either ACL headers or an ACL document, not both".into(),
        )),
        (None, true) => Err(DirectorError::BadRequest(
            "MissingSecurityHeader",
            "a PUT ?acl needs x-amz-acl, x-amz-grant-* or an AccessControlPolicy document".into(),
        )),
        (None, false) => {
            let doc = crate::s3::xml::parse(body)
                .map_err(|e| malformed(format!("the ACL document is malformed: {e}")))?;
            resolve(from_document(&doc)?, owner, known)
        }
    }
}

/// The grants of an `AccessControlPolicy` document.
fn from_document(doc: &Element) -> Result<Acl> {
    if doc.name != "AccessControlPolicy" {
        return Err(malformed(format!(
            "expected an <AccessControlPolicy> document, got <{}>",
            doc.name
        )));
    }
    let list = doc
        .child("AccessControlList")
        .ok_or_else(|| malformed("the document has no <AccessControlList>".into()))?;
    let mut grants = Vec::new();
    for g in list.all("Grant") {
        let who = g
            .child("Grantee")
            .ok_or_else(|| malformed("a <Grant> without <Grantee>".into()))?;
        let grantee = match (
            who.child_text("ID"),
            who.child_text("URI"),
            who.child_text("EmailAddress"),
        ) {
            (Some(id), None, None) if !id.is_empty() => Grantee::Key(id.to_string()),
            (None, Some(uri), None) => group(uri)?,
            (None, None, Some(email)) => return Err(by_email(email)),
            _ => {
                return Err(malformed(
                    "a <Grantee> names one of <ID>, <URI> or <EmailAddress>".into(),
                ));
            }
        };
        let p = g.child_text("Permission").unwrap_or_default();
        let permission = Permission::parse(p)
            .ok_or_else(|| malformed(format!("the permission {p:?} is not an S3 permission")))?;
        grants.push(Grant {
            grantee,
            permission,
        });
    }
    Ok(Acl { grants })
}

/// The `AccessControlPolicy` of GET `?acl`: the owner with FULL_CONTROL, then the grants.
pub fn document(owner: &str, acl: &Acl) -> String {
    let mut d = Doc::new("AccessControlPolicy");
    owner_elem(&mut d, "Owner", owner);
    d.open("AccessControlList");
    let owner_grant = Grant {
        grantee: Grantee::Key(owner.to_string()),
        permission: Permission::FullControl,
    };
    for g in std::iter::once(&owner_grant).chain(&acl.grants) {
        d.open("Grant");
        match &g.grantee {
            Grantee::Key(id) => {
                d.open_attrs(
                    "Grantee",
                    &[("xmlns:xsi", XSI), ("xsi:type", "CanonicalUser")],
                )
                .elem("ID", id)
                .elem("DisplayName", id);
            }
            Grantee::AllUsers | Grantee::AuthenticatedUsers => {
                let uri = match g.grantee {
                    Grantee::AllUsers => ALL_USERS_URI,
                    _ => AUTHENTICATED_USERS_URI,
                };
                d.open_attrs("Grantee", &[("xmlns:xsi", XSI), ("xsi:type", "Group")])
                    .elem("URI", uri);
            }
        }
        d.close("Grantee")
            .elem("Permission", g.permission.as_str())
            .close("Grant");
    }
    d.close("AccessControlList");
    d.finish("AccessControlPolicy")
}

// ---------------------------------------------------------------------------------------
// Enforcement.

/// What a request needs of an ACL: a permission on the bucket it names, or on the object
/// version it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    Bucket(Permission),
    Object(Permission),
}

/// What `req` needs of ACLs to be let through without ownership; empty: no ACL grants
/// it (creating or deleting a bucket, its settings, tags), only ownership does. As S3:
/// READ on a bucket lists it; WRITE on a bucket writes and deletes its objects (and
/// runs their multipart uploads, lists their parts); READ on an object reads it; READ_ACP and WRITE_ACP
/// read and change the ACL. A write that also sets an ACL needs WRITE_ACP on the bucket.
fn needs(req: &Request<'_>, target: &Target) -> Vec<Need> {
    use Permission::*;
    let has = |k: &str| req.query_params().iter().any(|(n, _)| n == k);
    let method = req.method.as_str();
    let write = |v: &mut Vec<Need>| {
        v.push(Need::Bucket(Write));
        if has_acl_headers(req) {
            v.push(Need::Bucket(WriteAcp));
        }
    };
    let mut v = Vec::new();
    if let Some(op) = multipart_routes::op(method, target, req) {
        match op {
            Op::ListUploads => v.push(Need::Bucket(Read)),
            // A part's ETag is the MD5 of its bytes, which may become a private object:
            // for those who write the upload, as S3 keeps ListParts from bucket READ.
            Op::ListParts => v.push(Need::Bucket(Write)),
            Op::Create | Op::UploadPart | Op::Complete | Op::Abort => write(&mut v),
        }
        return v;
    }
    // Judged by the sub-resource that answers (the first one named, as `route` picks
    // it), never by another the query also names: `?versioning&acl` changes versioning,
    // and a WRITE_ACP grant must not let it through.
    match (method, target, first_subresource(req)) {
        ("GET", Target::Bucket(_), Some("acl")) => v.push(Need::Bucket(ReadAcp)),
        ("PUT", Target::Bucket(_), Some("acl")) => v.push(Need::Bucket(WriteAcp)),
        ("GET", Target::Object(..), Some("acl")) => v.push(Need::Object(ReadAcp)),
        ("PUT", Target::Object(..), Some("acl")) => v.push(Need::Object(WriteAcp)),
        ("GET" | "HEAD", Target::Bucket(_), None | Some("versions" | "location")) => {
            v.push(Need::Bucket(Read))
        }
        ("POST", Target::Bucket(_), None) if has("delete") => write(&mut v),
        ("GET" | "HEAD", Target::Object(..), None | Some("attributes")) => {
            v.push(Need::Object(Read))
        }
        // Removing a version for good (`?versionId=`) is the bucket owner's, as S3's
        // DeleteObjectVersion: WRITE makes delete markers, it does not erase history.
        ("DELETE", Target::Object(..), None) if has("versionId") => {}
        ("PUT" | "DELETE", Target::Object(..), None) => write(&mut v),
        _ => {}
    }
    v
}

/// Whether `access` is a key whose bucket list leaves `bucket` out: no ACL gives such a
/// key anything there. The list is dpyfs's own restriction (S3 has none), meant to hold a
/// key handed to one application to its buckets whatever other owners grant; grants to
/// everyone it could still use unsigned, but not as that key.
fn outside_list(access: &Access, bucket: &str) -> bool {
    match &access.principal {
        Principal::Key {
            buckets: Some(list),
            ..
        } => !list.iter().any(|b| b == bucket),
        _ => false,
    }
}

/// Whether an ACL lets `access` do what `req` asks, where ownership does not: the one
/// question an ACL answers. A missing bucket grants nothing (an anonymous request learns
/// nothing of it); a missing object version is answered (404) to whoever may list the
/// bucket, and refused to anyone else.
pub fn permits(access: &Access, req: &Request<'_>, idx: &Index) -> bool {
    let Some(who) = access.requester() else {
        return true;
    };
    let (bucket, key) = match parse_target(&req.path) {
        Ok(Target::Bucket(b)) => (b, None),
        Ok(Target::Object(b, k)) => (b, Some(k)),
        Ok(Target::Service) | Err(_) => return false,
    };
    let Some(b) = idx
        .buckets
        .get(&bucket)
        .filter(|_| !outside_list(access, &bucket))
    else {
        return false;
    };
    let target = match &key {
        Some(k) => Target::Object(bucket.clone(), k.clone()),
        None => Target::Bucket(bucket.clone()),
    };
    let needed = needs(req, &target);
    !needed.is_empty()
        && needed.iter().all(|n| match (n, &key) {
            (Need::Bucket(p), _) => b.acl.allows(who, *p),
            (Need::Object(p), Some(k)) => {
                let version = requested_version(req).ok();
                let read = version
                    .map(|v| object_to_read(idx, &bucket, k, v.as_ref().map(Option::as_deref)));
                match read {
                    Some(Ok(m)) => m.acl.allows(who, *p),
                    // A missing version or a delete marker: its 404 to whoever may list
                    // the bucket. Not a PUT ?acl, which would otherwise be judged here and
                    // then change a version made in between.
                    _ => *p != Permission::WriteAcp && b.acl.allows(who, Permission::Read),
                }
            }
            (Need::Object(_), None) => false,
        })
}

/// Whether `bucket`'s ACL lets `access` write a new object into it where ownership does
/// not (a form upload, whose fields `fields` carries as headers): WRITE, and WRITE_ACP
/// when the fields set an ACL, as `needs` asks of a PutObject.
pub fn permits_write(access: &Access, bucket: &str, fields: &Request<'_>, idx: &Index) -> bool {
    let Some(who) = access.requester() else {
        return true;
    };
    let bucket_acl = idx
        .buckets
        .get(bucket)
        .filter(|_| !outside_list(access, bucket));
    bucket_acl.is_some_and(|b| {
        b.acl.allows(who, Permission::Write)
            && (!has_acl_headers(fields) || b.acl.allows(who, Permission::WriteAcp))
    })
}

/// Whether an ACL lets `access` read a copy's source (`x-amz-copy-source`), where
/// ownership of its bucket does not.
pub fn permits_copy_source(access: &Access, src: &str, idx: &Index) -> bool {
    let Some(who) = access.requester() else {
        return true;
    };
    let Ok((b, k, v)) = parse_copy_source(src) else {
        // A malformed source is the copy handler's to refuse (400), not a 403.
        return true;
    };
    !outside_list(access, &b)
        && object_to_read(idx, &b, &k, v.as_ref().map(Option::as_deref))
            .is_ok_and(|m| m.acl.allows(who, Permission::Read))
}

// ---------------------------------------------------------------------------------------
// The routes.

impl DirectorApi {
    /// The canonical id of `bucket`'s owner (`OWNER_ID` for a missing bucket, which its
    /// handler refuses anyway).
    fn bucket_owner_id(&self, bucket: &str) -> String {
        let idx = self.director.read_index();
        let owner = idx.buckets.get(bucket).and_then(|b| b.owner.as_deref());
        owner_id(owner).to_string()
    }

    /// The ACL a write's headers give the object it makes in `bucket` (private when
    /// they set none).
    pub(super) fn request_acl(&self, req: &Request<'_>, bucket: &str) -> Result<Acl> {
        let owner = self.bucket_owner_id(bucket);
        let known = |id: &str| self.auth.knows(id);
        Ok(from_headers(req, &owner, &known)?.unwrap_or_default())
    }

    /// GET or PUT `?acl` of a bucket.
    pub(super) fn bucket_acl(
        &self,
        method: &str,
        bucket: &str,
        req: &mut Request<'_>,
    ) -> Result<Response> {
        let (owner, acl) = {
            let idx = self.director.read_index();
            let b = idx.bucket(bucket)?;
            (owner_id(b.owner.as_deref()).to_string(), b.acl.clone())
        };
        if method == "GET" {
            return Ok(xml(200, document(&owner, &acl)));
        }
        let body = read_small_body(req)?;
        let known = |id: &str| self.auth.knows(id);
        let acl = from_request(req, &body, &owner, &known)?;
        self.director.commit(&Record::BucketAcl {
            bucket: bucket.to_string(),
            acl: acl.to_record(),
        })?;
        Ok(Response::empty(200))
    }

    /// GET or PUT `?acl` of an object version (the current one, or `?versionId=`).
    pub(super) fn object_acl(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        req: &mut Request<'_>,
        access: &Access,
    ) -> Result<Response> {
        let version = requested_version(req)?;
        // The body before the version: a client sending it slowly must not hold the
        // check below open while the key is overwritten (in an unversioned bucket the
        // record names the current object, whichever it is by then).
        let body = match method {
            "PUT" => read_small_body(req)?,
            _ => String::new(),
        };
        let (owner, m, versioning, by_owner) = {
            let idx = self.director.read_index();
            let b = idx.bucket(bucket)?;
            let m = object_to_read(&idx, bucket, key, version.as_ref().map(Option::as_deref))?;
            let by_owner = access.check_bucket(bucket, Some(b.owner.as_deref()));
            let owner = owner_id(b.owner.as_deref()).to_string();
            (owner, m, b.versioning, by_owner.is_ok())
        };
        // `permits` judged the version current then; this may be a newer one.
        let wanted = match method {
            "GET" => Permission::ReadAcp,
            _ => Permission::WriteAcp,
        };
        if !by_owner {
            access.check_version_acl(&m, wanted, "the object's")?;
        }
        if method == "GET" {
            let r = xml(200, document(&owner, &m.acl));
            return Ok(with_version_id(r, versioning, &m));
        }
        let known = |id: &str| self.auth.knows(id);
        let acl = from_request(req, &body, &owner, &known)?;
        self.director.commit(&Record::ObjectAcl {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version: m.version.clone(),
            acl: acl.to_record(),
        })?;
        Ok(with_version_id(Response::empty(200), versioning, &m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::director::meta::acl::Requester;

    fn known(id: &str) -> bool {
        id == "AK2"
    }

    #[test]
    fn canned_acls_and_their_refusals() {
        assert!(canned("private").unwrap().is_private());
        assert!(canned("bucket-owner-full-control").unwrap().is_private());
        let pr = canned("public-read").unwrap();
        assert!(pr.allows(Requester::Anonymous, Permission::Read));
        assert!(!pr.allows(Requester::Anonymous, Permission::Write));
        let prw = canned("public-read-write").unwrap();
        assert!(prw.allows(Requester::Anonymous, Permission::Write));
        let ar = canned("authenticated-read").unwrap();
        assert!(!ar.allows(Requester::Anonymous, Permission::Read));
        assert!(ar.allows(Requester::Key("AK9"), Permission::Read));
        let code = |r: Result<Acl>| r.unwrap_err().status_and_code();
        assert_eq!(code(canned("public")), (400, "InvalidArgument"));
        assert_eq!(code(canned("log-delivery-write")).0, 501);
    }

    #[test]
    fn grant_headers_parse_and_resolve() {
        let g = header_grantees(
            "x-amz-grant-read",
            r#"id="AK2", uri="http://acs.amazonaws.com/groups/global/AllUsers""#,
        )
        .unwrap();
        assert_eq!(g, [Grantee::Key("AK2".into()), Grantee::AllUsers]);
        assert!(header_grantees("h", r#"emailAddress="a@b""#).is_err());
        assert!(
            header_grantees(
                "h",
                r#"uri="http://acs.amazonaws.com/groups/s3/LogDelivery""#
            )
            .is_err()
        );
        assert!(header_grantees("h", "AK2").is_err());
        assert!(header_grantees("h", " ").is_err());
        let acl = Acl {
            grants: vec![
                Grant {
                    grantee: Grantee::Key("AK1".into()),
                    permission: Permission::FullControl,
                },
                Grant {
                    grantee: Grantee::Key("AK2".into()),
                    permission: Permission::Read,
                },
            ],
        };
        // The owner's own grant is dropped; another known key's is kept.
        let r = resolve(acl.clone(), "AK1", &known).unwrap();
        assert_eq!(r.grants.len(), 1);
        let bad = Acl {
            grants: vec![Grant {
                grantee: Grantee::Key("AK3".into()),
                permission: Permission::Read,
            }],
        };
        assert!(resolve(bad, "AK1", &known).is_err());
    }

    #[test]
    fn documents_round_trip() {
        let acl = Acl {
            grants: vec![
                Grant {
                    grantee: Grantee::AllUsers,
                    permission: Permission::Read,
                },
                Grant {
                    grantee: Grantee::Key("AK2".into()),
                    permission: Permission::WriteAcp,
                },
            ],
        };
        let text = document("AK1", &acl);
        let doc = crate::s3::xml::parse(&text).unwrap();
        let back = resolve(from_document(&doc).unwrap(), "AK1", &known).unwrap();
        assert_eq!(back, acl);
        let bad = crate::s3::xml::parse(
            "<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>AK2</ID></Grantee>\
             <Permission>EVERYTHING</Permission></Grant></AccessControlList></AccessControlPolicy>",
        )
        .unwrap();
        assert_eq!(
            from_document(&bad).unwrap_err().status_and_code(),
            (400, "MalformedACLError")
        );
    }
}

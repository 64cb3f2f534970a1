#!/usr/bin/env python3
"""boto3 against a dpyfs director: every S3 operation of issue 4, checked case by case.

Run by tests/s3_clients.rs with the venv of tests/clients/install.sh:
  boto3_suite.py --endpoint URL [--unsigned] [--checksums when_supported|when_required]
                 [--auth --limited-key AK:SK] [--only CASE,...]
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Every case runs (each in
its own bucket) even when an earlier one failed; the exit status is 1 if any failed.
"""
import argparse
import base64
import binascii
import datetime
import email.utils
import hashlib
import io
import os
import sys
import time
import traceback
import urllib.error
import urllib.request
import zlib

import boto3
import botocore
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

MiB = 1 << 20
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def data(n, seed):
    """Deterministic bytes."""
    out = bytearray()
    x = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        x = hashlib.sha256(x).digest()
        out += x * 64
    return bytes(out[:n])


def md5_hex(b):
    return hashlib.md5(b).hexdigest()


def crc32_b64(b):
    return base64.b64encode((zlib.crc32(b) & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def err(fn, *a, **kw):
    """Calls fn and returns (HTTP status, S3 error code) of the ClientError it must raise."""
    try:
        fn(*a, **kw)
    except ClientError as e:
        return (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
    raise AssertionError(f"{getattr(fn, '__name__', fn)} succeeded, an error was expected")


def eq(got, want, what=""):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def ok(cond, what):
    if not cond:
        raise AssertionError(what)


class Ctx:
    def __init__(self, args):
        self.args = args
        self.endpoint = args.endpoint
        self.unsigned = args.unsigned
        self.checksums = args.checksums
        self.s3 = self.client()

    def config(self, **extra):
        kw = dict(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=120,
            request_checksum_calculation=self.checksums,
            response_checksum_validation=self.checksums,
        )
        if self.unsigned:
            kw["signature_version"] = UNSIGNED
        kw.update(extra)
        return Config(**kw)

    def client(self, access=None, secret=None, **extra):
        kw = {}
        if access is not None:
            kw = dict(aws_access_key_id=access, aws_secret_access_key=secret)
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            config=self.config(**extra), **kw)

    def bucket(self, name):
        self.s3.create_bucket(Bucket=name)
        return name


# ---------------------------------------------------------------- buckets

@case
def buckets(c):
    s3 = c.s3
    r = s3.create_bucket(Bucket="bk-one")
    ok(r["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id"), "x-amz-request-id header")
    s3.head_bucket(Bucket="bk-one")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    ok("bk-one" in names, f"bk-one in ListBuckets {names}")
    loc = s3.get_bucket_location(Bucket="bk-one")["LocationConstraint"]
    ok(loc in (None, "us-east-1"), f"LocationConstraint for us-east-1 is empty: {loc!r}")
    eq(err(s3.head_bucket, Bucket="bk-missing"), (404, "404"), "HEAD of a missing bucket")
    eq(err(s3.list_objects_v2, Bucket="bk-missing"), (404, "NoSuchBucket"), "list missing bucket")
    eq(err(s3.get_bucket_location, Bucket="bk-missing"), (404, "NoSuchBucket"), "location of missing")
    for bad in ("Bad_Name", "ab", "-leading-dash", "a" * 64, "double..dot", "192.168.1.1"):
        eq(err(s3.create_bucket, Bucket=bad), (400, "InvalidBucketName"), f"create {bad!r}")
    s3.put_object(Bucket="bk-one", Key="k", Body=b"x")
    eq(err(s3.delete_bucket, Bucket="bk-one"), (409, "BucketNotEmpty"), "delete non-empty bucket")
    s3.delete_object(Bucket="bk-one", Key="k")
    s3.delete_bucket(Bucket="bk-one")
    eq(err(s3.head_bucket, Bucket="bk-one"), (404, "404"), "HEAD of a deleted bucket")
    eq(err(s3.delete_bucket, Bucket="bk-one"), (404, "NoSuchBucket"), "delete a deleted bucket")


@case
def bucket_subresources(c):
    """What clients probe at start: versioning, acl, policy, cors, lifecycle..."""
    s3 = c.s3
    b = c.bucket("bk-sub")
    v = s3.get_bucket_versioning(Bucket=b)
    ok("Status" not in v or v["Status"] in ("", None), f"not versioned: {v}")
    acl = s3.get_bucket_acl(Bucket=b)
    ok(acl["Owner"].get("ID"), f"bucket ACL has an owner: {acl}")
    eq([g["Permission"] for g in acl["Grants"]], ["FULL_CONTROL"], "owner-only bucket ACL")
    eq(err(s3.get_bucket_policy, Bucket=b)[1], "NoSuchBucketPolicy", "policy")
    eq(err(s3.get_bucket_cors, Bucket=b)[1], "NoSuchCORSConfiguration", "cors")
    eq(err(s3.get_bucket_lifecycle_configuration, Bucket=b)[1], "NoSuchLifecycleConfiguration",
       "lifecycle")
    s3.put_object(Bucket=b, Key="o", Body=b"acl")
    oacl = s3.get_object_acl(Bucket=b, Key="o")
    eq([g["Permission"] for g in oacl["Grants"]], ["FULL_CONTROL"], "owner-only object ACL")
    # Setting a canned private ACL is what s3cmd does after cp: accepted.
    s3.put_object_acl(Bucket=b, Key="o", ACL="private")
    # Versioning is offered (issue 16; tests/clients/versions_suite.py has the rest).
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    eq(s3.get_bucket_versioning(Bucket=b)["Status"], "Enabled", "enabling versioning")


# ---------------------------------------------------------------- objects

@case
def put_get_head_delete(c):
    s3 = c.s3
    b = c.bucket("ob-basic")
    body = data(100_000, 1)
    r = s3.put_object(Bucket=b, Key="dir/obj.bin", Body=body)
    eq(r["ETag"], f'"{md5_hex(body)}"', "PUT ETag")
    g = s3.get_object(Bucket=b, Key="dir/obj.bin")
    eq(g["Body"].read(), body, "GET body")
    eq(g["ContentLength"], len(body), "GET Content-Length")
    eq(g["ETag"], f'"{md5_hex(body)}"', "GET ETag")
    ok(isinstance(g["LastModified"], datetime.datetime), "Last-Modified")
    h = s3.head_object(Bucket=b, Key="dir/obj.bin")
    eq(h["ContentLength"], len(body), "HEAD Content-Length")
    eq(h["ETag"], f'"{md5_hex(body)}"', "HEAD ETag")
    rg = s3.get_object(Bucket=b, Key="dir/obj.bin", Range="bytes=10-19")
    eq(rg["Body"].read(), body[10:20], "ranged GET")
    eq(rg["ContentRange"], f"bytes 10-19/{len(body)}", "Content-Range")
    eq(rg["ResponseMetadata"]["HTTPStatusCode"], 206, "ranged GET status")
    empty = s3.put_object(Bucket=b, Key="empty", Body=b"")
    eq(empty["ETag"], '"d41d8cd98f00b204e9800998ecf8427e"', "ETag of an empty object")
    eq(s3.get_object(Bucket=b, Key="empty")["Body"].read(), b"", "empty GET")
    weird = "ünï cöde/with space+plus%percent&amp?q=1#hash"
    s3.put_object(Bucket=b, Key=weird, Body=b"weird")
    eq(s3.get_object(Bucket=b, Key=weird)["Body"].read(), b"weird", "GET of a key needing encoding")
    s3.put_object(Bucket=b, Key="dir/obj.bin", Body=b"overwritten")
    eq(s3.get_object(Bucket=b, Key="dir/obj.bin")["Body"].read(), b"overwritten", "overwrite")
    d = s3.delete_object(Bucket=b, Key="dir/obj.bin")
    eq(d["ResponseMetadata"]["HTTPStatusCode"], 204, "DELETE status")
    eq(err(s3.get_object, Bucket=b, Key="dir/obj.bin"), (404, "NoSuchKey"), "GET after DELETE")
    eq(err(s3.head_object, Bucket=b, Key="dir/obj.bin"), (404, "404"), "HEAD after DELETE")
    d = s3.delete_object(Bucket=b, Key="dir/obj.bin")
    eq(d["ResponseMetadata"]["HTTPStatusCode"], 204, "DELETE is idempotent")
    eq(err(s3.put_object, Bucket="ob-no-such-bucket", Key="k", Body=b"x"), (404, "NoSuchBucket"),
       "PUT into a missing bucket")
    eq(err(s3.get_object, Bucket="ob-no-such-bucket", Key="k"), (404, "NoSuchBucket"),
       "GET from a missing bucket")


@case
def metadata_round_trip(c):
    s3 = c.s3
    b = c.bucket("ob-meta")
    expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    s3.put_object(
        Bucket=b, Key="m", Body=b"meta body",
        Metadata={"color": "blue", "multi-word": "two words"},
        ContentType="text/x-dpyfs; charset=utf-8", ContentEncoding="identity",
        ContentDisposition='attachment; filename="m.txt"', CacheControl="max-age=60",
        ContentLanguage="en-GB", Expires=expires)
    for what, r in (("HEAD", s3.head_object(Bucket=b, Key="m")),
                    ("GET", s3.get_object(Bucket=b, Key="m"))):
        eq(r["Metadata"], {"color": "blue", "multi-word": "two words"}, f"{what} x-amz-meta-*")
        eq(r["ContentType"], "text/x-dpyfs; charset=utf-8", f"{what} Content-Type")
        eq(r["ContentEncoding"], "identity", f"{what} Content-Encoding")
        eq(r["ContentDisposition"], 'attachment; filename="m.txt"', f"{what} Content-Disposition")
        eq(r["CacheControl"], "max-age=60", f"{what} Cache-Control")
        eq(r["ContentLanguage"], "en-GB", f"{what} Content-Language")
        eq(r["ResponseMetadata"]["HTTPHeaders"].get("expires"), email.utils.format_datetime(expires, usegmt=True),
           f"{what} Expires")
    # response-* overrides on GET
    r = s3.get_object(
        Bucket=b, Key="m", ResponseContentType="application/x-override",
        ResponseContentDisposition="inline", ResponseCacheControl="no-cache",
        ResponseContentEncoding="x-enc", ResponseContentLanguage="fr",
        ResponseExpires=datetime.datetime(2031, 1, 1, tzinfo=datetime.timezone.utc))
    eq(r["ContentType"], "application/x-override", "response-content-type")
    eq(r["ContentDisposition"], "inline", "response-content-disposition")
    eq(r["CacheControl"], "no-cache", "response-cache-control")
    eq(r["ContentEncoding"], "x-enc", "response-content-encoding")
    eq(r["ContentLanguage"], "fr", "response-content-language")
    eq(r["ResponseMetadata"]["HTTPHeaders"].get("expires"), "Wed, 01 Jan 2031 00:00:00 GMT",
       "response-expires")
    eq(r["Body"].read(), b"meta body", "overridden GET body")


@case
def conditional_requests(c):
    s3 = c.s3
    b = c.bucket("ob-cond")
    s3.put_object(Bucket=b, Key="c", Body=b"conditional")
    h = s3.head_object(Bucket=b, Key="c")
    etag, lm = h["ETag"], h["LastModified"]
    before, after = lm - datetime.timedelta(days=1), lm + datetime.timedelta(days=1)
    for what, fn in (("GET", s3.get_object), ("HEAD", s3.head_object)):
        fn(Bucket=b, Key="c", IfMatch=etag)
        eq(err(fn, Bucket=b, Key="c", IfMatch='"00000000000000000000000000000000"'),
           (412, "PreconditionFailed" if what == "GET" else "412"), f"{what} If-Match other")
        eq(err(fn, Bucket=b, Key="c", IfNoneMatch=etag)[0], 304, f"{what} If-None-Match same")
        fn(Bucket=b, Key="c", IfNoneMatch='"00000000000000000000000000000000"')
        eq(err(fn, Bucket=b, Key="c", IfModifiedSince=after)[0], 304,
           f"{what} If-Modified-Since later")
        fn(Bucket=b, Key="c", IfModifiedSince=before)
        eq(err(fn, Bucket=b, Key="c", IfUnmodifiedSince=before)[0], 412,
           f"{what} If-Unmodified-Since earlier")
        fn(Bucket=b, Key="c", IfUnmodifiedSince=after)
        # If-Match true and If-Unmodified-Since false: S3 answers 200 (RFC 7232 order).
        fn(Bucket=b, Key="c", IfMatch=etag, IfUnmodifiedSince=before)
    eq(err(s3.put_object, Bucket=b, Key="c", Body=b"again", IfNoneMatch="*"),
       (412, "PreconditionFailed"), "PUT If-None-Match: * over an existing key")
    eq(s3.get_object(Bucket=b, Key="c")["Body"].read(), b"conditional",
       "refused conditional PUT changed nothing")
    s3.put_object(Bucket=b, Key="new", Body=b"fresh", IfNoneMatch="*")
    eq(s3.get_object(Bucket=b, Key="new")["Body"].read(), b"fresh", "conditional PUT of a new key")


@case
def copy_object(c):
    s3 = c.s3
    b = c.bucket("ob-copy")
    b2 = c.bucket("ob-copy-dst")
    body = data(300_000, 2)
    s3.put_object(Bucket=b, Key="src", Body=body, Metadata={"a": "1"}, ContentType="text/src",
                  CacheControl="max-age=5")
    src_etag = s3.head_object(Bucket=b, Key="src")["ETag"]
    r = s3.copy_object(Bucket=b2, Key="copied", CopySource={"Bucket": b, "Key": "src"})
    eq(r["CopyObjectResult"]["ETag"], src_etag, "CopyObject ETag")
    h = s3.head_object(Bucket=b2, Key="copied")
    eq((h["Metadata"], h["ContentType"], h.get("CacheControl")),
       ({"a": "1"}, "text/src", "max-age=5"), "metadata directive COPY keeps metadata")
    eq(s3.get_object(Bucket=b2, Key="copied")["Body"].read(), body, "copied body")
    s3.copy_object(Bucket=b, Key="replaced", CopySource={"Bucket": b, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="text/new")
    h = s3.head_object(Bucket=b, Key="replaced")
    eq((h["Metadata"], h["ContentType"], h.get("CacheControl")), ({"b": "2"}, "text/new", None),
       "metadata directive REPLACE")
    # Updating an object's metadata in place: a copy onto itself with REPLACE.
    s3.copy_object(Bucket=b, Key="src", CopySource={"Bucket": b, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"c": "3"}, ContentType="text/self")
    h = s3.head_object(Bucket=b, Key="src")
    eq((h["Metadata"], h["ContentType"]), ({"c": "3"}, "text/self"), "self copy with REPLACE")
    eq(s3.get_object(Bucket=b, Key="src")["Body"].read(), body, "self-copied body")
    eq(err(s3.copy_object, Bucket=b, Key="src", CopySource={"Bucket": b, "Key": "src"}),
       (400, "InvalidRequest"), "self copy without changes")
    eq(err(s3.copy_object, Bucket=b, Key="x", CopySource={"Bucket": b, "Key": "missing"}),
       (404, "NoSuchKey"), "copy of a missing key")
    eq(err(s3.copy_object, Bucket=b, Key="x", CopySource={"Bucket": "ob-nope", "Key": "src"}),
       (404, "NoSuchBucket"), "copy from a missing bucket")
    # conditional copy
    eq(err(s3.copy_object, Bucket=b, Key="y", CopySource={"Bucket": b, "Key": "src"},
           CopySourceIfMatch='"00000000000000000000000000000000"'),
       (412, "PreconditionFailed"), "x-amz-copy-source-if-match other")


@case
def delete_objects(c):
    s3 = c.s3
    b = c.bucket("ob-multidel")
    for k in ("a", "b", "c/d"):
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [
        {"Key": "a"}, {"Key": "b"}, {"Key": "c/d"}, {"Key": "never-there"}]})
    eq(sorted(d["Key"] for d in r.get("Deleted", [])), ["a", "b", "c/d", "never-there"],
       "DeleteObjects reports every key deleted (a missing one too)")
    eq(r.get("Errors", []), [], "DeleteObjects errors")
    eq(s3.list_objects_v2(Bucket=b).get("KeyCount"), 0, "bucket empty after DeleteObjects")
    s3.put_object(Bucket=b, Key="q", Body=b"q")
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "q"}], "Quiet": True})
    eq(r.get("Deleted", []), [], "quiet DeleteObjects lists nothing")
    eq(err(s3.head_object, Bucket=b, Key="q")[0], 404, "quietly deleted")


# ---------------------------------------------------------------- listing

LIST_KEYS = ["a/1", "a/2", "a/b/3", "b/1", "c", "d e", "plus+key", "x%y", "ü/x", "z<&>"]


@case
def listing(c):
    s3 = c.s3
    b = c.bucket("ls-bucket")
    for k in LIST_KEYS:
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
    utf8_order = sorted(LIST_KEYS, key=lambda k: k.encode())
    r = s3.list_objects_v2(Bucket=b)
    eq([o["Key"] for o in r["Contents"]], utf8_order, "V2 keys in UTF-8 byte order")
    eq(r["KeyCount"], len(LIST_KEYS), "KeyCount")
    o = r["Contents"][0]
    eq((o["Size"], o["ETag"]), (3, f'"{md5_hex(b"a/1")}"'), "Size and ETag in a listing")
    ok(isinstance(o["LastModified"], datetime.datetime), "LastModified in a listing")
    r = s3.list_objects_v2(Bucket=b, Prefix="a/", Delimiter="/")
    eq([o["Key"] for o in r["Contents"]], ["a/1", "a/2"], "prefix a/ contents")
    eq([p["Prefix"] for p in r["CommonPrefixes"]], ["a/b/"], "prefix a/ common prefixes")
    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    eq([p["Prefix"] for p in r["CommonPrefixes"]], ["a/", "b/", "ü/"], "root common prefixes")
    eq([o["Key"] for o in r["Contents"]], ["c", "d e", "plus+key", "x%y", "z<&>"], "root contents")
    # pagination, V2
    seen, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=b, MaxKeys=3, **kw)
        pages += 1
        seen += [o["Key"] for o in r.get("Contents", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
        ok(pages < 20, "V2 pagination ends")
    eq((seen, pages), (utf8_order, 4), "V2 pages of 3")
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=b, Delimiter="/", PaginationConfig={"PageSize": 2}))
    eq([p["Prefix"] for pg in pages for p in pg.get("CommonPrefixes", [])], ["a/", "b/", "ü/"],
       "V2 paginated common prefixes")
    r = s3.list_objects_v2(Bucket=b, StartAfter="c")
    eq([o["Key"] for o in r["Contents"]], utf8_order[utf8_order.index("c") + 1:], "start-after")
    # V1 with marker pagination
    seen, marker = [], ""
    for _ in range(20):
        r = s3.list_objects(Bucket=b, MaxKeys=4, Marker=marker)
        keys = [o["Key"] for o in r.get("Contents", [])]
        seen += keys
        if not r["IsTruncated"]:
            break
        marker = r.get("NextMarker") or keys[-1]
    eq(seen, utf8_order, "V1 pages of 4")
    r = s3.list_objects(Bucket=b, Prefix="a/", Delimiter="/")
    eq(([o["Key"] for o in r["Contents"]], [p["Prefix"] for p in r["CommonPrefixes"]]),
       (["a/1", "a/2"], ["a/b/"]), "V1 prefix and delimiter")
    r = s3.list_objects(Bucket=b, Delimiter="/", MaxKeys=2)
    ok(r["IsTruncated"] and r.get("NextMarker"), f"V1 with a delimiter gives NextMarker: {r}")
    eq(s3.list_objects_v2(Bucket=b, Prefix="nothing").get("KeyCount"), 0, "empty listing")
    # encoding-type=url asked explicitly: keys come back percent-encoded, botocore leaves them.
    r = s3.list_objects_v2(Bucket=b, Prefix="d", EncodingType="url")
    eq(r.get("EncodingType"), "url", "EncodingType echoed")
    ok(r["Contents"][0]["Key"] in ("d%20e", "d+e"), f"url-encoded key: {r['Contents'][0]['Key']}")


# ---------------------------------------------------------------- multipart

def part_args(resp):
    """The checksum fields botocore returned for a part, to send back in Complete."""
    return {k: v for k, v in resp.items() if k.startswith("Checksum") and k != "ChecksumType"}


@case
def multipart(c):
    s3 = c.s3
    b = c.bucket("mp-bucket")
    parts_data = [data(5 * MiB, 11), data(5 * MiB, 12), data(1 * MiB + 7, 13)]
    up = s3.create_multipart_upload(Bucket=b, Key="big/mp.bin", ContentType="application/x-mp",
                                    Metadata={"kind": "multipart"})
    uid = up["UploadId"]
    listed = s3.list_multipart_uploads(Bucket=b)
    ok(any(u["UploadId"] == uid and u["Key"] == "big/mp.bin" for u in listed.get("Uploads", [])),
       f"ListMultipartUploads shows the upload: {listed}")
    parts = []
    # Parts sent out of order, as aws-cli does.
    for n in (2, 1, 3):
        r = s3.upload_part(Bucket=b, Key="big/mp.bin", UploadId=uid, PartNumber=n,
                           Body=parts_data[n - 1])
        eq(r["ETag"], f'"{md5_hex(parts_data[n - 1])}"', f"part {n} ETag")
        parts.append({"PartNumber": n, "ETag": r["ETag"], **part_args(r)})
    parts.sort(key=lambda p: p["PartNumber"])
    lp = s3.list_parts(Bucket=b, Key="big/mp.bin", UploadId=uid)
    eq([(p["PartNumber"], p["Size"], p["ETag"]) for p in lp["Parts"]],
       [(n + 1, len(d), f'"{md5_hex(d)}"') for n, d in enumerate(parts_data)], "ListParts")
    r = s3.complete_multipart_upload(Bucket=b, Key="big/mp.bin", UploadId=uid,
                                     MultipartUpload={"Parts": parts})
    want = hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts_data)).hexdigest()
    eq(r["ETag"], f'"{want}-3"', "multipart ETag")
    whole = b"".join(parts_data)
    g = s3.get_object(Bucket=b, Key="big/mp.bin")
    eq(hashlib.sha256(g["Body"].read()).hexdigest(), hashlib.sha256(whole).hexdigest(),
       "multipart object body")
    eq((g["ContentLength"], g["ETag"], g["ContentType"], g["Metadata"]),
       (len(whole), f'"{want}-3"', "application/x-mp", {"kind": "multipart"}),
       "multipart object headers")
    rg = s3.get_object(Bucket=b, Key="big/mp.bin", Range=f"bytes={5 * MiB - 3}-{5 * MiB + 2}")
    eq(rg["Body"].read(), whole[5 * MiB - 3:5 * MiB + 3], "range across a part boundary")
    listed = s3.list_multipart_uploads(Bucket=b)
    eq(listed.get("Uploads", []), [], "no pending upload after Complete")
    eq(err(s3.upload_part, Bucket=b, Key="big/mp.bin", UploadId=uid, PartNumber=4, Body=b"x"),
       (404, "NoSuchUpload"), "part of a completed upload")


@case
def multipart_abort_and_errors(c):
    s3 = c.s3
    b = c.bucket("mp-errors")
    uid = s3.create_multipart_upload(Bucket=b, Key="ab")["UploadId"]
    s3.upload_part(Bucket=b, Key="ab", UploadId=uid, PartNumber=1, Body=data(MiB, 3))
    r = s3.abort_multipart_upload(Bucket=b, Key="ab", UploadId=uid)
    eq(r["ResponseMetadata"]["HTTPStatusCode"], 204, "AbortMultipartUpload status")
    eq(s3.list_multipart_uploads(Bucket=b).get("Uploads", []), [], "aborted upload gone")
    eq(err(s3.list_parts, Bucket=b, Key="ab", UploadId=uid), (404, "NoSuchUpload"),
       "ListParts of an aborted upload")
    eq(err(s3.head_object, Bucket=b, Key="ab")[0], 404, "aborted upload made no object")
    eq(err(s3.upload_part, Bucket=b, Key="ab", UploadId="no-such-upload", PartNumber=1,
           Body=b"x"), (404, "NoSuchUpload"), "part of an unknown upload")
    # part size and order rules
    uid = s3.create_multipart_upload(Bucket=b, Key="rules")["UploadId"]
    small = [s3.upload_part(Bucket=b, Key="rules", UploadId=uid, PartNumber=n,
                            Body=data(MiB, 20 + n)) for n in (1, 2)]
    parts = [{"PartNumber": n, "ETag": r["ETag"], **part_args(r)}
             for n, r in zip((1, 2), small)]
    eq(err(s3.complete_multipart_upload, Bucket=b, Key="rules", UploadId=uid,
           MultipartUpload={"Parts": parts}), (400, "EntityTooSmall"), "1 MiB first part")
    bad_etag = [dict(parts[0], ETag='"00000000000000000000000000000000"')]
    eq(err(s3.complete_multipart_upload, Bucket=b, Key="rules", UploadId=uid,
           MultipartUpload={"Parts": bad_etag}), (400, "InvalidPart"), "wrong part ETag")
    eq(err(s3.complete_multipart_upload, Bucket=b, Key="rules", UploadId=uid,
           MultipartUpload={"Parts": [parts[1], parts[0]]}), (400, "InvalidPartOrder"),
       "parts out of order in Complete")
    eq(err(s3.upload_part, Bucket=b, Key="rules", UploadId=uid, PartNumber=10001, Body=b"x")[0],
       400, "part number 10001")
    # A single (small) part is a valid upload.
    r = s3.complete_multipart_upload(Bucket=b, Key="rules", UploadId=uid,
                                     MultipartUpload={"Parts": parts[:1]})
    eq(r["ETag"], f'"{hashlib.md5(hashlib.md5(data(MiB, 21)).digest()).hexdigest()}-1"',
       "one-part ETag")


@case
def upload_part_copy(c):
    s3 = c.s3
    b = c.bucket("mp-copy")
    src = data(9 * MiB, 30)
    s3.put_object(Bucket=b, Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket=b, Key="dst")["UploadId"]
    ranges = [(0, 5 * MiB - 1), (5 * MiB, 9 * MiB - 1)]
    parts = []
    for n, (lo, hi) in reversed(list(enumerate(ranges, 1))):
        r = s3.upload_part_copy(Bucket=b, Key="dst", UploadId=uid, PartNumber=n,
                                CopySource={"Bucket": b, "Key": "src"},
                                CopySourceRange=f"bytes={lo}-{hi}")
        eq(r["CopyPartResult"]["ETag"], f'"{md5_hex(src[lo:hi + 1])}"', f"copied part {n} ETag")
        parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})
    parts.sort(key=lambda p: p["PartNumber"])
    s3.complete_multipart_upload(Bucket=b, Key="dst", UploadId=uid,
                                 MultipartUpload={"Parts": parts})
    eq(s3.get_object(Bucket=b, Key="dst")["Body"].read() == src, True, "UploadPartCopy result")


@case
def parts_attributes_and_composite_checksums(c):
    """Issue 16 item 5: GET/HEAD PartNumber, GetObjectAttributes, composite checksums."""
    s3 = c.s3
    b = c.bucket("mp-parts")
    parts_data = [data(5 * MiB, 40), data(5 * MiB, 41), data(MiB + 7, 42)]
    up = s3.create_multipart_upload(Bucket=b, Key="p", ChecksumAlgorithm="SHA256")
    eq(up.get("ChecksumAlgorithm"), "SHA256", "CreateMultipartUpload checksum algorithm")
    uid = up["UploadId"]
    sha = [hashlib.sha256(d).digest() for d in parts_data]
    parts = []
    for n, d in enumerate(parts_data, 1):
        r = s3.upload_part(Bucket=b, Key="p", UploadId=uid, PartNumber=n, Body=d,
                           ChecksumAlgorithm="SHA256")
        eq(r.get("ChecksumSHA256"), base64.b64encode(sha[n - 1]).decode(), f"part {n} SHA256")
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    lp = s3.list_parts(Bucket=b, Key="p", UploadId=uid)
    eq([p.get("ChecksumSHA256") for p in lp["Parts"]], [p["ChecksumSHA256"] for p in parts],
       "ListParts checksums")
    # A part with another algorithm than the upload's is refused.
    eq(err(s3.upload_part, Bucket=b, Key="p", UploadId=uid, PartNumber=4, Body=b"x",
           ChecksumAlgorithm="CRC32"), (400, "InvalidRequest"), "part with another algorithm")
    # A Complete listing a checksum that is not the part's is InvalidPart, and changes nothing.
    wrong = [dict(p) for p in parts]
    wrong[1]["ChecksumSHA256"] = base64.b64encode(b"\0" * 32).decode()
    eq(err(s3.complete_multipart_upload, Bucket=b, Key="p", UploadId=uid,
           MultipartUpload={"Parts": wrong}), (400, "InvalidPart"), "wrong listed checksum")
    r = s3.complete_multipart_upload(Bucket=b, Key="p", UploadId=uid,
                                     MultipartUpload={"Parts": parts})
    composite = base64.b64encode(hashlib.sha256(b"".join(sha)).digest()).decode() + "-3"
    eq(r.get("ChecksumSHA256"), composite, "Complete's composite checksum")
    whole = b"".join(parts_data)
    # The whole object with its composite checksum (botocore cannot verify a composite one).
    g = s3.get_object(Bucket=b, Key="p", ChecksumMode="ENABLED")
    eq((g["Body"].read() == whole, g.get("ChecksumSHA256")), (True, composite), "whole object")
    # Each part by number: botocore verifies the part's own SHA256 against its bytes.
    start = 0
    for n, d in enumerate(parts_data, 1):
        g = s3.get_object(Bucket=b, Key="p", PartNumber=n, ChecksumMode="ENABLED")
        eq(g["Body"].read() == d, True, f"part {n} body")
        eq((g["PartsCount"], g["ContentRange"], g.get("ChecksumSHA256")),
           (3, f"bytes {start}-{start + len(d) - 1}/{len(whole)}", parts[n - 1]["ChecksumSHA256"]),
           f"part {n} headers")
        h = s3.head_object(Bucket=b, Key="p", PartNumber=n)
        eq((h["ContentLength"], h["PartsCount"]), (len(d), 3), f"HEAD part {n}")
        start += len(d)
    eq(err(s3.get_object, Bucket=b, Key="p", PartNumber=4), (416, "InvalidPartNumber"),
       "part beyond the last")
    # GetObjectAttributes, all of them, then the part list in pages.
    every = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    a = s3.get_object_attributes(Bucket=b, Key="p", ObjectAttributes=every)
    etag = s3.head_object(Bucket=b, Key="p")["ETag"].strip('"')
    eq((a["ETag"], a["ObjectSize"], a["StorageClass"]), (etag, len(whole), "STANDARD"),
       "attributes")
    eq((a["Checksum"]["ChecksumSHA256"], a["Checksum"]["ChecksumType"]), (composite, "COMPOSITE"),
       "attribute Checksum")
    op = a["ObjectParts"]
    eq((op["TotalPartsCount"], [(p["PartNumber"], p["Size"], p["ChecksumSHA256"])
                                for p in op["Parts"]]),
       (3, [(n, len(d), parts[n - 1]["ChecksumSHA256"]) for n, d in enumerate(parts_data, 1)]),
       "attribute ObjectParts")
    a = s3.get_object_attributes(Bucket=b, Key="p", ObjectAttributes=["ObjectParts"], MaxParts=2)
    eq((a["ObjectParts"]["IsTruncated"], a["ObjectParts"]["NextPartNumberMarker"],
        len(a["ObjectParts"]["Parts"])), (True, 2, 2), "first page of parts")
    a = s3.get_object_attributes(Bucket=b, Key="p", ObjectAttributes=["ObjectParts"],
                                 PartNumberMarker=2)
    eq([p["PartNumber"] for p in a["ObjectParts"]["Parts"]], [3], "second page of parts")
    # A single-part object: part 1 is all of it, there is no part 2, no ObjectParts.
    s3.put_object(Bucket=b, Key="one", Body=b"single")
    g = s3.get_object(Bucket=b, Key="one", PartNumber=1)
    eq((g["Body"].read(), g.get("PartsCount")), (b"single", None), "part 1 of a single part")
    eq(err(s3.get_object, Bucket=b, Key="one", PartNumber=2), (416, "InvalidPartNumber"),
       "part 2 of a single part")
    a = s3.get_object_attributes(Bucket=b, Key="one", ObjectAttributes=every)
    eq((a["ObjectSize"], "ObjectParts" in a), (6, False), "single-part attributes")
    eq(err(s3.get_object_attributes, Bucket=b, Key="absent", ObjectAttributes=["ETag"]),
       (404, "NoSuchKey"), "attributes of a missing key")
    # UploadPartCopy into an upload with an algorithm: the copied part gets its checksum,
    # computed from the bytes copied, and the composite covers it.
    uid = s3.create_multipart_upload(Bucket=b, Key="copied", ChecksumAlgorithm="SHA256")["UploadId"]
    r = s3.upload_part_copy(Bucket=b, Key="copied", UploadId=uid, PartNumber=1,
                            CopySource={"Bucket": b, "Key": "p"},
                            CopySourceRange=f"bytes=0-{len(parts_data[0]) - 1}")
    eq(r["CopyPartResult"].get("ChecksumSHA256"), parts[0]["ChecksumSHA256"],
       "copied part's SHA256")
    r = s3.complete_multipart_upload(
        Bucket=b, Key="copied", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    eq(r.get("ChecksumSHA256"),
       base64.b64encode(hashlib.sha256(sha[0]).digest()).decode() + "-1", "copied composite")
    # Full-object checksums of multipart uploads are not offered: refused, nothing started.
    eq(err(s3.create_multipart_upload, Bucket=b, Key="f", ChecksumAlgorithm="CRC32",
           ChecksumType="FULL_OBJECT"), (501, "NotImplemented"), "FULL_OBJECT")
    eq(s3.list_multipart_uploads(Bucket=b).get("Uploads", []), [], "no upload left behind")


# ---------------------------------------------------------------- checksums

@case
def checksums(c):
    s3 = c.s3
    b = c.bucket("ck-bucket")
    body = data(200_000, 40)
    r = s3.put_object(Bucket=b, Key="default", Body=body)
    if c.checksums == "when_supported":
        # botocore sent x-amz-checksum-crc32 by itself; S3 returns it on PUT and (asked) on GET.
        eq(r.get("ChecksumCRC32"), crc32_b64(body), "PUT returns the CRC32 it verified")
        h = s3.head_object(Bucket=b, Key="default", ChecksumMode="ENABLED")
        eq(h.get("ChecksumCRC32"), crc32_b64(body), "HEAD with checksum mode returns the CRC32")
        g = s3.get_object(Bucket=b, Key="default", ChecksumMode="ENABLED")
        eq(g["Body"].read(), body, "GET with checksum mode (botocore validates the CRC32)")
    else:
        eq(s3.get_object(Bucket=b, Key="default")["Body"].read(), body, "GET without checksums")
    for algo, field in (("SHA256", "ChecksumSHA256"), ("CRC32C", "ChecksumCRC32C"),
                        ("SHA1", "ChecksumSHA1"), ("CRC32", "ChecksumCRC32")):
        r = s3.put_object(Bucket=b, Key=f"algo-{algo}", Body=body, ChecksumAlgorithm=algo)
        ok(r.get(field), f"PUT with {algo} returns {field}: {r}")
        eq(s3.get_object(Bucket=b, Key=f"algo-{algo}")["Body"].read(), body, f"GET {algo}")
    if algo_supported("CRC64NVME"):
        r = s3.put_object(Bucket=b, Key="algo-crc64", Body=body, ChecksumAlgorithm="CRC64NVME")
        ok(r.get("ChecksumCRC64NVME"), f"CRC64NVME returned: {r}")
    # A checksum that does not match: refused, nothing stored.
    eq(err(s3.put_object, Bucket=b, Key="bad-crc", Body=body, ChecksumCRC32="AAAAAA==")[0],
       400, "wrong x-amz-checksum-crc32")
    eq(err(s3.head_object, Bucket=b, Key="bad-crc")[0], 404, "nothing stored for a bad checksum")
    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    eq(err(s3.put_object, Bucket=b, Key="bad-md5", Body=body, ContentMD5=wrong_md5),
       (400, "BadDigest"), "wrong Content-MD5")
    eq(err(s3.head_object, Bucket=b, Key="bad-md5")[0], 404, "nothing stored for a bad MD5")
    eq(err(s3.put_object, Bucket=b, Key="bad-md5", Body=body, ContentMD5="not-base64!")[0],
       400, "malformed Content-MD5")
    good_md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket=b, Key="good-md5", Body=body, ContentMD5=good_md5)
    eq(s3.get_object(Bucket=b, Key="good-md5")["Body"].read(), body, "PUT with Content-MD5")
    # A streamed upload of unknown length (upload_fileobj: multipart with s3transfer).
    big = data(12 * MiB, 41)
    s3.upload_fileobj(io.BytesIO(big), b, "fileobj")
    eq(hashlib.sha256(s3.get_object(Bucket=b, Key="fileobj")["Body"].read()).hexdigest(),
       hashlib.sha256(big).hexdigest(), "upload_fileobj (s3transfer multipart)")
    dl = io.BytesIO()
    s3.download_fileobj(b, "fileobj", dl)
    eq(dl.getvalue() == big, True, "download_fileobj (ranged GETs)")


def algo_supported(name):
    try:
        from botocore.httpchecksum import _CHECKSUM_CLS
        return name.lower() in _CHECKSUM_CLS
    except ImportError:
        return False


# ---------------------------------------------------------------- authentication

AUTH_CASES = []


def auth_case(fn):
    """A case that needs a director with keys (run with --auth)."""
    AUTH_CASES.append(fn)
    return fn


@auth_case
def signature_failures(c):
    s3 = c.s3
    b = c.bucket("auth-bucket")
    s3.put_object(Bucket=b, Key="k", Body=b"secret data")
    ak = os.environ["AWS_ACCESS_KEY_ID"]
    wrong = c.client(ak, "wrong" + os.environ["AWS_SECRET_ACCESS_KEY"][5:])
    eq(err(wrong.list_buckets), (403, "SignatureDoesNotMatch"), "wrong secret")
    eq(err(wrong.put_object, Bucket=b, Key="w", Body=b"x"), (403, "SignatureDoesNotMatch"),
       "PUT with a wrong secret")
    unknown = c.client("DPYNOSUCHKEY00000000", "x" * 40)
    eq(err(unknown.get_object, Bucket=b, Key="k"), (403, "InvalidAccessKeyId"), "unknown key")
    anon = c.client(signature_version=UNSIGNED)
    eq(err(anon.get_object, Bucket=b, Key="k"), (403, "AccessDenied"), "unsigned GET")
    eq(err(anon.put_object, Bucket=b, Key="w", Body=b"x"), (403, "AccessDenied"), "unsigned PUT")
    eq(err(anon.delete_object, Bucket=b, Key="k"), (403, "AccessDenied"), "unsigned DELETE")
    eq(err(s3.head_object, Bucket=b, Key="w")[0], 404, "refused PUTs stored nothing")
    eq(s3.get_object(Bucket=b, Key="k")["Body"].read(), b"secret data", "refused DELETE kept data")
    # a key limited to the bucket "limited"
    lak, lsk = c.args.limited_key.split(":", 1)
    lim = c.client(lak, lsk)
    c.s3.create_bucket(Bucket="limited")
    lim.put_object(Bucket="limited", Key="mine", Body=b"ok")
    eq(lim.get_object(Bucket="limited", Key="mine")["Body"].read(), b"ok", "limited key, own bucket")
    eq(err(lim.get_object, Bucket=b, Key="k"), (403, "AccessDenied"), "limited key, other bucket")
    eq(err(lim.put_object, Bucket=b, Key="l", Body=b"x"), (403, "AccessDenied"),
       "limited key PUT, other bucket")
    eq(err(lim.create_bucket, Bucket="limited-not"), (403, "AccessDenied"),
       "limited key creating another bucket")
    names = [x["Name"] for x in lim.list_buckets()["Buckets"]]
    ok(b not in names, f"limited key lists only its buckets: {names}")


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@auth_case
def presigned_urls(c):
    """SigV4 presigned URLs (botocore makes them with signature_version="s3v4")."""
    b = c.bucket("presign")
    c.s3.put_object(Bucket=b, Key="get me", Body=b"presigned body")
    s3 = c.client(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
                  signature_version="s3v4")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "get me"},
                                    ExpiresIn=300)
    eq(http("GET", url), (200, b"presigned body"), "presigned GET")
    purl = s3.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "put/me"},
                                     ExpiresIn=300)
    eq(http("PUT", purl, b"uploaded by url")[0], 200, "presigned PUT")
    eq(s3.get_object(Bucket=b, Key="put/me")["Body"].read(), b"uploaded by url",
       "presigned PUT stored")
    i = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    flipped = url[:i] + ("1" if url[i] == "0" else "0") + url[i + 1:]
    status, body = http("GET", flipped)
    ok(status == 403 and b"SignatureDoesNotMatch" in body, f"tampered signature: {status} {body}")
    status, body = http("PUT", url, b"not allowed")
    ok(status == 403 and b"SignatureDoesNotMatch" in body, f"GET URL used to PUT: {status} {body}")
    short = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "get me"},
                                      ExpiresIn=1)
    time.sleep(2.5)
    status, body = http("GET", short)
    ok(status == 403 and b"AccessDenied" in body, f"expired presigned URL: {status} {body}")


@auth_case
def presigned_url_default_config(c):
    """boto3's default presigned URL for us-east-1 is SigV2 (AWSAccessKeyId, Signature,
    Expires), as aws-cli v1's `aws s3 presign`: what users get unless they ask for s3v4."""
    s3 = c.s3
    b = c.bucket("presign-v2")
    s3.put_object(Bucket=b, Key="k", Body=b"v2 body")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"},
                                    ExpiresIn=300)
    ok("Signature=" in url and "X-Amz-Signature" not in url, f"a SigV2 URL: {url}")
    eq(http("GET", url), (200, b"v2 body"), "default (SigV2) presigned GET")
    status, body = http("GET", url.replace("Signature=", "Signature=A"))
    ok(status == 403 and b"SignatureDoesNotMatch" in body, f"tampered SigV2 URL: {status} {body}")


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--unsigned", action="store_true")
    p.add_argument("--checksums", default="when_supported",
                   choices=["when_supported", "when_required"])
    p.add_argument("--auth", action="store_true")
    p.add_argument("--limited-key", default="")
    p.add_argument("--only", default="")
    args = p.parse_args()
    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}, endpoint {args.endpoint}, "
          f"{'unsigned' if args.unsigned else 'signed'}, checksums {args.checksums}", flush=True)
    only = set(filter(None, args.only.split(",")))
    ctx = Ctx(args)
    failed, passed = [], 0
    cases = CASES + (AUTH_CASES if args.auth else [])
    if not args.auth:
        print(f"(the authentication cases {[f.__name__ for f in AUTH_CASES]} run with --auth)")
    for fn in cases:
        if only and fn.__name__ not in only:
            continue
        try:
            fn(ctx)
            passed += 1
            print(f"ok     {fn.__name__}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next case
            failed.append(fn.__name__)
            print(f"FAILED {fn.__name__}: {type(e).__name__}: {e}", flush=True)
            # Where in this file it failed (botocore's own frames say nothing useful).
            here = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == __file__]
            for f in here[1:]:
                print(f"         at line {f.lineno}: {f.line}", flush=True)
    print(f"boto3 cases: {passed} ok, {len(failed)} failing {failed}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

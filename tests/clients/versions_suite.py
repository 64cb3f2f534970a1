#!/usr/bin/env python3
"""boto3 against a dpyfs director: S3 versioning and lifecycle rules (issue 16 item 1).

Run by tests/s3_versions.rs with the venv of tests/clients/install.sh:
  versions_suite.py --endpoint URL --case NAME [--day-seconds N]
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the director is open).
"""
import argparse
import hashlib
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def err(fn, *a, **kw):
    """Calls fn and returns (HTTP status, S3 error code, headers) of the error it raises."""
    try:
        fn(*a, **kw)
    except ClientError as e:
        meta = e.response["ResponseMetadata"]
        return meta["HTTPStatusCode"], e.response["Error"]["Code"], meta["HTTPHeaders"]
    raise AssertionError(f"{fn.__name__} should have failed")


def eq(a, b, what=""):
    assert a == b, f"{what}: {a!r} != {b!r}"


def body(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def versions(s3, bucket, **kw):
    """Every (key, version id, is latest, is a delete marker), in listing order, one page."""
    r = s3.list_object_versions(Bucket=bucket, **kw)
    out = [(v["Key"], v["VersionId"], v["IsLatest"], False) for v in r.get("Versions", [])]
    out += [(m["Key"], m["VersionId"], m["IsLatest"], True) for m in r.get("DeleteMarkers", [])]
    return r, out


def enable(s3, bucket, status="Enabled"):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


@case
def history(s3):
    """Overwrites and deletes keep every version; GET/HEAD/DELETE by versionId; delete
    markers; restore by copy; every error code."""
    b = "hist"
    s3.create_bucket(Bucket=b)
    eq(s3.get_bucket_versioning(Bucket=b).get("Status"), None, "new bucket")
    # A malformed configuration changes nothing.
    code = err(s3.put_bucket_versioning, Bucket=b, VersioningConfiguration={"Status": "On"})
    eq(code[:2], (400, "MalformedXML"), "bad status")
    eq(s3.get_bucket_versioning(Bucket=b).get("Status"), None, "after a bad PUT")
    # Unversioned: no version id header, versionId=null reads the object.
    s3.put_object(Bucket=b, Key="plain", Body=b"p")
    eq(body(s3, b, "plain", VersionId="null"), b"p", "null version")
    enable(s3, b)
    eq(s3.get_bucket_versioning(Bucket=b)["Status"], "Enabled", "enabled")
    ids = []
    for i in range(3):
        r = s3.put_object(Bucket=b, Key="k", Body=b"v%d" % i)
        ids.append(r["VersionId"])
    assert len(set(ids)) == 3 and "null" not in ids, ids
    _, vs = versions(s3, b, Prefix="k")
    eq([v[1] for v in vs], ids[::-1], "newest first")
    eq([v[2] for v in vs], [True, False, False], "IsLatest")
    for i, vid in enumerate(ids):
        r = s3.get_object(Bucket=b, Key="k", VersionId=vid)
        eq(r["Body"].read(), b"v%d" % i, "GET by version")
        eq(r["VersionId"], vid, "x-amz-version-id on GET")
        eq(s3.head_object(Bucket=b, Key="k", VersionId=vid)["ContentLength"], 2, "HEAD")
    eq(s3.get_object(Bucket=b, Key="k")["VersionId"], ids[2], "current")
    # GetObjectAttributes of an older version answers for that version.
    a = s3.get_object_attributes(Bucket=b, Key="k", VersionId=ids[0],
                                 ObjectAttributes=["ETag", "ObjectSize"])
    eq((a["ETag"], a["ObjectSize"], a["VersionId"]),
       (hashlib.md5(b"v0").hexdigest(), 2, ids[0]), "attributes of a version")
    eq(err(s3.get_object_attributes, Bucket=b, Key="k", VersionId="0" * 32,
           ObjectAttributes=["ETag"])[:2], (404, "NoSuchVersion"), "attributes of no version")
    # An older version's (empty) tag set answers for that version; no version is 404.
    t = s3.get_object_tagging(Bucket=b, Key="k", VersionId=ids[0])
    eq((t["TagSet"], t["VersionId"]), ([], ids[0]), "tags of a version")
    eq(err(s3.get_object_tagging, Bucket=b, Key="k", VersionId="0" * 32)[:2],
       (404, "NoSuchVersion"), "tags of no version")
    # The object written before versioning is the null version.
    _, vs = versions(s3, b, Prefix="plain")
    eq([v[1] for v in vs], ["null"], "pre-versioning object")
    # Bad ids: 400 InvalidArgument, unknown ones 404 NoSuchVersion.
    eq(err(s3.get_object, Bucket=b, Key="k", VersionId="nope")[:2], (400, "InvalidArgument"))
    unknown = "0" * 32
    eq(err(s3.get_object, Bucket=b, Key="k", VersionId=unknown)[:2], (404, "NoSuchVersion"))
    eq(err(s3.head_object, Bucket=b, Key="k", VersionId=unknown)[0], 404)
    eq(err(s3.delete_object, Bucket=b, Key="k", VersionId="x")[:2], (400, "InvalidArgument"))
    eq(len(versions(s3, b, Prefix="k")[1]), 3, "nothing changed by bad requests")
    # DELETE without a version id: a delete marker.
    r = s3.delete_object(Bucket=b, Key="k")
    assert r["DeleteMarker"], r
    marker = r["VersionId"]
    st, code, headers = err(s3.get_object, Bucket=b, Key="k")
    eq((st, code), (404, "NoSuchKey"), "GET after delete")
    eq(headers.get("x-amz-delete-marker"), "true", "delete marker header")
    eq(headers.get("x-amz-version-id"), marker, "marker's id")
    eq(err(s3.get_object, Bucket=b, Key="k", VersionId=marker)[:2], (405, "MethodNotAllowed"))
    eq(body(s3, b, "k", VersionId=ids[1]), b"v1", "old version readable")
    listed = s3.list_objects_v2(Bucket=b).get("Contents", [])
    eq([o["Key"] for o in listed], ["plain"], "deleted key not listed")
    _, vs = versions(s3, b, Prefix="k")
    markers = [v for v in vs if v[3]]
    eq(markers, [("k", marker, True, True)], "the marker is latest")
    # Deleting the marker brings the object back.
    r = s3.delete_object(Bucket=b, Key="k", VersionId=marker)
    assert r["DeleteMarker"], r
    eq(body(s3, b, "k"), b"v2", "back after the marker went")
    # Restore the first version by copying it onto its key.
    r = s3.copy_object(Bucket=b, Key="k", CopySource={"Bucket": b, "Key": "k", "VersionId": ids[0]})
    eq(r["CopySourceVersionId"], ids[0], "copy source version")
    restored = r["VersionId"]
    eq(body(s3, b, "k"), b"v0", "restored")
    eq(s3.get_object(Bucket=b, Key="k")["VersionId"], restored, "restored is current")
    eq(len(versions(s3, b, Prefix="k")[1]), 4, "restoring adds a version")
    # Copy from a version to another key; from a marker refused.
    s3.copy_object(Bucket=b, Key="k2", CopySource={"Bucket": b, "Key": "k", "VersionId": ids[1]})
    eq(body(s3, b, "k2"), b"v1", "copied version")
    m2 = s3.delete_object(Bucket=b, Key="k2")["VersionId"]
    st, code, _ = err(s3.copy_object, Bucket=b, Key="k3",
                      CopySource={"Bucket": b, "Key": "k2", "VersionId": m2})
    eq((st, code), (400, "InvalidRequest"), "copy from a marker")
    eq(err(s3.copy_object, Bucket=b, Key="k3",
           CopySource={"Bucket": b, "Key": "k", "VersionId": unknown})[:2], (404, "NoSuchVersion"))
    # Permanent delete of a noncurrent version.
    s3.delete_object(Bucket=b, Key="k", VersionId=ids[1])
    eq(err(s3.get_object, Bucket=b, Key="k", VersionId=ids[1])[:2], (404, "NoSuchVersion"))
    # DeleteObjects with version ids and without.
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [
        {"Key": "k", "VersionId": ids[0]}, {"Key": "plain"}, {"Key": "k", "VersionId": "bad"}]})
    deleted = {(d["Key"], d.get("VersionId"), d.get("DeleteMarker", False)) for d in r["Deleted"]}
    assert ("k", ids[0], False) in deleted, r
    assert any(d[0] == "plain" and d[2] for d in deleted), r
    eq([(e["Key"], e["Code"]) for e in r["Errors"]], [("k", "InvalidArgument")], "errors")
    # A completed multipart upload is a version too.
    up = s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=1, Body=b"part")["ETag"]
    r = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": etag}]})
    mp1 = r["VersionId"]
    s3.put_object(Bucket=b, Key="mp", Body=b"after")
    eq(body(s3, b, "mp", VersionId=mp1), b"part", "multipart version kept")
    # A bucket with versions is not empty.
    eq(err(s3.delete_bucket, Bucket=b)[:2], (409, "BucketNotEmpty"))


@case
def suspended(s3):
    """A suspended bucket writes null versions: an overwrite replaces the null version,
    older versions stay."""
    b = "susp"
    s3.create_bucket(Bucket=b)
    enable(s3, b)
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"one")["VersionId"]
    enable(s3, b, "Suspended")
    eq(s3.get_bucket_versioning(Bucket=b)["Status"], "Suspended", "suspended")
    r = s3.put_object(Bucket=b, Key="k", Body=b"two")
    eq(r.get("VersionId"), "null", "null version")
    s3.put_object(Bucket=b, Key="k", Body=b"three")
    _, vs = versions(s3, b)
    eq([v[1] for v in vs], ["null", v1], "null replaced, v1 kept")
    eq(body(s3, b, "k", VersionId="null"), b"three", "null is the newest write")
    r = s3.delete_object(Bucket=b, Key="k")
    eq((r["DeleteMarker"], r["VersionId"]), (True, "null"), "null marker")
    _, vs = versions(s3, b)
    eq(sorted((v[1], v[3]) for v in vs), sorted([("null", True), (v1, False)]), "marker replaced null")
    eq(body(s3, b, "k", VersionId=v1), b"one", "v1 kept")
    enable(s3, b)
    v3 = s3.put_object(Bucket=b, Key="k", Body=b"four")["VersionId"]
    _, vs = versions(s3, b)
    eq(len(vs), 3, "re-enabled")
    assert v3 != "null"


@case
def paging(s3):
    """ListObjectVersions page by page: key-marker and version-id-marker, prefix,
    delimiter, and botocore's paginator."""
    b = "pages"
    s3.create_bucket(Bucket=b)
    enable(s3, b)
    want = []
    for k in ["a", "b/1", "b/2", "c", "d"]:
        ids = [s3.put_object(Bucket=b, Key=k, Body=k.encode() * i)["VersionId"] for i in range(3)]
        want += [(k, v) for v in reversed(ids)]
    got, km, vm = [], None, None
    pages = 0
    while True:
        kw = {"MaxKeys": 4}
        if km:
            kw.update(KeyMarker=km, VersionIdMarker=vm)
        r, vs = versions(s3, b, **kw)
        pages += 1
        assert len(vs) <= 4, vs
        got += [(v[0], v[1]) for v in vs]
        if not r["IsTruncated"]:
            break
        km, vm = r["NextKeyMarker"], r["NextVersionIdMarker"]
    eq(got, want, "all versions once, in order")
    eq(pages, 4, "15 versions in pages of 4")
    n = sum(len(p.get("Versions", []))
            for p in s3.get_paginator("list_object_versions").paginate(
                Bucket=b, PaginationConfig={"PageSize": 2}))
    eq(n, 15, "paginator")
    r, vs = versions(s3, b, Delimiter="/")
    eq([p["Prefix"] for p in r["CommonPrefixes"]], ["b/"], "common prefix")
    eq(len(vs), 9, "versions outside b/")
    r, vs = versions(s3, b, Prefix="b/", KeyMarker="b/1")
    eq({v[0] for v in vs}, {"b/2"}, "key-marker alone skips the key")
    eq(err(s3.list_object_versions, Bucket=b, VersionIdMarker="null")[:2], (400, "InvalidArgument"))
    eq(err(s3.list_object_versions, Bucket="nope-bucket")[:2], (404, "NoSuchBucket"))


@case
def lifecycle(s3, day):
    """NoncurrentVersionExpiration (days, newer versions kept) and ExpiredObjectDeleteMarker
    applied by the director with a short day."""
    b = "life"
    s3.create_bucket(Bucket=b)
    enable(s3, b)
    eq(err(s3.get_bucket_lifecycle_configuration, Bucket=b)[:2], (404, "NoSuchLifecycleConfiguration"))
    bad = {"Rules": [{"ID": "x", "Filter": {"Prefix": ""}, "Status": "Enabled",
                      "NoncurrentVersionExpiration": {"NoncurrentDays": 0}}]}
    eq(err(s3.put_bucket_lifecycle_configuration, Bucket=b, LifecycleConfiguration=bad)[0], 400)
    transition = {"Rules": [{"ID": "t", "Filter": {"Prefix": ""}, "Status": "Enabled",
                             "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}]}
    eq(err(s3.put_bucket_lifecycle_configuration, Bucket=b,
           LifecycleConfiguration=transition)[:2], (501, "NotImplemented"))
    eq(err(s3.get_bucket_lifecycle_configuration, Bucket=b)[0], 404, "nothing stored")
    rules = {"Rules": [
        {"ID": "keep-one", "Filter": {"Prefix": "docs/"}, "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
        {"ID": "markers", "Filter": {"Prefix": ""}, "Status": "Enabled",
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]}
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration=rules)
    got = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    eq([r["ID"] for r in got], ["keep-one", "markers"], "rules read back")
    eq(got[0]["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"], 1, "newer kept")
    ids = [s3.put_object(Bucket=b, Key="docs/a", Body=b"%d" % i)["VersionId"] for i in range(4)]
    other = [s3.put_object(Bucket=b, Key="other", Body=b"%d" % i)["VersionId"] for i in range(2)]
    # "gone": only a delete marker is left of it, which expires.
    g1 = s3.put_object(Bucket=b, Key="gone", Body=b"x")["VersionId"]
    s3.delete_object(Bucket=b, Key="gone")
    s3.delete_object(Bucket=b, Key="gone", VersionId=g1)
    deadline = time.time() + 30 * day + 60
    while True:
        _, vs = versions(s3, b)
        docs = [v[1] for v in vs if v[0] == "docs/a"]
        gone = [v for v in vs if v[0] == "gone"]
        if docs == [ids[3], ids[2]] and not gone:
            break
        assert time.time() < deadline, f"lifecycle did not run: {vs}"
        time.sleep(0.5)
    eq(body(s3, b, "docs/a"), b"3", "current kept")
    eq(body(s3, b, "docs/a", VersionId=ids[2]), b"2", "newest noncurrent kept")
    eq([v[1] for v in vs if v[0] == "other"], other[::-1], "outside the prefix kept")
    s3.delete_bucket_lifecycle(Bucket=b)
    eq(err(s3.get_bucket_lifecycle_configuration, Bucket=b)[0], 404, "removed")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--case", required=True, choices=sorted(CASES))
    p.add_argument("--day-seconds", type=float, default=86400)
    a = p.parse_args()
    s3 = boto3.client("s3", endpoint_url=a.endpoint, region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"},
                                    retries={"max_attempts": 1}))
    fn = CASES[a.case]
    if a.case == "lifecycle":
        fn(s3, a.day_seconds)
    else:
        fn(s3)
    print(f"{a.case}: ok")


if __name__ == "__main__":
    sys.exit(main())

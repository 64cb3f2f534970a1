#!/usr/bin/env python3
"""boto3 against a dpyfs director with keys: S3 ACLs (issue 16 item 3).

Run by tests/s3_acl.rs with the venv of tests/clients/install.sh:
  acl_suite.py --endpoint URL --other-id ACCESS_KEY_ID
Credentials (the bucket owner's key) come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY;
--other-id is a second key of the director, granted READ by id.
"""
import argparse
import sys
import urllib.error
import urllib.request

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def eq(a, b, what=""):
    assert a == b, f"{what}: {a!r} != {b!r}"


def anonymous_status(url):
    """The status of a plain, unsigned GET of `url`."""
    try:
        with urllib.request.urlopen(url) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def grants(acl):
    """(grantee id or group URI, permission) of an ACL answer, in order."""
    out = []
    for g in acl["Grants"]:
        who = g["Grantee"].get("ID") or g["Grantee"].get("URI")
        out.append((who, g["Permission"]))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--other-id", required=True)
    a = p.parse_args()
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    s3 = boto3.client("s3", endpoint_url=a.endpoint, region_name="us-east-1", config=cfg)
    anon = boto3.client("s3", endpoint_url=a.endpoint, region_name="us-east-1",
                        config=cfg.merge(Config(signature_version=UNSIGNED)))
    me = s3.list_buckets()["Owner"]["ID"]
    b, k = "boto-acl", "doc.txt"
    url = f"{a.endpoint}/{b}/{k}"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key=k, Body=b"shared words")

    # A new object is private: its owner (the bucket's, whose id ListBuckets names) has
    # FULL_CONTROL and nobody else anything.
    acl = s3.get_object_acl(Bucket=b, Key=k)
    eq(acl["Owner"]["ID"], me, "object owner")
    eq(grants(acl), [(me, "FULL_CONTROL")], "private object")
    eq(grants(s3.get_bucket_acl(Bucket=b)), [(me, "FULL_CONTROL")], "private bucket")
    eq(s3.get_bucket_acl(Bucket=b)["Owner"]["ID"], me, "bucket owner")
    eq(anonymous_status(url), 403, "anonymous GET of a private object")

    # Canned public-read: plain HTTP and an unsigned boto3 client read it.
    s3.put_object_acl(Bucket=b, Key=k, ACL="public-read")
    eq(grants(s3.get_object_acl(Bucket=b, Key=k)),
       [(me, "FULL_CONTROL"), (ALL_USERS, "READ")], "public-read")
    eq(anonymous_status(url), 200, "anonymous GET of a public-read object")
    eq(anon.get_object(Bucket=b, Key=k)["Body"].read(), b"shared words", "unsigned boto3")
    try:
        anon.put_object(Bucket=b, Key="nope", Body=b"x")
        raise AssertionError("an anonymous PUT into a private bucket succeeded")
    except ClientError as e:
        eq(e.response["Error"]["Code"], "AccessDenied", "anonymous PUT")

    # An AccessControlPolicy document: READ for the other key only, as boto3 sends it
    # (the owner's own grant included, which the director keeps implicit).
    s3.put_object_acl(Bucket=b, Key=k, AccessControlPolicy={
        "Owner": {"ID": me},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": me}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": a.other_id}, "Permission": "READ"},
        ],
    })
    eq(grants(s3.get_object_acl(Bucket=b, Key=k)),
       [(me, "FULL_CONTROL"), (a.other_id, "READ")], "policy document")
    eq(anonymous_status(url), 403, "anonymous GET after the grant was withdrawn")

    # Refusals with their codes, each leaving the ACL as it was.
    def refused(code, **kw):
        try:
            s3.put_object_acl(Bucket=b, Key=k, **kw)
        except ClientError as e:
            eq(e.response["Error"]["Code"], code, f"refusal {kw}")
            return
        raise AssertionError(f"put_object_acl {kw} should have failed")

    refused("InvalidArgument", AccessControlPolicy={
        "Owner": {"ID": me},
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": "NO-SUCH-KEY"},
                    "Permission": "READ"}],
    })
    refused("UnresolvableGrantByEmailAddress", AccessControlPolicy={
        "Owner": {"ID": me},
        "Grants": [{"Grantee": {"Type": "AmazonCustomerByEmail",
                                "EmailAddress": "a@example.com"}, "Permission": "READ"}],
    })
    refused("InvalidArgument", GrantRead='id="NO-SUCH-KEY"')
    eq(grants(s3.get_object_acl(Bucket=b, Key=k)),
       [(me, "FULL_CONTROL"), (a.other_id, "READ")], "after the refusals")

    # A bucket ACL by grant header, read back.
    s3.put_bucket_acl(Bucket=b, GrantRead=f'uri="{ALL_USERS}"')
    eq(grants(s3.get_bucket_acl(Bucket=b)),
       [(me, "FULL_CONTROL"), (ALL_USERS, "READ")], "bucket grant")
    listed = anon.list_objects_v2(Bucket=b)
    eq([o["Key"] for o in listed["Contents"]], [k], "anonymous listing")
    print("acl suite: ok")


if __name__ == "__main__":
    sys.exit(main())

"""boto3's presigned POST for tests/s3_post.rs: prints {"url": ..., "fields": {...}} as JSON.

Usage: post_policy.py ENDPOINT BUCKET KEY EXPIRES_SECS FIELDS_JSON CONDITIONS_JSON
The key comes from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, as a user's script would.
"""
import json
import sys

import boto3
from botocore.config import Config

endpoint, bucket, key, expires, fields, conditions = sys.argv[1:7]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
)
post = s3.generate_presigned_post(
    bucket,
    key,
    Fields=json.loads(fields),
    Conditions=json.loads(conditions),
    ExpiresIn=int(expires),
)
print(json.dumps(post))

"""A real S3 consumer (Debian's boto3) of what sts-sidecar writes. Everything comes from the environment,
never argv (secrets must not show in `ps`).

CONSUMER_MODE=files: credentials from the files named by artifact-store's variables
  ARTIFACTSTORE_S3_ACCESS_KEY_REF, ARTIFACTSTORE_S3_SECRET_KEY_REF, ARTIFACTSTORE_S3_SESSION_TOKEN_REF,
  ARTIFACTSTORE_S3_CREDENTIAL_EXPIRATION_REF (read once, the way artifact-store does at start).
CONSUMER_MODE=profile: boto3's own chain with AWS_CONFIG_FILE / AWS_PROFILE (credential_process).

CONSUMER_ENDPOINT, CONSUMER_BUCKET, CONSUMER_KEY: where to PutObject then GetObject.
CONSUMER_FORBIDDEN_KEY (optional): a key outside the grant; its PutObject must be refused.
CONSUMER_LOOP_SECONDS (optional): then PutObject once a second for that long and count failures.
Prints one JSON object on stdout.
"""
import datetime
import json
import os
import sys
import time

import boto3
import botocore.handlers
from botocore.config import Config
from botocore.exceptions import ClientError


def read_ref(name):
    with open(os.environ[name], encoding="utf-8") as f:
        return f.read().strip()


def main():
    mode = os.environ["CONSUMER_MODE"]
    result = {"mode": mode, "boto3": boto3.__version__, "python": sys.executable}
    if mode == "files":
        session = boto3.session.Session(
            aws_access_key_id=read_ref("ARTIFACTSTORE_S3_ACCESS_KEY_REF"),
            aws_secret_access_key=read_ref("ARTIFACTSTORE_S3_SECRET_KEY_REF"),
            aws_session_token=read_ref("ARTIFACTSTORE_S3_SESSION_TOKEN_REF"),
            region_name="us-east-1",
        )
        expiration = read_ref("ARTIFACTSTORE_S3_CREDENTIAL_EXPIRATION_REF")
        parsed = datetime.datetime.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        result["expires_in_seconds"] = int((parsed - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
    else:
        session = boto3.session.Session(region_name="us-east-1")
    client = session.client(
        "s3",
        endpoint_url=os.environ["CONSUMER_ENDPOINT"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1}),
    )
    # RGW 16.2 stalls ~60 s on a keep-alive connection after refusing a PUT sent with Expect: 100-continue.
    client.meta.events.unregister("before-call.s3", botocore.handlers.add_expect_header)
    bucket = os.environ["CONSUMER_BUCKET"]
    key = os.environ["CONSUMER_KEY"]

    def access_key():
        return session.get_credentials().get_frozen_credentials().access_key

    client.put_object(Bucket=bucket, Key=key, Body=b"from boto3")
    result["put"] = "ok"
    result["get"] = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    result["access_key_id"] = access_key()
    forbidden = os.environ.get("CONSUMER_FORBIDDEN_KEY")
    if forbidden:
        try:
            client.put_object(Bucket=bucket, Key=forbidden, Body=b"nope")
            result["forbidden_put"] = "ok"
        except ClientError as e:
            result["forbidden_put"] = "%s %s" % (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])

    loop_seconds = float(os.environ.get("CONSUMER_LOOP_SECONDS", "0"))
    if loop_seconds > 0:
        puts, failures, errors, keys = 0, 0, [], []
        deadline = time.monotonic() + loop_seconds
        while time.monotonic() < deadline:
            try:
                client.put_object(Bucket=bucket, Key="%s.%d" % (key, puts), Body=b"tick")
                ak = access_key()
                if not keys or keys[-1] != ak:
                    keys.append(ak)
            except Exception as e:  # noqa: BLE001 - count every failure, whatever it is
                failures += 1
                errors.append(type(e).__name__ + ": " + str(e)[:200])
            puts += 1
            time.sleep(1)
        result.update({"puts": puts, "failures": failures, "errors": errors[:5], "access_keys": keys})
    print(json.dumps(result))


if __name__ == "__main__":
    main()

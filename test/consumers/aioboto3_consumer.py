"""A real consumer like artifact-store: aioboto3, PutObject once a second for CONSUMER_LOOP_SECONDS.

CONSUMER_MODE=files: before every call, the four ARTIFACTSTORE_S3_*_REF files read with the consistent-read
  recipe (consistent_read.py), the session built with aws_session_token.
CONSUMER_MODE=endpoint: aioboto3's default chain (AWS_CONTAINER_CREDENTIALS_FULL_URI +
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).
CONSUMER_MODE=profile: aioboto3's default chain with AWS_CONFIG_FILE / AWS_PROFILE (credential_process).
Settings come from the environment, never argv. Prints one JSON object (never a secret).
"""
import asyncio
import json
import os
import sys
import time

import aioboto3
import aiobotocore
import botocore.handlers
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from consistent_read import read_consistent_paths  # noqa: E402

CONFIG = Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1})


def file_session():
    key, secret, token, _expiration, _retries = read_consistent_paths(
        os.environ["ARTIFACTSTORE_S3_ACCESS_KEY_REF"],
        os.environ["ARTIFACTSTORE_S3_SECRET_KEY_REF"],
        os.environ["ARTIFACTSTORE_S3_SESSION_TOKEN_REF"],
        os.environ["ARTIFACTSTORE_S3_CREDENTIAL_EXPIRATION_REF"],
    )
    return key, aioboto3.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token, region_name="us-east-1"
    )


async def main():
    mode = os.environ["CONSUMER_MODE"]
    shared = aioboto3.Session(region_name="us-east-1") if mode in ("endpoint", "profile") else None
    calls = []
    end = time.time() + float(os.environ["CONSUMER_LOOP_SECONDS"])
    i = 0
    while time.time() < end:
        started = time.time()
        call = {"t": int(started * 1000), "key": None, "ok": False}
        try:
            if shared is not None:
                session = shared
                credentials = await session.get_credentials()
                if credentials is None:
                    raise RuntimeError("no credentials from the default chain")
                call["key"] = (await credentials.get_frozen_credentials()).access_key
            else:
                call["key"], session = file_session()
            async with session.client("s3", endpoint_url=os.environ["CONSUMER_ENDPOINT"], config=CONFIG) as s3:
                s3.meta.events.unregister("before-call.s3", botocore.handlers.add_expect_header)
                await s3.put_object(
                    Bucket=os.environ["CONSUMER_BUCKET"], Key="%s/%d" % (os.environ["CONSUMER_KEY"], i), Body=b"x"
                )
            call["ok"] = True
        except Exception as err:  # noqa: BLE001 - every failure is a data point
            call["err"] = type(err).__name__
        calls.append(call)
        i += 1
        await asyncio.sleep(max(0.0, started + 1 - time.time()))
    print(json.dumps({"sdk": "aioboto3", "mode": mode, "aioboto3": aioboto3.__version__, "aiobotocore": aiobotocore.__version__, "calls": calls}))


asyncio.run(main())

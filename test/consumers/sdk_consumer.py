"""A real consumer of the credentials endpoint: boto3's default chain (Debian's boto3 1.26 with
AWS_CONTAINER_AUTHORIZATION_TOKEN, or a current boto3 in the test venv with
AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), PutObject once a second for CONSUMER_LOOP_SECONDS.
Settings come from the environment, never argv. Prints one JSON object: versions and every call's access
key id and outcome (never a secret).
"""
import json
import os
import sys
import time

import boto3
import botocore
import botocore.handlers
from botocore.config import Config


def main():
    session = boto3.session.Session(region_name="us-east-1")
    client = session.client(
        "s3",
        endpoint_url=os.environ["CONSUMER_ENDPOINT"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1}),
    )
    # RGW 16.2 stalls ~60 s on a keep-alive connection after refusing a PUT sent with Expect: 100-continue.
    client.meta.events.unregister("before-call.s3", botocore.handlers.add_expect_header)
    calls = []
    end = time.time() + float(os.environ["CONSUMER_LOOP_SECONDS"])
    i = 0
    while time.time() < end:
        started = time.time()
        call = {"t": int(started * 1000), "key": None, "ok": False}
        try:
            # The client signs with this same refreshable object; asking it first shows which key is used.
            credentials = session.get_credentials()
            if credentials is None:
                raise RuntimeError("no credentials from the default chain")
            call["key"] = credentials.get_frozen_credentials().access_key
            client.put_object(Bucket=os.environ["CONSUMER_BUCKET"], Key="%s/%d" % (os.environ["CONSUMER_KEY"], i), Body=b"x")
            call["ok"] = True
        except Exception as err:  # noqa: BLE001 - every failure is a data point
            call["err"] = type(err).__name__
        calls.append(call)
        i += 1
        time.sleep(max(0.0, started + 1 - time.time()))
    print(json.dumps({"sdk": "boto3", "boto3": boto3.__version__, "botocore": botocore.__version__, "python": sys.executable, "calls": calls}))


main()

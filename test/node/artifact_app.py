"""The app of the real-pod tests (test/node): an artifact-store-like consumer, run as its own UID.

With AWS_CONTAINER_CREDENTIALS_FULL_URI set (the chart's credentials endpoint), it reads no files and lets
aioboto3's default chain fetch the credentials from the endpoint with the token file, as an SDK app does.
Otherwise, at start it records whether the four ARTIFACTSTORE_S3_*_REF files were already there (the native sidecar's
startupProbe must hold the app until the first set) and what the app sees of them: each file's mode and owner
(stat through the kubelet's symlinks) and what a write into their directory gets (the mount is read-only:
EROFS); then every APP_PERIOD seconds it reads the files
anew and makes aioboto3 calls on the real S3 endpoint: a put inside the granted prefix and one outside it.
Each outcome is one JSON line on stdout (the pod's log); on SIGTERM it prints its last line and exits 0.
"""

import asyncio
import errno
import json
import os
import signal
import sys
import time

import aioboto3
from botocore.config import Config
from botocore.exceptions import ClientError

REFS = ("ACCESS_KEY", "SECRET_KEY", "SESSION_TOKEN", "CREDENTIAL_EXPIRATION")


def emit(event, **fields):
    print(json.dumps({"event": event, "time": time.time(), **fields}), flush=True)


def ref_paths():
    return {r: os.environ.get(f"ARTIFACTSTORE_S3_{r}_REF", "") for r in REFS}


def read_refs():
    """The four files' contents, or the error that kept the app from reading them."""
    out = {}
    for r, path in ref_paths().items():
        with open(path, encoding="utf-8") as f:
            out[r] = f.read().strip()
    return out


def ref_stats():
    """Mode, owner and group of each file (through the symlinks), or the errno name that kept stat out."""
    out = {}
    for r, path in ref_paths().items():
        try:
            st = os.stat(path)
        except OSError as e:
            out[r] = {"error": errno.errorcode.get(e.errno, str(e.errno))}
        else:
            out[r] = {"mode": f"{st.st_mode & 0o7777:04o}", "uid": st.st_uid, "gid": st.st_gid}
    return out


def write_attempt():
    """A new file beside the ACCESS_KEY file: the errno name that refused it, or "written" (then removed)."""
    probe = os.path.join(os.path.dirname(ref_paths()["ACCESS_KEY"]), ".app-write-probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    os.close(fd)
    os.unlink(probe)
    return "written"


def explicit(creds):
    if creds is None:
        return {}
    return {
        "aws_access_key_id": creds["ACCESS_KEY"],
        "aws_secret_access_key": creds["SECRET_KEY"],
        "aws_session_token": creds["SESSION_TOKEN"],
    }


async def attempt(session, creds, key):
    async with session.client(
        "s3",
        endpoint_url=os.environ["APP_S3_ENDPOINT"],
        region_name=os.environ.get("APP_S3_REGION", "us-east-1"),
        **explicit(creds),
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10),
    ) as s3:
        try:
            await s3.put_object(Bucket=os.environ["APP_BUCKET"], Key=key, Body=b"from a real pod")
            return "ok"
        except ClientError as e:
            return e.response.get("Error", {}).get("Code", "ClientError")


async def main():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    paths = ref_paths()
    endpoint = bool(os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
    stats = ref_stats()
    emit(
        "start",
        endpoint=endpoint,
        uid=os.getuid(),
        gid=os.getgid(),
        groups=os.getgroups(),
        # There, even where the app may not read them (that is what "refs" says).
        refs_present=all(paths.values()) and all(s.get("error") != "ENOENT" for s in stats.values()),
        **({} if endpoint else {"refs": stats, "write": write_attempt()}),
    )
    session = aioboto3.Session()
    prefix = os.environ["APP_PREFIX"]
    n = 0
    while not stop.is_set():
        n += 1
        try:
            creds = None if endpoint else read_refs()
        except OSError as e:
            emit("read", ok=False, error=type(e).__name__, errno=e.errno, n=n)
        else:
            try:
                inside = await attempt(session, creds, f"{prefix}pod-{os.environ.get('HOSTNAME', 'x')}-{n}")
                outside = await attempt(session, creds, f"elsewhere/pod-{n}")
            except Exception as e:  # noqa: BLE001 - e.g. the endpoint refusing: one line, keep going
                emit("s3", ok=False, error=type(e).__name__, n=n)
            else:
                emit("s3", ok=True, inside=inside, outside=outside, n=n)
        try:
            await asyncio.wait_for(stop.wait(), float(os.environ.get("APP_PERIOD", "2")))
        except asyncio.TimeoutError:
            pass
    emit("sigterm")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""Reference implementation of the README's consistent-read recipe for apps that read the four visible
files as separate paths (see consistent-read.ts for the TypeScript twin the stress test runs).

resolve `..data`, read access-key, secret-key, session-token, expiration through their visible paths,
resolve `..data` again: equal means one set; else read again. Without the directory (only the four paths),
read access-key first and again last: access key ids are never reused.
"""
import os


class NoCredentials(Exception):
    """No set on disk (after a deny or an expiry)."""


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def read_consistent_paths(access_key, secret_key, session_token, expiration, max_attempts=100):
    """Returns (access_key_id, secret, token, expiration, retries) from one set."""
    for retries in range(max_attempts):
        try:
            first = _read(access_key)
            values = (first, _read(secret_key), _read(session_token), _read(expiration))
            if _read(access_key) == first:
                return values + (retries,)
        except FileNotFoundError:
            if not os.path.exists(access_key):
                raise NoCredentials(access_key) from None
    raise RuntimeError("no consistent set after %d reads" % max_attempts)


def read_consistent_dir(directory, max_attempts=100):
    """Same, resolving `..data` before and after."""
    data = os.path.join(directory, "..data")
    for retries in range(max_attempts):
        try:
            before = os.readlink(data)
            values = tuple(
                _read(os.path.join(directory, n)) for n in ("access-key", "secret-key", "session-token", "expiration")
            )
            if os.readlink(data) == before:
                return values + (retries,)
        except FileNotFoundError:
            if not os.path.lexists(data):
                raise NoCredentials(directory) from None
    raise RuntimeError("no consistent set after %d reads" % max_attempts)

"""moto's record of the temporary credentials its STS `AssumeRole` issued, mirrored into a
file the token authenticator reads (`sts-sessions.json`).

On EKS the authenticator forwards the presigned `GetCallerIdentity` URL to STS, which knows
every session it issued. Here moto plays STS inside the supervisor process while the
authenticator is a child process, so the supervisor writes moto's sessions into a file.
The write happens inside moto's `AssumeRole` call, before the response leaves moto: a
caller cannot hold credentials the authenticator does not know yet, so there is nothing to
poll and no race. The file is the supervisor's alone (tests rewrite `access-entries.json`,
never this one).

    {"<access key id>": {"secretAccessKey": "...", "sessionToken": "...",
                         "arn": "arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION",
                         "userId": "AROA...:SESSION", "roleArn": "arn:aws:iam::...:role/ROLE",
                         "sessionName": "...", "expiration": "2026-11-28T22:00:00+00:00",
                         "externalId": "..." | null}}

`externalId` is what the caller sent to `AssumeRole` (moto records it, and does not evaluate
trust policies): tests read it to see that the external id reached STS.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import threading
from pathlib import Path

log = logging.getLogger("testbed.sts_sessions")

_lock = threading.Lock()
_installed: Path | None = None


def record(role) -> dict:
    """The mirror entry of one moto `AssumedRole`."""
    expiration = role.expiration
    if expiration.tzinfo is None:  # moto's utcnow() is naive UTC
        expiration = expiration.replace(tzinfo=dt.timezone.utc)
    return {
        "secretAccessKey": role.secret_access_key,
        "sessionToken": role.session_token,
        "arn": role.arn,
        "userId": role.user_id,
        "roleArn": role.role_arn,
        "sessionName": role.session_name,
        "expiration": expiration.isoformat(),
        "externalId": role.external_id,
    }


def _write(path: Path, key: str, entry: dict) -> None:
    with _lock:
        try:
            sessions = json.loads(path.read_text())
        except FileNotFoundError:
            sessions = {}
        sessions[key] = entry
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sessions, indent=2) + "\n")
        tmp.replace(path)


def install(path: Path) -> None:
    """Mirrors every session moto's STS issues from now on into `path` (created empty).

    Wraps `STSBackend.assume_role`, which AssumeRole and AssumeRoleWithWebIdentity go
    through, once per process."""
    global _installed
    from moto.sts.models import STSBackend

    path.write_text("{}\n")
    if _installed is not None:
        _installed = path
        return
    _installed = path
    original = STSBackend.assume_role

    @functools.wraps(original)
    def assume_role(self, *args, **kwargs):
        role = original(self, *args, **kwargs)
        target = _installed
        if target is not None:
            _write(target, role.access_key_id, record(role))
            log.info("session %s for %s mirrored (expires %s)",
                     role.access_key_id, role.arn, role.expiration)
        return role

    STSBackend.assume_role = assume_role


def stop() -> None:
    """Stops mirroring (the wrapper stays in place and only passes moto's answer on): for a
    process whose sessions file is going away while moto may still be used."""
    global _installed
    _installed = None

"""Who may do what on the station's queue, when clients come through bluesky-httpserver.

The RE manager's own 0MQ socket takes the permission group from the client
(``user_group="admin"`` is a claim, not a proof), so it is bound to loopback
and, with ``tcstation qserver --http``, encrypted with a key only the HTTP
server holds. Remote clients go through bluesky-httpserver instead: it
authenticates every request (a login, then API keys a user makes for
himself), its API-access policy decides which API a user may call (roles:
``user``, ``expert``, ``admin``, ...), and the resource-access policy below
decides which of the queue's groups (``profile_collection/startup/
user_group_permissions.yaml``: ``primary``, ``admin``) the user's requests
carry. The server overwrites any ``user_group`` a client sends.

The configuration is bluesky-httpserver's own YAML
(``profile_collection/httpserver.yml`` is the station's default)::

    resource_access:
      policy: tcstation.qserver_access:StationResourceAccessControl
      args:
        groups:
          admin: [alice]           # accounts whose requests carry the admin group
        default_group: primary     # every other authenticated account
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

PERMISSIONS_FILE = (Path(__file__).resolve().parent.parent / "profile_collection" / "startup"
                    / "user_group_permissions.yaml")
SECRET_FILENAME = "httpserver_secret"


class AccessConfigError(ValueError):
    """The access configuration names a group or a user the station does not know."""


def queue_groups(permissions_file: Path = PERMISSIONS_FILE) -> list[str]:
    """The groups of the queue's permissions file (without ``root``, which filters them all)."""
    groups = yaml.safe_load(permissions_file.read_text())["user_groups"]
    return sorted(group for group in groups if group != "root")


class StationResourceAccessControl:
    """bluesky-httpserver resource-access policy: each account's queue group, by name.

    Parameters
    ----------
    groups : mapping of str to sequence of str
        For each queue group, the accounts whose requests carry it. An account
        may be in one group only.
    default_group : str, optional
        The group of every other authenticated account (default ``primary``,
        the operators); None refuses them (their requests name no group the
        manager knows, so it refuses every plan).
    permissions_file : str, optional
        The queue's permissions, whose groups are the allowed names.
    """

    def __init__(self, *, groups: Mapping[str, Sequence[str]] | None = None,
                 default_group: str | None = "primary",
                 permissions_file: str | None = None):
        known = queue_groups(Path(permissions_file) if permissions_file else PERMISSIONS_FILE)
        groups = dict(groups or {})
        for group in [*groups, *([default_group] if default_group else [])]:
            if group not in known:
                raise AccessConfigError(f"queue group {group!r} is not one of {', '.join(known)} "
                                        "(user_group_permissions.yaml)")
        self._group_of: dict[str, str] = {}
        for group, users in groups.items():
            if isinstance(users, str):
                users = [users]
            for user in users or []:
                if user in self._group_of and self._group_of[user] != group:
                    raise AccessConfigError(f"account {user!r} is in two queue groups: "
                                            f"{self._group_of[user]!r} and {group!r}")
                self._group_of[user] = group
        self._default_group = default_group or "_no_group"

    def get_resource_group(self, username: str) -> str:
        """The queue group of ``username`` (the httpserver calls this on every request)."""
        return self._group_of.get(username, self._default_group)


def load_or_create_secret(data_dir: Path) -> str:
    """The HTTP server's token-signing secret, kept 0600 in the data directory across restarts."""
    path = data_dir / SECRET_FILENAME
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as secret_file:
            secret_file.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()

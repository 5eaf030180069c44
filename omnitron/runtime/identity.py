"""Per-app `user` and `group` (supervisord's `user=`): the IDs a spawn switches to, resolved at each spawn.

Only a daemon running as root can switch; any other daemon accepts only its own identity (then nothing
switches), and otherwise the instance does not start and says why. The app's supplementary groups are the
user's (getgrouplist), or none but `group` when a group is set explicitly.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from omnitron.errors import OmnitronError


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str  # the user's name, for USER and LOGNAME
    home: str  # the user's home directory, for HOME


def _user(user: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise OmnitronError(f"no user {user!r} on this system (`user` of the app)",
                            "create the user, or fix `user` (a name or a numeric uid)") from None


def _group(group: str) -> int:
    try:
        return grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise OmnitronError(f"no group {group!r} on this system (`group` of the app)",
                            "create the group, or fix `group` (a name or a numeric gid)") from None


def resolve(user: str | None, group: str | None) -> Identity | None:
    """The identity to switch to, or None when there is nothing to switch; OmnitronError when it cannot be."""
    if user is None and group is None:
        return None
    euid = os.geteuid()
    entry = _user(user) if user is not None else pwd.getpwuid(euid)
    gid = _group(group) if group is not None else entry.pw_gid
    groups = (gid,) if group is not None else tuple(os.getgrouplist(entry.pw_name, gid))
    if euid != 0:
        if entry.pw_uid == euid and gid == os.getegid():
            return None  # already who the app should be
        raise OmnitronError(
            f"the app's user/group ({user or entry.pw_name}:{group or gid}) needs the daemon to run as root "
            f"(it runs as uid {euid})",
            "run the daemon as root, or remove `user` and `group` from the app",
        )
    return Identity(uid=entry.pw_uid, gid=gid, groups=groups, name=entry.pw_name, home=entry.pw_dir or "/")

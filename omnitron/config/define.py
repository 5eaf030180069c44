"""`define_ecosystem(...)`, the Python twin of PM2's `defineEcosystem`, used by `.py` config files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RawTable = Mapping[str, object]


def define_ecosystem(
    *,
    daemon: RawTable | None = None,
    apps: Sequence[RawTable] | None = None,
    infra: RawTable | None = None,
) -> dict[str, object]:
    """The raw ecosystem dict; validation happens in `omnitron.config.load`, so errors read as for TOML and JSON.

    A config file written in Python ends with::

        ecosystem = define_ecosystem(daemon={"health_port": 9800}, apps=[{"name": "api", "command": "..."}])
    """
    raw: dict[str, object] = {}
    if daemon is not None:
        raw["daemon"] = daemon
    if apps is not None:
        raw["apps"] = apps
    if infra is not None:
        raw["infra"] = infra
    return raw

"""`omnitron inspect APP[:N] [--json]`: one instance in depth (instance 0 when N is not given)."""

from __future__ import annotations

import argparse
import json
import sys

from omnitron.errors import ExitCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "inspect", help="one instance in depth: command, env sources, last exit, history, output, probes",
        description="The resolved command and cwd (env values masked), every env variable by name with where it "
        "came from, the last exit, the state changes of the last hour, the last output lines, the probes' "
        "verdicts and the scaling decisions of one instance (APP alone: instance 0).",
    )
    parser.add_argument("target", metavar="APP[:N]", help="an app (its instance 0), or one instance of it")
    parser.add_argument("--json", action="store_true", help="print the JSON document")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnitron.cli.client import ControlClient, quote
    from omnitron.cli.control_cmds import target_argument
    from omnitron.home.root import ClientHome

    app, instance = target_argument(args.target)
    query = "" if instance is None else f"?instance={instance}"
    document = ControlClient(ClientHome()).call("GET", f"/v1/apps/{quote(app)}/inspect{query}")
    if args.json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(render(document))
    return ExitCode.OK


_VERDICTS = {True: "passing", False: "failing", None: "no verdict yet"}


def _exit(last: dict[str, Any] | None) -> str:
    if not last:
        return "never"
    how = f"signal {last['signal']}" if last.get("signal") else f"exit code {last.get('code')}"
    return f"{last.get('at')}  {how}  ({last.get('reason')})"


def _probe(probe: dict[str, Any] | None, verdict: str = "") -> str:
    if not probe:
        return "none"
    said = [f"{probe['kind']} {probe['target']} every {probe['interval_s']:g}s", verdict]
    if probe.get("last_error"):
        said.append(f"last error: {probe['last_error']}")
    return ", ".join(part for part in said if part)


def render(doc: dict[str, Any]) -> str:
    from omnitron.cli.events_cmd import iso_ms

    lines = [f"{doc['app']}:{doc['instance']}  (of {doc['instances']})  {doc['state']}: {doc['reason']}",
             f"  pid        {doc['pid'] if doc.get('pid') is not None else '-'}",
             f"  restarts   {doc['restarts']}" + (f"  {doc['restarts_by_reason']}" if doc.get("restarts_by_reason")
                                                   else ""),
             f"  command    {' '.join(doc['command'])}",
             f"  cwd        {doc['cwd']}",
             f"  last exit  {_exit(doc.get('last_exit'))}",
             f"  readiness  {_probe(doc.get('readiness'), _VERDICTS[doc.get('healthy')])}",
             f"  liveness   {_probe(doc.get('liveness'))}"]
    if doc.get("scaling"):
        lines.append(f"  scaling    {doc['scaling']}")
    lines.append("  env (values never shown):")
    by_source: dict[str, list[str]] = {}
    for var in doc.get("env", []):
        by_source.setdefault(var["source"], []).append(var["name"])
    for source in ("daemon env", "env_file", "env", "secret", "omnitron"):
        if source in by_source:
            lines.append(f"    {source:<10} {', '.join(by_source[source])}")
    lines.append("  last hour:")
    for event in doc.get("history", []) or [{"ts": 0, "kind": "(no events)"}]:
        detail = " ".join(f"{k}={event[k]}" for k in ("pid", "exit_code", "signal", "reason") if event.get(k))
        lines.append(f"    {iso_ms(event['ts']) if event['ts'] else '':<24}  {event['kind']:<10} {detail}".rstrip())
    for decision in doc.get("scaling_decisions", []):
        lines.append(f"    {iso_ms(decision['ts'])}  scale      {decision['reason']}")
    lines.append(f"  output (last {len(doc.get('output', []))} lines):")
    for line in doc.get("output", []):
        lines.append(f"    {line.get('stream') or '-':<6} {line['line']}")
    return "\n".join(lines) + "\n"

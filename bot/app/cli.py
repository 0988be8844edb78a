"""The `driftbot` command line: run, demo, replay, check-config, routes explain, audit, import.

Every failure a user can cause (a missing file, a broken config, an unreadable state file)
is one clear line on stderr and a non-zero exit, never a traceback. stdout carries only
notifications (and the answers of check-config and routes explain); logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from bot.app.errors import CliError
from core.model import EventKind, Severity, Tool

if TYPE_CHECKING:
    from pydantic import SecretStr

    from bot.store.store import AuditEntry
    from config.schema import Config

# Each command imports what it uses when it runs: `check-config` needs no Slack client and
# `run` with console receivers no Teams or PostgreSQL driver (docs/benchmarks.md, start-up).

logger = logging.getLogger("driftbot")

DEMO_SCENARIO = "demo.jsonl"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftbot",
        description="Tells people what Argo CD and Flux changed, drifted, failed and rolled back.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (to stderr)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="the service: watch the clusters, serve HTTP, notify")
    _config_arg(run)
    run.add_argument(
        "--state",
        type=Path,
        help="the store file (default: $DRIFTBOT_STATE or ~/.local/state/driftbot/state.sqlite)",
    )

    demo = sub.add_parser("demo", help="the whole pipeline on a shipped scenario, to the console")
    demo.add_argument("--output", choices=["text", "jsonl"], default="text")

    replay = sub.add_parser("replay", help="a recorded stream (JSON Lines) through the pipeline")
    replay.add_argument("file", type=Path, help="the recorded stream")
    _config_arg(replay)
    replay.add_argument(
        "--state",
        type=Path,
        help="the store file (default: $DRIFTBOT_STATE or ~/.local/state/driftbot/state.sqlite)",
    )
    replay.add_argument(
        "--output",
        choices=["text", "jsonl"],
        help="console format (default: text, or each console receiver's own)",
    )

    check = sub.add_parser("check-config", help="check a config file and print every error")
    check.add_argument("file", nargs="?", type=Path, help="the config file (or --config)")
    _config_arg(check)

    routes = sub.add_parser("routes", help="routing tools")
    routes_sub = routes.add_subparsers(dest="routes_command", required=True, metavar="SUBCOMMAND")
    explain_p = routes_sub.add_parser("explain", help="which routes and receivers get an event")
    _config_arg(explain_p)
    explain_p.add_argument("--app", required=True, help="app name")
    explain_p.add_argument("--cluster", required=True)
    explain_p.add_argument("--kind", required=True, help="event kind, e.g. drift_detected")
    explain_p.add_argument("--namespace", help="the namespace the object lives in")
    explain_p.add_argument(
        "--destination-namespace",
        help="the namespace the app deploys into (Argo CD: spec.destination.namespace)",
    )
    explain_p.add_argument("--tool", choices=[t.value for t in Tool])
    explain_p.add_argument("--severity", choices=[s.value for s in Severity])
    explain_p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    explain_p.add_argument("--project", help="the Argo CD project")
    explain_p.add_argument(
        "--object-kind", help="the kind of object: Application, Kustomization, HelmRelease, ..."
    )
    explain_p.add_argument(
        "--destination-cluster", help="where an Argo CD app deploys (in-cluster, or its name)"
    )
    explain_p.add_argument("--source", help="the name of the Flux source the object reads")
    explain_p.add_argument("--annotation", action="append", default=[], metavar="KEY=VALUE")
    explain_p.add_argument(
        "--project-annotation",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an annotation of the app's Argo CD AppProject (routing.annotations)",
    )

    audit = sub.add_parser(
        "audit", help="the audit log: notifications, deliveries, mutes, acks, config reloads"
    )
    audit.add_argument("--app", help="app name or namespace/name (globs allowed)")
    audit.add_argument("--cluster", help="cluster name (glob allowed)")
    audit.add_argument("--limit", type=int, default=50, help="newest entries shown (default 50)")
    audit.add_argument(
        "--state",
        type=Path,
        help="the store file (default: $DRIFTBOT_STATE or ~/.local/state/driftbot/state.sqlite)",
    )
    audit.add_argument("--output", choices=["text", "jsonl"], default="text")
    from bot.app.importing import add_import_parser

    add_import_parser(sub)
    return parser


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="the config file (default: $DRIFTBOT_CONFIG)")


def _config_path(arg: Path | None) -> Path | None:
    if arg is not None:
        return arg
    env = os.environ.get("DRIFTBOT_CONFIG")
    return Path(env) if env else None


def _load_config(arg: Path | None) -> Config:
    from config.loader import check_config_file

    loaded = check_config_file(_config_path(arg))
    for warning in loaded.warnings:
        logger.warning("%s", warning)
    return loaded.config


def _cmd_replay(args: argparse.Namespace) -> int:
    """Replay keeps its state in a SQLite file (--state, else DRIFTBOT_STATE, else the default
    location) even when DRIFTBOT_STORE_DSN names the service's shared PostgreSQL store: what it
    announces and sends would otherwise count as announced for the running service."""
    from bot.app.replay import replay_file
    from bot.store.dsn import is_postgres_dsn
    from bot.store.store import default_state_path, redact_dsn

    config = _load_config(args.config)
    state = args.state or default_state_path()
    dsn = os.environ.get("DRIFTBOT_STORE_DSN", "").strip()
    if dsn:
        logger.warning(
            "state store: %s (replay keeps a store of its own; DRIFTBOT_STORE_DSN %s, the "
            "service's, is not used)",
            state,
            redact_dsn(dsn) if is_postgres_dsn(dsn) else "(not a PostgreSQL DSN)",
        )
    summary = replay_file(args.file, config, state, args.output)
    logger.info(
        "replayed %d lines of %s with the store %s: %d notifications, %d lines skipped",
        summary.lines,
        args.file,
        state,
        summary.sent,
        summary.skipped,
    )
    return 0


def _note_store(state_arg: Path | None, dsn: SecretStr | None) -> None:
    """With DRIFTBOT_STORE_DSN, `run` keeps its state in PostgreSQL (the service opens it) and
    --state or DRIFTBOT_STATE is not used: say which store, never the DSN's password."""
    if dsn is None:
        return
    from bot.store.dsn import is_postgres_dsn
    from bot.store.store import redact_dsn

    text = dsn.get_secret_value()
    if not is_postgres_dsn(text):
        raise CliError(
            "DRIFTBOT_STORE_DSN must be a PostgreSQL DSN: postgresql://user:password@host:port/db"
        )
    if state_arg is not None or os.environ.get("DRIFTBOT_STATE"):
        logger.warning(
            "state store: %s (DRIFTBOT_STORE_DSN wins; --state and DRIFTBOT_STATE are not used)",
            redact_dsn(text),
        )
    else:
        logger.info("state store: %s", redact_dsn(text))


def _cmd_run(args: argparse.Namespace) -> int:
    from bot.app.server import serve
    from bot.app.service import ServiceError
    from bot.ops.logs import add_secrets, secrets_from
    from bot.store.store import default_state_path
    from config.settings import apply_settings, load_settings

    settings = load_settings()
    config = apply_settings(_load_config(args.config), settings)
    add_secrets(secrets_from(config, os.environ))
    state = args.state or default_state_path()
    _note_store(args.state, settings.store_dsn)
    leader = settings.leader_election if settings.leader_election.enabled else None
    try:
        return asyncio.run(
            serve(
                config,
                state,
                config_path=_config_path(args.config),
                leader_election=leader,
                adjust=lambda new: apply_settings(new, settings),
                freeze_heap=True,
            )
        )
    except ServiceError as exc:
        raise CliError(str(exc)) from None


def _cmd_demo(args: argparse.Namespace) -> int:
    from bot.app.replay import replay_file
    from config.schema import Config

    scenario = resources.files("bot.app.scenarios").joinpath(DEMO_SCENARIO)
    with resources.as_file(scenario) as path, tempfile.TemporaryDirectory() as tmp:
        if args.output == "text":
            print(
                "driftbot demo: a recorded morning of Argo CD and Flux on two clusters, "
                "as the console receiver tells it.\n"
            )
        replay_file(path, Config(), Path(tmp) / "demo.sqlite", args.output)
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    path = _config_path(args.file or args.config)
    if path is None:
        raise CliError("no config file: give one as an argument, with --config or $DRIFTBOT_CONFIG")
    from config.loader import check_config_file

    loaded = check_config_file(path)
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    config = loaded.config
    print(
        f"{path}: OK ({len(config.clusters)} clusters, {len(config.receivers)} receivers, "
        f"{len(config.routes)} routes)"
    )
    return 0


def _cmd_routes(args: argparse.Namespace) -> int:
    from config.route_explain import explain

    config = _load_config(args.config)
    try:
        kind = EventKind(args.kind)
    except ValueError:
        raise CliError(
            f"unknown event kind {args.kind!r}; one of: {', '.join(k.value for k in EventKind)}"
        ) from None
    labels = _pairs("--label", args.label)
    annotations = _pairs("--annotation", args.annotation)
    lines = explain(
        args.app,
        args.cluster,
        kind,
        config,
        namespace=args.namespace,
        tool=Tool(args.tool) if args.tool else None,
        labels=labels or None,
        severity=Severity(args.severity) if args.severity else None,
        project=args.project,
        object_kind=args.object_kind,
        destination_namespace=args.destination_namespace,
        destination_cluster=args.destination_cluster,
        source=args.source,
        annotations=annotations or None,
        project_annotations=_pairs("--project-annotation", args.project_annotation) or None,
    )
    print("\n".join(lines))
    return 0


def _pairs(flag: str, items: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"{flag} wants KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def _cmd_audit(args: argparse.Namespace) -> int:
    """The audit log of the store `run` uses: DRIFTBOT_STORE_DSN's PostgreSQL database when it
    is set, else the SQLite file of --state, DRIFTBOT_STATE or the default location."""
    if args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    from pydantic import SecretStr

    from bot.app.audit_view import read_audit, render_jsonl, render_table
    from bot.store.store import open_store, store_location

    location = store_location(args.state, os.environ)
    if isinstance(location, Path):
        if not location.is_file():
            raise CliError(
                f"no state store at {location} (give one with --state, $DRIFTBOT_STATE or "
                "$DRIFTBOT_STORE_DSN)"
            )
    else:
        _note_store(args.state, SecretStr(location))

    async def read() -> list[AuditEntry]:
        store = await open_store(location)
        try:
            return await read_audit(store, args.app, args.cluster, args.limit)
        finally:
            await store.close()

    entries = asyncio.run(read())
    if args.output == "jsonl":
        sys.stdout.write(render_jsonl(entries))
    elif entries:
        sys.stdout.write(render_table(entries))
    else:
        print("no audit entries" + (" match" if args.app or args.cluster else ""))
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from bot.app.importing import cmd_import

    return cmd_import(args)


COMMANDS = {
    "run": _cmd_run,
    "replay": _cmd_replay,
    "demo": _cmd_demo,
    "check-config": _cmd_check_config,
    "routes": _cmd_routes,
    "audit": _cmd_audit,
    "import": _cmd_import,
}


def _configure_logging(verbose: bool) -> None:
    """Logs to stderr as DRIFTBOT_LOG_FORMAT and DRIFTBOT_LOG_LEVEL say (-v: DEBUG), with the
    secrets of the environment masked. A bad variable is reported by the command that needs
    the settings; the logs then use the defaults."""
    from bot.ops.logs import configure_logging, secrets_from
    from config.loader import ConfigError
    from config.settings import load_settings

    try:
        settings = load_settings()
        fmt, level = settings.log_format, settings.log_level
    except ConfigError:
        fmt, level = "text", "INFO"
    configure_logging(fmt, "DEBUG" if verbose else level, secrets_from(None, os.environ))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    from bot.store.store import StoreError
    from config.loader import ConfigError

    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        for issue in exc.errors:
            print(f"error: {issue}", file=sys.stderr)
        return 1
    except (CliError, StoreError) as exc:
        print(f"driftbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`driftbot replay … | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())

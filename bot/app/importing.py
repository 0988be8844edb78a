"""`driftbot import argocd-notifications` and `driftbot import flux-alerts`: read the objects
(files, standard input as `-`, or a cluster) and print the driftbot config the pure importers
in config/importers make of them.

`--from-cluster CONTEXT` reads with the kubeconfig's context, read-only: the
argocd-notifications-cm ConfigMap (listed in its namespace), Applications and AppProjects, or
Flux Alerts and Providers, in every namespace. The printed config is checked as
`check-config` checks it before it is printed; its warnings go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.app.errors import CliError
from config.importers.argocd import import_argocd
from config.importers.draft import Draft
from config.importers.flux import import_flux
from config.importers.objects import ImportInputError, KubeObject, name_of, parse_objects
from config.loader import ConfigError, check_config
from config.schema import ClusterConfig

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient

logger = logging.getLogger(__name__)

CONFIGMAP = "argocd-notifications-cm"
ARGOCD_RESOURCES = (
    ("argoproj.io", "v1alpha1", "applications", "Application"),
    ("argoproj.io", "v1alpha1", "appprojects", "AppProject"),
)
FLUX_RESOURCES = (
    ("notification.toolkit.fluxcd.io", "v1beta3", "alerts", "Alert"),
    ("notification.toolkit.fluxcd.io", "v1beta3", "providers", "Provider"),
)
PAGE = 500


def add_import_parser(sub: Any) -> None:
    """The `import` command and its two subcommands, on the CLI's subparsers."""
    imp = sub.add_parser(
        "import", help="print a driftbot config made from Argo CD Notifications or Flux alerts"
    )
    which = imp.add_subparsers(dest="import_command", required=True, metavar="SUBCOMMAND")
    argo = which.add_parser(
        "argocd-notifications",
        help="from argocd-notifications-cm and the subscriptions on Applications and AppProjects",
    )
    argo.add_argument(
        "--configmap",
        type=Path,
        help="the argocd-notifications-cm ConfigMap (YAML or JSON; -: stdin)",
    )
    source = argo.add_mutually_exclusive_group()
    source.add_argument(
        "--apps",
        type=Path,
        action="append",
        default=[],
        help="Applications and AppProjects (a file of objects or Lists; repeatable)",
    )
    source.add_argument("--from-cluster", metavar="CONTEXT", help="read them from this context")
    argo.add_argument(
        "--argocd-namespace",
        default="argocd",
        help="where the ConfigMap is, with --from-cluster (default argocd)",
    )
    flux = which.add_parser("flux-alerts", help="from Flux Alert and Provider objects")
    flux.add_argument("files", nargs="*", type=Path, help="Alerts and Providers (YAML or JSON)")
    flux.add_argument("--from-cluster", metavar="CONTEXT", help="also read them from this context")
    for parser in (argo, flux):
        parser.add_argument("--kubeconfig", help="kubeconfig file (default $KUBECONFIG)")
        parser.add_argument(
            "--cluster", help="the cluster's name in driftbot: routes match only its events"
        )


def cmd_import(args: argparse.Namespace) -> int:
    draft = _argocd(args) if args.import_command == "argocd-notifications" else _flux(args)
    text = draft.render()
    try:
        loaded = check_config(text, "imported config")
    except ConfigError as exc:  # a bug of the importer: say so rather than print a bad file
        problems = "; ".join(str(e) for e in exc.errors)
        raise CliError(f"the imported config does not pass check-config: {problems}") from None
    sys.stdout.write(text)
    for warning in loaded.warnings:
        logger.warning("%s", warning)
    logger.info(
        "%d receivers, %d routes; %d things not imported (listed as comments at the top)",
        len(draft.receivers),
        len(draft.routes),
        len(draft.notes),
    )
    if not draft.routes:
        raise CliError("nothing could be imported: the comments printed say why")
    return 0


def _read(path: Path) -> list[KubeObject]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return parse_objects(text, str(path))
    except ImportInputError as exc:
        raise CliError(str(exc)) from None


def _argocd(args: argparse.Namespace) -> Draft:
    if args.configmap is None and args.from_cluster is None:
        raise CliError("give --configmap FILE, or --from-cluster CONTEXT to read it there")
    objects: list[KubeObject] = []
    title = ["driftbot config made by `driftbot import argocd-notifications` from:"]
    configmap: KubeObject | None = None
    if args.configmap is not None:
        found = [o for o in _read(args.configmap) if o.get("kind") == "ConfigMap"]
        if len(found) != 1:
            raise CliError(f"{args.configmap}: expected one ConfigMap, found {len(found)}")
        configmap = found[0]
        title.append(f"- ConfigMap {name_of(configmap)} in {args.configmap}")
    for path in args.apps:
        read = _read(path)
        objects += read
        title.append(f"- {_counts(read)} in {path}")
    if args.from_cluster is not None:
        cm, read = asyncio.run(_read_argocd_cluster(args))
        if configmap is None:
            configmap = cm
            title.append(f"- ConfigMap {args.argocd_namespace}/{CONFIGMAP} of {args.from_cluster}")
        objects += read
        title.append(f"- {_counts(read)} of context {args.from_cluster}")
    assert configmap is not None
    return import_argocd(configmap, objects, cluster=args.cluster, title=title)


def _flux(args: argparse.Namespace) -> Draft:
    if not args.files and args.from_cluster is None:
        raise CliError("give the files of Alerts and Providers, or --from-cluster CONTEXT")
    objects: list[KubeObject] = []
    title = ["driftbot config made by `driftbot import flux-alerts` from:"]
    for path in args.files:
        read = _read(path)
        objects += read
        title.append(f"- {_counts(read)} in {path}")
    if args.from_cluster is not None:
        read = asyncio.run(_list_all(args, FLUX_RESOURCES))
        objects += read
        title.append(f"- {_counts(read)} of context {args.from_cluster}")
    return import_flux(objects, cluster=args.cluster, title=title)


def _counts(objects: Sequence[KubeObject]) -> str:
    kinds: dict[str, int] = {}
    for obj in objects:
        kinds[str(obj.get("kind"))] = kinds.get(str(obj.get("kind")), 0) + 1
    return ", ".join(f"{n} {k}" for k, n in kinds.items()) or "no objects"


# --- the cluster ---------------------------------------------------------------------------------


async def _client(args: argparse.Namespace) -> ApiClient:
    # The Kubernetes client loads only for --from-cluster: every `driftbot` command builds
    # this command's parser, and `replay` and `check-config` need none of it.
    from bot.pipeline.sources import api_client_for

    cluster = ClusterConfig(name="import", kubeconfig=args.kubeconfig, context=args.from_cluster)
    try:
        return await api_client_for(cluster)
    except Exception as exc:  # the kubeconfig loader raises several unrelated types
        raise CliError(f"cannot use context {args.from_cluster}: {exc}") from None


async def _read_argocd_cluster(args: argparse.Namespace) -> tuple[KubeObject, list[KubeObject]]:
    api = await _client(args)
    async with api:
        namespace = args.argocd_namespace
        configmaps = await _list(
            api,
            f"/api/v1/namespaces/{namespace}/configmaps",
            "ConfigMap",
            "v1",
            field_selector=f"metadata.name={CONFIGMAP}",
        )
        found = [cm for cm in configmaps if name_of(cm) == CONFIGMAP]
        if not found:
            raise CliError(f"context {args.from_cluster} has no ConfigMap {namespace}/{CONFIGMAP}")
        objects: list[KubeObject] = []
        for group, version, plural, kind in ARGOCD_RESOURCES:
            objects += await _list(
                api, f"/apis/{group}/{version}/{plural}", kind, group + "/" + version
            )
        return found[0], objects


async def _list_all(
    args: argparse.Namespace, resources: Sequence[tuple[str, str, str, str]]
) -> list[KubeObject]:
    api = await _client(args)
    async with api:
        objects: list[KubeObject] = []
        for group, version, plural, kind in resources:
            objects += await _list(
                api, f"/apis/{group}/{version}/{plural}", kind, group + "/" + version
            )
        return objects


async def _list(
    api: ApiClient, path: str, kind: str, api_version: str, field_selector: str | None = None
) -> list[KubeObject]:
    """Every object of a LIST, page by page; items get the kind and apiVersion lists omit."""
    items: list[KubeObject] = []
    token: str | None = None
    while True:
        query: list[tuple[str, Any]] = [("limit", PAGE)]
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if token:
            query.append(("continue", token))
        body = await _get(api, path, query, kind)
        for item in body.get("items") or []:
            if isinstance(item, dict):
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", api_version)
                items.append(item)
        metadata = body.get("metadata")
        token = metadata.get("continue") if isinstance(metadata, dict) else None
        if not token:
            return items


async def _get(api: ApiClient, path: str, query: list[tuple[str, Any]], kind: str) -> Any:
    from kubernetes_asyncio.client.exceptions import ApiException

    try:
        response = await api.call_api(
            path,
            "GET",
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            response_types_map={},
            _preload_content=False,
        )
        try:
            status, body = response.status, await response.json(content_type=None)
        finally:
            response.release()
    except ApiException as exc:
        status, body = exc.status or 0, {"message": str(exc.reason)}
    except OSError as exc:
        raise CliError(f"cannot reach the cluster: {exc}") from None
    if status == 404:
        raise CliError(f"the cluster does not serve {kind} objects ({path}): is the CRD installed?")
    if status != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else body
        raise CliError(f"listing {kind} objects ({path}) failed: HTTP {status}: {message}")
    return body

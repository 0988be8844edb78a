"""The config file's shape: clusters, sources, receivers, routes, policy, RBAC, Slack, server.

Pydantic models with `extra="forbid"`, so a misspelt key is an error instead of a silently
ignored rule. Checks that need the whole file (a route naming an undefined receiver, duplicate
names) are in `cross_check`, which returns every problem with its location; the loader maps
those locations back to lines of the YAML file.

One module a part of the file: `fields` (how single values are read), `sources`, `receivers`,
`routes` (with policy and digests), `access` (RBAC), `server` (Slack, Teams, HTTP, status page)
and `root` (`Config` and the whole-file checks).
"""

from config.schema.access import (
    Grant,
    Principals,
    RbacConfig,
)
from config.schema.fields import (
    FLUX_KINDS,
    FLUX_UI_FIELDS,
    WEEKDAYS,
    ClockTime,
    Duration,
    EnvName,
    FluxUi,
    Glob,
    Globs,
    Kind,
    Level,
    Loc,
    Name,
    SlashCommand,
    Strict,
    Text,
    TimeZone,
    Tools,
    Url,
    Weekday,
    did_you_mean,
    parse_event_kind,
    parse_severity,
)
from config.schema.receivers import (
    ConsoleReceiver,
    ReceiverConfig,
    SlackReceiver,
    TeamsReceiver,
)
from config.schema.root import (
    ARGOCD_HOME_NAMESPACES,
    DEFAULT_RECEIVER,
    Config,
    cross_check,
    default_config,
    lint,
)
from config.schema.routes import (
    DigestConfig,
    FlapPolicy,
    Match,
    PolicyConfig,
    QuietHours,
    RouteConfig,
    RoutingConfig,
)
from config.schema.server import (
    BasicAuthConfig,
    FluxWebhookCluster,
    HeaderName,
    Network,
    ProxyAuthConfig,
    ServerConfig,
    SlackConfig,
    StatusConfig,
    TeamsConfig,
)
from config.schema.sources import (
    ArgoCDApiConfig,
    ClusterConfig,
)
from core.grouping import GroupField

__all__ = [
    "ARGOCD_HOME_NAMESPACES",
    "DEFAULT_RECEIVER",
    "FLUX_KINDS",
    "FLUX_UI_FIELDS",
    "WEEKDAYS",
    "ArgoCDApiConfig",
    "BasicAuthConfig",
    "ClockTime",
    "ClusterConfig",
    "Config",
    "ConsoleReceiver",
    "DigestConfig",
    "Duration",
    "EnvName",
    "FlapPolicy",
    "FluxUi",
    "FluxWebhookCluster",
    "Glob",
    "Globs",
    "Grant",
    "GroupField",
    "HeaderName",
    "Kind",
    "Level",
    "Loc",
    "Match",
    "Name",
    "Network",
    "PolicyConfig",
    "Principals",
    "ProxyAuthConfig",
    "QuietHours",
    "RbacConfig",
    "ReceiverConfig",
    "RouteConfig",
    "RoutingConfig",
    "ServerConfig",
    "SlackConfig",
    "SlackReceiver",
    "SlashCommand",
    "StatusConfig",
    "Strict",
    "TeamsConfig",
    "TeamsReceiver",
    "Text",
    "TimeZone",
    "Tools",
    "Url",
    "Weekday",
    "cross_check",
    "default_config",
    "did_you_mean",
    "lint",
    "parse_event_kind",
    "parse_severity",
]

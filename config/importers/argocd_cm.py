"""The argocd-notifications-cm ConfigMap read as Argo CD's notifications-engine reads it:
`trigger.<name>`, `template.<name>`, `service.<type>[.<name>]`, `defaultTriggers[.<service>]`,
`subscriptions` and `context`. Pure; what cannot be read becomes a note, not an error, because
Argo CD too goes on with the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from config.importers.objects import KubeObject, describe, text_map


@dataclass(frozen=True)
class Service:
    name: str
    """What subscriptions call it: the custom name, else the type."""
    type: str
    key: str
    """The ConfigMap key it is defined under (`service.slack`, `service.webhook.github`)."""
    options: Mapping[str, Any]


@dataclass
class NotificationsConfig:
    source: str
    triggers: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    templates: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    default_triggers: list[str] = field(default_factory=list)
    service_default_triggers: dict[str, list[str]] = field(default_factory=dict)
    subscriptions: list[Mapping[str, Any]] = field(default_factory=list)
    context: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _load(value: str, key: str, notes: list[str]) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        notes.append(f"{key}: could not be read as YAML ({problem}); not imported")
        return None


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def read_configmap(cm: KubeObject) -> NotificationsConfig:
    """The notification settings of `cm`, with a note for each key that cannot be used."""
    config = NotificationsConfig(source=describe(cm))
    notes = config.notes
    for key, value in sorted(text_map(cm.get("data")).items()):
        if key.startswith("trigger."):
            loaded = _load(value, key, notes)
            conditions = [loaded] if isinstance(loaded, Mapping) else loaded
            if isinstance(conditions, list):
                config.triggers[key[len("trigger.") :]] = [
                    c for c in conditions if isinstance(c, Mapping)
                ]
            elif loaded is not None:
                notes.append(f"{key}: not a list of conditions; not imported")
        elif key.startswith("template."):
            loaded = _load(value, key, notes)
            config.templates[key[len("template.") :]] = (
                loaded if isinstance(loaded, Mapping) else {}
            )
        elif key.startswith("service."):
            _read_service(config, key, value)
        elif key == "defaultTriggers":
            config.default_triggers = _strings(_load(value, key, notes))
        elif key.startswith("defaultTriggers."):
            service = key[len("defaultTriggers.") :]
            config.service_default_triggers[service] = _strings(_load(value, key, notes))
        elif key == "subscriptions":
            loaded = _load(value, key, notes)
            if isinstance(loaded, list):
                config.subscriptions = [s for s in loaded if isinstance(s, Mapping)]
        elif key == "context":
            loaded = _load(value, key, notes)
            config.context = text_map(loaded)
        else:
            notes.append(f"{key}: not a setting driftbot knows; not imported")
    return config


def _read_service(config: NotificationsConfig, key: str, value: str) -> None:
    parts = key.split(".")
    if len(parts) == 2:
        type_, name = parts[1], parts[1]
    elif len(parts) == 3:
        type_, name = parts[1], parts[2]
    else:
        config.notes.append(f"{key}: not service.<type> or service.<type>.<name>; not imported")
        return
    loaded = _load(value, key, config.notes)
    # YAML keys need not be strings (`?` alone is a null key): the options are named by text.
    options = {str(k): v for k, v in loaded.items()} if isinstance(loaded, Mapping) else {}
    config.services[name] = Service(name, type_, key, options)


_SECRET_REF = re.compile(r"^\$[\w-]+$")


def secret_ref(value: object) -> str | None:
    """`slack-token` for `$slack-token`: the argocd-notifications-secret key a value names."""
    if isinstance(value, str) and _SECRET_REF.match(value.strip()):
        return value.strip()[1:]
    return None


_MENTIONS = (
    (re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>"), "@{}"),
    (re.compile(r"<!subteam\^(S[A-Z0-9]+)(?:\|[^>]*)?>"), "{}"),
    (re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>"), "{}"),
)


def template_mentions(template: Mapping[str, Any]) -> list[str]:
    """Slack mentions written into a template's message or Slack fields, as driftbot's
    `mention` entries (`@here`, `S0123ABCD`, `U0123ABCD`)."""
    texts: list[str] = []
    message = template.get("message")
    if isinstance(message, str):
        texts.append(message)
    slack = template.get("slack")
    if isinstance(slack, Mapping):
        texts += [v for v in slack.values() if isinstance(v, str)]
    found: list[str] = []
    for text in texts:
        hits = sorted(
            (match.start(), form.format(match.group(1)))
            for pattern, form in _MENTIONS
            for match in pattern.finditer(text)
        )
        found += [entry for _, entry in hits if entry not in found]
    return list(dict.fromkeys(found))

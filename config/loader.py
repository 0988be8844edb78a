"""Reads the config file's text into a `Config`, or fails with every problem at its line.

Pure: it takes the text and the file name (only `load_config_file` opens a file). The YAML is
composed into nodes first, so each pydantic error location (`routes[1].match.kinds[0]`) can be
traced back to the line it came from. Scalars follow YAML 1.2 rules: `no`, `on` and `22:00`
stay text instead of turning into a boolean and a number of minutes as in YAML 1.1.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from config.schema import Config, Loc, cross_check, default_config, did_you_mean, lint


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file; `line` is 1-based, `path` like `routes[1].match.kinds[0]`."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The config file is not usable; `errors` holds all of its problems, in file order."""

    def __init__(self, errors: list[ConfigIssue]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: Config
    warnings: tuple[ConfigIssue, ...] = ()


# --- YAML with YAML 1.2 scalars and node marks --------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema's implicit types (no yes/no/on/off booleans,
    no base-60 numbers, no dates)."""


_Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
):
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 0) if text.startswith("0x") else int(text)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _duplicate_keys(node: yaml.Node, path: Loc, out: list[tuple[int, Loc, str]]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen and key.value != "<<":
                    out.append(
                        (
                            _line(key),
                            (*path, key.value),
                            f"duplicate key {key.value!r} (also on line {seen[key.value]}); "
                            "YAML would silently keep only the last one",
                        )
                    )
                seen.setdefault(key.value, _line(key))
                _duplicate_keys(value, (*path, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _duplicate_keys(item, (*path, index), out)


def _locate(root: yaml.Node | None, loc: Loc, on_key: bool = False) -> int:
    """The line a location names, or that of its deepest existing ancestor (a missing key is
    reported at the mapping that lacks it). `on_key`: point at the key, not its value."""
    if root is None:
        return 1
    node = root
    for index, part in enumerate(loc):
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = key if on_key and index == len(loc) - 1 else value
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
    return _line(node)


def format_path(loc: Loc) -> str:
    """`("routes", 1, "match", "kinds", 0)` -> `routes[1].match.kinds[0]`."""
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# --- pydantic errors in the words of the file ---------------------------------------------------


def _yaml_type(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class whose field the last part of `loc` names."""
    current: Any = Config
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any, part: str | int) -> Any:
    """Step from a type into the type of its field or item named `part`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return _strip(info.annotation)
        return None
    return None if isinstance(part, str) else _item_type(annotation)


def _strip(annotation: Any) -> Any:
    """Optional[X] -> X, Annotated[X, ...] -> X; tuples and lists stay for _item_type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _strip(typing.get_args(annotation)[0])
    if origin in (typing.Union, UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _strip(args[0]) if len(args) == 1 else annotation
    return annotation


def _item_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        return _strip(typing.get_args(annotation)[0])
    if origin is dict:
        return _strip(typing.get_args(annotation)[1])
    return None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    value = error.get("input")
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(loc[:-1])
        if model is None:
            return f"unknown key {key!r}"
        keys = _keys_of(model)
        return f"unknown key {key!r} ({did_you_mean(key, keys)}expected one of: {', '.join(keys)})"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list, got {_yaml_type(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping (key: value), got {_yaml_type(value)}"
    if loc and loc[-1] == "[key]":
        return f"a key must be text, got {_yaml_type(value)}"
    if error["msg"] == "Keys should be strings":
        return f"a key must be text, got {_yaml_type(loc[-1] if loc else value)}"
    if kind == "string_type":
        return f"expected text, got {_yaml_type(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {_yaml_type(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_yaml_type(value)}"
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        return f"invalid value {value!r} ({hint}expected one of: {', '.join(choices)})"
    if kind == "string_pattern_mismatch":
        return f"invalid value {value!r} (expected the form {error.get('ctx', {}).get('pattern')})"
    if kind == "string_too_short":
        return "must not be empty"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


# --- the entry points ---------------------------------------------------------------------------


def check_config(text: str, file: str = "config.yaml") -> LoadedConfig:
    """Parse and validate; return the config and its warnings, or raise ConfigError with all
    errors. Empty text (or only comments) gives the built-in default. Pure."""
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            data = None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError([ConfigIssue(file, line, "", f"invalid YAML: {problem}")]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        problem = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
        raise ConfigError([ConfigIssue(file, line, "", f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(file, 1, "", f"invalid YAML: {exc}")]) from None

    if data is None:
        return LoadedConfig(default_config())
    assert root is not None
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigIssue(
                    file,
                    _line(root),
                    "",
                    f"the config file must be a mapping of keys (clusters, receivers, routes, "
                    f"...), got {_yaml_type(data)}",
                )
            ]
        )

    # Top-level keys starting with "x-" hold YAML anchors for reuse, as in Compose files.
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    found: list[tuple[int, Loc, str]] = []
    _duplicate_keys(root, (), found)
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            line = _locate(root, loc, on_key=error["type"] == "extra_forbidden")
            found.append((line, loc, _message(error)))
    for loc, message in cross_check(data):
        found.append((_locate(root, loc), loc, message))
    if found:
        found.sort(key=lambda item: item[0])
        raise ConfigError(
            [ConfigIssue(file, line, format_path(loc), message) for line, loc, message in found]
        )
    assert config is not None
    warnings = tuple(
        ConfigIssue(file, _locate(root, loc), format_path(loc), message)
        for loc, message in lint(config)
    )
    return LoadedConfig(config, warnings)


def load_config(text: str, file: str = "config.yaml") -> Config:
    """Like check_config, without the warnings."""
    return check_config(text, file).config


def check_config_file(path: str | Path | None) -> LoadedConfig:
    """Read and check a config file; None (no file configured) gives the built-in default.

    A file that cannot be read is a ConfigError too, so callers report one kind of failure.
    """
    if path is None:
        return LoadedConfig(default_config())
    file = Path(path)
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([ConfigIssue(str(file), 0, "", f"cannot read: {reason}")]) from None
    return check_config(text, str(file))


def load_config_file(path: str | Path | None) -> Config:
    return check_config_file(path).config

"""Configs: YAML deltas over a base (``base:``), and one parser for every command (the one ``fit`` uses).

A config may start with ``base: <path>`` (relative to the config's own directory); it then holds only what
differs from that base. ``--config delta.yaml`` becomes ``--config base.yaml --config <delta without base:>``,
which jsonargparse merges in order (a later ``class_path`` replaces an earlier one and its ``init_args``), so a
delta means exactly what the same keys given as a second ``--config`` mean.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from jsonargparse.typing import import_object

from w2s.errors import W2SError


def read_yaml(path: Path) -> dict:
    """A config file as a dict, or one clear error."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as e:
        raise W2SError(f"cannot read config {path} ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise W2SError(f"config {path} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise W2SError(f"config {path} must be a mapping of keys (it is a {type(data).__name__})")
    return data


def config_args(path: Path, body: dict | None = None, seen: tuple[Path, ...] = ()) -> list[str]:
    """``--config`` arguments equivalent to the config at ``path`` (``body``: its contents, if already read and
    edited): its chain of bases first, then its own keys."""
    path, edited = Path(path), body is not None
    body = dict(read_yaml(path) if body is None else body)
    base = body.pop("base", None)
    if base is None and not edited:
        return ["--config", str(path)]
    own = ["--config", yaml.safe_dump(body, sort_keys=False)] if body else []
    if base is None:
        return own
    base_path = (path.parent / str(base)).resolve()
    if base_path in seen:
        raise W2SError(f"config {path} has a cycle of base: files ({base_path})")
    if not base_path.is_file():
        raise W2SError(f"config {path}: its base {base} ({base_path}) does not exist")
    return config_args(base_path, seen=(*seen, base_path)) + own


def expand_configs(argv: list[str]) -> list[str]:
    """``argv`` with every ``--config FILE`` that names a ``base:`` replaced by its chain of ``--config``s."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" and i + 1 < len(argv) or arg.startswith("--config="):
            value = argv[i + 1] if arg == "--config" else arg.split("=", 1)[1]
            is_file = "\n" not in value and Path(value).is_file()
            out += config_args(Path(value)) if is_file and "base" in read_yaml(Path(value)) else ["--config", value]
            i += 2 if arg == "--config" else 1
        else:
            out.append(arg)
            i += 1
    return out


def resolve_config(args: list[str]) -> dict[str, Any]:
    """The ``fit`` config that ``args`` (``--config ...`` and overrides) describe, resolved by the parser ``fit``
    itself uses (bases, overrides, defaults, class paths), as a plain dict; nothing is instantiated or loaded."""
    from w2s.cli import parse_fit_config

    return parse_fit_config(expand_configs(args))


def instantiate(node: Namespace | dict) -> Any:
    """The object a resolved ``class_path`` / ``init_args`` node describes (a task, teacher or trust function:
    their constructors only store and check their arguments)."""
    node = node.as_dict() if isinstance(node, Namespace) else node
    return import_object(node["class_path"])(**(node.get("init_args") or {}))

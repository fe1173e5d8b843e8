"""One cache root for every artifact, content-addressed keys, and atomic directory writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

MANIFEST = "manifest.json"


def cache_root() -> Path:
    """``$W2S_CACHE`` or ``~/.cache/w2s``: the single root for the toy world and teacher passes."""
    return Path(os.environ.get("W2S_CACHE", Path.home() / ".cache" / "w2s")).expanduser()


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-serialisable object, independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def is_complete(path: Path) -> bool:
    """A cache directory is complete only once its manifest exists (it is written last)."""
    return (path / MANIFEST).is_file()


def read_manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST).read_text())


@contextmanager
def atomic_dir(target: Path, manifest: dict) -> Iterator[Path]:
    """Yield a temporary directory; on success write ``manifest.json`` and rename it to ``target``.

    A crash leaves only a ``.tmp-*`` sibling that the next run ignores, never a half-written ``target``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        yield tmp
        atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))
        if is_complete(target):  # a concurrent writer (e.g. a parallel compare run) finished the same entry first
            return
        if target.exists():  # an incomplete leftover (no manifest): replace it
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary file path beside ``path``; on success rename it to ``path`` (a crash leaves no half-written
    ``path``, only a ``.<name>.*`` sibling)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def cached_json(kind: str, key: Any, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """``compute()``'s JSON value, stored once under ``<cache root>/<kind>/<hash of key>.json`` and read back on
    the next call with the same key; also whether it came from the cache. A corrupt entry is recomputed."""
    path = cache_root() / kind / f"{stable_hash(key)}.json"
    if path.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return json.loads(path.read_text())["value"], True
    value = json.loads(json.dumps(compute()))  # as a cache hit returns it (tuples become lists)
    atomic_write_text(path, json.dumps({"key": key, "value": value}, default=str))
    return value, False

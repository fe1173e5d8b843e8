"""Hub access, checked before a run writes anything: every hub model and dataset it names must be cached or
reachable, else one line says which and how to point at a local copy (instead of minutes of retries)."""

from __future__ import annotations

import os
from pathlib import Path

from w2s.errors import W2SError
from w2s.models import HUB_ID, has_scheme


def is_hub_id(name: object) -> bool:
    """A name that would be fetched from the hub: ``org/name``, not a toy model or an existing directory."""
    return (isinstance(name, str) and bool(HUB_ID.match(name)) and not has_scheme(name)
            and not Path(name).expanduser().exists())


def is_cached(kind: str, repo_id: str) -> bool:
    """Whether a hub model or dataset is in the local caches (``HF_HOME``), so a run can go without the hub."""
    from huggingface_hub import constants, try_to_load_from_cache

    if kind == "model":
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    import datasets

    if isinstance(try_to_load_from_cache(repo_id, "README.md", repo_type="dataset"), str):
        return True
    prepared = Path(datasets.config.HF_DATASETS_CACHE) / repo_id.replace("/", "___")  # load_dataset's own cache
    return prepared.is_dir() or Path(constants.HF_HUB_CACHE, f"datasets--{repo_id.replace('/', '--')}").is_dir()


def hub_unreachable() -> str | None:
    """Why the hub cannot be used (offline mode, or a failed 3-second probe); ``None`` when it answers."""
    from huggingface_hub import constants, get_session

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=3)
    except Exception as e:  # noqa: BLE001  (any transport error means: not reachable from here)
        return f"{constants.ENDPOINT} is unreachable ({type(e).__name__})"
    return None


def go_offline() -> None:
    """Serve everything from the local caches from now on (no retries against an unreachable hub)."""
    import datasets
    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = True


def preflight(wanted: list[tuple[str, str, str]]) -> None:
    """``wanted``: (kind ``model``/``dataset``, hub id, the config key that names it). Raise one W2SError naming
    every id that is neither cached nor reachable; go offline when all are cached and the hub is not there."""
    wanted = [w for w in wanted if is_hub_id(w[1])]
    if not wanted:
        return
    missing = [w for w in wanted if not is_cached(w[0], w[1])]
    reason = hub_unreachable()
    if reason is None:
        return
    if not missing:
        go_offline()
        return
    from huggingface_hub import constants

    names = "; ".join(f"{kind} '{repo}' ({key})" for kind, repo, key in missing)
    raise W2SError(
        f"{names}: not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and {reason}. On a connected "
        "machine run 'huggingface-cli download <id>' (add '--repo-type dataset' for datasets) with the same HF_HOME "
        "and run with HF_HUB_OFFLINE=1, or set the named key to a local copy: a save_pretrained directory for a "
        "model, task.init_args.data_dir (holding <org>/<name> downloads) for datasets")

"""Where a remote client may make the service write and read files.

A client of the service names paths on the *service's* machine. Outputs go under one outputs root:
`work_dir` is a path relative to it, and absolute paths or `..` (or symlinks) that leave it are refused.
Paths the run reads (a prompt file, a local dataset, a run to resume) must lie inside the outputs root or
one of the data roots the operator allowed, so a client cannot have the service read, say, /etc/passwd
and send its lines as prompts to a URL of the client's choosing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath
from typing import Any, TypeVar

from ..config import CapacityConfig, EvalConfig, PerfConfig
from ..errors import ConfigError

STATE_DIR = ".evalsvc"
"""The service's own files (job database, lock) under the outputs root; runs may not write there."""

C = TypeVar("C", PerfConfig, EvalConfig)


class PathPolicy:
    """Resolves and checks client-supplied paths against the outputs root and the allowed data roots.

    Args:
        outputs_root: every run's `work_dir` resolves inside it (created if missing).
        data_roots: extra directories runs may read datasets and tokenizers from.
        dataset_dir: the eval `dataset_dir` of requests that do not name one: where this machine keeps its
            local benchmark copies (so an offline service runs requests written for one with hub access).
            It is a data root too.
    """

    def __init__(self, outputs_root: str | os.PathLike[str], data_roots: tuple[str | os.PathLike[str], ...] = (),
                 dataset_dir: str | os.PathLike[str] | None = None):
        self.outputs_root = Path(outputs_root).expanduser().resolve()
        self.dataset_dir = Path(dataset_dir).expanduser().resolve() if dataset_dir is not None else None
        roots = [Path(p).expanduser().resolve() for p in data_roots]
        if self.dataset_dir is not None:
            roots.append(self.dataset_dir)
        self.data_roots = tuple(roots)

    @property
    def state_dir(self) -> Path:
        return self.outputs_root / STATE_DIR

    def work_dir(self, value: Any, field: str = "work_dir") -> str:
        """The absolute directory for a client's `work_dir` (None: the outputs root itself).

        Raises:
            ConfigError: the value is absolute, escapes the outputs root, or is not a usable path.
        """
        if value is None:
            return str(self.outputs_root)
        resolved = self._resolve_relative(field, value, self.outputs_root)
        if not _inside(resolved, self.outputs_root):
            raise ConfigError(field, f"{value!r} resolves outside the service's outputs root; "
                              "give a path relative to it without '..'")
        if any(_inside(resolved, private) for private in (self.state_dir, self.state_dir.resolve())):
            raise ConfigError(field, f"{value!r} is inside the service's private {STATE_DIR} directory")
        return str(resolved)

    def read_path(self, field: str, value: Any, *, outputs_only: bool = False) -> str:
        """The absolute form of a path a run reads, if it lies inside an allowed root.

        A relative path is taken relative to the outputs root. Absolute paths must lie inside the outputs
        root or a data root (only the outputs root when `outputs_only`, e.g. a run to resume).

        Raises:
            ConfigError: the path is outside every allowed root, or inside the service's private state dir.
        """
        text = _as_path_text(field, value)
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # "~someone" for a user this machine does not know
            raise ConfigError(field, f"{value!r} names the home directory of an unknown user") from None
        resolved = _resolve(field, path if path.is_absolute() else self.outputs_root / path)
        roots = (self.outputs_root,) if outputs_only else (self.outputs_root, *self.data_roots)
        if not any(_inside(resolved, root) for root in roots):
            where = "the service's outputs root" if outputs_only else \
                "the service's outputs root or its allowed data roots (evalsvc service --data-root)"
            raise ConfigError(field, f"{value!r} is outside {where}")
        # The job database and logs hold other clients' jobs: no run may send them anywhere as prompts.
        if any(_inside(resolved, private) for private in (self.state_dir, self.state_dir.resolve())):
            raise ConfigError(field, f"{value!r} is inside the service's private {STATE_DIR} directory")
        return str(resolved)

    def config_from_body(self, kind: str, body: Any) -> PerfConfig | EvalConfig:
        """Validate a client's JSON body into the config for a `kind` ("perf" or "eval") run, paths confined.

        Raises:
            ConfigError: unknown or missing fields, wrong types, invalid values, paths outside the roots.
        """
        if kind == "perf":
            return self.confine(PerfConfig.from_dict(body), work_dir_given="work_dir" in body)
        if kind == "capacity":  # a CapacityConfig is a PerfConfig: confined the same way
            return self.confine(CapacityConfig.from_dict(body), work_dir_given="work_dir" in body)
        if kind == "eval":
            if self.dataset_dir is not None and isinstance(body, dict) and body.get("dataset_dir") is None:
                body = {**body, "dataset_dir": str(self.dataset_dir)}
            return self.confine(EvalConfig.from_dict(body), work_dir_given="work_dir" in body)
        raise ConfigError("kind", f"must be eval, perf or capacity, got {kind!r}")

    def confine(self, config: C, *, work_dir_given: bool = True) -> C:
        """A copy of `config` whose paths are absolute and checked; `work_dir` is placed under the outputs root.

        Args:
            config: a validated PerfConfig or EvalConfig built from a client's body.
            work_dir_given: False when the client left `work_dir` out: the run then writes straight
                under the outputs root instead of the config's default ("outputs").

        Raises:
            ConfigError: a path is outside what the service allows.
        """
        changes: dict[str, Any] = {"work_dir": self.work_dir(config.work_dir if work_dir_given else None)}
        if isinstance(config, PerfConfig):
            for name in ("dataset_path", "tokenizer_path"):
                value = getattr(config, name)
                if value is not None:
                    changes[name] = self.read_path(name, value)
        else:
            if config.dataset_dir is not None:
                changes["dataset_dir"] = self.read_path("dataset_dir", config.dataset_dir)
            if config.use_cache is not None:
                changes["use_cache"] = self.read_path("use_cache", config.use_cache, outputs_only=True)
            changes["dataset_args"] = self._dataset_args(config.dataset_args)
        return config.replace(**changes)

    def _dataset_args(self, dataset_args: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, args in dataset_args.items():
            args = dict(args)
            if args.get("local_path") is not None:
                args["local_path"] = self.read_path(f"dataset_args.{name}.local_path", args["local_path"])
            for key in ("dataset_id", "hf_dataset_id"):
                if args.get(key) is not None:
                    args[key] = self.dataset_id(f"dataset_args.{name}.{key}", args[key])
            for key in ("dataset_revision", "hf_dataset_revision"):
                if key in args:
                    args[key] = self.revision(f"dataset_args.{name}.{key}", args[key])
            out[name] = args
        return out

    def dataset_id(self, field: str, value: str) -> str:
        """A hub dataset id as given, or otherwise the confined absolute path of an existing local copy.

        A hub id is accepted only in the hub's own form: `name` or `owner/name`, each segment starting with
        a letter or digit and made of letters, digits, '.', '_' and '-' (no scheme, no empty segment, no
        '..', no leading '/'). evalscope loads a `dataset_id` from disk whenever `os.path.exists` holds
        for it (relative to the worker's cwd, the outputs root), HF does the same for an `hf_dataset_id`,
        and offline both join the id onto their cache root, where '//' or '..' would make it any path.
        So every other value is a path: it must exist inside the outputs root or a data root and is
        replaced by its absolute path; a hub-form id that exists under the outputs root is that path too.

        Raises:
            ConfigError: the value is neither a hub id nor an existing path inside the allowed roots.
        """
        text = _as_path_text(field, value)
        if is_hub_id(text) and not os.path.lexists(self.outputs_root / text):
            return value
        resolved = self.read_path(field, text)
        if not os.path.exists(resolved):
            raise ConfigError(field, f"{value!r} is not a hub id ('owner/name': letters, digits, '.', '_', '-') "
                              "and no such path exists inside the service's outputs root or data roots")
        return resolved

    def revision(self, field: str, value: Any) -> Any:
        """A dataset revision (a branch, tag or commit; hub libraries join it into cache paths).

        Raises:
            ConfigError: the revision is not a plain ref (no '..', empty or leading-'/' segments).
        """
        if value is None:
            return value
        if not isinstance(value, str) or not _REVISION.fullmatch(value) or ".." in value.split("/"):
            raise ConfigError(field, f"must be a branch, tag or commit ('master', 'v1.0', 'refs/pr/1'), "
                              f"got {str(value)[:80]!r}")
        return value

    def removable(self, path: str | os.PathLike[str] | None) -> Path | None:
        """`path` resolved, if the service may delete it: strictly inside the outputs root, outside its
        private state directory; else None."""
        if not path:
            return None
        try:
            resolved = Path(path).resolve()
        except (OSError, ValueError):
            return None
        if resolved == self.outputs_root or not _inside(resolved, self.outputs_root):
            return None
        if any(_inside(resolved, private) or _inside(private, resolved)
               for private in (self.state_dir, self.state_dir.resolve())):
            return None
        return resolved

    def job_file(self, output_dir: str | None, name: str) -> Path | None:
        """A file a job wrote into its output directory (e.g. "report.html"), if that directory lies inside
        the outputs root and the file, symlinks resolved, lies inside it too; else None."""
        run_dir = self.removable(output_dir)
        if run_dir is None:
            return None
        try:
            path = (run_dir / name).resolve()
        except (OSError, ValueError):
            return None
        return path if _inside(path, run_dir) and path.is_file() else None

    def _resolve_relative(self, field: str, value: Any, root: Path) -> Path:
        text = _as_path_text(field, value)
        if text.startswith("~") or PurePath(text).is_absolute():
            raise ConfigError(field, f"must be a path relative to the service's outputs root, got {value!r}")
        return _resolve(field, root / text)


_HUB_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_HUB_ID = re.compile(rf"{_HUB_SEGMENT}(?:/{_HUB_SEGMENT})?")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,99}){0,3}")


def is_hub_id(text: str) -> bool:
    """Whether `text` has a hub dataset id's own form: `name` or `owner/name` in a conservative alphabet."""
    return bool(_HUB_ID.fullmatch(text)) and ".." not in text


def _as_path_text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, f"must be a non-empty path, got {value!r}")
    if "\x00" in value:
        raise ConfigError(field, "must not contain NUL characters")
    return value


def _resolve(field: str, path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, ValueError) as exc:  # an unencodable name, a symlink loop, ...
        raise ConfigError(field, f"is not a usable path ({exc})") from None


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents

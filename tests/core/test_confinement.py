"""The service's confinement of dataset ids and names that evalscope resolves onto the filesystem (issue 9.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsvc.core.config import EvalConfig
from evalsvc.core.errors import ConfigError
from evalsvc.core.jobs import PathPolicy

BASE = {"model": "m", "api_url": "http://127.0.0.1:9/v1", "datasets": ["gsm8k"]}


def _confine(policy: PathPolicy, args: dict[str, object]) -> dict[str, object]:
    config = policy.config_from_body("eval", {**BASE, "dataset_args": {"gsm8k": args}})
    assert isinstance(config, EvalConfig)
    return config.dataset_args["gsm8k"]


@pytest.mark.parametrize("key", ["dataset_id", "hf_dataset_id"])
def test_ids_that_are_not_hub_ids_are_paths_and_confined(tmp_path: Path, key: str) -> None:
    # evalscope's offline snapshot lookup joins the id onto its cache root; '//' makes it absolute, so
    # these read /abs/dir (any readable folder in a loadable layout) and send its rows as prompts.
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "test.jsonl").write_text('{"question": "private"}\n')
    policy = PathPolicy(tmp_path / "out")
    for bad in (f"a/{secret}", f"a//{str(secret).lstrip('/')}", f"file://{secret}", f"file:{secret}",
                f"modelscope//{secret}", f"modelscope///{str(secret).lstrip('/')}", "org//name", "org/",
                "/org/name", "org/../name", "org/name/extra", "http://example.org/org/name", "org\\name",
                "org/.hidden", "-org/name"):
        with pytest.raises(ConfigError) as info:
            _confine(policy, {key: bad})
        assert info.value.field == f"dataset_args.gsm8k.{key}", bad
    with pytest.raises(ConfigError):
        _confine(policy, {key: 42})
    # the hub's own form stays a hub id
    for good in ("org/name", "AI-ModelScope/gsm8k", "openai/gsm8k", "gsm8k", "org.x/name_1.v2"):
        assert _confine(policy, {key: good})[key] == good
    # a folder that exists inside the outputs root or a data root: its absolute path
    (policy.outputs_root / "copies" / "gsm8k").mkdir(parents=True)
    assert _confine(policy, {key: "copies/gsm8k"})[key] == str(policy.outputs_root / "copies" / "gsm8k")
    allowed = PathPolicy(tmp_path / "out", data_roots=(str(tmp_path),))
    assert _confine(allowed, {key: str(secret)})[key] == str(secret)


def test_revisions_subsets_and_splits_cannot_name_paths(tmp_path: Path) -> None:
    # evalscope finds a local copy's files as <folder>/<subset>_<split>.jsonl and hub libraries put
    # revisions into cache paths: none of these may climb out with '/' or '..'.
    policy = PathPolicy(tmp_path / "out")
    cases = [
        ({"dataset_revision": "../../x"}, "dataset_args.gsm8k.dataset_revision"),
        ({"hf_dataset_revision": "/abs"}, "dataset_args.gsm8k.hf_dataset_revision"),
        ({"subset_list": ["../../../etc/passwd"]}, "dataset_args.gsm8k.subset_list"),
        ({"subset_list": ["/etc/x"]}, "dataset_args.gsm8k.subset_list"),
        ({"eval_split": "../x"}, "dataset_args.gsm8k.eval_split"),
        ({"train_split": "a/b"}, "dataset_args.gsm8k.train_split"),
        ({"default_subset": ".."}, "dataset_args.gsm8k.default_subset"),
    ]
    for args, field in cases:
        with pytest.raises(ConfigError) as info:
            _confine(policy, args)
        assert info.value.field == field, args
    ok = _confine(policy, {"dataset_revision": "master", "hf_dataset_revision": "refs/pr/1", "eval_split": "test",
                           "subset_list": ["main"]})
    assert ok["dataset_revision"] == "master" and ok["hf_dataset_revision"] == "refs/pr/1"

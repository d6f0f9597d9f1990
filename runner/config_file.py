"""YAML configuration files, as mlagents-learn takes them: `launch.py configs/drone.yaml`.

A file holds one section per component (`run`, `env`, `noise`, `replay`, `learner`) with
the same field names as the flags (underscores); flags given after it override it. A key
that is not a field is an error naming the key, with the nearest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import os

import yaml

from learner.files import write_atomic


def load_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as err:
        raise ValueError(f"cannot read config file {path} ({err.strerror}): check the "
                         "path") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold sections (run:, env:, learner:, ...)")
    return data


def apply(cfg, data: dict, source: str):
    """`cfg` (a Config) with the values of `data` ({section: {field: value}}) applied."""
    sections = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for section, values in data.items():
        if section not in sections:
            raise ValueError(unknown(source, section, sections))
        part = getattr(cfg, section)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ValueError(f"{source}: section {section!r} must map field names to values")
        names = {f.name for f in dataclasses.fields(part)}
        for key in values:
            if key not in names:
                raise ValueError(unknown(source, f"{section}.{key}", names, key))
        changes[section] = dataclasses.replace(part, **values)
    return dataclasses.replace(cfg, **changes)


def unknown(source: str, key: str, valid, bare: str | None = None) -> str:
    close = difflib.get_close_matches(bare or key, sorted(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{source}: unknown key {key!r}{hint}; fix or remove it"


def as_yaml(cfg) -> str:
    """The effective configuration, in the same format the files use."""
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)


def save_config(run_dir: str, cfg) -> None:
    """The effective configuration as <run_dir>/configuration.yaml (reloaded on --resume)."""
    write_atomic(os.path.join(run_dir, "configuration.yaml"), as_yaml(cfg))

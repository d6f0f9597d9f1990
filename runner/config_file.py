"""YAML configuration files, as mlagents-learn takes them: `launch.py configs/drone.yaml`.

A file holds one section per component (`run`, `env`, `noise`, `replay`, `learner`) with
the same field names as the flags (underscores); flags given after it override it. A key
that is not a field is an error naming the key, with the nearest valid one; a value of the
wrong type is an error naming the key and the type (flags get the same from tyro).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing

import yaml

from learner.files import write_atomic


class _UniqueKeys(yaml.SafeLoader):
    """safe_load, but a key given twice in one mapping is an error: YAML keeps the last
    silently, so an edit lower in a long file would quietly undo one above it."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, typing.Hashable):  # `[a, b]: 1`, `{run: ...}: 1`
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key on line {key_node.start_mark.line + 1} is a "
                    f"{type(key).__name__}, not a name: write `name: value`",
                    key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (line {key_node.start_mark.line + 1}"
                    "): keep one", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_UniqueKeys)
    except OSError as err:
        raise ValueError(f"cannot read config file {path} ({err.strerror}): check the "
                         "path") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML ({str(err).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text (UTF-8) YAML file: check the path") from None
    if data is None:  # empty, or only comments: no change
        return {}
    if not isinstance(data, dict):  # a list, a number, false: not what was meant
        raise ValueError(f"{path} must hold sections (run:, env:, learner:, ...)")
    return data


def apply(cfg, data: dict, source: str):
    """`cfg` (a Config) with the values of `data` ({section: {field: value}}) applied."""
    sections = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    mlagents = [key for key in data if key in MLAGENTS_SECTIONS]
    if mlagents and not set(data) & sections:
        raise ValueError(f"{source} is an mlagents-learn trainer config (its {mlagents[0]!r} "
                         "section), which drone-ddpg does not read: its config files hold "
                         "run:, env:, noise:, replay:, learner: with the flags' names (e.g. "
                         "hyperparameters.batch_size -> replay.batch_size, "
                         "network_settings.hidden_units -> learner.hidden_size, max_steps "
                         "-> run.train_steps); start from configs/drone.yaml")
    for section, values in data.items():
        if section not in sections:
            raise ValueError(unknown(source, section, sections))
        part = getattr(cfg, section)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ValueError(f"{source}: section {section!r} must map field names to values")
        hints = typing.get_type_hints(type(part))  # Annotated[...] stripped
        names = {f.name for f in dataclasses.fields(part)}
        for key in values:
            if key not in names:
                raise ValueError(unknown(source, f"{section}.{key}", names, key))
        typed = {key: typed_value(value, hints[key], f"{source}: {section}.{key}")
                 for key, value in values.items()}
        try:
            changes[section] = dataclasses.replace(part, **typed)
        except ValueError as err:  # the section's own range checks, which name the flags
            keys = [f"{section}.{k}" for k in typed if f"--{k.replace('_', '-')}" in str(err)]
            raise ValueError(f"{source}: {', '.join(keys) or section}: {err}") from None
    return dataclasses.replace(cfg, **changes)


# The top-level sections of an mlagents-learn trainer config (config.yaml).
MLAGENTS_SECTIONS = ("behaviors", "default_settings", "env_settings", "engine_settings",
                     "checkpoint_settings", "torch_settings", "environment_parameters")


def typed_value(value, hint, where: str):
    """`value` checked against the field's type (dataclasses.replace checks nothing);
    ValueError naming the key and the type wanted."""
    ok, value = _check(value, hint)
    if not ok:
        raise ValueError(f"{where} must be {describe(hint)}, got {value!r}; fix the file")
    return value


def _check(value, hint) -> tuple[bool, object]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return value in args and type(value) in {type(a) for a in args}, value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return type(None) in args, value
        return _check(value, next(a for a in args if a is not type(None)))
    if origin is list:
        return isinstance(value, list) and all(_check(v, args[0])[0] for v in value), value
    if origin is dict:
        if not isinstance(value, dict):
            return False, value
        pairs = [(_check(k, args[0]), _check(v, args[1])) for k, v in value.items()]
        ok = all(k_ok and v_ok for (k_ok, _), (v_ok, _) in pairs)
        return ok, {k: v for (_, k), (_, v) in pairs} if ok else value
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 (no dot in the mantissa) as a string
            return True, float(value)
        except ValueError:
            return False, value
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    return isinstance(value, hint) if hint in (bool, str) else True, value


def describe(hint) -> str:
    """How a field's type reads in an error message."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return describe(next(a for a in args if a is not type(None))) + " or null"
    if origin is list:
        return f"a list of {describe(args[0])}s".replace("a list of a ", "a list of ")
    if origin is dict:
        return f"a mapping of {describe(args[0])}s to {describe(args[1])}s".replace(" a ", " ")
    return {bool: "true or false", int: "an integer", float: "a number",
            str: "a string"}.get(hint, str(hint))


def unknown(source: str, key: str, valid, bare: str | None = None) -> str:
    # A key YAML read as a number, a boolean or null is unknown too; difflib takes strings.
    close = difflib.get_close_matches(str(key if bare is None else bare), sorted(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{source}: unknown key {key!r}{hint}; fix or remove it"


# How one session starts, not a setting of the run: never saved, refused in config files.
RUN_CONTROL = ("resume", "inference", "force")


def save_config(run_dir: str, cfg) -> None:
    """The effective configuration as <run_dir>/configuration.yaml (reloaded on --resume),
    without --resume/--force/--inference: how this session started is not a setting, and
    the file is often reused as a template for the next run."""
    data = dataclasses.asdict(cfg)
    for key in RUN_CONTROL:
        data["run"].pop(key, None)
    write_atomic(os.path.join(run_dir, "configuration.yaml"),
                 yaml.safe_dump(data, sort_keys=False))

"""The command line: `launch.py [CONFIG.yaml] [--preset NAME] [flags]` -> a `Config`.

Sources, later ones winning: the preset (or the defaults), on --resume/--inference the
run's saved configuration.yaml instead, then the config file, then the flags. tyro builds
`--help` from the config dataclasses' field docs; its errors become one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import os
import re
import sys

import tyro

from runner.config import PRESETS, Config
from runner.config_file import apply as config_file_apply
from runner.config_file import load_yaml


def parse(argv: list[str]) -> Config:
    """`[CONFIG.yaml] [--preset NAME] [flags]` -> Config.

    Later sources win: the preset (or the defaults), on --resume/--inference the run's own
    saved configuration.yaml instead, then the config file, then the flags."""
    rest, env_args = split_env_args(argv)
    config_file = rest.pop(0) if rest and not rest[0].startswith("-") else None
    file_data = load_yaml(config_file) if config_file else None
    base = PRESETS[pop_preset(rest)]()
    cfg = cli(with_file(base, file_data, config_file), rest)
    saved = os.path.join(cfg.run.results_dir, cfg.run.run_id, "configuration.yaml")
    if (cfg.run.resume or cfg.run.inference) and os.path.exists(saved):
        data = load_yaml(saved)
        for key in RUN_CONTROL:  # how this session was started is the flags' business
            data.get("run", {}).pop(key, None)
        base = config_file_apply(Config(), data, saved)
        cfg = cli(with_file(base, file_data, config_file), rest)
    if env_args is not None:
        cfg.env = dataclasses.replace(cfg.env, env_args=env_args)
    return cfg


def with_file(base: Config, data: dict | None, path: str | None) -> Config:
    """`base` with a config file's values over it (none given: `base` itself)."""
    return base if data is None else config_file_apply(base, data, path)


def split_env_args(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """(our arguments, the env's): as with mlagents-learn, everything after --env-args goes
    to the env executable, flags included (Unity's own start with '-')."""
    if "--env-args" not in argv:
        return list(argv), None
    i = argv.index("--env-args")
    return list(argv[:i]), list(argv[i + 1:])


RUN_CONTROL = ("resume", "inference", "force")


def pop_preset(rest: list[str]) -> str:
    """Remove `--preset NAME` from `rest`; returns the name ('default' when absent)."""
    preset = "default"
    for i, arg in enumerate(rest):
        if arg == "--preset" and i + 1 < len(rest):
            preset = rest[i + 1]
            del rest[i : i + 2]
            break
        if arg.startswith("--preset="):
            preset = arg.split("=", 1)[1]
            del rest[i]
            break
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return preset


def cli(base: Config, args: list[str]) -> Config:
    """tyro over `base`, its errors reduced to one line (--help is shown as it is)."""
    errors, output = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(output):
            return tyro.cli(Config, default=base, args=args, config=(tyro.conf.OmitArgPrefixes,),
                            description=DESCRIPTION)
    except SystemExit as done:
        if not done.code:  # --help: show it
            sys.stdout.write(output.getvalue())
            raise
        raise ValueError(one_line_cli_error(errors.getvalue() + output.getvalue())) from None


DESCRIPTION = (f"{Config.__doc__}\n\nlaunch.py [CONFIG.yaml] [--preset NAME] [flags]: a config "
               f"file (configs/*.yaml) or a preset ({', '.join(PRESETS)}) sets the starting "
               "values; flags override them.")


def flag_names() -> list[str]:
    """Every --flag the CLI accepts: field names, their --no- forms, and the aliases."""
    names = ["--help", "--preset", "--num-envs", "--torch-device"]
    for part in dataclasses.fields(Config):
        for f in dataclasses.fields(part.default_factory()):
            flag = f.name.replace("_", "-")
            names += [f"--{flag}", f"--no-{flag}"] if f.type in (bool, "bool") else [f"--{flag}"]
    return names


def one_line_cli_error(text: str) -> str:
    """tyro's boxed message as one line, with a suggestion for a mistyped flag."""
    # Box borders come as Unicode or ASCII (|, +, -) depending on the terminal.
    lines = [re.sub(r"[│╭╮╰╯─]+", " ", line).strip().strip("|+").strip()
             for line in text.splitlines()]
    lines = [line for line in lines if re.search(r"[^\s+|=-]", line)
             and "For full helptext" not in line]
    # The first line is the box title; the message below it may wrap over several lines.
    message = " ".join(lines[1:]) or (lines[0] if lines else "invalid arguments")
    unknown = re.findall(r"--[\w-]+", message) if "Unrecognized" in message else []
    if unknown:
        # --lr -> --actor-lr, --critic-lr: a flag that ends with the word beats a near spelling.
        close = [n for n in flag_names() if n.endswith("-" + unknown[0][2:])
                 and not n.startswith("--no-")] or difflib.get_close_matches(
                     unknown[0], flag_names(), n=1)
        hint = f" (did you mean {' or '.join(close[:3])}?)" if close else ""
        return f"unknown flag {unknown[0]}{hint}; see --help for every flag"
    return f"{message[0].lower()}{message[1:]}; see --help"

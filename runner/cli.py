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
from runner.config_file import RUN_CONTROL
from runner.config_file import apply as config_file_apply
from runner.config_file import load_yaml


def parse(argv: list[str]) -> Config:
    """`[CONFIG.yaml] [--preset NAME] [flags]` -> Config.

    Later sources win: the preset (or the defaults), on --resume/--inference the run's own
    saved configuration.yaml instead, then the config file, then the flags."""
    rest, env_args = split_env_args(argv)
    config_file = rest.pop(0) if rest and not rest[0].startswith("-") else None
    file_data = load_yaml(config_file) if config_file else None
    refuse_run_control(file_data, config_file)
    preset = pop_preset(rest)
    cfg = flags(with_file(PRESETS[preset or "default"](), file_data, config_file), rest)
    if cfg.run.resume or cfg.run.inference:
        saved = saved_configuration(cfg, preset, config_file)
        if saved is not None:
            data = load_yaml(saved)
            run = data.get("run")
            for key in RUN_CONTROL if isinstance(run, dict) else ():  # how this session
                run.pop(key, None)  # was started is the flags' business (apply checks run)
            base = config_file_apply(Config(), data, saved)
            cfg = flags(with_file(base, file_data, config_file), rest)
            if cfg.run.initialize_from != base.run.initialize_from:
                raise ValueError("--initialize-from starts a new run; --resume and --inference "
                                 "continue this one from its own checkpoint: drop "
                                 "--initialize-from")
    if env_args is not None:
        cfg.env = dataclasses.replace(cfg.env, env_args=env_args)
    return cfg


def saved_configuration(cfg: Config, preset: str | None, config_file: str | None
                        ) -> str | None:
    """The configuration.yaml that --resume/--inference continues from (None: the run does
    not exist, which prepare_run_dir says); ValueError for what would be silently lost."""
    run_dir = os.path.join(cfg.run.results_dir, cfg.run.run_id)
    saved = os.path.join(run_dir, "configuration.yaml")
    if preset is not None:
        raise ValueError(f"--preset {preset} sets up a new run; --resume and --inference keep "
                         "the run's saved configuration: drop --preset and pass the flags "
                         "to change")
    if os.path.isfile(saved):
        return saved
    if config_file is None and os.path.isfile(os.path.join(run_dir, "checkpoints", "latest.pt")):
        flag = "--resume" if cfg.run.resume else "--inference"
        raise ValueError(f"run {cfg.run.run_id!r} has no configuration.yaml ({saved}), so "
                         "its settings are unknown: restore the file, or give the run's "
                         f"config file first (launch.py CONFIG.yaml {flag} ...)")
    return None


def refuse_run_control(data: dict | None, path: str | None) -> None:
    """--resume, --force and --inference say how one session starts: in a config file
    (say, a run's configuration.yaml reused as a template) they would silently continue,
    overwrite or only test every run made from it."""
    run = (data or {}).get("run")
    on = [key for key in RUN_CONTROL if isinstance(run, dict) and run.get(key)]
    if on:
        raise ValueError(f"{path}: run.{on[0]} is true in a config file; set it false (or "
                         f"remove it) and pass --{on[0]} on the command line when you mean it")


def flags(base: Config, rest: list[str]) -> Config:
    """`cli`, with a config file given after the flags said as such."""
    try:
        return cli(base, rest)
    except ValueError:
        late = [a for a in rest if a.endswith((".yaml", ".yml")) and os.path.isfile(a)]
        if late:
            raise ValueError(f"the config file {late[0]} must come first: launch.py "
                             f"{late[0]} [flags]") from None
        raise


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


def pop_preset(rest: list[str]) -> str | None:
    """Remove `--preset NAME` from `rest`; returns the name (None when absent)."""
    given = [i for i, arg in enumerate(rest) if arg == "--preset" or arg.startswith("--preset=")]
    if not given:
        return None
    if len(given) > 1:
        raise ValueError("--preset is given more than once: keep one")
    i = given[0]
    if rest[i] == "--preset":
        if i + 1 == len(rest) or rest[i + 1].startswith("-"):
            raise ValueError(f"--preset needs a name: one of {', '.join(PRESETS)}")
        preset = rest.pop(i + 1)
    else:
        preset = rest[i].split("=", 1)[1]
    del rest[i]
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
               "values; flags override them. launch.py plot --run-id ID: a run's learning "
               "curve as a PNG (launch.py plot --help).")


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
    lines = [line for line in lines if re.search(r"[^\s+|=-]", line)]
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
    message = tidy(f"{message[0].lower()}{message[1:]}")
    return f"{message}; see --help"


# tyro's wording -> ours: the flag first, what it takes, no help text pasted in.
_REWORDED = (
    (r"\s*For full helptext, (run|see) \S+(\s+\S+)*? --help", ""),  # a long path wraps
    (r"\s*Argument helptext:.*$", ""),
    (r"^error parsing (?!-)\w+: ", ""),  # a section's name ("run"), not a flag's
    (r"^error parsing (--[\w/-]+): invalid literal for int\(\) with base 10: (.*)$",
     r"\1 takes a whole number, not \2"),
    (r"^error parsing (--[\w/-]+): could not convert string to float: (.*)$",
     r"\1 takes a number, not \2"),
    (r"^error parsing (--[\w/-]+): ", r"\1: "),
    (r"^missing value for argument '(--[\w/-]+)'\. Expected .*$", r"\1 needs a value"),
    # The box wraps at the terminal's width (80 columns in a log): a wrap just before the
    # final "." leaves it alone on the last line, joined back with a space.
    (r"^invalid choice (.*) for argument '(--[\w/-]+)'\. Expected one of \((.*)\)\s*\.$",
     lambda m: f"{m[2]} {m[1]}: expected one of {m[3].replace(chr(39), '')}"),
)


def tidy(message: str) -> str:
    for pattern, replacement in _REWORDED:
        message = re.sub(pattern, replacement, message)
    return message

"""Regenerate (or, with --check, verify) docs/flags.md from `launch.py --help`."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = os.path.join(ROOT, "docs", "flags.md")
HEADER = """# Every flag

Generated from `launch.py --help` by `make flags-doc` (`tests/test_readme.py` fails when it
drifts). Flags keep mlagents-learn's names where one exists: `--env`, `--run-id`,
`--results-dir`, `--num-envs`, `--num-areas`, `--base-port`, `--time-scale`,
`--no-graphics`, `--resume`, `--force`, `--inference`, `--torch-device`, `--env-args`.
A config file (`launch.py configs/td3.yaml`) takes the main names with underscores
(`num_workers`, `device`; not the aliases `num_envs`, `torch_device`), one section per
part (`run:`, `env:`, `noise:`, `replay:`, `learner:`).

"""


def help_text() -> str:
    env = dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb")
    out = subprocess.run([sys.executable, "launch.py", "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    # The bundled env's default path depends on where the repo is: show it portably.
    out = out.replace(os.path.realpath(ROOT), "<repo>").replace(ROOT, "<repo>")
    return "\n".join(line.rstrip() for line in out.strip().splitlines())


def page() -> str:
    return f"{HEADER}```text\n{help_text()}\n```\n"


def main() -> int:
    if "--check" in sys.argv:
        current = open(PATH, encoding="utf-8").read() if os.path.exists(PATH) else ""
        if current != page():
            print("docs/flags.md is out of date: run `make flags-doc`")
            return 1
        return 0
    with open(PATH, "w", encoding="utf-8") as f:
        f.write(page())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Regenerate (or, with --check, verify) the README's flag list from `launch.py --help`."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START, END = "<!-- flags:start -->", "<!-- flags:end -->"


def help_text() -> str:
    env = dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb")
    out = subprocess.run([sys.executable, "launch.py", "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    # The bundled env's default path depends on where the repo is: show it portably.
    out = out.replace(os.path.realpath(ROOT), "<repo>").replace(ROOT, "<repo>")
    return "\n".join(line.rstrip() for line in out.strip().splitlines())


def block() -> str:
    return f"{START}\n```text\n{help_text()}\n```\n{END}"


def main() -> int:
    path = os.path.join(ROOT, "README.md")
    text = open(path, encoding="utf-8").read()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    current = pattern.search(text).group(0)
    if "--check" in sys.argv:
        if current != block():
            print("README.md's flag list is out of date: run `make readme-flags`")
            return 1
        return 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(pattern.sub(lambda _: block(), text))
    return 0


if __name__ == "__main__":
    sys.exit(main())

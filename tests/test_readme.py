"""The README opens with the two commands, and docs/flags.md is the real --help."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_opens_with_make_run_and_make_test():
    head = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()[:600]
    assert "make run" in head and "make test" in head


def test_flag_list_matches_help():
    done = subprocess.run([sys.executable, "tools/flags_doc.py", "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

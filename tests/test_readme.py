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


def test_the_run_folder_agrees_with_resume_on_the_train_window():
    """A resume restores the last 100 training episodes (docs/resume.md, EpisodeStats.
    restore), so the table's and summary.json's train means go on across it; the README's
    summary.json item still said that a resumed run starts a new window."""
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    resume = open(os.path.join(REPO, "docs", "resume.md"), encoding="utf-8").read()
    assert "the last 100 training episodes" in resume
    assert "starts a new window" not in readme

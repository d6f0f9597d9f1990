"""The start-up .pth that installs the protobuf fast path in every process of the venv."""

import os
import subprocess
import sys
import sysconfig
import textwrap

from envs import protobuf_compat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PURELIB = sysconfig.get_paths()["purelib"]  # the venv's, before a test patches it

# What a process of the venv sees at start-up: site processes the .pth files of a folder
# (here the test's own, so the venv's real .pth is not involved: -S skips site; the venv's
# packages, protobuf among them, go on sys.path without their .pth files).
PROBE = textwrap.dedent("""
    import site, sys
    sys.path.append(sys.argv[2])
    site.addsitedir(sys.argv[1])
    envs = sys.modules.get("envs")
    print(envs.__file__ if envs is not None else None)
    print(any(type(f).__name__ == "_DescriptorFinder" for f in sys.meta_path))
""")


def written_pth(tmp_path, monkeypatch) -> str:
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"purelib": str(site_dir)})
    path = protobuf_compat.install_pth()
    assert os.path.dirname(path) == str(site_dir)
    return str(site_dir)


def start_up(site_dir: str, cwd: str, pythonpath: str | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, "-S", "-c", PROBE, site_dir,
                          PURELIB], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.split()


def test_pth_installs_the_fast_path_at_start_up(tmp_path, monkeypatch):
    site_dir = written_pth(tmp_path, monkeypatch)
    module, finder = start_up(site_dir, cwd=REPO)
    assert os.path.realpath(module) == os.path.join(os.path.realpath(REPO), "envs",
                                                    "__init__.py")
    assert finder == "True"


def test_pth_leaves_a_users_own_envs_package_alone(tmp_path, monkeypatch):
    """A user's package named `envs` on PYTHONPATH (README: the error then says to rename
    it) is found before this project's at start-up: the .pth must neither run it nor leave
    it in sys.modules, where it hid this project's `envs` and launch.py died on
    `ImportError: cannot import name 'runs_in_process' from 'envs'`."""
    site_dir = written_pth(tmp_path, monkeypatch)
    user = tmp_path / "user"
    (user / "envs").mkdir(parents=True)
    (user / "envs" / "__init__.py").write_text("")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    module, finder = start_up(site_dir, cwd=str(elsewhere), pythonpath=str(user))
    assert module == "None"
    assert finder == "False"  # installed later, by launch.py's own `import envs`

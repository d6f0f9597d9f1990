"""Env executables this machine cannot run are refused before anything starts."""

import os
import platform

import pytest

from envs.executable import executable_problem


def elf(machine: int) -> bytes:
    """The first bytes of a 64-bit little-endian ELF executable for `machine`."""
    return b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44)


HOST_ELF = {"x86_64": 0x3E, "aarch64": 0xB7}.get(platform.machine())


@pytest.mark.parametrize("content, words", [
    (b"MZ\x90\x00" + bytes(60), "is a Windows build; give a Unity Linux build"),
    (b"\xcf\xfa\xed\xfe" + bytes(60), "is not a Linux executable; give a Unity Linux build"),
    (b"garbage\n", "is not a Linux executable"),
    (b"#!/nonexistent/bin/sh\nexit 0\n", "interpreter '/nonexistent/bin/sh' does not exist"),
    (elf(0xB7 if HOST_ELF == 0x3E else 0x3E), "is a Linux build for"),
])
def test_what_cannot_run_here_is_named(tmp_path, content, words):
    path = tmp_path / "Game.x86_64"
    path.write_bytes(content)
    problem = executable_problem(str(path))
    assert problem is not None and words in problem and "\n" not in problem


def test_what_can_run_here_passes(tmp_path):
    script = tmp_path / "Game.x86_64"
    script.write_bytes(b"#!/bin/sh\nexit 0\n")
    assert executable_problem(str(script)) is None
    if HOST_ELF is not None:
        script.write_bytes(elf(HOST_ELF))
        assert executable_problem(str(script)) is None


def test_launch_refuses_it_before_anything_starts(tmp_path):
    """Local mode gave a 40-line traceback ending in 'Exec format error'; Ray mode one line
    without a fix."""
    import launch
    from runner.cli import parse

    junk = tmp_path / "Junk.x86_64"
    junk.write_bytes(b"garbage\n")
    junk.chmod(0o755)
    problem = launch.env_problem(parse(["--env", str(tmp_path / "Junk")]))
    assert problem is not None and "is not a Linux executable" in problem


def test_long_and_windows_shebang_lines(tmp_path):
    """A 140-character #! line was cut at 128 bytes and refused; a #!/bin/sh\\r line (a
    script saved on Windows) passed the check and then failed to start."""
    script = tmp_path / "Game.x86_64"
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    (deep / "sh").symlink_to("/bin/sh")
    script.write_bytes(b"#!" + str(deep / "sh").encode() + b"\nexit 0\n")
    assert executable_problem(str(script)) is None
    script.write_bytes(b"#!/bin/sh\r\nexit 0\r\n")
    assert "Windows line endings" in executable_problem(str(script))


def test_a_cluster_build_for_another_cpu_is_left_to_the_nodes(tmp_path):
    path = tmp_path / "Game.x86_64"
    path.write_bytes(elf(0xB7 if HOST_ELF == 0x3E else 0x3E))
    assert executable_problem(str(path), other_machines=True) is None


@pytest.mark.parametrize("folder", ["ml.exercises", "build.app", "run[2]"])
def test_a_path_the_stock_client_mangles_is_refused_before_anything_starts(
        tmp_path, main_error, folder):
    """The stock client deletes '.app', '.exe', '.x86' anywhere in a path and globs the
    rest: such a build was refused only after start-up, as 'does not match any envs'."""
    (tmp_path / folder).mkdir()
    build = tmp_path / folder / "Game.x86_64"
    build.write_bytes(b"#!/bin/sh\nexit 0\n")
    build.chmod(0o755)
    line, _ = main_error("--env", str(tmp_path / folder / "Game"), "--mode", "local",
                         "--results-dir", str(tmp_path / "results"))
    assert f"cannot launch {str(build)!r}" in line and "move it to a folder" in line


def test_a_build_named_without_a_slash_is_the_one_in_the_working_directory(tmp_path,
                                                                          monkeypatch):
    """`--env mybuild.sh` passed the checks (relative to the working directory), then the
    stock client's subprocess looked the bare name up on PATH: FileNotFoundError."""
    from actors.config import EnvConfig
    from actors.env_start import open_env, read_spec
    from envs.drone import DRONE_EXECUTABLE
    from envs.executable import launch_problem

    launcher = tmp_path / "mybuild.sh"
    launcher.write_text(f'#!/bin/sh\nexec {DRONE_EXECUTABLE}.x86_64 "$@"\n')
    launcher.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert launch_problem("mybuild.sh", "./mybuild.sh", str(launcher)) is None
    env, _ = open_env(EnvConfig(env="mybuild.sh", base_port=6140), 0, 0, None)
    try:
        assert read_spec(env, "mybuild.sh")[1] == (9,)  # the Drone, started from the launcher
    finally:
        env.close()


def make_build_folder(tmp_path):
    """A Unity build's folder as Unity writes it: the executable and its _Data folder."""
    folder = tmp_path / "Build"
    (folder / "MyGame_Data").mkdir(parents=True)
    (folder / "MyGame.x86_64").write_bytes(b"#!/bin/sh\nexit 0\n")
    return folder


@pytest.mark.parametrize("given, words", [
    ("Build", "is a folder; give the build in it: --env {tmp}/Build/MyGame"),
    ("Build/", "is a folder; give the build in it: --env {tmp}/Build/MyGame"),
    ("Dir.x86_64", "'{tmp}/Dir.x86_64' is a folder; give the path of the Unity Linux"),
    ("Mac.app", "is a macOS build; give a Unity Linux build"),
    ("Mac", "'{tmp}/Mac.app' is a macOS build"),
    ("Win", "'{tmp}/Win.exe' is a Windows build"),
    ("Loop", "is a broken symlink or a symlink loop"),
])
def test_what_is_there_instead_of_a_build_is_named(tmp_path, given, words):
    """Each was 'no such env executable (looked for X.x86_64)' about a path that exists."""
    import launch
    from runner.cli import parse

    make_build_folder(tmp_path)
    (tmp_path / "Dir.x86_64").mkdir()
    (tmp_path / "Mac.app" / "Contents" / "MacOS").mkdir(parents=True)
    (tmp_path / "Win.exe").write_bytes(b"MZ\x90\x00" + bytes(60))
    (tmp_path / "Loop.x86_64").symlink_to(tmp_path / "Loop.x86_64")
    problem = launch.env_problem(parse(["--env", os.path.join(str(tmp_path), given)]))
    assert problem is not None and words.format(tmp=tmp_path) in problem
    assert "\n" not in problem and "no such env executable" not in problem


def test_nothing_at_all_is_still_no_such_executable(tmp_path):
    import launch
    from runner.cli import parse

    problem = launch.env_problem(parse(["--env", str(tmp_path / "Nope")]))
    assert "no such env executable" in problem

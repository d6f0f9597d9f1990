"""Can this machine run that env executable? Said before anything starts, in one line.

The stock client launches a build with subprocess: a Windows or macOS build, a build for
another CPU, or a script whose interpreter is missing fails there with a bare OSError
("Exec format error", or "No such file" about a file that exists).
"""

from __future__ import annotations

import os
import platform

# ELF e_machine values of the CPUs Unity builds Linux players for.
ELF_MACHINES = {0x3E: "x86_64", 0x03: "x86", 0xB7: "aarch64"}
HOST = {"x86_64": "x86_64", "amd64": "x86_64", "i686": "x86", "i386": "x86",
        "aarch64": "aarch64", "arm64": "aarch64"}


def executable_problem(path: str, other_machines: bool = False) -> str | None:
    """A one-line complaint about the executable at `path`, or None when it can run here.
    other_machines: it runs on a cluster's nodes, whose CPU may not be this machine's."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)  # Linux reads up to 256 bytes of a #! line
    except OSError as err:
        return f"--env {path!r} cannot be read ({err.strerror}); check the path"
    if head.startswith(b"#!"):
        line = head[2:].split(b"\n", 1)[0]
        if line.endswith(b"\r"):
            return (f"--env {path!r} is a script with Windows line endings (its #! line ends "
                    "in \\r); convert it, e.g. with dos2unix")
        words = line.split()
        interpreter = words[0].decode(errors="replace") if words else ""
        if not os.path.isfile(interpreter):
            return (f"--env {path!r} is a script whose interpreter {interpreter!r} does not "
                    "exist here; fix its first line (#!)")
        return None
    if not head.startswith(b"\x7fELF"):
        kind = "a Windows build" if head.startswith(b"MZ") else "not a Linux executable"
        return (f"--env {path!r} is {kind}; give a Unity Linux build (Build Settings: "
                "Linux, x86_64)")
    machine = ELF_MACHINES.get(int.from_bytes(head[18:20], "little"), "another CPU")
    host = HOST.get(platform.machine().lower())
    if host is not None and machine != host and not other_machines:
        return (f"--env {path!r} is a Linux build for {machine}, and this machine is {host}; "
                f"give a {host} build")
    return None


def launch_problem(env: str, file_name: str, path: str) -> str | None:
    """A one-line complaint when the stock client, given `file_name` for --env `env`, would
    not launch the executable at `path`: it deletes '.app', '.exe', '.x86_64' and '.x86'
    anywhere in the name and looks the rest up as a glob pattern, so a folder such as
    'ml.exercises' or 'run[2]' hides the env from it."""
    from mlagents_envs.env_utils import validate_environment_path

    found = validate_environment_path(file_name)
    if found is not None and os.path.isfile(found) and os.path.samefile(found, path):
        return None
    return (f"--env {env!r}: the stock ML-Agents client cannot launch {path!r}: it deletes "
            "'.app', '.exe' and '.x86' anywhere in a path and reads it as a glob pattern; "
            "move it to a folder whose path has none of those nor [ ] * ?")


def missing_problem(env: str, base: str) -> str | None:
    """Why no executable file is at `base`.x86_64, `base`.x86 or `base` for --env `env`, when
    something else is there: a folder (the build's, most often), a Windows or macOS build,
    a broken symlink or a loop. None: nothing at all, which the caller says. Without this,
    each was 'no such env executable' about a path the user could see."""
    if os.path.isfile(base + ".exe"):  # the stock client would launch it: Exec format error
        return executable_problem(base + ".exe")
    for path in (base + ".app", base, base + ".x86_64"):
        if path.endswith(".app") and os.path.isdir(path):
            return (f"--env {env!r}: {path!r} is a macOS build; give a Unity Linux build "
                    "(Build Settings: Linux, x86_64)")
        if os.path.isdir(path):
            return f"--env {env!r}: {path!r} is a folder; {_build_in(path)}"
        if os.path.islink(path):
            return (f"--env {env!r}: {path!r} is a broken symlink or a symlink loop "
                    f"(to {os.readlink(path)!r}); point it at the build's executable")
    return None


def _build_in(folder: str) -> str:
    """The fix for a folder given as --env: the build in it, named as --env wants it
    (without its extension); the Build folder itself is what users most often give."""
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith((".x86_64", ".x86")))
    except OSError:
        names = []
    if not names:
        return "give the path of the Unity Linux build's executable, without .x86_64"
    return f"give the build in it: --env {os.path.join(folder, os.path.splitext(names[0])[0])}"

"""Run mlagents-envs' old generated protobuf modules on the current protobuf runtime.

mlagents-envs 1.1.0 ships `*_pb2.py` files generated in the protobuf 3 style: they build
descriptors by hand, which protobuf >= 4 refuses ("Descriptors cannot be created
directly"). The only route that imports them unchanged is protobuf 3.20.3, which has no
compiled wheel for Python 3.11 and runs in pure Python: 2-7x slower on the wire
(docs/platform.md). Each of those files carries its FileDescriptorProto as a
`serialized_pb=` literal, so this import hook registers those bytes in the current
runtime's descriptor pool and builds the message classes from them, as modern generated
code does. The messages are the same on the wire; the client's own code stays untouched.

`install()` must run before `mlagents_envs` is imported. Importing the `envs` package
does it, and `make install` adds a `.pth` file so that every process of the project's
virtual environment (driver, Ray workers, env processes, a user's own script) gets it.
On protobuf 3.x the hook is not installed: that runtime imports the old modules itself.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

PACKAGE = "mlagents_envs.communicator_objects."


def runtime_needs_hook() -> bool:
    """True when the installed protobuf refuses old-style generated modules (>= 4)."""
    import google.protobuf

    return int(google.protobuf.__version__.split(".")[0]) >= 4


def embedded_descriptor(source: str) -> bytes:
    """The serialized FileDescriptorProto that an old `_pb2` module embeds."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg == "serialized_pb":
            value = node.value
            # protoc 3 wrapped the literal as _b('...') = '...'.encode('latin1')
            if isinstance(value, ast.Call) and value.args:
                value = value.args[0]
            literal = ast.literal_eval(value)
            return literal.encode("latin1") if isinstance(literal, str) else literal
    raise ImportError("no serialized_pb descriptor found in generated module")


def _module_for_proto(proto_file: str) -> str:
    # "mlagents_envs/communicator_objects/x.proto" -> "mlagents_envs.communicator_objects.x_pb2"
    return proto_file[: -len(".proto")].replace("/", ".") + "_pb2"


class _DescriptorLoader(importlib.abc.Loader):
    def __init__(self, origin: str):
        self.origin = origin

    def create_module(self, spec):
        return None  # default module creation

    def exec_module(self, module) -> None:
        from google.protobuf import descriptor_pb2, descriptor_pool
        from google.protobuf.internal import builder

        with open(self.origin, encoding="utf-8") as f:
            serialized = embedded_descriptor(f.read())
        # Dependencies must be in the pool before this file can be added.
        for dep in descriptor_pb2.FileDescriptorProto.FromString(serialized).dependency:
            importlib.import_module(_module_for_proto(dep))
        pool = descriptor_pool.Default()
        file_descriptor = pool.AddSerializedFile(serialized)
        namespace = module.__dict__
        namespace["DESCRIPTOR"] = file_descriptor
        builder.BuildMessageAndEnumDescriptors(file_descriptor, namespace)
        builder.BuildTopDescriptorsAndMessages(file_descriptor, module.__name__, namespace)


class _DescriptorFinder(importlib.abc.MetaPathFinder):
    """Serves `mlagents_envs.communicator_objects.*_pb2` from their embedded descriptors."""

    def find_spec(self, fullname, path, target=None):
        if not (fullname.startswith(PACKAGE) and fullname.endswith("_pb2")):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_DescriptorLoader(spec.origin)
        )


def install() -> bool:
    """Install the hook once; returns True when it is active."""
    if any(isinstance(f, _DescriptorFinder) for f in sys.meta_path):
        return True
    if not runtime_needs_hook():
        return False
    loaded = [m for m in sys.modules if m.startswith(PACKAGE) and m.endswith("_pb2")]
    if loaded:
        raise ImportError(
            f"{loaded[0]} was imported before envs.protobuf_compat.install(); "
            "import envs (or drone-ddpg's code) before mlagents_envs"
        )
    sys.meta_path.insert(0, _DescriptorFinder())
    return True


def route() -> str:
    """Which protobuf route this process runs: 'upb+descriptors' or 'python-3.20'."""
    from google.protobuf.internal import api_implementation

    if any(isinstance(f, _DescriptorFinder) for f in sys.meta_path):
        return f"{api_implementation.Type()}+descriptors"
    import google.protobuf

    return f"{api_implementation.Type()}-{google.protobuf.__version__}"


_PTH_NAME = "drone_ddpg_protobuf.pth"
# A .pth line starting with "import" runs at interpreter start-up. Failing quietly keeps
# the interpreter usable if the project is moved; `import envs` still installs the hook.
# At start-up sys.path holds PYTHONPATH but not yet the script's folder, so a user's own
# package named `envs` on PYTHONPATH would be found first: importing it would run the
# user's code in every process of the venv and leave it in sys.modules in place of this
# project's (launch.py then dies on an ImportError). So the line imports `envs` only when
# the package it would find is this one.
_PTH_CODE = (
    "try:\n"
    " import os, importlib.util as u\n"
    " s = u.find_spec('envs')\n"
    " if s is not None and s.origin and os.path.realpath(s.origin) == {origin!r}:\n"
    "  import envs.protobuf_compat as m; m.install()\n"
    "except Exception:\n"
    " pass"
)


def pth_line() -> str:
    """The .pth line: install the hook at start-up when `envs` is this project's package."""
    import os

    origin = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                           "__init__.py"))
    return f"import sys; exec({_PTH_CODE.format(origin=origin)!r})\n"


def install_pth() -> str:
    """Write the start-up .pth into this interpreter's site-packages; returns its path."""
    import os
    import sysconfig

    path = os.path.join(sysconfig.get_paths()["purelib"], _PTH_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(pth_line())
    return path


if __name__ == "__main__":
    # Use the package's copy of this module, not __main__'s, so there is one finder class.
    from envs import protobuf_compat as compat

    if sys.argv[1:] == ["--install-pth"]:
        print(f"protobuf fast path: wrote {compat.install_pth()}")
    else:
        compat.install()
        print(f"protobuf route: {compat.route()}")

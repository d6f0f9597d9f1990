"""Environments: the headless Drone and the ML-Agents protocol glue.

Importing this package installs the protobuf fast path (envs/protobuf_compat.py) so that
`mlagents_envs` imported afterwards runs on the current protobuf runtime.
"""

from envs import protobuf_compat as _protobuf_compat

_protobuf_compat.install()

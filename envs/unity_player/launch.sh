#!/bin/sh
# Run a player module (`python -m MODULE ARGS...`) the way the stock client runs a Unity
# Linux build; every env launcher (envs/drone/Drone.x86_64, ...) execs this script.
# It runs on the project's interpreter ($DRONE_PYTHON, else <repo>/.venv), never on
# whatever python3 is on PATH. Each step `exec`s, so the client's close() and kill()
# reach Python itself (same pid) and never leave it orphaned.
module=$1
shift
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd -P)
root=$(dirname "$(dirname "$here")")
py=${DRONE_PYTHON:-$root/.venv/bin/python}
if [ ! -x "$py" ]; then
    echo "$module: no Python at $py; run 'make install' in $root or set DRONE_PYTHON" >&2
    exit 127
fi
# -P: do not put the caller's working directory first on sys.path, so an unrelated
# envs/ folder there cannot shadow ours.
# UNITY_PLAYER_PARENT: the process that started us (the trainer), for the player to watch.
# Python itself cannot tell: if the trainer dies while Python starts, getppid() is already
# whatever adopted us.
UNITY_PLAYER_PARENT=$PPID PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" \
    exec "$py" -P -m "$module" "$@"

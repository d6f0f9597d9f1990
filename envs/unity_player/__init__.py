"""A Unity player's half of the ML-Agents protocol, shared by every env this project ships.

`server.PlayerServer` speaks the protocol (communication version 1.5.0) to the stock
`mlagents_envs` client; a `simulation.Simulation` (the Drone's physics, the Gymnasium
bridge, the tests' scenes) only steps its agents. `player.run_player` is the process
around them: Unity-player arguments, logging, parent watchdog, exit on close.
"""

"""The env workers, the Ray actors of this system that act in the envs (not the actor
network, which is learner/networks.py): each runs one env process on its own worker id
with a CPU copy of the policy (env_worker.py; ray_worker.py is its Ray wrapper), tracks
its agents (agents.py), explores (noise.py) and turns steps into replay rows (experience.py,
nstep.py)."""

"""The DDPG learner: critic and actor updates, soft target sync (issues 4 and 5)."""

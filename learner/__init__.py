"""The learner: networks, the pure DDPG/TD3 `update` (ddpg.py), the `Learner` that owns
them (learner.py; ray_learner.py is its Ray wrapper), checkpoints and the ONNX export."""

"""Actor and critic MLPs (the seed's architecture, sized by the env's behavior spec)."""

import torch
from torch import nn


class Actor(nn.Module):
    """Deterministic policy mu(s): obs -> hidden -> hidden -> action in [-1, 1]."""

    def __init__(self, obs_size: int, action_size: int, hidden_size: int = 128):
        super().__init__()
        self.fc1 = nn.Linear(obs_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.mu = nn.Linear(hidden_size, action_size)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(..., obs_size) -> (..., action_size), squashed by tanh to the action bounds."""
        x = torch.relu(self.fc1(obs))
        x = torch.relu(self.fc2(x))
        return torch.tanh(self.mu(x))


class Critic(nn.Module):
    """Q(s, a) -> hidden -> hidden -> scalar; the action enters at `action_layer`: 2 = it
    joins the second layer (the DDPG paper's design and the seed's), 1 = it is concatenated
    with the observation at the input (TD3's, Stable-Baselines3's and CleanRL's)."""

    def __init__(self, obs_size: int, action_size: int, hidden_size: int = 128,
                 action_layer: int = 2):
        super().__init__()
        if action_layer not in (1, 2):
            raise ValueError(f"action_layer must be 1 or 2, got {action_layer}")
        self.action_layer = action_layer
        first, second = (obs_size + action_size, 0) if action_layer == 1 else (obs_size,
                                                                              action_size)
        self.fc1 = nn.Linear(first, hidden_size)
        self.fc2 = nn.Linear(hidden_size + second, hidden_size)
        self.q = nn.Linear(hidden_size, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(B, obs_size), (B, action_size) -> (B,).

        The trailing unit dimension is dropped so that Q lines up with rewards of shape
        (B,): a (B, 1) Q against a (B,) target would silently broadcast to (B, B).
        """
        if self.action_layer == 1:
            x = torch.relu(self.fc1(torch.cat((obs, action), dim=-1)))
            x = torch.relu(self.fc2(x))
        else:
            x = torch.relu(self.fc1(obs))
            x = torch.relu(self.fc2(torch.cat((x, action), dim=-1)))
        return self.q(x).squeeze(-1)


class TwinCritic(nn.Module):
    """TD3's two critics side by side: (B, obs), (B, action) -> (2, B), one row per critic.

    Both learn the same target; the target takes the smaller estimate (clipped double Q),
    and the actor climbs the first one (`q1`)."""

    def __init__(self, obs_size: int, action_size: int, hidden_size: int = 128,
                 action_layer: int = 2):
        super().__init__()
        self.q1 = Critic(obs_size, action_size, hidden_size, action_layer)
        self.q2 = Critic(obs_size, action_size, hidden_size, action_layer)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.stack((self.q1(obs, action), self.q2(obs, action)))

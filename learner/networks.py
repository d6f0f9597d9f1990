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
    """Q(s, a): obs -> hidden, then the action joins the second layer -> hidden -> scalar."""

    def __init__(self, obs_size: int, action_size: int, hidden_size: int = 128):
        super().__init__()
        self.fc1 = nn.Linear(obs_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size + action_size, hidden_size)
        self.q = nn.Linear(hidden_size, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(B, obs_size), (B, action_size) -> (B,).

        The trailing unit dimension is dropped so that Q lines up with rewards of shape
        (B,): a (B, 1) Q against a (B,) target would silently broadcast to (B, B).
        """
        x = torch.relu(self.fc1(obs))
        x = torch.relu(self.fc2(torch.cat((x, action), dim=-1)))
        return self.q(x).squeeze(-1)


class TwinCritic(nn.Module):
    """TD3's two critics side by side: (B, obs), (B, action) -> (2, B), one row per critic.

    Both learn the same target; the target takes the smaller estimate (clipped double Q),
    and the actor climbs the first one (`q1`)."""

    def __init__(self, obs_size: int, action_size: int, hidden_size: int = 128):
        super().__init__()
        self.q1 = Critic(obs_size, action_size, hidden_size)
        self.q2 = Critic(obs_size, action_size, hidden_size)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.stack((self.q1(obs, action), self.q2(obs, action)))

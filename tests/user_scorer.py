"""A user architecture registered the way a user's module would: a bag of token embeddings.
Tests import it, and hand its module name to ``--agent-module``."""

from torch import nn

import agents


@agents.register("bag_test_scorer")
class BagScorer(nn.Module):
    def __init__(self, env, width: int = 8):
        super().__init__()
        spec = agents.ScorerSpec.of(env)
        self.embed = nn.EmbeddingBag(spec.vocab_size, width, mode="mean", padding_idx=0)
        self.out = nn.Linear(width, spec.n_keys)

    def forward(self, tokens):
        return self.out(self.embed(tokens))  # (B, n_keys)

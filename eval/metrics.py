"""Per-query metrics, as the study defined them: one implementation, used by train and eval.

Every function takes logits (B, n_keys) and returns a (B,) float32 tensor.
"""

import math

import torch


def kl_to_uniform_positives(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """KL(g || softmax(logits)) in nats, g uniform over the query's positive keys."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    positives = positives.bool()
    n_positives = positives.sum(dim=-1).float()
    mean_log_p = torch.where(positives, log_p, 0.0).sum(dim=-1) / n_positives
    return -torch.log(n_positives) - mean_log_p


def topk_overlap(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """With K = the number of positives: the fraction of the K highest-scoring keys that are
    positive. Ties go to the lower key id."""
    positives = positives.bool()
    order = torch.sort(logits.float(), dim=-1, descending=True, stable=True).indices
    hits = torch.gather(positives, 1, order)  # (B, n_keys), by rank
    n_positives = positives.sum(dim=-1, keepdim=True)
    ranks = torch.arange(logits.shape[-1], device=logits.device)
    return (hits & (ranks < n_positives)).sum(dim=-1).float() / n_positives.squeeze(-1).float()


def entropy_bits(logits: torch.Tensor) -> torch.Tensor:
    """The entropy of softmax(logits) in bits."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1) / math.log(2)


METRICS = {
    "kl": kl_to_uniform_positives,
    "topk_overlap": topk_overlap,
    "entropy_bits": lambda logits, positives: entropy_bits(logits),
}

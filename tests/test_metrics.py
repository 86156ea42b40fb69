"""The metrics and objectives on hand-computed cases."""

import math

import pytest
import torch

from eval.metrics import entropy_bits, kl_to_uniform_positives, topk_overlap
from train.objectives import CrossEntropy, InfoNCE, SoftCrossEntropy, make_objective


def rows(*values):
    return torch.tensor(values, dtype=torch.float32)


def mask(*values):
    return torch.tensor(values, dtype=torch.bool)


def test_kl_one_positive_is_minus_log_probability():
    logits = rows([0.0, math.log(3.0), 0.0, 0.0])  # softmax: 1/6, 1/2, 1/6, 1/6
    kl = kl_to_uniform_positives(logits, mask([False, True, False, False]))
    assert kl.item() == pytest.approx(math.log(2.0))


def test_kl_is_zero_when_uniform_over_the_positives():
    logits = rows([5.0, 5.0, -1e4, -1e4])
    positives = mask([True, True, False, False])
    assert kl_to_uniform_positives(logits, positives).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_all_positive_against_a_peaked_prediction():
    logits = rows([math.log(7.0), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # p = 1/2 then 1/14
    kl = kl_to_uniform_positives(logits, torch.ones(1, 8, dtype=torch.bool))
    expected = sum(1 / 8 * math.log((1 / 8) / p) for p in [1 / 2] + [1 / 14] * 7)
    assert kl.item() == pytest.approx(expected, rel=1e-5)


def test_uniform_scorer_kl_is_log_of_keys_over_positives():
    positives = mask([True, True, True, False, False, False, False, False, False])
    kl = kl_to_uniform_positives(torch.zeros(1, 9), positives)
    assert kl.item() == pytest.approx(math.log(9 / 3))


def test_topk_overlap_counts_positives_among_the_k_best():
    logits = rows([0.9, 0.1, 0.8, 0.7])
    positives = mask([True, True, False, False])  # K = 2: best two are keys 0 and 2
    assert topk_overlap(logits, positives).item() == pytest.approx(0.5)


def test_topk_overlap_ties_go_to_the_lower_key_id():
    logits = torch.zeros(1, 4)
    assert topk_overlap(logits, mask([True, False, False, False])).item() == 1.0
    assert topk_overlap(logits, mask([False, False, False, True])).item() == 0.0
    assert topk_overlap(logits, mask([False, True, True, False])).item() == 0.5


def test_topk_overlap_all_positive_is_one():
    assert topk_overlap(torch.randn(3, 5), torch.ones(3, 5, dtype=torch.bool)).tolist() == [1.0] * 3


def test_entropy_bits():
    assert entropy_bits(torch.zeros(1, 8)).item() == pytest.approx(3.0)
    assert entropy_bits(rows([100.0, 0.0, 0.0])).item() == pytest.approx(0.0, abs=1e-6)
    assert entropy_bits(rows([0.0, 0.0, -1e4])).item() == pytest.approx(1.0)


def test_metrics_are_per_query():
    logits, positives = torch.randn(5, 27), torch.rand(5, 27) < 0.3
    positives[:, 0] = True
    for metric in (kl_to_uniform_positives, topk_overlap):
        assert metric(logits, positives).shape == (5,)
    assert entropy_bits(logits).shape == (5,)


def test_cross_entropy_objectives():
    logits = rows([0.0, math.log(3.0), 0.0, 0.0])
    positives = mask([True, True, False, False])
    keys = torch.tensor([1])
    assert CrossEntropy()(logits, positives, keys).item() == pytest.approx(math.log(2.0))
    soft = SoftCrossEntropy()(logits, positives, keys).item()
    assert soft == pytest.approx((math.log(6.0) + math.log(2.0)) / 2)


def test_infonce_is_symmetric_cross_entropy_over_the_batch_matrix():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 0.5]])
    keys = torch.tensor([0, 1])
    scores = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # logits[:, keys]
    rows_loss = -(scores.log_softmax(1).diagonal()).mean()
    cols_loss = -(scores.log_softmax(0).diagonal()).mean()
    loss = InfoNCE()(logits, None, keys)
    assert loss.item() == pytest.approx(((rows_loss + cols_loss) / 2).item())


def test_infonce_duplicate_keys_are_negatives_unless_masked():
    logits = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    keys = torch.tensor([0, 0, 1])  # queries 0 and 1 share key 0
    counted = InfoNCE()(logits, None, keys).item()
    masked = InfoNCE(mask_duplicates=True)(logits, None, keys).item()
    assert masked < counted
    # Masked, each duplicate row sees its own key and key 1 only: log(1 + e^-1); the third
    # row [0, 0, 1] keeps both: log(2 + e) - 1. The matrix is symmetric, so are the columns.
    duplicate_row, third_row = math.log(1 + math.exp(-1.0)), math.log(2 + math.e) - 1
    assert masked == pytest.approx((2 * duplicate_row + third_row) / 3)


def test_unknown_objective():
    with pytest.raises(ValueError, match="objective must be one of"):
        make_objective("mse")

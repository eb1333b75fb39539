"""CTC: the loss and its gradient against PyTorch, Keras 3, finite differences and hand sums; decoding against
Keras 3 and brute force; the error rates by hand."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
import torch

from gradcheck import numeric_grad, rel_error
from rnnkit.ctc import character_error_rate, ctc_decode, ctc_loss, ctc_loss_and_grad, edit_distance, word_error_rate

KERAS_RTOL = 1e-6    # Keras 3 computes CTC in float32 whatever it is given (PyTorch is the float64 reference)


def _random_case(rng, B=5, T=9, K=5, L=4, blank=0):
    """Logits (B, T, K), labels (B, L) padded with -7 (never read), label and input lengths; some repeats."""
    labels_pool = [k for k in range(K) if k != blank]
    input_length = rng.integers(T - 3, T + 1, size=B)
    input_length[0] = T
    target_length = np.array([L, L - 1, 0, 2, 1][:B])
    labels = np.full((B, L), -7)
    for b in range(B):
        row = rng.choice(labels_pool, size=target_length[b])
        if target_length[b] >= 2 and b % 2 == 0:
            row[1] = row[0]                                    # a repeated neighbour: needs a blank between
        labels[b, :target_length[b]] = row
    logits = rng.normal(scale=2.0, size=(B, T, K))
    return logits, labels, target_length, input_length


def _torch_loss_and_grad(logits, labels, target_length, input_length, blank, from_logits=True):
    """PyTorch's CTCLoss(reduction='none') and the gradient of its sum, in float64."""
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    if from_logits:
        log_probs = torch.log_softmax(x, dim=-1)
    else:
        log_probs = torch.log(x / x.sum(dim=-1, keepdim=True))
    targets = torch.tensor(np.where(labels < 0, 1 if blank != 1 else 2, labels), dtype=torch.long)
    loss = torch.nn.CTCLoss(blank=blank, reduction="none")(
        log_probs.transpose(0, 1), targets, torch.tensor(input_length), torch.tensor(target_length))
    loss.sum().backward()
    return loss.detach().numpy(), x.grad.numpy()


# -- the loss against PyTorch, Keras, finite differences and by hand -----------------------

@pytest.mark.parametrize("blank", [0, 2, 4])
def test_loss_and_logit_gradient_match_torch(blank):
    rng = np.random.default_rng(blank)
    logits, labels, target_length, input_length = _random_case(rng, blank=blank)
    losses, grad = ctc_loss_and_grad(labels, logits, target_length, input_length, mask_index=blank, from_logits=True)
    ref_loss, ref_grad = _torch_loss_and_grad(logits, labels, target_length, input_length, blank)
    assert losses.dtype == np.float64 and losses.shape == (5,) and grad.shape == logits.shape
    np.testing.assert_allclose(losses, ref_loss, rtol=0, atol=1e-8)
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-8)
    # padded steps take no part: zero gradient there
    for b, n in enumerate(input_length):
        assert not grad[b, n:].any()


def test_probability_gradient_matches_torch():
    rng = np.random.default_rng(7)
    logits, labels, target_length, input_length = _random_case(rng, B=4, T=8, K=6, L=3, blank=0)
    p = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    p *= rng.uniform(0.5, 2.0, size=(4, 8, 1))                # unnormalised rows: they are normalised first
    losses, grad = ctc_loss_and_grad(labels, p, target_length, input_length)
    ref_loss, ref_grad = _torch_loss_and_grad(p, labels, target_length, input_length, 0, from_logits=False)
    np.testing.assert_allclose(losses, ref_loss, rtol=0, atol=1e-8)
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-8)
    # probabilities and the logits they came from give the same loss
    np.testing.assert_allclose(ctc_loss(labels, logits, target_length, input_length, from_logits=True),
                               losses, rtol=1e-12)


@pytest.mark.parametrize("mask_index", [0, 3])
def test_loss_matches_keras_ops_ctc_loss(mask_index):
    rng = np.random.default_rng(11 + mask_index)
    logits, labels, target_length, input_length = _random_case(rng, B=5, T=10, K=6, L=4, blank=mask_index)
    labels = np.where(labels < 0, 1 if mask_index != 1 else 2, labels)
    theirs = keras.ops.convert_to_numpy(keras.ops.ctc_loss(labels, logits, target_length, input_length,
                                                           mask_index=mask_index))
    ours = ctc_loss(labels, logits, target_length, input_length, mask_index=mask_index, from_logits=True)
    assert theirs.dtype == np.float32      # Keras promotes float64 with float32 to float32: it computes CTC in float32
    np.testing.assert_allclose(ours, theirs, rtol=KERAS_RTOL)


def test_gradients_against_finite_differences():
    rng = np.random.default_rng(3)
    logits, labels, target_length, input_length = _random_case(rng, B=3, T=6, K=4, L=3, blank=1)
    input_length[1] = 4                                       # padded steps in the middle of the batch
    for from_logits in (True, False):
        x = logits if from_logits else rng.uniform(0.1, 1.0, size=logits.shape)
        _, grad = ctc_loss_and_grad(labels, x, target_length, input_length, mask_index=1, from_logits=from_logits)

        def total(x=x, from_logits=from_logits):
            return float(ctc_loss(labels, x, target_length, input_length, mask_index=1, from_logits=from_logits).sum())

        num = numeric_grad(total, x)
        assert rel_error(grad, num) < 1e-7, from_logits
        assert not grad[1, 4:].any() and not num[1, 4:].any()


def test_hand_computed_cases():
    y = np.array([[[0.4, 0.6], [0.3, 0.7]]])                  # T = 2, blank 0, label 1
    # paths reading "1": (1, 1), (1, -), (-, 1)
    np.testing.assert_allclose(ctc_loss([[1]], y, [1], [2]), [-math.log(0.6 * 0.7 + 0.6 * 0.3 + 0.4 * 0.7)])
    # the empty labelling: only the all-blank path
    np.testing.assert_allclose(ctc_loss(np.zeros((1, 0)), y, [0], [2]), [-math.log(0.4 * 0.3)])
    # "1 1" in three steps: only (1, -, 1), the blank separating the repeat
    y3 = np.array([[[0.2, 0.8], [0.5, 0.5], [0.1, 0.9]]])
    np.testing.assert_allclose(ctc_loss([[1, 1]], y3, [2], [3]), [-math.log(0.8 * 0.5 * 0.9)])
    # the same with the last step padded: "1" in two steps of y3
    np.testing.assert_allclose(ctc_loss([[1, 1]], y3, [1], [2]), [-math.log(0.8 * 0.5 + 0.8 * 0.5 + 0.2 * 0.5)])
    # gradient w.r.t. the log-probabilities of "1" in two steps: -gamma, gamma_0(label) = 0.6 (0.7 + 0.3) / p
    p = 0.6 * 0.7 + 0.6 * 0.3 + 0.4 * 0.7
    logits = np.log(y)
    _, grad = ctc_loss_and_grad([[1]], logits, [1], [2], from_logits=True)
    np.testing.assert_allclose(grad[0, 0], y[0, 0] - [0.4 * 0.7 / p, 0.6 / p], atol=1e-12)


def test_impossible_alignment_is_infinite_with_zero_gradient():
    logits = np.zeros((2, 3, 3))
    logits[0, :, 2] = -np.inf                                 # label 2 can never be emitted in sequence 0
    labels = np.array([[2, 1], [2, 1]])
    losses, grad = ctc_loss_and_grad(labels, logits, [2, 2], [3, 3], from_logits=True)
    assert np.isposinf(losses[0]) and np.isfinite(losses[1])
    assert not grad[0].any() and np.isfinite(grad).all()
    ref = torch.nn.functional.ctc_loss(torch.log_softmax(torch.tensor(logits), -1).transpose(0, 1),
                                       torch.tensor(labels), torch.tensor([3, 3]), torch.tensor([2, 2]),
                                       reduction="none", zero_infinity=False)
    assert np.isposinf(ref[0].item()) and abs(ref[1].item() - losses[1]) < 1e-12


def test_float32_in_float32_out():
    rng = np.random.default_rng(5)
    logits, labels, target_length, input_length = _random_case(rng)
    losses, grad = ctc_loss_and_grad(labels, logits.astype(np.float32), target_length, input_length,
                                     from_logits=True)
    assert losses.dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_allclose(losses, ctc_loss(labels, logits, target_length, input_length, from_logits=True),
                               rtol=1e-5)


def test_loss_errors():
    y = np.full((2, 4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"Sequence 1 cannot be aligned: its 5 labels .* need at least 5 time steps"):
        ctc_loss([[1, 0, 0, 0, 0], [1, 2, 1, 2, 1]], y, [1, 5], [4, 4])
    with pytest.raises(ValueError, match=r"labels \[1, 1, 2\] need at least 4 time steps \(a repeated label .*"
                                         r"output_length is 3"):
        ctc_loss([[1, 1, 2], [1, 0, 0]], y, [3, 1], [3, 4])
    with pytest.raises(ValueError, match=r"must not contain the blank \(mask_index=0\), got \[1 0\] for sequence 0"):
        ctc_loss([[1, 0], [1, 2]], y, [2, 2], [4, 4])
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\), got \[3\]"):
        ctc_loss([[3], [1]], y, [1, 1], [4, 4])
    with pytest.raises(ValueError, match=r"target must have shape \(2, max_label_length\).*got shape \(3, 1\)"):
        ctc_loss([[1], [1], [1]], y, [1, 1], [4, 4])
    with pytest.raises(ValueError, match=r"output must have shape \(batch_size, max_length, num_classes\)"):
        ctc_loss([[1]], y[0], [1], [4])
    with pytest.raises(ValueError, match=r"output_length must have shape \(2,\).*got shape \(3,\)"):
        ctc_loss([[1], [1]], y, [1, 1], [4, 4, 4])
    with pytest.raises(ValueError, match=r"output_length must be in \[1, 4\].*got 5 for sequence 1"):
        ctc_loss([[1], [1]], y, [1, 1], [4, 5])
    with pytest.raises(ValueError, match=r"target_length 2 of sequence 0 exceeds target's 1 columns"):
        ctc_loss([[1], [1]], y, [2, 1], [4, 4])
    with pytest.raises(ValueError, match=r"negative values.*pass from_logits=True"):
        ctc_loss([[1], [1]], y - 0.5, [1, 1], [4, 4])
    with pytest.raises(ValueError, match=r"mask_index must be in \[0, 3\), got 3"):
        ctc_loss([[1], [1]], y, [1, 1], [4, 4], mask_index=3)
    with pytest.raises(TypeError, match="from_logits must be True or False"):
        ctc_loss([[1], [1]], y, [1, 1], [4, 4], from_logits="yes")


# -- decoding ------------------------------------------------------------------------------

@pytest.mark.parametrize("merge_repeated,mask_index", [(True, 0), (False, 0), (True, 2)])
def test_greedy_decode_matches_keras_exactly(merge_repeated, mask_index):
    rng = np.random.default_rng(21)
    logits = rng.normal(size=(6, 12, 4))
    logits[:, 3] = logits[:, 2]                               # repeated best classes at neighbouring steps
    lengths = np.array([12, 10, 7, 1, 0, 12])
    ours = ctc_decode(logits, lengths, merge_repeated=merge_repeated, mask_index=mask_index, from_logits=True)
    theirs = keras.ops.ctc_decode(logits, lengths, merge_repeated=merge_repeated, mask_index=mask_index)
    assert ours[0].shape == (1, 6, 12) and ours[1].shape == (6, 1)
    np.testing.assert_array_equal(ours[0], keras.ops.convert_to_numpy(theirs[0]))
    np.testing.assert_allclose(ours[1], keras.ops.convert_to_numpy(theirs[1]), rtol=KERAS_RTOL)


def test_greedy_decode_of_probabilities_scores_the_best_path():
    p = np.array([[[0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]])
    paths, scores = ctc_decode(p, [4])
    np.testing.assert_array_equal(paths[0, 0], [1, 1, -1, -1])    # 1 1 - 1 reads "1 1"
    np.testing.assert_allclose(scores, [[-math.log(0.9 * 0.8 * 0.7 * 0.6)]])


def test_beam_search_matches_keras():
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=1.5, size=(4, 9, 5))
    lengths = np.array([9, 8, 5, 9])
    ours_paths, ours_scores = ctc_decode(logits, lengths, strategy="beam_search", beam_width=8, top_paths=3,
                                         from_logits=True)
    theirs = keras.ops.ctc_decode(logits, lengths, strategy="beam_search", beam_width=8, top_paths=3)
    assert ours_paths.shape == (3, 4, 9) and ours_scores.shape == (4, 3)
    np.testing.assert_array_equal(ours_paths, keras.ops.convert_to_numpy(theirs[0]))
    np.testing.assert_allclose(ours_scores, keras.ops.convert_to_numpy(theirs[1]), rtol=KERAS_RTOL)


def test_wide_beam_search_finds_the_exact_labelling_probabilities():
    """With a beam wider than every prefix, beam search is exact: its scores are -ctc_loss of its labellings,
    and its best labelling is the most probable one of all, found by enumerating every path."""
    rng = np.random.default_rng(9)
    T, K = 5, 3
    p = rng.dirichlet(np.ones(K), size=(1, T))                # (1, T, K)
    paths, scores = ctc_decode(p, [T], strategy="beam_search", beam_width=200, top_paths=4)
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(K), repeat=T):
        merged = [c for i, c in enumerate(path) if c != 0 and (i == 0 or path[i - 1] != c)]
        totals[tuple(merged)] = totals.get(tuple(merged), 0.0) + np.prod(p[0, np.arange(T), path])
    best = sorted(totals.items(), key=lambda kv: -kv[1])[:4]
    for j, (labelling, prob) in enumerate(best):
        found = paths[j, 0][paths[j, 0] >= 0]
        assert tuple(found) == labelling
        np.testing.assert_allclose(scores[0, j], math.log(prob), rtol=1e-10)
        if labelling:
            np.testing.assert_allclose(-ctc_loss([list(labelling)], p, [len(labelling)], [T]), scores[0, j],
                                       rtol=1e-10)


def test_beam_search_beats_greedy_by_summing_paths():
    # the best path is all blanks (0.36), but "1" collects 0.16 + 0.24 + 0.24 = 0.64 over three paths
    p = np.array([[[0.6, 0.4], [0.6, 0.4]]])
    greedy, _ = ctc_decode(p, [2])
    beam, score = ctc_decode(p, [2], strategy="beam_search", beam_width=4, top_paths=2)
    assert (greedy[0, 0] == -1).all()
    np.testing.assert_array_equal(beam[:, 0], [[1, -1], [-1, -1]])
    np.testing.assert_allclose(np.exp(score[0]), [0.64, 0.36])
    # fewer labellings than top_paths: the rest are all -1 with score -inf
    beam, score = ctc_decode(p[:, :1], [1], strategy="beam_search", beam_width=4, top_paths=3)
    assert (beam[2, 0] == -1).all() and np.isneginf(score[0, 2])


def test_decode_errors():
    p = np.full((2, 3, 3), 1 / 3)
    with pytest.raises(ValueError, match="beam_width must be >= 1, got 0"):
        ctc_decode(p, [3, 3], strategy="beam_search", beam_width=0)
    with pytest.raises(ValueError, match=r"top_paths \(5\) cannot exceed beam_width \(4\)"):
        ctc_decode(p, [3, 3], strategy="beam_search", beam_width=4, top_paths=5)
    with pytest.raises(ValueError, match="strategy must be one of 'greedy', 'beam_search', got 'best'"):
        ctc_decode(p, [3, 3], strategy="best")
    with pytest.raises(ValueError, match=r"sequence_lengths must be in \[0, 3\].*got 4 for sequence 0"):
        ctc_decode(p, [4, 3])
    with pytest.raises(ValueError, match=r"sequence_lengths must have shape \(2,\)"):
        ctc_decode(p, [3])
    with pytest.raises(ValueError, match="inputs must have shape"):
        ctc_decode(p[0], [3])
    with pytest.raises(TypeError, match="beam_width must be an integer"):
        ctc_decode(p, [3, 3], strategy="beam_search", beam_width=2.5)


# -- error rates ---------------------------------------------------------------------------

def test_edit_distance_by_hand():
    assert edit_distance("kitten", "sitting") == 3           # k->s, e->i, +g
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance("flaw", "lawn") == 2


def test_error_rates_by_hand():
    assert character_error_rate("abc", "abd") == pytest.approx(1 / 3)
    assert character_error_rate(["abc", "de"], ["abd", "d"]) == pytest.approx(2 / 5)
    assert character_error_rate([[1, 2, 3], [4]], [[1, 2, 3], []]) == pytest.approx(1 / 4)
    assert character_error_rate(["ab"], ["abxyz"]) == pytest.approx(3 / 2)   # insertions can pass 1
    assert word_error_rate("the cat sat", "the cat sat down") == pytest.approx(1 / 3)
    assert word_error_rate(["the cat sat", "a dog"], ["the bat sat", "dog"]) == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="Got 2 references but 1 hypotheses"):
        character_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no characters"):
        character_error_rate([""], ["a"])
    with pytest.raises(TypeError, match="both be strings or both be sequences"):
        word_error_rate("a b", ["a b"])
    with pytest.raises(TypeError, match="a string or a sequence of tokens, got int"):
        character_error_rate([1], [2])

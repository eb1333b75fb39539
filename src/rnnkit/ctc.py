"""Connectionist temporal classification (CTC): the loss and its gradient, decoding, and error rates.

A CTC model emits one distribution over ``K`` classes per time step, ``y (B, T, K)``, and is trained to
output a label sequence ``l`` of length ``L <= T`` without being told where in time each label is
(Graves et al., 2006). One class, ``mask_index`` (Keras' name for the *blank*, 0 by default), means
"no label at this step". A path ``pi`` (one class per step) reads as a labelling by merging repeats,
then dropping blanks: ``a a - b b - b -> a b b``. The loss is ``-log p(l | y)``, where ``p(l | y)`` sums
``prod_t y_t[pi_t]`` over every path that reads as ``l``.

The sum is the forward-backward recursion over the extended label ``l' = (-, l1, -, l2, ..., lL, -)``
of ``S = 2L + 1`` states (blanks at the even states), run in log space for the whole batch, one time
step at a time::

    alpha_0(0) = y_0[-],  alpha_0(1) = y_0[l1]
    alpha_t(s) = y_t[l'_s] (alpha_{t-1}(s) + alpha_{t-1}(s-1) + skip(s) alpha_{t-1}(s-2))
    beta_{T-1}(S-1) = beta_{T-1}(S-2) = 1
    beta_t(s)  = y_{t+1}[l'_s] beta_{t+1}(s) + y_{t+1}[l'_{s+1}] beta_{t+1}(s+1)
                 + skip(s+2) y_{t+1}[l'_{s+2}] beta_{t+1}(s+2)
    p(l | y)   = alpha_{T-1}(S-1) + alpha_{T-1}(S-2)
    gamma_t(s) = alpha_t(s) beta_t(s) / p(l | y)        (the probability that the path is in state s at step t)

where ``skip(s)`` is 1 for a label state whose label differs from the one two states back (a repeated
label must be separated by a blank) and ``T`` is each sequence's own length. The gradient is then::

    dL/dlog y_t[k] = -sum_{s: l'_s = k} gamma_t(s)
    dL/dz_t        = softmax(z_t) - sum_{s: l'_s = k} gamma_t(s)      (y = softmax(z): the fused form)

``ctc_decode`` reads labellings out of ``y`` (best path, or prefix beam search) with the layout of
Keras 3's ``keras.ops.ctc_decode``; ``character_error_rate`` and ``word_error_rate`` score them.

Probabilities or logits: like the other losses in rnnkit, ``ctc_loss`` and ``ctc_decode`` take
probabilities (a softmax output) by default, normalised over the last axis and clipped below at
``1e-7``; with ``from_logits=True`` they take logits (or log-probabilities) and apply a log-softmax,
which is what Keras 3's ``keras.ops.ctc_loss`` and ``ctc_decode`` always do.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

EPSILON = 1e-7   # probabilities are clipped below at this, as Keras' backend epsilon
STRATEGIES = ("greedy", "beam_search")


# -- input checks ------------------------------------------------------------------------

def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}: {value!r}.")
    return bool(value)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}: {value!r}.")
    if value < low or (high is not None and value >= high):
        where = f">= {low}" if high is None else f"in [{low}, {high})"
        raise ValueError(f"{name} must be {where}, got {value}.")
    return int(value)


def _check_output(output: Any, name: str) -> np.ndarray:
    """``output`` as a float array ``(B, T, K)``."""
    arr = np.asarray(output)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold numbers, got an array of dtype {arr.dtype}.")
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (batch_size, max_length, num_classes), got shape {arr.shape}.")
    if arr.shape[2] < 2:
        raise ValueError(f"{name} needs at least 2 classes (the blank and one label), got shape {arr.shape}.")
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


def _integers(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold integers, got an array of dtype {arr.dtype}.")
    if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
        raise ValueError(f"{name} must hold integers, got non-integer values.")
    return arr.astype(np.int64)


def _lengths(value: Any, name: str, batch: int, low: int, high: int | None, what: str) -> np.ndarray:
    """One length per sequence, shape ``(B,)`` (``(B, 1)`` is accepted, as Keras 2 took), in ``[low, high]``."""
    arr = np.asarray(value)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},), one length per sequence, got shape {arr.shape}.")
    arr = _integers(arr, name)
    bad = np.flatnonzero((arr < low) | (arr > (np.inf if high is None else high)))
    if bad.size:
        i = int(bad[0])
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bounds} ({what}), got {arr[i]} for sequence {i}.")
    return arr


def _log_probabilities(output: np.ndarray, from_logits: bool, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(log y (B, T, K), y)`` in float64: a log-softmax of logits, or the log of normalised probabilities."""
    x = output.astype(np.float64)
    if from_logits:
        shifted = x - x.max(axis=-1, keepdims=True)
        log_y = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        return log_y, np.exp(log_y)
    if (x < 0).any():
        raise ValueError(
            f"{name} holds probabilities (from_logits=False) but has negative values (down to {x.min():.4g}); "
            "end the model in a softmax, or pass from_logits=True for logits (as Keras 3's CTC takes)."
        )
    total = x.sum(axis=-1, keepdims=True)
    if (total <= 0).any():
        raise ValueError(f"{name} holds probabilities (from_logits=False), but some steps are all zeros.")
    p = x / total
    return np.log(np.maximum(p, EPSILON)), p


# -- the loss ----------------------------------------------------------------------------

def _check_labels(target: Any, target_length: np.ndarray, output_length: np.ndarray, num_classes: int,
                  mask_index: int) -> np.ndarray:
    """The labels ``(B, L)`` with the padding after each ``target_length`` set to the blank, checked."""
    labels = _integers(target, "target")
    batch = len(target_length)
    if labels.ndim != 2 or labels.shape[0] != batch:
        raise ValueError(f"target must have shape ({batch}, max_label_length), integer labels padded at the end, "
                         f"got shape {labels.shape}.")
    max_length = labels.shape[1]
    too_long = np.flatnonzero(target_length > max_length)
    if too_long.size:
        i = int(too_long[0])
        raise ValueError(f"target_length {target_length[i]} of sequence {i} exceeds target's {max_length} columns.")
    used = np.arange(max_length)[None, :] < target_length[:, None]                     # (B, L)
    for i, row in enumerate(np.where(used, labels, mask_index)):
        if ((row < 0) | (row >= num_classes)).any():
            raise ValueError(f"Labels must be class indices in [0, {num_classes}), got {row[:target_length[i]]} "
                             f"for sequence {i}.")
        if (row[:target_length[i]] == mask_index).any():
            raise ValueError(f"Labels must not contain the blank (mask_index={mask_index}), got "
                             f"{row[:target_length[i]]} for sequence {i}; give the blank its own class.")
    labels = np.where(used, labels, mask_index)
    # a label that repeats its neighbour needs a blank step between the two
    repeats = (used[:, 1:] & (labels[:, 1:] == labels[:, :-1])).sum(axis=1) if max_length > 1 else 0
    needed = target_length + repeats
    short = np.flatnonzero(needed > output_length)
    if short.size:
        i = int(short[0])
        raise ValueError(
            f"Sequence {i} cannot be aligned: its {target_length[i]} labels {labels[i, :target_length[i]].tolist()} "
            f"need at least {needed[i]} time steps (a repeated label needs a blank step between), but its "
            f"output_length is {output_length[i]}."
        )
    return labels


def _logsumexp3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``log(exp(a) + exp(b) + exp(c))`` elementwise, -inf where all three are -inf."""
    m = np.maximum(np.maximum(a, b), c)
    m = np.where(np.isneginf(m), 0.0, m)
    return m + np.log(np.exp(a - m) + np.exp(b - m) + np.exp(c - m))


def _forward_backward(log_y: np.ndarray, labels: np.ndarray, label_length: np.ndarray, input_length: np.ndarray,
                      blank: int) -> tuple[np.ndarray, np.ndarray]:
    """``(-log p(l | y) (B,), dL/dlog y (B, T, K))``; infinite loss and zero gradient where ``p(l | y) = 0``."""
    B, T, K = log_y.shape
    S = 2 * labels.shape[1] + 1
    rows = np.arange(B)
    ext = np.full((B, S), blank, dtype=np.int64)                 # l' = (-, l1, -, l2, ..., -)
    ext[:, 1::2] = labels
    log_y_ext = np.take_along_axis(log_y, np.broadcast_to(ext[:, None, :], (B, T, S)), axis=2)   # (B, T, S)
    skip = np.zeros((B, S), dtype=bool)                          # state s may be entered from s - 2
    skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    neg_inf = np.full((B, S), -np.inf)
    one, two = neg_inf.copy(), neg_inf.copy()                    # the states one and two behind (or ahead)

    alpha = np.full((B, T, S), -np.inf)                          # (B, T, S), emissions included
    alpha[:, 0, :2] = log_y_ext[:, 0, :2]
    for t in range(1, T):
        prev = alpha[:, t - 1]                                   # (B, S)
        one[:, 1:] = prev[:, :-1]
        two[:, 2:] = np.where(skip[:, 2:], prev[:, :-2], -np.inf)
        alpha[:, t] = _logsumexp3(prev, one, two) + log_y_ext[:, t]

    last = input_length - 1                                      # (B,) each sequence's last step
    end = 2 * label_length                                       # (B,) its final blank state, S_b - 1
    final = alpha[rows, last]                                    # (B, S)
    log_p = np.logaddexp(final[rows, end], np.where(label_length > 0, final[rows, end - 1], -np.inf))   # (B,)

    # beta_t excludes the emission at t; the path ends in the last label or the final blank at step `last`
    start = neg_inf.copy()
    start[rows, end] = 0.0
    has = label_length > 0
    start[rows[has], end[has] - 1] = 0.0
    beta = np.empty((B, T, S))
    ahead = neg_inf.copy()                                       # beta_{t+1} + log y_{t+1}; -inf past the end
    one[:], two[:] = -np.inf, -np.inf
    for t in range(T - 1, -1, -1):
        one[:, :-1] = ahead[:, 1:]
        two[:, :-2] = np.where(skip[:, 2:], ahead[:, 2:], -np.inf)
        beta[:, t] = np.where((last == t)[:, None], start, _logsumexp3(ahead, one, two))
        ahead = beta[:, t] + log_y_ext[:, t]

    possible = np.isfinite(log_p)
    gamma = np.exp(alpha + beta - np.where(possible, log_p, 0.0)[:, None, None])   # (B, T, S)
    gamma[~possible] = 0.0
    onehot = (ext[:, :, None] == np.arange(K)).astype(np.float64)                 # (B, S, K)
    return -log_p, -(gamma @ onehot)                                              # (B,), (B, T, K)


def ctc_loss_and_grad(target: Any, output: Any, target_length: Any, output_length: Any, mask_index: int = 0,
                      from_logits: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The per-sequence CTC losses ``(B,)`` and their gradient with respect to ``output`` ``(B, T, K)``.

    Arguments as ``ctc_loss``. The gradient of ``losses.sum()``: with ``from_logits`` it is the fused
    ``softmax(z) - gamma``; for probabilities it goes back through their normalisation (and is zero where
    the clip at 1e-7 is active). Steps at or after a sequence's ``output_length`` get zero gradient, and
    so does a sequence whose loss is infinite.
    """
    from_logits = _check_flag("from_logits", from_logits)
    y = _check_output(output, "output")
    B, T, K = y.shape
    mask_index = _check_int("mask_index", mask_index, 0, K)
    input_length = _lengths(output_length, "output_length", B, 1, T, "each sequence's number of time steps")
    label_length = _lengths(target_length, "target_length", B, 0, None, "each sequence's number of labels")
    labels = _check_labels(target, label_length, input_length, K, mask_index)
    log_y, p = _log_probabilities(y, from_logits, "output")

    with np.errstate(divide="ignore"):      # log(0) = -inf marks unreachable states
        losses, d_log_y = _forward_backward(log_y, labels, label_length, input_length, mask_index)
    if from_logits:
        valid = (np.arange(T)[None, :] < input_length[:, None])[..., None]      # (B, T, 1)
        grad = p * valid + d_log_y
    else:
        q = np.maximum(p, EPSILON)
        dq = np.where(p > EPSILON, d_log_y / q, 0.0)
        grad = (dq - (dq * p).sum(axis=-1, keepdims=True)) / y.astype(np.float64).sum(axis=-1, keepdims=True)
    grad[~np.isfinite(losses)] = 0.0
    return losses.astype(y.dtype), grad.astype(y.dtype)


def ctc_loss(target: Any, output: Any, target_length: Any, output_length: Any, mask_index: int = 0,
             from_logits: bool = False) -> np.ndarray:
    """CTC loss ``-log p(target | output)`` of each sequence, shape ``(B,)``, as Keras 3's ``keras.ops.ctc_loss``.

    Args:
        target: ``(B, L)`` integer labels in ``[0, K)``, none equal to ``mask_index``; row ``b`` holds its
            ``target_length[b]`` labels first (whatever follows is padding and ignored).
        output: ``(B, T, K)`` probabilities (each step normalised to sum 1, clipped below at 1e-7) or, with
            ``from_logits=True``, logits or log-probabilities (a log-softmax is applied, as Keras 3 does).
        target_length: ``(B,)`` the number of labels of each sequence, ``0 <= target_length <= L``.
        output_length: ``(B,)`` the number of time steps of each sequence, ``1 <= output_length <= T``;
            later steps are padding and do not count.
        mask_index: the blank class (Keras' name), 0 by default; PyTorch calls it ``blank``.
        from_logits: whether ``output`` holds logits rather than probabilities. Keras 3's
            ``keras.ops.ctc_loss(target, output, target_length, output_length)`` is this function with
            ``from_logits=True``.

    A labelling that no path of ``output_length`` steps can produce (more labels, plus one blank per
    repeated neighbour, than steps) raises a ``ValueError``, since no output could ever fit it (PyTorch
    returns ``inf``). A labelling that only the output rules out (a ``-inf`` logit on every path; a
    probability is clipped at 1e-7 so never rules one out) gets an infinite loss, as PyTorch's
    ``zero_infinity=False``, and a zero gradient (PyTorch's is NaN); ``fit`` stops at such a loss.
    """
    return ctc_loss_and_grad(target, output, target_length, output_length, mask_index, from_logits)[0]


# -- decoding ----------------------------------------------------------------------------

def _prefix_beam_search(log_y: np.ndarray, beam_width: int, blank: int) -> tuple[list[tuple], np.ndarray]:
    """The prefixes that survive a beam search over ``log_y (T, K)`` and their log-probabilities, best first.

    Every prefix keeps two scores: ``b``, the probability of the paths read so far that end in a blank,
    and ``n``, of those that end in its last label. At each step a prefix ``p`` with last label ``c``
    stays ``p`` with a blank (``b' = (b + n) y[-]``) or with ``c`` again (``n' = n y[c]``), and becomes
    ``p + k`` (``n' = (b + n) y[k]``, or ``b y[k]`` for ``k = c``, which needs the blank between). Paths
    that reach the same prefix are summed; the ``beam_width`` most probable prefixes are kept.
    """
    K = log_y.shape[1]
    prefixes: list[tuple] = [()]
    b, n = np.zeros(1), np.full(1, -np.inf)                  # (N,) log scores of the beams
    for lp in log_y:                                         # lp: (K,)
        total = np.logaddexp(b, n)                           # (N,)
        last = np.array([p[-1] if p else -1 for p in prefixes])
        stay_b = total + lp[blank]
        stay_n = np.where(last >= 0, n + lp[last], -np.inf)  # lp[-1] for the empty prefix is masked out
        grow = total[:, None] + lp[None, :]                  # (N, K) p + k
        again = last[:, None] == np.arange(K)
        grow[again] = (b[:, None] + lp[None, :])[again]
        grow[:, blank] = -np.inf
        # a longer prefix that is already in the beam collects the paths that grow into it
        index = {p: i for i, p in enumerate(prefixes)}
        for j, p in enumerate(prefixes):
            i = index.get(p[:-1]) if p else None
            if i is not None:
                stay_n[j] = np.logaddexp(stay_n[j], grow[i, p[-1]])
                grow[i, p[-1]] = -np.inf
        scores = np.concatenate([np.logaddexp(stay_b, stay_n), grow.ravel()])   # (N + N K,)
        keep = np.argsort(-scores, kind="stable")[:beam_width]
        keep = keep[np.isfinite(scores[keep])]
        N = len(prefixes)
        new_prefixes, new_b, new_n = [], np.empty(len(keep)), np.empty(len(keep))
        for j, c in enumerate(keep):
            if c < N:
                new_prefixes.append(prefixes[c])
                new_b[j], new_n[j] = stay_b[c], stay_n[c]
            else:
                i, k = divmod(int(c) - N, K)
                new_prefixes.append(prefixes[i] + (k,))
                new_b[j], new_n[j] = -np.inf, grow[i, k]
        prefixes, b, n = new_prefixes, new_b, new_n
    total = np.logaddexp(b, n)
    order = np.argsort(-total, kind="stable")
    return [prefixes[i] for i in order], total[order]


def ctc_decode(inputs: Any, sequence_lengths: Any, strategy: str = "greedy", beam_width: int = 100,
               top_paths: int = 1, merge_repeated: bool = True, mask_index: int = 0,
               from_logits: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labellings read from a CTC model's output, as Keras 3's ``keras.ops.ctc_decode``.

    Args:
        inputs: ``(B, T, K)`` probabilities or, with ``from_logits=True``, logits (as Keras takes them).
        sequence_lengths: ``(B,)`` the number of steps of each sequence, in ``[0, T]``.
        strategy: ``"greedy"`` (best path: the most probable class at every step, read as a labelling) or
            ``"beam_search"`` (prefix beam search: the most probable labellings, summing over their paths).
        beam_width: how many prefixes beam search keeps at each step.
        top_paths: how many labellings beam search returns (greedy returns one).
        merge_repeated: greedy only: whether a class repeated at consecutive steps is one label (the CTC
            reading); beam search always merges, as Keras' does.
        mask_index: the blank class.
        from_logits: whether ``inputs`` holds logits (a log-softmax is applied) rather than probabilities.

    Returns:
        ``(paths, scores)``: ``paths`` ``(top_paths, B, T)`` int32 holds each labelling first, then ``-1``
        (``top_paths`` is 1 for greedy); ``scores`` ``(B, top_paths)``. Greedy scores are ``-sum_t max_k``
        of the inputs (the logits as given, as Keras, or the log-probabilities): the negative log-probability
        of the best path when those are log-probabilities. Beam search scores are the log-probabilities
        of the labellings (``-inf`` for a labelling not found, whose path is all ``-1``).
    """
    from_logits = _check_flag("from_logits", from_logits)
    merge_repeated = _check_flag("merge_repeated", merge_repeated)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(map(repr, STRATEGIES))}, got {strategy!r}.")
    beam_width = _check_int("beam_width", beam_width, 1)
    top_paths = _check_int("top_paths", top_paths, 1)
    if strategy == "beam_search" and top_paths > beam_width:
        raise ValueError(f"top_paths ({top_paths}) cannot exceed beam_width ({beam_width}): beam search keeps only "
                         "beam_width labellings.")
    y = _check_output(inputs, "inputs")
    B, T, K = y.shape
    mask_index = _check_int("mask_index", mask_index, 0, K)
    lengths = _lengths(sequence_lengths, "sequence_lengths", B, 0, T, "each sequence's number of time steps")
    score_dtype = np.result_type(y.dtype, np.float32)
    if from_logits:
        log_y = y.astype(np.float64)                         # greedy scores the logits as given, as Keras
    else:
        log_y = _log_probabilities(y, False, "inputs")[0]
    valid = np.arange(T)[None, :] < lengths[:, None]         # (B, T)

    if strategy == "greedy":
        best = log_y.argmax(axis=-1)                         # (B, T)
        score = -np.where(valid, log_y.max(axis=-1), 0.0).sum(axis=1)
        best = np.where(valid, best, mask_index)
        if merge_repeated:
            repeat = np.zeros_like(valid)
            repeat[:, 1:] = best[:, 1:] == best[:, :-1]
            best = np.where(repeat, mask_index, best)
        kept = best != mask_index
        order = np.argsort(np.where(kept, np.arange(T), T), axis=1, kind="stable")   # the labels first
        paths = np.take_along_axis(np.where(kept, best, -1), order, axis=1)
        return paths[None].astype(np.int32), score[:, None].astype(score_dtype)

    if from_logits:
        log_y = _log_probabilities(y, True, "inputs")[0]
    paths = np.full((top_paths, B, T), -1, dtype=np.int32)
    scores = np.full((B, top_paths), -np.inf)
    for i in range(B):
        found, total = _prefix_beam_search(log_y[i, :lengths[i]], beam_width, mask_index)
        for j, (prefix, score) in enumerate(zip(found[:top_paths], total[:top_paths])):
            paths[j, i, :len(prefix)] = prefix
            scores[i, j] = score
    return paths, scores.astype(score_dtype)


# -- error rates -------------------------------------------------------------------------

def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """The Levenshtein distance: the fewest substitutions, insertions and deletions that turn one into the other."""
    previous = list(range(len(hypothesis) + 1))              # distances from reference[:0]
    for i, r in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + int(r != h))
        previous = current
    return int(previous[-1])


def _pairs(references: Any, hypotheses: Any, words: bool) -> list[tuple[Sequence, Sequence]]:
    """``(reference, hypothesis)`` token sequences: characters (or words, split on spaces) of strings, or the
    items of sequences such as label lists."""
    if isinstance(references, str) or isinstance(hypotheses, str):
        if not (isinstance(references, str) and isinstance(hypotheses, str)):
            raise TypeError("references and hypotheses must both be strings or both be sequences of them, got "
                            f"{type(references).__name__} and {type(hypotheses).__name__}.")
        references, hypotheses = [references], [hypotheses]
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(f"Got {len(references)} references but {len(hypotheses)} hypotheses; give one each.")

    def tokens(item: Any) -> Sequence:
        if isinstance(item, str):
            return item.split() if words else item
        if isinstance(item, (list, tuple, np.ndarray)):
            return list(np.asarray(item).ravel()) if isinstance(item, np.ndarray) else item
        raise TypeError(f"Each reference and hypothesis must be a string or a sequence of tokens, got "
                        f"{type(item).__name__}: {item!r}.")

    return [(tokens(r), tokens(h)) for r, h in zip(references, hypotheses)]


def _error_rate(pairs: list[tuple[Sequence, Sequence]], unit: str) -> float:
    total = sum(len(r) for r, _ in pairs)
    if total == 0:
        raise ValueError(f"The references have no {unit}s, so the error rate is undefined.")
    return float(sum(edit_distance(r, h) for r, h in pairs) / total)


def character_error_rate(references: Any, hypotheses: Any) -> float:
    """CER: the summed edit distances over the total reference length (can exceed 1 with many insertions).

    ``references`` and ``hypotheses`` are two strings, or two equally long sequences whose items are
    strings (compared character by character) or token sequences (e.g. lists of label indices).
    """
    return _error_rate(_pairs(references, hypotheses, words=False), "character")


def word_error_rate(references: Any, hypotheses: Any) -> float:
    """WER: ``character_error_rate`` over words, strings being split on whitespace."""
    return _error_rate(_pairs(references, hypotheses, words=True), "word")


__all__ = ["ctc_loss", "ctc_loss_and_grad", "ctc_decode", "edit_distance", "character_error_rate",
           "word_error_rate"]

"""Data generators for the Mamba paper's synthetic tasks (Gu & Dao 2023, §4.1).  Explained in lesson 5.

Both return ``(inputs, targets)``: token ids (batch, length) and the tokens to predict at the same
positions, with ``IGNORE`` (-100, PyTorch's ``ignore_index``) wherever nothing is asked.

Selective copying
    ``n_data`` data tokens sit at random positions among ``n_noise`` noise tokens; then come
    ``n_data`` marker tokens, and at each marker the model must output the next data token, in
    order. Remembering *where* the data were needs content-aware forgetting: the noise must be
    ignored. (Plain copying, with the data at fixed positions, is solved by a time-invariant
    filter; the random spacing is what breaks LTI models.)

Induction heads
    Random tokens; one special token ``TRIGGER`` appears somewhere followed by an answer token,
    and again as the last token: the model must output the answer there. Train at one length
    and test at longer ones: a model that really learned "recall the token after the trigger"
    extrapolates.
"""

import torch

IGNORE = -100  # target value for positions without a question (torch's cross-entropy ignore_index)

# selective copying vocabulary: 0 noise, 1 marker, 2 … 2 + n_values − 1 data
NOISE, MARKER, FIRST_DATA = 0, 1, 2
# induction heads vocabulary: 0 trigger, 1 … vocab − 1 ordinary tokens
TRIGGER = 0


def _check_int(name, value, minimum):
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")


def selective_copying_vocab(n_values):
    """Vocabulary size of :func:`selective_copying_batch` with ``n_values`` distinct data tokens."""
    return FIRST_DATA + n_values


def selective_copying_batch(batch, n_data, n_noise, n_values, generator):
    """A batch of the selective copying task.

    Parameters
    ----------
    batch : int
    n_data : int
        Data tokens to memorise (and markers at the end).
    n_noise : int
        Noise tokens mixed with the data; the sequence length is ``n_noise + 2·n_data``.
    n_values : int
        Distinct data tokens, ids ``FIRST_DATA … FIRST_DATA + n_values − 1``.
    generator : torch.Generator
        Source of randomness (seeded by the caller).

    Returns
    -------
    inputs : LongTensor, shape (batch, n_noise + 2·n_data)
        ``[noise and data scattered] + [MARKER] · n_data``.
    targets : LongTensor, same shape
        The data tokens, in order, at the marker positions; ``IGNORE`` elsewhere.
    """
    for name, value, minimum in (("batch", batch, 1), ("n_data", n_data, 1), ("n_noise", n_noise, 0),
                                 ("n_values", n_values, 1)):
        _check_int(name, value, minimum)
    memory = n_noise + n_data  # the part where data and noise are mixed
    data = torch.randint(FIRST_DATA, FIRST_DATA + n_values, (batch, n_data), generator=generator)
    # random, sorted positions of the data inside the memory part: argsort of random keys
    positions = torch.rand(batch, memory, generator=generator).argsort(dim=1)[:, :n_data].sort(dim=1).values
    inputs = torch.full((batch, memory + n_data), NOISE, dtype=torch.long)
    inputs.scatter_(1, positions, data)
    inputs[:, memory:] = MARKER
    targets = torch.full_like(inputs, IGNORE)
    targets[:, memory:] = data
    return inputs, targets


def induction_heads_batch(batch, length, vocab_size, generator):
    """A batch of the induction heads task.

    Parameters
    ----------
    batch : int
    length : int
        Sequence length (≥ 4).
    vocab_size : int
        Vocabulary size including ``TRIGGER`` (≥ 3).
    generator : torch.Generator

    Returns
    -------
    inputs : LongTensor, shape (batch, length)
        Random tokens in ``1 … vocab_size − 1``; ``TRIGGER`` at one random position p ≤ length − 3
        and at the last position.
    targets : LongTensor, same shape
        ``inputs[p + 1]`` at the last position; ``IGNORE`` elsewhere.
    """
    _check_int("batch", batch, 1)
    _check_int("length", length, 4)
    _check_int("vocab_size", vocab_size, 3)
    inputs = torch.randint(1, vocab_size, (batch, length), generator=generator)
    p = torch.randint(0, length - 2, (batch,), generator=generator)  # the answer at p + 1 ≤ length − 2
    rows = torch.arange(batch)
    inputs[rows, p] = TRIGGER
    inputs[:, -1] = TRIGGER
    targets = torch.full_like(inputs, IGNORE)
    targets[:, -1] = inputs[rows, p + 1]
    return inputs, targets


def example_sequences(n_rows=4, n_data=4, n_noise=60, n_values=8, length=48, vocab_size=16, generator=None):
    """Example batches of both tasks: ``{"copying": (inputs, targets), "induction": (inputs, targets)}`` (numpy).

    ``generator``: a ``torch.Generator`` (default: a new one seeded with 0).
    """
    gen = torch.Generator().manual_seed(0) if generator is None else generator
    return {
        "copying": tuple(t.numpy() for t in selective_copying_batch(n_rows, n_data, n_noise, n_values, gen)),
        "induction": tuple(t.numpy() for t in induction_heads_batch(n_rows, length, vocab_size, gen)),
    }

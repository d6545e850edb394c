"""Reference Philox4x32-10 counter-based random number generator, in plain NumPy.

This module is the *definition* of every random number fastae draws. The
NumPy, Numba and CUDA backends must reproduce :func:`random_bits` bit for bit,
so the code here favours being obviously correct over being fast.

Philox4x32-R (Salmon, Moraes, Dror & Shaw, "Parallel Random Numbers: As Easy
as 1, 2, 3", SC11; the Random123 library) maps a 128-bit counter
``c = (c0, c1, c2, c3)`` and a 64-bit key ``k = (k0, k1)`` (all 32-bit words)
to 128 pseudo-random bits. One round is::

    (hi0, lo0) = mulhilo32(M0, c0)        # M0 * c0 = hi0 * 2**32 + lo0
    (hi1, lo1) = mulhilo32(M1, c2)
    c = (hi1 ^ c1 ^ k0,  lo1,  hi0 ^ c3 ^ k1,  lo0)

and between consecutive rounds the key is bumped by the Weyl constants,
``k0 += W0, k1 += W1 (mod 2**32)``. Round ``i`` (0-based) therefore uses the
key ``k + i * W``. Philox4x32-10 is R = 10.

Addressing. Every draw is a pure function of
``(key, stream, step, row, column)``: element ``(r, c)`` of a draw is word
``c % 4`` of the Philox block with counter::

    (c // 4,  row0 + r,  step,  stream)

``stream`` separates independent consumers (see the ``STREAM_*``
constants), ``step`` is e.g. the epoch or minibatch index, and rows/columns
index the output matrix. Any sub-block can thus be recomputed independently,
in any order, by any number of threads, with identical results.

Floating-point conversions (:func:`uniform`, :func:`normal`) are specified
below. ``uniform`` is exact in float32 and float64. ``normal`` goes through
``log``/``sqrt``/``cos``/``sin`` in float64, so another backend agrees with it
only up to the accuracy of its libm; its 32-bit words always agree exactly.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "STREAM_INIT",
    "STREAM_SHUFFLE",
    "STREAM_NOISE",
    "STREAM_EPS",
    "STREAM_SAMPLE",
    "PHILOX_M0",
    "PHILOX_M1",
    "PHILOX_W0",
    "PHILOX_W1",
    "philox4x32",
    "resolve_seed",
    "key_from_seed",
    "random_bits",
    "uniform",
    "normal",
    "permutation",
]

STREAM_INIT = 0  # weight initialisation
STREAM_SHUFFLE = 1  # per-epoch row permutations
STREAM_NOISE = 2  # denoising corruption
STREAM_EPS = 3  # VAE reparameterisation noise
STREAM_SAMPLE = 4  # VAE sample(n) / encode(sample=True)

PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57  # round multipliers
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85  # key-schedule Weyl increments

_ROUNDS = 10
_U32 = 1 << 32
_U64 = 1 << 64

# uint64 copies so that every intermediate stays uint64: the product of two
# 32-bit words needs 64 bits, and mixing in Python ints could otherwise
# promote to int64/float64 under older NumPy promotion rules.
_M0 = np.uint64(PHILOX_M0)
_M1 = np.uint64(PHILOX_M1)
_W0 = np.uint64(PHILOX_W0)
_W1 = np.uint64(PHILOX_W1)
_LO32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)

# Uniforms keep the top 23 of the 32 bits. With 23 bits, (m + 1/2) * 2**-23
# is an odd multiple of 2**-24 below 1, i.e. needs at most 24 significant
# bits, which is exactly a float32 significand. With 24 bits the offset grid
# would need 25 significant bits, so float32 would round (the top value
# 1 - 2**-25 would round to exactly 1.0) and float32 would disagree with
# float64.
_UNIFORM_SHIFT = 9
_UNIFORM_SCALE = 2.0**-23

_TWO_PI = 2.0 * np.pi

# Bounds the size of the uint64 temporaries in random_bits (in Philox blocks
# per chunk). Chunking cannot change results because every block is addressed
# independently; the test suite checks this by shrinking it.
_CHUNK_BLOCKS = 1 << 16

_RANDOM_STATE_ACCEPTED = "None, an int in [0, 2**64), a numpy.random.Generator or a numpy.random.RandomState"


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------


def _is_int(value) -> bool:
    # bool is an int subclass, but True as a seed/row index is almost surely a bug.
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_int(name: str, value, low: int, high: int | None, high_text: str | None = None) -> int:
    """Return ``int(value)`` if it is an integer with ``low <= value < high``."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} ({value!r})")
    value = int(value)
    if value < low or (high is not None and value >= high):
        bound = f"[{low}, {high_text or high})" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an int {bound}; got {value}")
    return value


def _check_seed(value) -> int:
    if not _is_int(value):
        raise TypeError(f"seed must be an int in [0, 2**64); got {type(value).__name__} ({value!r})")
    value = int(value)
    if not 0 <= value < _U64:
        raise ValueError(f"seed must be an int in [0, 2**64); got {value}")
    return value


def _as_words(name: str, value, last_dim: int) -> np.ndarray:
    """Validate an array of 32-bit words with trailing dimension ``last_dim``; return it as uint64."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an array of unsigned 32-bit integers; got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.shape[-1] != last_dim:
        raise ValueError(f"{name} must have shape (..., {last_dim}); got shape {arr.shape}")
    if arr.dtype != np.uint32 and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= _U32:
            raise ValueError(f"{name} words must lie in [0, 2**32); got values in [{lo}, {hi}]")
    return arr.astype(np.uint64)


def _key_words(key) -> tuple[np.uint64, np.uint64]:
    k = _as_words("key", key, 2)
    if k.shape != (2,):
        raise ValueError(f"key must have shape (2,) (see key_from_seed); got shape {k.shape}")
    return k[0], k[1]


def _check_float_dtype(dtype) -> np.dtype:
    if dtype is None:
        raise TypeError("dtype must be numpy.float32 or numpy.float64; got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64; got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64; got {dt}")
    return dt


# ---------------------------------------------------------------------------
# the block cipher
# ---------------------------------------------------------------------------


def _philox_rounds(c0, c1, c2, c3, k0, k1, rounds: int):
    """Apply ``rounds`` Philox4x32 rounds to uint64 arrays holding 32-bit words.

    All arguments broadcast against each other. Returns the four output words
    as uint64 arrays (values < 2**32).
    """
    for i in range(rounds):
        if i:
            k0 = (k0 + _W0) & _LO32
            k1 = (k1 + _W1) & _LO32
        # Both factors are < 2**32, so the exact product fits in uint64.
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (
            (p1 >> _SHIFT32) ^ c1 ^ k0,
            p1 & _LO32,
            (p0 >> _SHIFT32) ^ c3 ^ k1,
            p0 & _LO32,
        )
    return c0, c1, c2, c3


def philox4x32(counter, key, rounds: int = 10) -> np.ndarray:
    """Philox4x32-R block function (Random123), vectorised over leading axes.

    Parameters
    ----------
    counter : array-like of int, shape (..., 4)
        Counter words ``(c0, c1, c2, c3)``, each in ``[0, 2**32)``.
    key : array-like of int, shape (2,) or (..., 2)
        Key words ``(k0, k1)``; leading axes broadcast against ``counter``'s.
    rounds : int, default 10
        Number of rounds R >= 0. Round ``i`` uses key ``k + i * (W0, W1)``
        (mod 2**32) and maps::

            (hi0, lo0) = mulhilo32(M0, c0);  (hi1, lo1) = mulhilo32(M1, c2)
            c -> (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)

        where ``mulhilo32(a, b) = (a*b >> 32, a*b mod 2**32)``.

    Returns
    -------
    numpy.ndarray of uint32, shape broadcast(counter[..., 0], key[..., 0]) + (4,)
    """
    ctr = _as_words("counter", counter, 4)
    k = _as_words("key", key, 2)
    rounds = _check_int("rounds", rounds, 0, None)
    try:
        batch = np.broadcast_shapes(ctr.shape[:-1], k.shape[:-1])
    except ValueError:
        raise ValueError(
            f"counter batch shape {ctr.shape[:-1]} and key batch shape {k.shape[:-1]} do not broadcast"
        ) from None
    words = _philox_rounds(ctr[..., 0], ctr[..., 1], ctr[..., 2], ctr[..., 3], k[..., 0], k[..., 1], rounds)
    return np.stack([np.broadcast_to(w, batch) for w in words], axis=-1).astype(np.uint32)


# ---------------------------------------------------------------------------
# seeds and keys
# ---------------------------------------------------------------------------


def resolve_seed(random_state) -> int:
    """Turn a user ``random_state`` into a 64-bit integer seed.

    * ``None``: fresh entropy from the OS, ``SeedSequence().entropy mod 2**64``.
    * an int (Python or NumPy, not bool) with ``0 <= s < 2**64``: ``s`` itself.
    * ``numpy.random.Generator``: ``gen.integers(0, 2**63)`` (advances ``gen``).
    * ``numpy.random.RandomState``: ``rs.randint(0, 2**63, dtype=int64)``
      (advances ``rs``).

    Anything else raises TypeError; an out-of-range int raises ValueError.
    """
    if random_state is None:
        return int(np.random.SeedSequence().entropy) & (_U64 - 1)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**63, dtype=np.int64))
    if not _is_int(random_state):
        raise TypeError(
            f"random_state must be {_RANDOM_STATE_ACCEPTED}; got {type(random_state).__name__} ({random_state!r})"
        )
    seed = int(random_state)
    if not 0 <= seed < _U64:
        raise ValueError(f"random_state must be {_RANDOM_STATE_ACCEPTED}; got the int {seed}")
    return seed


def key_from_seed(seed: int) -> np.ndarray:
    """Split a 64-bit seed into the Philox key ``[seed mod 2**32, seed >> 32]`` (uint32)."""
    seed = _check_seed(seed)
    return np.array([seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF], dtype=np.uint32)


# ---------------------------------------------------------------------------
# addressed draws
# ---------------------------------------------------------------------------


def _block_words(k0, k1, stream: int, step: int, row: int, n_rows: int, block: int, n_blocks: int):
    """Philox-10 outputs for rows ``row..row+n_rows-1`` and blocks ``block..block+n_blocks-1``.

    Returns uint32 of shape (n_rows, 4 * n_blocks), blocks laid out word by word.
    """
    shape = (n_rows, n_blocks)
    c0 = np.broadcast_to(np.arange(block, block + n_blocks, dtype=np.uint64), shape)
    c1 = np.broadcast_to(np.arange(row, row + n_rows, dtype=np.uint64)[:, None], shape)
    c2 = np.broadcast_to(np.uint64(step), shape)
    c3 = np.broadcast_to(np.uint64(stream), shape)
    words = _philox_rounds(c0, c1, c2, c3, k0, k1, _ROUNDS)
    return np.stack(words, axis=-1).astype(np.uint32).reshape(n_rows, 4 * n_blocks)


def random_bits(key, stream: int, step: int, n_rows: int, n_cols: int, row0: int = 0) -> np.ndarray:
    """Addressed raw 32-bit draws.

    ``out[r, c]`` is word ``c % 4`` of ``philox4x32((c // 4, row0 + r, step, stream), key)``
    (10 rounds). Hence ``random_bits(..., n_rows, n_cols, row0)`` equals
    ``random_bits(..., N, M, 0)[row0:row0 + n_rows, :n_cols]`` for any larger N, M.

    Parameters
    ----------
    key : uint32 array of shape (2,), as returned by :func:`key_from_seed`.
    stream, step : int in [0, 2**32)
    n_rows, n_cols : int >= 0 (either may be 0, giving an empty array)
    row0 : int >= 0, with ``row0 + n_rows <= 2**32`` so every row index fits in uint32.

    Returns
    -------
    numpy.ndarray of uint32, shape (n_rows, n_cols)
    """
    k0, k1 = _key_words(key)
    stream = _check_int("stream", stream, 0, _U32, "2**32")
    step = _check_int("step", step, 0, _U32, "2**32")
    n_rows = _check_int("n_rows", n_rows, 0, None)
    n_cols = _check_int("n_cols", n_cols, 0, None)
    row0 = _check_int("row0", row0, 0, _U32, "2**32")
    if row0 + n_rows > _U32:
        raise ValueError(
            f"rows row0 .. row0 + n_rows - 1 must fit in uint32 (row0 + n_rows <= 2**32); "
            f"got row0={row0}, n_rows={n_rows}"
        )
    n_blocks = -(-n_cols // 4)
    if n_blocks > _U32:
        raise ValueError(f"n_cols must be <= 4 * 2**32 (block index fits in uint32); got {n_cols}")

    out = np.empty((n_rows, n_cols), dtype=np.uint32)
    if out.size == 0:
        return out
    rows_per_chunk = max(1, _CHUNK_BLOCKS // n_blocks)
    blocks_per_chunk = min(n_blocks, _CHUNK_BLOCKS)
    for r in range(0, n_rows, rows_per_chunk):
        nr = min(rows_per_chunk, n_rows - r)
        for b in range(0, n_blocks, blocks_per_chunk):
            nb = min(blocks_per_chunk, n_blocks - b)
            col_lo, col_hi = 4 * b, min(n_cols, 4 * (b + nb))
            words = _block_words(k0, k1, stream, step, row0 + r, nr, b, nb)
            out[r : r + nr, col_lo:col_hi] = words[:, : col_hi - col_lo]
    return out


def _uniform_from_bits(bits, dtype=np.float64) -> np.ndarray:
    """``u = (floor(bits / 2**9) + 1/2) * 2**-23`` as ``dtype``.

    u is an odd multiple of 2**-24 in ``[2**-24, 1 - 2**-24]``: strictly inside
    (0, 1) and exactly representable in float32, so the float32 and float64
    results are the same numbers.
    """
    m = (np.asarray(bits, dtype=np.uint32) >> np.uint32(_UNIFORM_SHIFT)).astype(np.float64)
    return ((m + 0.5) * _UNIFORM_SCALE).astype(dtype, copy=False)


def uniform(key, stream: int, step: int, n_rows: int, n_cols: int, dtype=np.float32, row0: int = 0) -> np.ndarray:
    """Addressed uniforms on the open interval (0, 1).

    With ``b = random_bits(key, stream, step, n_rows, n_cols, row0)``::

        u = (floor(b / 2**9) + 1/2) * 2**-23

    i.e. 23 random bits on a grid of odd multiples of 2**-24, so
    ``2**-24 <= u <= 1 - 2**-24``. Every value is exact in float32, so
    ``dtype`` (float32 or float64) changes the storage, not the values.
    """
    dt = _check_float_dtype(dtype)
    return _uniform_from_bits(random_bits(key, stream, step, n_rows, n_cols, row0), dt)


def normal(key, stream: int, step: int, n_rows: int, n_cols: int, dtype=np.float32, row0: int = 0) -> np.ndarray:
    """Addressed standard normals by Box-Muller inside each Philox block.

    For the block of columns ``4j .. 4j+3`` of row r, let ``u0..u3`` be the
    :func:`uniform` values of those four words, in float64. Then::

        r01 = sqrt(-2 ln u0);  z0 = r01 cos(2 pi u1);  z1 = r01 sin(2 pi u1)
        r23 = sqrt(-2 ln u2);  z2 = r23 cos(2 pi u3);  z3 = r23 sin(2 pi u3)

    (angles are evaluated as ``(2 pi) * u``) and column ``c`` receives
    ``z_{c % 4}`` of block ``c // 4``. The last block is always computed in
    full, so a column's value does not depend on ``n_cols``. The float64
    result is cast to ``dtype`` at the end.
    """
    dt = _check_float_dtype(dtype)
    n_rows = _check_int("n_rows", n_rows, 0, None)
    n_cols = _check_int("n_cols", n_cols, 0, None)
    n_blocks = -(-n_cols // 4)
    bits = random_bits(key, stream, step, n_rows, 4 * n_blocks, row0)
    u = _uniform_from_bits(bits).reshape(n_rows, n_blocks, 4)
    r01 = np.sqrt(-2.0 * np.log(u[..., 0]))
    r23 = np.sqrt(-2.0 * np.log(u[..., 2]))
    t1 = _TWO_PI * u[..., 1]
    t3 = _TWO_PI * u[..., 3]
    z = np.stack([r01 * np.cos(t1), r01 * np.sin(t1), r23 * np.cos(t3), r23 * np.sin(t3)], axis=-1)
    return np.ascontiguousarray(z.reshape(n_rows, 4 * n_blocks)[:, :n_cols], dtype=dt)


def permutation(key, stream: int, step: int, n: int) -> np.ndarray:
    """Addressed permutation of ``range(n)`` (int64).

    ``argsort(random_bits(key, stream, step, 1, n)[0], kind="stable")``: sort
    indices by their 32-bit draw, ties broken by the smaller index first, so
    the result is fully determined by ``(key, stream, step, n)``.
    """
    n = _check_int("n", n, 0, None)
    bits = random_bits(key, stream, step, 1, n)[0]
    return np.argsort(bits, kind="stable").astype(np.int64, copy=False)

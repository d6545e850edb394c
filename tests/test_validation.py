"""Input validation at the public boundary (the "bad input" spec).

Bad input gets a ValueError or TypeError naming what was expected and what was received, raised before any work
is done; accepted input (ints, bools, lists, Fortran, strided, read-only, memory-mapped, float64 into float32)
gives exactly the result of the equivalent C-contiguous float array; a non-finite loss stops training with a
DivergenceError naming the epoch and batch, and the model keeps its last finite weights.

Every error test checks the exception type and a ``match=`` on the message that shows both the expectation and
what was received. "Before any work" is checked on twins: two identical fitted models, the failing call made on
one only; afterwards their weights, history and counters are equal, and so is one more ``partial_fit`` (so the
optimizer state and the derived structure are intact too).
"""

import copy
import re

import numpy as np
import pytest
import scipy.sparse as sp

import fastae
from fastae import DivergenceError, NotFittedError
from fastae.validation import check_array

N, D, K = 20, 6, 3  # rows, features, code units (Autoencoder hidden[-1]); VAE latent is L
L = 2
X = np.random.default_rng(0).random((N, D))  # in [0, 1]: valid for loss="bce"
X.flags.writeable = False  # a test that writes into the shared data fails loudly

CLASSES = [fastae.Autoencoder, fastae.VAE]
ids_cls = lambda c: c.__name__  # noqa: E731


def make(cls, **kw):
    base = dict(hidden=(K,), epochs=1, batch_size=8, random_state=0)
    if cls is fastae.VAE:
        base["latent"] = L
    base.update(kw)
    return cls(**base)


def fitted(cls, **kw):
    return make(cls, **kw).fit(X)


def code_width(model):
    return L if isinstance(model, fastae.VAE) else K


def code_name(model):
    return "Z" if isinstance(model, fastae.VAE) else "H"


def code_units(model):
    return "latent units" if isinstance(model, fastae.VAE) else "code units"


def assert_state_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]), k
    assert a.history_ == b.history_
    assert (a.t_, a.n_epochs_, a.n_features_in_) == (b.t_, b.n_epochs_, b.n_features_in_)


def assert_twins(a, b):
    """``a`` (which saw a failing call) is indistinguishable from its untouched twin ``b``."""
    a.set_params(**b.get_params())
    assert_state_equal(a, b)
    assert list(a.get_feature_names_out()) == list(b.get_feature_names_out())
    H = np.full((2, code_width(b)), 0.25)
    assert np.array_equal(a.decode(H), b.decode(H))
    assert np.array_equal(a.encode(X), b.encode(X))
    if isinstance(a, fastae.VAE):  # the sample stream did not advance
        assert np.array_equal(a.encode(X, sample=True), b.encode(X, sample=True))
        assert np.array_equal(a.sample(3), b.sample(3))
    a.partial_fit(X)  # optimizer state, noise/sparsity settings and structure are the same too
    b.partial_fit(X)
    assert_state_equal(a, b)
    for m in (a, b):  # the weight layout the model checks against is intact
        m.load_state_dict(m.state_dict())
    assert_state_equal(a, b)


def twins(cls, **kw):
    return fitted(cls, **kw), fitted(cls, **kw)


def assert_not_fitted(model):
    with pytest.raises(NotFittedError):
        model.state_dict()
    with pytest.raises(NotFittedError):
        model.encode(X)


# ---------------------------------------------------------------------------------------------------------------
# Entry points that take data
# ---------------------------------------------------------------------------------------------------------------
# name -> (call(model, data), the argument's name in the message)
X_ENTRIES = {
    "fit": (lambda m, A: m.fit(A), "X"),
    "fit_transform": (lambda m, A: m.fit_transform(A), "X"),
    "partial_fit": (lambda m, A: m.partial_fit(A), "X"),
    "fit_validation_data": (lambda m, A: m.fit(X, validation_data=A), "validation_data"),
    "encode": (lambda m, A: m.encode(A), "X"),
    "transform": (lambda m, A: m.transform(A), "X"),
    "reconstruct": (lambda m, A: m.reconstruct(A), "X"),
    "score_samples": (lambda m, A: m.score_samples(A), "X"),
    "score": (lambda m, A: m.score(A), "X"),
}
VAE_X_ENTRIES = {
    "elbo": (lambda m, A: m.elbo(A), "X"),
    "encode_sample": (lambda m, A: m.encode(A, sample=True), "X"),
}
FIT_ENTRIES = ("fit", "fit_transform", "partial_fit", "fit_validation_data")  # these also work unfitted
CODE_ENTRIES = {
    "decode": lambda m, A: m.decode(A),
    "inverse_transform": lambda m, A: m.inverse_transform(A),
}

X_CASES = [(cls, e) for cls in CLASSES for e in X_ENTRIES] + [(fastae.VAE, e) for e in VAE_X_ENTRIES]
X_CASE_IDS = [f"{c.__name__}-{e}" for c, e in X_CASES]
CODE_CASES = [(cls, e) for cls in CLASSES for e in CODE_ENTRIES]
CODE_CASE_IDS = [f"{c.__name__}-{e}" for c, e in CODE_CASES]


def entry(name):
    return {**X_ENTRIES, **VAE_X_ENTRIES}[name]


def with_nans():
    A = X.copy()
    A[3, 2] = np.nan
    A[5, 1] = np.inf
    A[7, 0] = np.nan
    return A


def with_neg_inf():
    A = X.copy()
    A[0, 4] = -np.inf
    return A


def too_big_for_float32():
    A = X.copy()
    A[4, 1] = 1e300
    A[9, 0] = -1e39
    return A


def out_of_unit():
    A = X.copy()
    A[2, 3] = 1.5
    A[6, 0] = -0.25
    A[6, 1] = 3.0
    return A


def ragged():
    return [[0.5] * D, [0.5] * (D - 1)]


# (id, make data, exception, message pattern with {name} for the argument's name)
BAD_X = [
    (
        "nan_and_inf",
        with_nans,
        ValueError,
        r"^{name} contains 3 non-finite value\(s\) \(NaN or inf\); the first is nan at row 3, column 2$",
    ),
    (
        "neg_inf",
        with_neg_inf,
        ValueError,
        r"^{name} contains 1 non-finite value\(s\).*first is -inf at row 0, column 4$",
    ),
    (
        "float32_overflow",
        too_big_for_float32,
        ValueError,
        r"^{name} has 2 value\(s\) too large for dtype='float32' \(largest finite 3\.403e\+38\); the first is "
        r"1e\+300 at row 4, column 1",
    ),
    (
        "bce_outside_unit",
        out_of_unit,
        ValueError,
        r"^{name} has 3 value\(s\) outside \[0, 1\], which loss='bce' \(cross-entropy\) needs as targets; the first "
        r"is 1\.5 at row 2, column 3\. Scale the data to \[0, 1\] or use loss='mse'",
    ),
    (
        "one_d",
        lambda: X[0],
        ValueError,
        r"^{name} must be 2-D of shape \(n_samples, n_features\), got 1-D array of shape \(6,\)\. Reshape your "
        r"data: {name}\.reshape\(1, -1\) if it is one sample, {name}\.reshape\(-1, 1\) if it is one feature$",
    ),
    ("three_d", lambda: X[None], ValueError, r"^{name} must be 2-D .*got 3-D array of shape \(1, 20, 6\)$"),
    ("zero_d", lambda: np.float64(0.5), ValueError, r"^{name} must be 2-D .*got 0-D array of shape \(\)$"),
    (
        "no_rows",
        lambda: np.empty((0, D)),
        ValueError,
        r"^{name} is empty: found 0 sample\(s\) \(shape=\(0, 6\)\) while a minimum of 1 is required\.$",
    ),
    ("empty_list", lambda: [], ValueError, r"^{name} must be 2-D .*got 1-D array of shape \(0,\)"),
    (
        "no_columns",
        lambda: np.empty((5, 0)),
        ValueError,
        r"^{name} has no features: found 0 feature\(s\) \(shape=\(5, 0\)\) while a minimum of 1 is required\.$",
    ),
    (
        "complex",
        lambda: X.astype(np.complex128),
        ValueError,  # ValueError as scikit-learn's check_complex_data
        r"^Complex data not supported: {name} has complex dtype complex128; fastae needs real numbers$",
    ),
    (
        "complex_list",
        lambda: [[1 + 2j] * D] * 2,
        ValueError,
        r"^Complex data not supported: {name} has complex "
        r"dtype complex128",
    ),
    (
        "object",
        lambda: X.astype(object),
        TypeError,
        r"^{name} has dtype object; expected a real numeric dtype \(float, int or bool\)",
    ),
    ("none_in_list", lambda: [[0.5] * (D - 1) + [None]] * 2, TypeError, r"^{name} has dtype object; expected"),
    ("strings", lambda: np.full((2, D), "0.5"), TypeError, r"^{name} has dtype <U3; expected a real numeric"),
    ("a_string", lambda: "0.5", TypeError, r"^{name} must be a 2-D array of numbers, got str"),
    (
        "datetime",
        lambda: np.zeros((2, D), dtype="datetime64[s]"),
        TypeError,
        r"^{name} has dtype datetime64\[s\]; expected a real numeric",
    ),
    ("ragged", ragged, ValueError, r"^{name} could not be read as an array: .*inhomogeneous"),
    (
        "csr_matrix",
        lambda: sp.csr_matrix(X),
        TypeError,
        r"^{name} is a sparse matrix \(csr_matrix\); fastae needs a dense array: pass {name}\.toarray\(\)",
    ),
    ("csr_array", lambda: sp.csr_array(X), TypeError, r"^{name} is a sparse matrix \(csr_array\).*toarray\(\)"),
    ("coo_matrix", lambda: sp.coo_matrix(X), TypeError, r"^{name} is a sparse matrix \(coo_matrix\).*toarray\(\)"),
    (
        "masked",
        lambda: np.ma.masked_greater(X, 0.9),
        ValueError,
        rf"^{{name}} is a masked array with {int((X > 0.9).sum())} masked value\(s\); the first is at row "
        rf"{np.argwhere(X > 0.9)[0][0]}, column {np.argwhere(X > 0.9)[0][1]}; fastae needs every value: pass "
        r"{name}\.filled\(fill_value\)$",
    ),
]
BAD_X_IDS = [c[0] for c in BAD_X]


@pytest.mark.parametrize("case", BAD_X, ids=BAD_X_IDS)
@pytest.mark.parametrize("cls,name", X_CASES, ids=X_CASE_IDS)
def test_bad_X_on_fitted_model_raises_and_changes_nothing(cls, name, case):
    _, data, exc, pattern = case
    call, argname = entry(name)
    a, b = twins(cls)
    with pytest.raises(exc, match=pattern.format(name=re.escape(argname))):
        call(a, data())
    assert_twins(a, b)


FIT_X_CASES = [(cls, e) for cls in CLASSES for e in FIT_ENTRIES]


@pytest.mark.parametrize("case", BAD_X, ids=BAD_X_IDS)
@pytest.mark.parametrize("cls,name", FIT_X_CASES, ids=[f"{c.__name__}-{e}" for c, e in FIT_X_CASES])
def test_bad_X_on_unfitted_model_raises_and_leaves_it_unfitted(cls, name, case):
    _, data, exc, pattern = case
    call, argname = entry(name)
    m = make(cls)
    with pytest.raises(exc, match=pattern.format(name=re.escape(argname))):
        call(m, data())
    assert_not_fitted(m)


WIDTH_CASES = [(c, e) for c, e in X_CASES if e not in ("fit", "fit_transform")]  # fit may start a new width


@pytest.mark.parametrize("cls,name", WIDTH_CASES, ids=[f"{c.__name__}-{e}" for c, e in WIDTH_CASES])
def test_wrong_feature_count_names_both_counts(cls, name):
    call, argname = entry(name)
    a, b = twins(cls)
    for width in (D - 1, D + 2):
        A = np.full((4, width), 0.5)
        want = D
        with pytest.raises(
            ValueError,
            match=rf"^{argname} has {width} features, but (the model|{cls.__name__}) is "
            rf"expecting {want} features as input \(got 2-D array of shape "
            rf"\(4, {width}\)\)$",
        ):
            call(a, A)
    assert_twins(a, b)


def test_validation_data_width_must_match_X_on_an_unfitted_model():
    m = make(fastae.Autoencoder)
    with pytest.raises(
        ValueError,
        match=r"^validation_data has 5 features, but (the model|Autoencoder) is "
        r"expecting 6 features as input",
    ):
        m.fit(X, validation_data=X[:, :5])
    assert_not_fitted(m)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_float64_overflow_is_accepted_by_a_float64_model():
    m = fitted(fastae.Autoencoder, dtype="float64", loss="mse")
    A = np.zeros((2, D))
    A[1, 3] = 1e300
    assert m.encode(A).shape == (2, m._code_size())  # no input error: 1e300 is a float64 value
    with pytest.raises(
        ValueError,
        match=r"score_samples overflows float64 for 1 row\(s\) of finite input, the "
        r"first \[1\]",
    ):
        m.score_samples(A)  # but its squared error is not, and the score says so instead of returning inf


def test_nan_in_an_int_looking_float_array_is_reported_with_its_position():
    m = fitted(fastae.Autoencoder, loss="mse")
    A = np.arange(4 * D, dtype=np.float16).reshape(4, D)
    A[2, 5] = np.nan
    with pytest.raises(ValueError, match=r"^X contains 1 non-finite value\(s\).*first is nan at row 2, column 5$"):
        m.encode(A)


def test_bce_range_check_applies_to_ints_and_names_the_value():
    m = fitted(fastae.Autoencoder)
    with pytest.raises(ValueError, match=r"^X has 1 value\(s\) outside \[0, 1\].*the first is 255 at row 1, column 0"):
        m.encode(np.array([[0] * D, [255] + [1] * (D - 1)], dtype=np.uint8))


def test_mse_accepts_data_outside_unit_interval():
    for cls in CLASSES:
        m = make(cls, loss="mse").fit(X * 10 - 5)
        assert np.isfinite(m.score_samples(X * 10 - 5)).all()


# --- decode / inverse_transform ------------------------------------------------------------------------------------
def _codes_with_nan(w):
    H = np.full((3, w), 0.5)
    H[0, 1] = np.nan
    H[2, 0] = -np.inf
    return H


BAD_CODES = [
    (
        "nan",
        lambda w: _codes_with_nan(w),
        ValueError,
        r"^{name} contains 2 non-finite value\(s\) \(NaN or inf\); the first is nan at row 0, column 1$",
    ),
    (
        "one_d",
        lambda w: np.zeros(w),
        ValueError,
        r"^{name} must be 2-D of shape \(n_samples, n_{units_}\), got 1-D array of shape \({w},\)\. Reshape your "
        r"data: {name}\.reshape\(1, -1\) if it is one sample, {name}\.reshape\(-1, 1\) if it is one {unit}$",
    ),
    (
        "no_rows",
        lambda w: np.zeros((0, w)),
        ValueError,
        r"^{name} is empty: found 0 sample\(s\) \(shape=\(0, {w}\)\) while a minimum of 1 is required\.$",
    ),
    (
        "no_columns",
        lambda w: np.zeros((3, 0)),
        ValueError,
        r"^{name} has no {units}: found 0 {unit}\(s\) \(shape=\(3, 0\)\) while a minimum of 1 is required\.$",
    ),
    (
        "complex",
        lambda w: np.zeros((3, w), complex),
        ValueError,
        r"^Complex data not supported: {name} has complex dtype complex128",
    ),
    ("object", lambda w: np.zeros((3, w), object), TypeError, r"^{name} has dtype object; expected a real numeric"),
    (
        "sparse",
        lambda w: sp.csr_matrix(np.zeros((3, w))),
        TypeError,
        r"^{name} is a sparse matrix \(csr_matrix\); fastae needs a dense array: pass {name}\.toarray\(\)",
    ),
    (
        "too_big",
        lambda w: np.full((3, w), 1e300),
        ValueError,
        r"^{name} has {n} value\(s\) too large for "
        r"dtype='float32'.*the first is 1e\+300 at row 0",
    ),
]


@pytest.mark.parametrize("case", BAD_CODES, ids=[c[0] for c in BAD_CODES])
@pytest.mark.parametrize("cls,name", CODE_CASES, ids=CODE_CASE_IDS)
def test_bad_codes_raise_and_change_nothing(cls, name, case):
    _, data, exc, pattern = case
    a, b = twins(cls)
    w = code_width(a)
    units = code_units(a)
    pat = pattern.format(name=code_name(a), w=w, n=3 * w, units=units, units_=units.replace(" ", "_"), unit=units[:-1])
    with pytest.raises(exc, match=pat):
        CODE_ENTRIES[name](a, data(w))
    assert_twins(a, b)


@pytest.mark.parametrize("cls,name", CODE_CASES, ids=CODE_CASE_IDS)
def test_decode_input_of_the_wrong_width_names_both_widths(cls, name):
    a, b = twins(cls)
    w, nm, units = code_width(a), code_name(a), code_units(a)
    for bad in (w - 1, w + 1, D):
        with pytest.raises(
            ValueError,
            match=rf"^{nm} has {bad} {units}, but (the model|{cls.__name__}) is "
            rf"expecting {w} {units} as input \(got 2-D array of shape "
            rf"\(2, {bad}\)\)$",
        ):
            CODE_ENTRIES[name](a, np.zeros((2, bad)))
    assert_twins(a, b)


# ``out=``: checked before anything is written (the sentinel survives) and before any state changes (a sampling
# encode does not advance the sample stream: assert_twins checks it).
OUT_ENTRIES = {  # name -> (call(model, out), the width of its result)
    "encode": (lambda m, o: m.encode(X, out=o), code_width),
    "reconstruct": (lambda m, o: m.reconstruct(X, out=o), lambda m: D),
    "decode": (lambda m, o: m.decode(np.full((N, code_width(m)), 0.25, np.float32), out=o), lambda m: D),
}
VAE_OUT_ENTRIES = {"encode_sample": (lambda m, o: m.encode(X, sample=True, out=o), code_width)}
OUT_CASES = [(cls, e) for cls in CLASSES for e in OUT_ENTRIES] + [(fastae.VAE, e) for e in VAE_OUT_ENTRIES]


def _bad_outs(w):
    """``(id, out, exception, message pattern)`` for a result of ``N`` rows and ``w`` columns, float32."""
    ro = np.full((N, w), 7.0, np.float32)
    ro.flags.writeable = False
    return [
        ("list", [[7.0] * w] * N, TypeError, r"^out must be a NumPy array to receive the \w+, got list$"),
        (
            "rows",
            np.full((N + 1, w), 7.0, np.float32),
            ValueError,
            rf"^out must have shape \({N}, {w}\) to receive the \w+, got shape \({N + 1}, {w}\)$",
        ),
        (
            "width",
            np.full((N, w + 1), 7.0, np.float32),
            ValueError,
            rf"^out must have shape \({N}, {w}\) to receive the \w+, got shape \({N}, {w + 1}\)$",
        ),
        (
            "dtype",
            np.full((N, w), 7.0, np.float64),
            ValueError,
            r"^out must have dtype float32 \(the model's dtype\) to receive the \w+, got dtype float64$",
        ),
        (
            "fortran",
            np.asfortranarray(np.full((N, w), 7.0, np.float32)),
            ValueError,
            r"^out must be C-contiguous to receive the \w+; got an array with strides",
        ),
        (
            "strided",
            np.full((N, 2 * w), 7.0, np.float32)[:, ::2],
            ValueError,
            r"^out must be C-contiguous to receive the \w+; got an array with strides",
        ),
        ("read_only", ro, ValueError, r"^out is read-only; it must be writeable to receive the \w+$"),
    ]


OUT_BAD_IDS = [c[0] for c in _bad_outs(1)]


@pytest.mark.parametrize("bad", range(len(OUT_BAD_IDS)), ids=OUT_BAD_IDS)
@pytest.mark.parametrize("cls,name", OUT_CASES, ids=[f"{c.__name__}-{e}" for c, e in OUT_CASES])
def test_bad_out_raises_writes_nothing_and_changes_nothing(cls, name, bad):
    call, width = {**OUT_ENTRIES, **VAE_OUT_ENTRIES}[name]
    a, b = twins(cls)
    _, out, exc, pattern = _bad_outs(width(a))[bad]
    before = copy.deepcopy(out)
    with pytest.raises(exc, match=pattern):
        call(a, out)
    assert np.array_equal(np.asarray(out), np.asarray(before))
    assert_twins(a, b)


OVERLAP_CALLS = {
    "encode": lambda m, A, o: m.encode(A, out=o),
    "reconstruct": lambda m, A, o: m.reconstruct(A, out=o),
    "decode": lambda m, A, o: m.decode(A, out=o),
    "encode_sample": lambda m, A, o: m.encode(A, sample=True, out=o),
}


@pytest.mark.parametrize("cls,name", OUT_CASES, ids=[f"{c.__name__}-{e}" for c, e in OUT_CASES])
def test_out_sharing_memory_with_the_input_is_refused(cls, name):
    """An input used without a copy (C-contiguous, in the model's dtype) and an ``out`` whose first row is its
    last values: chunk by chunk, rows written would overwrite rows not yet read."""
    _, width = {**OUT_ENTRIES, **VAE_OUT_ENTRIES}[name]
    a, b = twins(cls)
    w_in = code_width(a) if name == "decode" else D
    w_out = width(a)
    flat = np.empty(N * w_in + N * w_out, np.float32)
    A = flat[: N * w_in].reshape(N, w_in)
    A[:] = np.full((N, code_width(a)), 0.25) if name == "decode" else X
    out = flat[N * w_in - w_out : N * w_in - w_out + N * w_out].reshape(N, w_out)
    keep = flat.copy()
    with pytest.raises(
        ValueError,
        match=r"^out shares memory with the input; it must be a separate array to "
        r"receive the \w+$",
    ):
        OVERLAP_CALLS[name](a, A, out)
    assert np.array_equal(flat.view(np.uint32), keep.view(np.uint32))  # bits: np.empty may hold NaNs
    assert_twins(a, b)


@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_out_sharing_memory_with_the_weights_is_refused(cls):
    """The first layer's weight has a reconstruction's width: decoding K codes into it would overwrite the model."""
    a, b = twins(cls)
    W = a._params["encoder.0.weight"]
    keep = W.copy()
    with pytest.raises(
        ValueError,
        match=r"^out shares memory with the model's weight 'encoder\.0\.weight'; it must "
        r"be a separate array to receive the reconstructions$",
    ):
        a.decode(np.full((W.shape[0], code_width(a)), 0.25), out=W)
    assert np.array_equal(W, keep)
    assert_twins(a, b)


def test_decode_does_not_apply_the_bce_range_check_to_codes():
    m = fitted(fastae.Autoencoder, activation="tanh")  # codes are in (-1, 1)
    assert m.decode(np.full((2, K), -0.9)).shape == (2, D)
    v = fitted(fastae.VAE)  # latent codes are unbounded
    assert v.decode(np.full((2, L), 3.0)).shape == (2, D)


# ---------------------------------------------------------------------------------------------------------------
# VAE sample(n), elbo(n_samples), encode(sample=True)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n,exc,pattern",
    [
        (0, ValueError, r"^n must be in \[1, inf\), got 0$"),
        (-3, ValueError, r"^n must be in \[1, inf\), got -3$"),
        (2.0, TypeError, r"^n must be an integer, got 2\.0 of type float$"),
        (True, TypeError, r"^n must be an integer, got True of type bool$"),
        ("3", TypeError, r"^n must be an integer, got '3' of type str$"),
        (None, TypeError, r"^n must be an integer, got None of type NoneType$"),
    ],
)
def test_vae_sample_n(n, exc, pattern):
    a, b = twins(fastae.VAE)
    with pytest.raises(exc, match=pattern):
        a.sample(n)
    assert_twins(a, b)


def test_vae_sample_accepts_numpy_integers():
    v = fitted(fastae.VAE)
    assert v.sample(np.int64(3)).shape == (3, D)


@pytest.mark.parametrize(
    "n,exc,pattern",
    [
        (0, ValueError, r"^n_samples must be in \[1, inf\), got 0$"),
        (1.5, TypeError, r"^n_samples must be an integer, got 1\.5 of type float$"),
        (True, TypeError, r"^n_samples must be an integer, got True of type bool$"),
    ],
)
def test_vae_elbo_n_samples(n, exc, pattern):
    a, b = twins(fastae.VAE)
    with pytest.raises(exc, match=pattern):
        a.elbo(X, n_samples=n)
    assert_twins(a, b)


# ---------------------------------------------------------------------------------------------------------------
# Methods before fit
# ---------------------------------------------------------------------------------------------------------------
def _save(m, tmp_path):
    m.save(tmp_path / "m.fae")


BEFORE_FIT = {
    "encode": lambda m, t: m.encode(X),
    "transform": lambda m, t: m.transform(X),
    "decode": lambda m, t: m.decode(np.zeros((2, code_width(m)))),
    "inverse_transform": lambda m, t: m.inverse_transform(np.zeros((2, code_width(m)))),
    "reconstruct": lambda m, t: m.reconstruct(X),
    "score_samples": lambda m, t: m.score_samples(X),
    "score": lambda m, t: m.score(X),
    "state_dict": lambda m, t: m.state_dict(),
    "load_state_dict": lambda m, t: m.load_state_dict({}),
    "get_feature_names_out": lambda m, t: m.get_feature_names_out(),
    "save": _save,
    # bad data before fit: "not fitted" is the first thing wrong
    "encode_bad_data": lambda m, t: m.encode(np.full((2, 1), np.nan)),
}
VAE_BEFORE_FIT = {
    "elbo": lambda m, t: m.elbo(X),
    "sample": lambda m, t: m.sample(3),
    "encode_sample": lambda m, t: m.encode(X, sample=True),
}
BF_CASES = [(c, n) for c in CLASSES for n in BEFORE_FIT] + [(fastae.VAE, n) for n in VAE_BEFORE_FIT]


@pytest.mark.parametrize("cls,name", BF_CASES, ids=[f"{c.__name__}-{n}" for c, n in BF_CASES])
def test_methods_before_fit_raise_not_fitted(cls, name, tmp_path):
    m = make(cls)
    with pytest.raises(NotFittedError, match=rf"^this {cls.__name__} is not fitted yet; call fit\(X\) first$") as ei:
        {**BEFORE_FIT, **VAE_BEFORE_FIT}[name](m, tmp_path)
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, AttributeError)
    assert not (tmp_path / "m.fae").exists()


def test_not_fitted_error_bases():
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    assert issubclass(DivergenceError, ValueError) and issubclass(DivergenceError, FloatingPointError)


# ---------------------------------------------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------------------------------------------
OPTS = r"\['sgd', 'momentum', 'nesterov', 'adam'\]"
ACTS = r"\['sigmoid', 'tanh', 'relu', 'linear'\]"
RS = r"random_state must be None, an int in \[0, 2\*\*64\), a numpy\.random\.Generator or a numpy\.random\.RandomState"

# Shared by both models: (kwargs, exception, pattern)
TRAINING_CASES = [
    (dict(loss="l2"), ValueError, r"^loss must be one of \['bce', 'mse'\], got 'l2'$"),
    (dict(loss=None), ValueError, r"^loss must be one of \['bce', 'mse'\], got None$"),
    (dict(optimizer="rmsprop"), ValueError, rf"^optimizer must be one of {OPTS}, got 'rmsprop'$"),
    (dict(optimizer="Adam"), ValueError, rf"^optimizer must be one of {OPTS}, got 'Adam'$"),
    (dict(dtype="float16"), ValueError, r"^dtype must be one of \['float32', 'float64'\], got 'float16'$"),
    (dict(dtype="float"), ValueError, r"^dtype must be one of \['float32', 'float64'\], got 'float'$"),
    (dict(learning_rate=0.0), ValueError, r"^learning_rate must be in \(0, inf\), got 0\.0$"),
    (dict(learning_rate=-1e-3), ValueError, r"^learning_rate must be in \(0, inf\), got -0\.001$"),
    (dict(learning_rate=float("nan")), ValueError, r"^learning_rate must be finite, got nan$"),
    (dict(learning_rate=float("inf")), ValueError, r"^learning_rate must be finite, got inf$"),
    (dict(learning_rate=True), TypeError, r"^learning_rate must be a real number, got True of type bool$"),
    (dict(learning_rate="0.01"), TypeError, r"^learning_rate must be a real number, got '0\.01' of type str$"),
    (dict(learning_rate=None), TypeError, r"^learning_rate must be a real number, got None of type NoneType$"),
    (dict(momentum=1.0), ValueError, r"^momentum must be in \[0, 1\), got 1\.0$"),
    (dict(momentum=-0.1), ValueError, r"^momentum must be in \[0, 1\), got -0\.1$"),
    (dict(momentum=False), TypeError, r"^momentum must be a real number, got False of type bool$"),
    (dict(weight_decay=-1e-4), ValueError, r"^weight_decay must be in \[0, inf\), got -0\.0001$"),
    (dict(weight_decay=True), TypeError, r"^weight_decay must be a real number, got True"),
    (dict(batch_size=0), ValueError, r"^batch_size must be in \[1, inf\), got 0$"),
    (dict(batch_size=-8), ValueError, r"^batch_size must be in \[1, inf\), got -8$"),
    (dict(batch_size=8.0), TypeError, r"^batch_size must be an integer, got 8\.0 of type float$"),
    (dict(batch_size=True), TypeError, r"^batch_size must be an integer, got True of type bool$"),
    (dict(epochs=-1), ValueError, r"^epochs must be in \[0, inf\), got -1$"),
    (dict(epochs=1.0), TypeError, r"^epochs must be an integer, got 1\.0 of type float$"),
    (dict(epochs=True), TypeError, r"^epochs must be an integer, got True of type bool$"),
    (dict(epochs=None), TypeError, r"^epochs must be an integer, got None of type NoneType$"),
    (dict(shuffle="yes"), TypeError, r"^shuffle must be True or False, got 'yes'$"),
    (dict(shuffle=1), TypeError, r"^shuffle must be True or False, got 1$"),
    (dict(early_stopping=None), TypeError, r"^early_stopping must be True or False, got None$"),
    (dict(verbose=1), TypeError, r"^verbose must be True or False, got 1$"),
    (dict(validation_fraction=0.0), ValueError, r"^validation_fraction must be in \(0, 1\), got 0\.0$"),
    (dict(validation_fraction=1.0), ValueError, r"^validation_fraction must be in \(0, 1\), got 1\.0$"),
    (dict(validation_fraction=True), TypeError, r"^validation_fraction must be a real number, got True"),
    (dict(patience=0), ValueError, r"^patience must be in \[1, inf\), got 0$"),
    (dict(patience=2.5), TypeError, r"^patience must be an integer, got 2\.5 of type float$"),
    (dict(tol=-1e-4), ValueError, r"^tol must be in \[0, inf\), got -0\.0001$"),
    (dict(tol=True), TypeError, r"^tol must be a real number, got True of type bool$"),
    (dict(backend="bogus"), ValueError, r"^backend must be 'auto' or one of \[.*'numpy'.*\], got 'bogus'$"),
    (dict(backend=3), TypeError, r"^backend must be a string such as 'auto' or 'numpy', got 3$"),
    (dict(backend=None), TypeError, r"^backend must be a string such as 'auto' or 'numpy', got None$"),
    (dict(random_state=-1), ValueError, rf"^{RS}; got the int -1$"),
    (dict(random_state=2**64), ValueError, rf"^{RS}; got the int 18446744073709551616$"),
    (dict(random_state=1.5), TypeError, rf"^{RS}; got float \(1\.5\)$"),
    (dict(random_state=True), TypeError, rf"^{RS}; got bool \(True\)$"),
    (dict(random_state="0"), TypeError, rf"^{RS}; got str \('0'\)$"),
]

AE_CASES = [
    (dict(hidden=()), ValueError, r"^hidden must name at least one layer, got \(\)$"),
    (dict(hidden=[]), ValueError, r"^hidden must name at least one layer, got \[\]$"),
    (dict(hidden=(3, 0)), ValueError, r"^hidden must contain positive integers, got \(3, 0\)$"),
    (dict(hidden=-2), ValueError, r"^hidden must contain positive integers, got \(-2,\)$"),
    (dict(hidden=(3.5,)), ValueError, r"^hidden must contain positive integers, got \(3\.5,\)$"),
    (dict(hidden=(True,)), ValueError, r"^hidden must contain positive integers, got \(True,\)$"),
    (dict(hidden=True), TypeError, r"^hidden must be a tuple of positive integers such as \(256,\).*got True$"),
    (dict(hidden="3"), TypeError, r"^hidden must be a tuple of positive integers such as \(256,\).*got '3'$"),
    (dict(hidden=None), TypeError, r"^hidden must be a tuple of positive integers.*got None$"),
    (dict(activation="softmax"), ValueError, rf"^activation must be one of {ACTS}, got 'softmax'$"),
    (dict(activation=None), ValueError, rf"^activation must be one of {ACTS}, got None$"),
    (dict(code_activation="gelu"), ValueError, rf"^code_activation must be one of {ACTS}, got 'gelu'$"),
    (dict(tied="yes"), TypeError, r"^tied must be True or False, got 'yes'$"),
    (dict(tied=1), TypeError, r"^tied must be True or False, got 1$"),
    # noise
    (dict(noise="mask"), ValueError, r"^noise must be None, \('mask', p\) or \('gaussian', sigma\), got 'mask'$"),
    (dict(noise=0.3), ValueError, r"^noise must be None, \('mask', p\) or \('gaussian', sigma\), got 0\.3$"),
    (
        dict(noise=("salt", 0.1)),
        ValueError,
        r"^noise must be None, \('mask', p\) or \('gaussian', sigma\), got "
        r"\('salt', 0\.1\)$",
    ),
    (dict(noise=("mask",)), ValueError, r"^noise must be None, .*got \('mask',\)$"),
    (dict(noise=("mask", 0.1, 0.2)), ValueError, r"^noise must be None, .*got \('mask', 0\.1, 0\.2\)$"),
    (dict(noise=("mask", 1.0)), ValueError, r"^noise probability p must be in \[0, 1\), got 1\.0$"),
    (dict(noise=("mask", -0.1)), ValueError, r"^noise probability p must be in \[0, 1\), got -0\.1$"),
    (dict(noise=("mask", True)), TypeError, r"^noise probability p must be a real number, got True of type bool$"),
    (dict(noise=("gaussian", -1.0)), ValueError, r"^noise sigma must be in \[0, inf\), got -1\.0$"),
    (dict(noise=("gaussian", float("inf"))), ValueError, r"^noise sigma must be finite, got inf$"),
    (dict(noise=("gaussian", "0.1")), TypeError, r"^noise sigma must be a real number, got '0\.1' of type str$"),
    # sparsity
    (dict(sparsity="l1"), ValueError, r"^sparsity must be None, \('l1', lam\) or \('kl', rho, beta\), got 'l1'$"),
    (
        dict(sparsity=("l2", 0.1)),
        ValueError,
        r"^sparsity must be None, \('l1', lam\) or \('kl', rho, beta\), got "
        r"\('l2', 0\.1\)$",
    ),
    (dict(sparsity=("l1",)), ValueError, r"^sparsity must be None, .*got \('l1',\)$"),
    (dict(sparsity=("kl", 0.05)), ValueError, r"^sparsity must be None, .*got \('kl', 0\.05\)$"),
    (dict(sparsity=()), ValueError, r"^sparsity must be None, .*got \(\)$"),
    (dict(sparsity=("l1", -0.1)), ValueError, r"^sparsity lam must be in \[0, inf\), got -0\.1$"),
    (dict(sparsity=("l1", True)), TypeError, r"^sparsity lam must be a real number, got True of type bool$"),
    (dict(sparsity=("kl", 0.0, 1.0)), ValueError, r"^sparsity rho must be in \(0, 1\), got 0\.0$"),
    (dict(sparsity=("kl", 1.0, 1.0)), ValueError, r"^sparsity rho must be in \(0, 1\), got 1\.0$"),
    (dict(sparsity=("kl", 0.05, -1.0)), ValueError, r"^sparsity beta must be in \[0, inf\), got -1\.0$"),
    (dict(sparsity=("kl", 0.05, None)), TypeError, r"^sparsity beta must be a real number, got None"),
    (
        dict(sparsity=("kl", 0.05, 1.0), activation="relu"),
        ValueError,
        r"^sparsity=\('kl', rho, beta\) needs code activations in \(0, 1\), i\.e\. a sigmoid code layer; got code "
        r"activation 'relu'\. Use \('l1', lam\) for other activations$",
    ),
    (
        dict(sparsity=("kl", 0.05, 1.0), code_activation="tanh"),
        ValueError,
        r"^sparsity=\('kl', rho, beta\) needs .*sigmoid code layer; got code activation 'tanh'",
    ),
    # contractive
    (dict(contractive=-0.1), ValueError, r"^contractive must be in \[0, inf\), got -0\.1$"),
    (dict(contractive=True), TypeError, r"^contractive must be a real number, got True of type bool$"),
    (dict(contractive="0.1"), TypeError, r"^contractive must be a real number, got '0\.1' of type str$"),
    (
        dict(contractive=0.1, hidden=(4, 3)),
        ValueError,
        r"^contractive > 0 needs a single-layer encoder with activation in \['sigmoid', 'tanh'\]; got "
        r"hidden=\(4, 3\) with code activation 'sigmoid'$",
    ),
    (
        dict(contractive=0.1, activation="relu"),
        ValueError,
        r"^contractive > 0 needs a single-layer encoder with activation in \['sigmoid', 'tanh'\]; got "
        r"hidden=\(3,\) with code activation 'relu'$",
    ),
    (
        dict(contractive=0.1, code_activation="linear"),
        ValueError,
        r"^contractive > 0 needs .*with code activation 'linear'$",
    ),
    # pretraining
    (dict(pretrain="greedy"), ValueError, r"^pretrain must be None or 'layerwise', got 'greedy'$"),
    (dict(pretrain=True), ValueError, r"^pretrain must be None or 'layerwise', got True$"),
    (dict(pretrain_epochs=-1), ValueError, r"^pretrain_epochs must be in \[0, inf\), got -1$"),
    (dict(pretrain_epochs=1.5), TypeError, r"^pretrain_epochs must be an integer, got 1\.5 of type float$"),
    (
        dict(pretrain="layerwise", pretrain_epochs=True),
        TypeError,
        r"^pretrain_epochs must be an integer, got True of type bool$",
    ),
]

VAE_CASES = [
    (dict(hidden=(3, 0)), ValueError, r"^hidden must contain positive integers, got \(3, 0\)$"),
    (dict(hidden="3"), TypeError, r"^hidden must be a tuple of positive integers.*got '3'$"),
    (dict(hidden=None), TypeError, r"^hidden must be a tuple of positive integers.*got None$"),
    (dict(latent=0), ValueError, r"^latent must be in \[1, inf\), got 0$"),
    (dict(latent=-2), ValueError, r"^latent must be in \[1, inf\), got -2$"),
    (dict(latent=2.0), TypeError, r"^latent must be an integer, got 2\.0 of type float$"),
    (dict(latent=True), TypeError, r"^latent must be an integer, got True of type bool$"),
    (dict(latent=None), TypeError, r"^latent must be an integer, got None of type NoneType$"),
    (dict(activation="softmax"), ValueError, rf"^activation must be one of {ACTS}, got 'softmax'$"),
    (dict(beta=-1.0), ValueError, r"^beta must be in \[0, inf\), got -1\.0$"),
    (dict(beta=float("nan")), ValueError, r"^beta must be finite, got nan$"),
    (dict(beta=True), TypeError, r"^beta must be a real number, got True of type bool$"),
]

HP_CASES = (
    [(c, *case) for c in CLASSES for case in TRAINING_CASES]
    + [(fastae.Autoencoder, *c) for c in AE_CASES]
    + [(fastae.VAE, *c) for c in VAE_CASES]
)


def _hp_id(case):
    cls, kw = case[0], case[1]
    return f"{cls.__name__}-" + ",".join(f"{k}={v!r}" for k, v in kw.items())


HP_IDS = [_hp_id(c) for c in HP_CASES]


@pytest.mark.parametrize("method", ["fit", "partial_fit", "fit_transform"])
@pytest.mark.parametrize("cls,kw,exc,pattern", HP_CASES, ids=HP_IDS)
def test_bad_hyperparameter_on_unfitted_model(cls, kw, exc, pattern, method):
    m = make(cls, **kw)
    with pytest.raises(exc, match=pattern):
        getattr(m, method)(X)
    assert_not_fitted(m)


HP_CASES_FITTED = [pytest.param(*c, id=i) for c, i in zip(HP_CASES, HP_IDS)]


@pytest.mark.parametrize("cls,kw,exc,pattern", HP_CASES_FITTED)
def test_bad_hyperparameter_on_fitted_model_changes_nothing(cls, kw, exc, pattern):
    a, b = twins(cls)
    a.set_params(**kw)
    with pytest.raises(exc, match=pattern):
        a.fit(X)
    assert_twins(a, b)


@pytest.mark.parametrize("cls,kw,exc,pattern", HP_CASES, ids=HP_IDS)
def test_bad_hyperparameter_with_validation_data(cls, kw, exc, pattern):
    m = make(cls, **kw)
    with pytest.raises(exc, match=pattern):
        m.fit(np.full((3, D), 0.5), validation_data=np.full((2, D), 0.5))
    assert_not_fitted(m)


def test_unknown_parameter_name_lists_the_valid_ones():
    for cls in CLASSES:
        with pytest.raises(
            ValueError,
            match=rf"^invalid parameter 'hiden' for {cls.__name__}; valid parameters "
            r"are \[.*'hidden'.*\]$",
        ):
            make(cls).set_params(hiden=(3,))


@pytest.mark.parametrize(
    "cls,kw",
    [
        (fastae.Autoencoder, dict(hidden=3)),
        (fastae.Autoencoder, dict(hidden=[4, np.int64(3)])),
        (fastae.Autoencoder, dict(noise=["mask", 0.2])),
        (fastae.Autoencoder, dict(noise=("gaussian", np.float32(0.1)))),
        (fastae.Autoencoder, dict(sparsity=["l1", 1e-3])),
        (fastae.Autoencoder, dict(sparsity=("kl", 0.05, 1))),
        (fastae.Autoencoder, dict(contractive=0.1, activation="tanh", loss="mse")),
        (fastae.Autoencoder, dict(tied=np.bool_(False), shuffle=np.bool_(True))),
        (fastae.Autoencoder, dict(pretrain="layerwise", hidden=(4, 3), pretrain_epochs=0)),
        (fastae.Autoencoder, dict(epochs=0)),
        (fastae.Autoencoder, dict(learning_rate=np.float32(1e-2), batch_size=np.int64(5), momentum=0)),
        (fastae.Autoencoder, dict(random_state=np.random.default_rng(1))),
        (fastae.VAE, dict(hidden=())),
        (fastae.VAE, dict(hidden=4, latent=np.int64(2), beta=0)),
        (fastae.VAE, dict(dtype="float64", backend="numpy", optimizer="nesterov", weight_decay=1e-4)),
    ],
)
def test_valid_hyperparameter_forms_are_accepted(cls, kw):
    m = make(cls, **kw).fit(X)
    assert np.isfinite(m.encode(X)).all()


def test_sklearn_style_dtype_objects_are_named_in_the_error():
    # np.float32 (the type) is not accepted as dtype; the message must at least name what is
    with pytest.raises(
        ValueError,
        match=r"^dtype must be one of \['float32', 'float64'\], got <class "
        r"'numpy\.float32'>$",
    ):
        make(fastae.Autoencoder, dtype=np.float32).fit(X)


# --- hyperparameter changes on a fitted model -------------------------------------------------------------------
@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_failed_fit_with_new_hidden_keeps_the_old_structure(cls):
    a, b = twins(cls)
    a.set_params(hidden=(5, 4), activation="bogus")
    with pytest.raises(ValueError, match=r"^activation must be one of .*got 'bogus'$"):
        a.fit(X)
    assert_twins(a, b)


@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_failed_early_stopping_split_changes_nothing(cls):
    a, b = twins(cls)
    a.set_params(early_stopping=True, validation_fraction=0.01)  # 0.01 * 20 rows rounds to no validation row
    with pytest.raises(
        ValueError,
        match=r"^early_stopping with validation_fraction=0\.01 needs at least one "
        r"training and one validation row, but X has 20 row\(s\)",
    ):
        a.fit(X)
    assert_twins(a, b)


@pytest.mark.parametrize(
    "kw,exc,pattern",
    [
        (dict(batch_size=0), ValueError, r"^batch_size must be in \[1, inf\), got 0$"),
        (dict(batch_size=-1), ValueError, r"^batch_size must be in \[1, inf\), got -1$"),
        (dict(shuffle="no"), TypeError, r"^shuffle must be True or False, got 'no'$"),
    ],
    ids=["batch_size=0", "batch_size=-1", "shuffle='no'"],
)
@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_bad_hyperparameter_on_partial_fit_of_a_fitted_model(cls, kw, exc, pattern):
    a, b = twins(cls)
    a.set_params(**kw)
    with pytest.raises(exc, match=pattern):
        a.partial_fit(X)
    assert_twins(a, b)


def test_failed_fit_leaves_nothing_that_looks_fitted_to_sklearn():
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    m = make(fastae.Autoencoder, random_state=1.5)
    with pytest.raises(TypeError, match=rf"^{RS}; got float"):
        m.fit(X)
    with pytest.raises(SkNotFitted):
        check_is_fitted(m)


@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_partial_fit_with_wrong_width_changes_nothing(cls):
    a, b = twins(cls, optimizer="adam")
    a.partial_fit(X)
    b.partial_fit(X)
    with pytest.raises(
        ValueError,
        match=rf"^X has 7 features, but (the model|{cls.__name__}) is expecting 6 "
        r"features as input \(got 2-D array of shape \(20, 7\)\)$",
    ):
        a.partial_fit(np.hstack([X, X[:, :1]]))
    assert_twins(a, b)


# ---------------------------------------------------------------------------------------------------------------
# Accepted inputs: same result as the equivalent C-contiguous float array, input never modified
# ---------------------------------------------------------------------------------------------------------------
def _outputs(m, A):
    out = {"encode": m.encode(A), "reconstruct": m.reconstruct(A), "score_samples": m.score_samples(A)}
    if isinstance(m, fastae.VAE):
        out["elbo"] = m.elbo(A)
    return out


def _assert_same_outputs(m, A, ref):
    got, want = _outputs(m, A), _outputs(m, ref)
    for k in want:
        assert got[k].dtype == np.dtype(m.dtype), k
        assert np.array_equal(got[k], want[k]), k


def _fortran():
    return np.asfortranarray(X)


def _strided():
    big = np.zeros((2 * N, 2 * D))
    big[::2, ::2] = X
    return big[::2, ::2]


def _negative_stride():
    return np.ascontiguousarray(X[::-1])[::-1]


def _read_only():
    A = X.copy()
    A.flags.writeable = False
    return A


def _float32():
    return X.astype(np.float32)


def _float32_fortran_read_only():
    A = np.asfortranarray(X.astype(np.float32))
    A.flags.writeable = False
    return A


def _list_of_lists():
    return X.tolist()


def _float16():
    return X.astype(np.float16)


def _transposed_view():
    return np.ascontiguousarray(X.T).T


# name -> (the input, the equivalent C-contiguous array in the model's dtype)
ACCEPTED = {
    "fortran": (_fortran, lambda dt: X.astype(dt)),
    "strided_view": (_strided, lambda dt: X.astype(dt)),
    "negative_stride": (_negative_stride, lambda dt: X.astype(dt)),
    "transposed_view": (_transposed_view, lambda dt: X.astype(dt)),
    "read_only": (_read_only, lambda dt: X.astype(dt)),
    "float32_fortran_read_only": (_float32_fortran_read_only, lambda dt: X.astype(np.float32).astype(dt)),
    "float64": (lambda: X, lambda dt: X.astype(dt)),
    "float32": (_float32, lambda dt: X.astype(np.float32).astype(dt)),
    "list_of_lists": (_list_of_lists, lambda dt: X.astype(dt)),
    "float16": (_float16, lambda dt: X.astype(np.float16).astype(dt)),
    "int_0_1": (lambda: (X > 0.5).astype(np.int64), lambda dt: (X > 0.5).astype(dt)),
    "uint8_0_1": (lambda: (X > 0.5).astype(np.uint8), lambda dt: (X > 0.5).astype(dt)),
    "bool": (lambda: X > 0.5, lambda dt: (X > 0.5).astype(dt)),
    "int_list": (lambda: (X > 0.5).astype(int).tolist(), lambda dt: (X > 0.5).astype(dt)),
    "masked_without_masked_values": (lambda: np.ma.masked_array(X), lambda dt: X.astype(dt)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(ACCEPTED))
@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_accepted_input_forms_give_identical_results(cls, name, dtype):
    make_input, make_ref = ACCEPTED[name]
    A, ref = make_input(), np.ascontiguousarray(make_ref(dtype))
    assert ref.dtype == np.dtype(dtype) and ref.flags.c_contiguous
    before = copy.deepcopy(A)
    m = fitted(cls, dtype=dtype)
    _assert_same_outputs(m, A, ref)
    # and training on it is the same as training on the reference
    m1, m2 = make(cls, dtype=dtype).fit(A), make(cls, dtype=dtype).fit(ref)
    m1.partial_fit(A)
    m2.partial_fit(ref)
    assert_state_equal(m1, m2)
    m3, m4 = make(cls, dtype=dtype).fit(X, validation_data=A), make(cls, dtype=dtype).fit(X, validation_data=ref)
    assert_state_equal(m3, m4)
    if isinstance(A, np.ndarray):
        assert np.array_equal(A, before) and A.dtype == before.dtype
    else:
        assert A == before


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("noise", [("mask", 0.2), ("gaussian", 0.1)])
@pytest.mark.parametrize("hidden", [(K,), (4, K)], ids=["one_call_step", "op_by_op"])
def test_read_only_batches_reach_the_noise_kernels(hidden, noise, dtype):
    """Without shuffling, a batch is a read-only view of a read-only X, handed to the corruption kernels as is
    (this once raised Numba's "No matching definition")."""
    ro = X.astype(dtype)
    ro.flags.writeable = False
    kw = dict(hidden=hidden, noise=noise, shuffle=False, dtype=dtype)
    assert_state_equal(make(fastae.Autoencoder, **kw).fit(ro), make(fastae.Autoencoder, **kw).fit(ro.copy()))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(ACCEPTED))
def test_check_array_hands_kernels_a_plain_c_contiguous_array(name, dtype):
    make_input, make_ref = ACCEPTED[name]
    out = check_array(make_input(), dtype=dtype)
    assert type(out) is np.ndarray and out.flags.c_contiguous and out.dtype == np.dtype(dtype)
    assert np.array_equal(out, make_ref(dtype))


@pytest.mark.parametrize("order", ["C", "F"])
def test_check_array_turns_a_memmap_into_a_plain_array(order, tmp_path):
    mm = np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="w+", shape=(N, D), order=order)
    mm[:] = X
    out = check_array(mm, dtype="float32")
    assert type(out) is np.ndarray and out.flags.c_contiguous and np.array_equal(out, X.astype(np.float32))


@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_integer_input_outside_unit_interval_is_converted_for_mse(cls):
    A = np.arange(N * D, dtype=np.int32).reshape(N, D) % 7 - 3
    m = fitted(cls, loss="mse")
    _assert_same_outputs(m, A, A.astype(np.float64))


@pytest.mark.parametrize("cls,name", CODE_CASES, ids=CODE_CASE_IDS)
def test_decode_accepts_ints_lists_fortran_strided_read_only(cls, name):
    m = fitted(cls)
    w = code_width(m)
    H = np.random.default_rng(1).normal(size=(5, w))
    f = CODE_ENTRIES[name]
    want = f(m, H)
    Hro = H.copy()
    Hro.flags.writeable = False
    big = np.zeros((10, 3 * w))
    big[::2, ::3] = H
    assert np.array_equal(want, f(m, H.astype(np.float32)))  # float64 codes into a float32 model
    for form in (np.asfortranarray(H), H.tolist(), Hro, big[::2, ::3]):
        assert np.array_equal(f(m, form), want)
    Hi = np.arange(5 * w).reshape(5, w) - 4
    assert np.array_equal(f(m, Hi), f(m, Hi.astype(np.float64)))
    assert np.array_equal(f(m, Hi.tolist()), f(m, Hi.astype(np.float64)))
    assert np.array_equal(f(m, Hi > 0), f(m, (Hi > 0).astype(np.float64)))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("mode", ["r", "r+", "c"])
@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_memmap_input(cls, mode, order, tmp_path):
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=(N, D), order=order)
    mm[:] = X
    mm.flush()
    del mm
    A = np.memmap(path, dtype=np.float64, mode=mode, shape=(N, D), order=order)
    m = fitted(cls)
    _assert_same_outputs(m, A, X)
    m1, m2 = make(cls).fit(A), make(cls).fit(X)
    m1.partial_fit(A[::2])
    m2.partial_fit(X[::2])
    assert_state_equal(m1, m2)
    assert np.array_equal(A, X)
    assert path.read_bytes() == np.asarray(X, order=order).tobytes(order=order)  # the file is untouched


@pytest.mark.parametrize(
    "kw",
    [
        dict(noise=("mask", 0.5)),
        dict(noise=("gaussian", 0.3)),
        dict(pretrain="layerwise", hidden=(4, K)),
        dict(early_stopping=True),
        dict(sparsity=("kl", 0.1, 1.0), contractive=0.1),
    ],
    ids=["mask", "gaussian", "pretrain", "early_stopping", "kl+contractive"],
)
def test_writable_float32_input_is_not_modified(kw):
    """float32 C-contiguous input into a float32 model is used without a copy: nothing may write into it."""
    A = X.astype(np.float32)
    V = X[:5].astype(np.float32)
    A0, V0 = A.copy(), V.copy()
    m = make(fastae.Autoencoder, **kw).fit(A, validation_data=V if "early_stopping" not in kw else None)
    m.partial_fit(A)
    m.encode(A), m.reconstruct(A), m.score_samples(A), m.decode(m.encode(A))
    assert np.array_equal(A, A0) and np.array_equal(V, V0)


def test_writable_float32_input_is_not_modified_by_vae():
    A = X.astype(np.float32)
    A0 = A.copy()
    m = make(fastae.VAE).fit(A, validation_data=A)
    m.partial_fit(A)
    m.encode(A, sample=True), m.elbo(A, n_samples=2), m.score_samples(A), m.reconstruct(A)
    assert np.array_equal(A, A0)


# ---------------------------------------------------------------------------------------------------------------
# Divergence guard
# ---------------------------------------------------------------------------------------------------------------
DIVERGING = dict(loss="mse", optimizer="sgd", learning_rate=1e6, shuffle=False)


def _all_finite(sd):
    return all(np.isfinite(v).all() for v in sd.values())


def _step_until_divergence(cls, batches, max_steps=200, **kw):
    """Train one batch per partial_fit call (cycling through ``batches``), saving the weights after every step;
    returns (number of successful steps, weights after each step, the model, the error)."""
    m = make(cls, **{**DIVERGING, **kw})
    saved = []
    for k in range(max_steps):
        try:
            m.partial_fit(batches[k % len(batches)])
        except DivergenceError as e:
            return k, saved, m, e
        saved.append(m.state_dict())
    pytest.fail("training did not diverge")


def _kept(saved, k, err):
    """The weights a diverged model keeps, and its update count: after ``k`` good steps, a non-finite loss or
    update keeps those of step ``k`` (from before the failing batch); a loss grown past the guard's limit falls
    back one more step, to the last weights whose loss was accepted (``None``: the initial ones)."""
    if err.info.get("reason") == "loss growth":
        return (saved[k - 2] if k >= 2 else None), k - 1
    return saved[k - 1], k


def _assert_weights(m, want):
    got = m.state_dict()
    assert _all_finite(got)
    assert got.keys() == want.keys()
    for k in want:
        assert np.array_equal(got[k], want[k]), k


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_divergence_in_partial_fit_keeps_last_finite_weights(cls):
    k, saved, m, err = _step_until_divergence(cls, [X], batch_size=N)
    assert k >= 1
    assert isinstance(err, ValueError) and isinstance(err, FloatingPointError)
    assert re.search(rf"(non-finite|diverged).* at epoch {k + 1}, batch 1 of 1\b", str(err)), str(err)
    assert re.search(r"learning_rate \(now 1000000\.0\)", str(err)), str(err)
    want, t = _kept(saved, k, err)
    if want is not None:
        _assert_weights(m, want)
    assert m.t_ == t and m.n_epochs_ == k and len(m.history_["loss"]) == k
    assert np.isfinite(m.encode(X)).all()  # the model is still usable


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_divergence_in_fit_names_a_later_epoch(cls):
    k, saved, _, _ = _step_until_divergence(cls, [X], batch_size=N)
    assert k + 1 >= 2  # the failing epoch is not the first one
    m = make(cls, **DIVERGING, batch_size=N, epochs=k + 5)
    with pytest.raises(DivergenceError, match=rf"(non-finite|diverged).* at epoch {k + 1}, batch 1 of 1\b") as e:
        m.fit(X)
    want, t = _kept(saved, k, e.value)
    if want is not None:
        _assert_weights(m, want)
    assert len(m.history_["loss"]) == k and m.n_epochs_ == k and m.t_ == t


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_divergence_mid_epoch_names_epoch_and_batch(cls):
    bs = 5
    chunks = [X[s : s + bs].copy() for s in range(0, N, bs)]  # 4 batches of 5 rows
    k, saved, _, _ = _step_until_divergence(cls, chunks, batch_size=bs, learning_rate=3e3)
    epoch, batch = k // len(chunks) + 1, k % len(chunks) + 1
    m = make(cls, **{**DIVERGING, "learning_rate": 3e3}, batch_size=bs, epochs=k + 5)
    with pytest.raises(DivergenceError, match=rf"at epoch {epoch}, batch {batch} of 4\b") as e:
        m.fit(X)
    want, t = _kept(saved, k, e.value)
    if want is not None:
        _assert_weights(m, want)
    assert m.t_ == t


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_divergence_from_huge_data_keeps_initial_weights(cls):
    for dtype, scale in (("float32", 1e20), ("float64", 1e200)):
        init = make(cls, loss="mse", epochs=0, dtype=dtype).fit(X).state_dict()
        m = make(cls, loss="mse", epochs=3, dtype=dtype)
        with pytest.raises(
            DivergenceError,
            match=r"^the training loss became non-finite \((inf|nan)\) at epoch 1, "
            r"batch 1 of 3; the model keeps the weights from before this "
            r"batch.*check the data scale",
        ):
            m.fit(X * scale)
        _assert_weights(m, init)
        assert m.t_ == 0 and m.history_ == {}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("cls", CLASSES, ids=ids_cls)
def test_non_finite_update_keeps_previous_weights(cls, optimizer):
    """learning_rate=1e300 is finite, but does not fit float32: the first update is non-finite."""
    a, b = twins(cls, optimizer=optimizer, learning_rate=1e300, epochs=0)
    with pytest.raises(
        DivergenceError,
        match=r"^the update of '[a-z]+\.\d\.(weight|bias)' became non-finite at "
        r"epoch 1, batch 1 of 3 \(loss was [0-9.e+-]+\); the model keeps the "
        r"weights from before this batch and its optimizer state is reset\. "
        r"Try a smaller learning_rate \(now 1e\+300\)$",
    ):
        a.partial_fit(X)
    _assert_weights(a, b.state_dict())
    assert a.t_ == 0 and a.n_epochs_ == 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_during_pretraining_says_so():
    m = make(fastae.Autoencoder, hidden=(4, K), pretrain="layerwise", loss="mse", optimizer="sgd", learning_rate=1e300)
    with pytest.raises(DivergenceError, match=r"pretrain"):
        m.fit(X)


# --- the backend's own array type (a strict device stand-in: implicit conversion to NumPy raises) ------------------
def test_device_array_is_checked_where_it_lives():
    from fastae.validation import check_out

    from .device_array import DeviceArray, xp

    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(xp.asarray(X))  # the stand-in is strict
    a = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(4, 3) / 12)
    got = check_array(xp.asarray(a), dtype="float32", xp=xp, in_unit_interval=True)
    assert isinstance(got, DeviceArray) and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got.get(), a.astype(np.float32))
    same = xp.asarray(np.ones((2, 3)))
    assert check_array(same, dtype="float64", xp=xp) is same  # already right: no copy
    # A host array given to a device backend is checked on the host and returned as NumPy, for xp.asarray.
    assert type(check_array(a, dtype="float32", xp=xp)) is np.ndarray

    bad = a.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 non-finite value\(s\).*nan at row 2, column 1"):
        check_array(xp.asarray(bad), dtype="float64", xp=xp)
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*2\.0 at row 0, column 0"):
        check_array(xp.asarray(a + 2), dtype="float64", xp=xp, in_unit_interval=True)
    with pytest.raises(ValueError, match=r"too large for dtype='float32'.*1e\+300 at row 3, column 2"):
        big = a.copy()
        big[3, 2] = 1e300
        check_array(xp.asarray(big), dtype="float32", xp=xp)
    with pytest.raises(ValueError, match=r"Reshape your data"):
        check_array(xp.asarray(a[0]), dtype="float64", xp=xp)
    with pytest.raises(ValueError, match=r"X has 3 features, but the model is expecting 4"):
        check_array(xp.asarray(a), dtype="float64", xp=xp, n_features=4)

    out = xp.empty((4, 3), dtype=np.float64)
    check_out(out, shape=(4, 3), dtype="float64", what="codes", inputs=[("the input", xp.asarray(a))], xp=xp)
    with pytest.raises(TypeError, match=r"out must be an array of device_xp \(the model's backend\).*got ndarray"):
        check_out(np.empty((4, 3)), shape=(4, 3), dtype="float64", what="codes", xp=xp)
    with pytest.raises(ValueError, match="out shares memory with the input"):
        check_out(out, shape=(4, 3), dtype="float64", what="codes", inputs=[("the input", out)], xp=xp)
    with pytest.raises(ValueError, match=r"out must have dtype float64.*got dtype float32"):
        check_out(xp.empty((4, 3), dtype=np.float32), shape=(4, 3), dtype="float64", what="codes", xp=xp)

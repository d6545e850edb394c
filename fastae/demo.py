"""The demo's science: autoencoders and a VAE against PCA and an independent-pixel baseline on held-out digits.

``fastae demo`` prints :func:`format_demo` of :func:`run_demo`; the quality benchmark reuses the same models,
split and metrics (:mod:`fastae.benchmark.quality`).
"""

from __future__ import annotations

import time

import numpy as np

from . import rng

# The demo's models, in one place so they are easy to retune. Each entry: the estimator class name, a label for
# the table, its constructor parameters, and the overrides that `fastae demo --quick` applies on top.
# Why these (held-out errors on the demo's split, seed 0, PCA at code 12: 1.03): the shallow tied model needs a
# *linear* code layer to beat PCA (0.83; with a sigmoid code layer 1.27), and layer-wise pretraining is what makes
# the deep stack clearly better (0.47; the same stack without pretraining: 0.95 after 50 epochs, 0.80 after 100).
DEMO_CONFIGS = {
    "tied": {
        "model": "Autoencoder",
        "label": "tied Autoencoder",
        "params": dict(
            hidden=(12,),
            activation="sigmoid",
            code_activation="linear",
            loss="bce",
            tied=True,
            optimizer="adam",
            learning_rate=1e-2,
            batch_size=32,
            epochs=100,
        ),
        "quick": dict(epochs=10),
    },
    "deep": {
        "model": "Autoencoder",
        "label": "deep Autoencoder, layerwise",
        "params": dict(
            hidden=(256, 128, 12),
            activation="sigmoid",
            code_activation="linear",
            loss="bce",
            tied=True,
            pretrain="layerwise",
            pretrain_epochs=20,
            optimizer="adam",
            learning_rate=1e-2,
            batch_size=32,
            epochs=50,
        ),
        "quick": dict(hidden=(128, 64, 12), pretrain_epochs=5, epochs=5),
    },
    "vae": {
        "model": "VAE",
        "label": "VAE",
        "params": dict(
            hidden=(256, 128),
            latent=12,
            activation="relu",
            loss="bce",
            optimizer="adam",
            learning_rate=3e-3,
            batch_size=32,
            epochs=60,
        ),
        "quick": dict(hidden=(128,), epochs=10),
    },
}
# The held-out split is fixed (independent of --seed) so that numbers from different model seeds compare.
DEMO_SPLIT_SEED = 0
DEMO_N_TRAIN = 1437
# Draws of z per held-out image when estimating the VAE's ELBO.
DEMO_ELBO_SAMPLES = 10
# The demo's matrices are small (batches of 32 rows, layers of at most 256 units): a second OpenBLAS thread buys
# nothing, and on a busy 2-core machine its spinning made the deep model train 6-7x slower (15.5 s against 2.3 s).
DEMO_BLAS_THREADS = 1


def demo_configs(quick=False, seed=0):
    """``{name: (model class name, label, constructor parameters)}`` of the demo, with ``--quick`` overrides
    applied and ``random_state=seed``."""
    out = {}
    for name, entry in DEMO_CONFIGS.items():
        params = dict(entry["params"])
        if quick:
            params.update(entry["quick"])
        params["random_state"] = seed
        out[name] = (entry["model"], entry["label"], params)
    return out


def split_digits(X, n_train=DEMO_N_TRAIN, seed=DEMO_SPLIT_SEED):
    """``(X_train, X_test)``: the rows of ``X`` in a Philox permutation fixed by ``seed``, the first ``n_train``
    for training and the rest held out."""
    order = rng.permutation(rng.key_from_seed(seed), rng.STREAM_SHUFFLE, 0, X.shape[0])
    return X[order[:n_train]], X[order[n_train:]]


def reconstruction_error(X, R):
    """Squared error summed over features, averaged over rows: ``mean_n Σ_d (x_nd − r_nd)²`` (Hinton and
    Salakhutdinov's metric), computed in float64."""
    diff = np.asarray(X, dtype=np.float64) - np.asarray(R, dtype=np.float64)
    return float(np.mean(np.sum(diff * diff, axis=1)))


def pca_error(X_train, X_test, n_components):
    """Held-out :func:`reconstruction_error` of scikit-learn's PCA with ``n_components``, fitted on ``X_train``."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=n_components, svd_solver="full").fit(X_train)
    return reconstruction_error(X_test, pca.inverse_transform(pca.transform(X_test)))


def independent_pixel_loglik(X_train, X_test):
    """Mean over ``X_test`` of ``Σ_d [x log p_d + (1 − x) log(1 − p_d)]`` with ``p`` the training pixel means:
    the Bernoulli cross-entropy "likelihood" of a model with no latent variable, the floor a VAE should beat."""
    eps = 1e-7  # pixels that are always 0 in training would otherwise give log(0)
    p = np.clip(np.mean(X_train, axis=0), eps, 1 - eps)
    return float(np.mean(X_test @ np.log(p) + (1 - X_test) @ np.log1p(-p)))


def run_demo(quick=False, seed=0):
    """Train the demo's models and return a dict of results (errors, ELBO, backends, times); prints nothing.
    BLAS runs on ``DEMO_BLAS_THREADS`` threads meanwhile."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=DEMO_BLAS_THREADS, user_api="blas"):
        return _run_demo(quick, seed)


def _run_demo(quick, seed):
    import fastae

    from .datasets import load_digits

    t_start = time.perf_counter()
    X = load_digits()
    X_train, X_test = split_digits(X)
    results = {
        "n_train": X_train.shape[0],
        "n_test": X_test.shape[0],
        "n_features": X.shape[1],
        "quick": quick,
        "seed": seed,
        "blas_threads": DEMO_BLAS_THREADS,
        "models": [],
    }
    for name, (kind, label, params) in demo_configs(quick, seed).items():
        cls = getattr(fastae, kind)
        t0 = time.perf_counter()
        model = cls(**params).fit(X_train)
        fit_time = time.perf_counter() - t0
        row = {
            "name": name,
            "label": label,
            "kind": kind,
            "params": params,
            "backend": model.backend_,
            "dtype": model.dtype,
            "fit_time": fit_time,
        }
        if kind == "VAE":
            row["code"] = int(params["latent"])
            row["elbo"] = float(np.mean(model.elbo(X_test, n_samples=DEMO_ELBO_SAMPLES)))
            row["elbo_train"] = float(np.mean(model.elbo(X_train, n_samples=DEMO_ELBO_SAMPLES)))
        else:
            row["code"] = int(params["hidden"][-1])
            row["error"] = reconstruction_error(X_test, model.reconstruct(X_test))
            row["pca_error"] = pca_error(X_train, X_test, row["code"])
        results["models"].append(row)
    results["baseline_loglik"] = independent_pixel_loglik(X_train, X_test)
    results["wall_time"] = time.perf_counter() - t_start
    return results


def format_demo(results):
    """The demo's report as text: an aligned table for the autoencoders against PCA, then the VAE's ELBO."""
    r = results
    mode = "quick" if r["quick"] else "full"
    lines = [
        f"fastae demo ({mode}): scikit-learn digits, {r['n_train']} training / {r['n_test']} held-out "
        f"images of {r['n_features']} pixels in [0, 1]; model seed {r['seed']}; BLAS threads "
        f"{r['blas_threads']}",
        "",
        "Held-out reconstruction error: squared error summed over pixels, averaged over images (lower is better)",
    ]
    aes = [m for m in r["models"] if "error" in m]
    header = ("model", "layers", "code", "autoencoder", "PCA", "AE / PCA", "backend", "fit time")
    table = [header]
    for m in aes:
        table.append(
            (
                m["label"],
                _layers(m["params"]["hidden"]),
                str(m["code"]),
                f"{m['error']:.3f}",
                f"{m['pca_error']:.3f}",
                f"{m['error'] / m['pca_error']:.2f}",
                f"{m['backend']} {m['dtype']}",
                f"{m['fit_time']:.2f} s",
            )
        )
    lines += _aligned(table)
    lines += [
        "",
        "Held-out mean ELBO per image in nats (higher is better). The Bernoulli decoder on grey levels makes it",
        "a cross-entropy bound, comparable between models but not a normalised log-likelihood.",
    ]
    table = [("model", "layers", "latent", "held-out ELBO", "train ELBO", "backend", "fit time")]
    for m in r["models"]:
        if "elbo" in m:
            table.append(
                (
                    m["label"],
                    _layers(m["params"]["hidden"]),
                    str(m["code"]),
                    f"{m['elbo']:.2f}",
                    f"{m['elbo_train']:.2f}",
                    f"{m['backend']} {m['dtype']}",
                    f"{m['fit_time']:.2f} s",
                )
            )
    table.append(("independent pixels", "-", "0", f"{r['baseline_loglik']:.2f}", "-", "-", "-"))
    lines += _aligned(table)
    lines += ["", f"total wall time {r['wall_time']:.1f} s"]
    return "\n".join(lines)


def _layers(hidden):
    return "-".join(str(h) for h in hidden)


def _aligned(table):
    """Rows of a table as text: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    out = []
    for row in table:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        out.append("  " + "  ".join(cells))
    return out

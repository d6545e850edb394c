"""fastae's benchmark instrument: fastae and its peers (PyTorch, JAX) side by side, checked before timed.

``fastae bench`` runs it; the pytest-benchmark suites in the repository's ``bench/`` folder reuse the same
configurations and contestants. Nothing here is imported by ``import fastae``.
"""

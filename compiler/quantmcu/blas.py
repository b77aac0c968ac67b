"""The search's integer simulations on one BLAS thread.

The simulator's conv layers are float matrix products of integers (``ops/conv.py``: exact, every partial sum an
integer below 2^24 in float32 or 2^53 in float64, so any order of summation and any number of threads gives the
same result). The search runs many of them on small matrices (the guard's chains on the held-back samples:
K = 8 to 144 for a 1x1 layer), where OpenBLAS's second thread costs more CPU than it saves: on a 2-core machine
under load, a 32,400 x 8 x 48 float32 product took 6.8 ms of CPU on 2 threads and 2.0 ms on one, a
2,025 x 144 x 24 one 7.4 and 0.2 ms. :func:`run_batched` is ``quant.simulate.run_batched`` with the BLAS
libraries held at one thread (``threadpoolctl``): the values are the same.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

from ..quant import simulate


def one_blas_thread():
    """A context in which every BLAS library loaded so far runs one thread (listed anew on each call: a library
    loaded after the first call, e.g. by another package, is limited too)."""
    return threadpool_limits(limits=1, user_api="blas")


def run_batched(graph, nodes, values, n):
    """``quant.simulate.run_batched`` on one BLAS thread (the same values, see the module docstring)."""
    with one_blas_thread():
        return simulate.run_batched(graph, nodes, values, n)

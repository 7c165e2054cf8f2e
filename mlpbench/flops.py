"""Analytic floating-point operation counts of MLP training, for throughput in GFLOP/s.

Only the matrix multiplications are counted: for a layer with ``fan_in`` inputs and
``fan_out`` units, on ``n`` samples,

* forward  ``a @ W``            : ``2 · n · fan_in · fan_out``  (a multiply and an add per term);
* backward ``a.T @ dz`` (grad W): ``2 · n · fan_in · fan_out``;
* backward ``dz @ W.T`` (grad of the layer's input): ``2 · n · fan_in · fan_out``, for every
  layer but the first, whose input is the data and needs no gradient.

So one training epoch costs ``2·n·Σ fan_in·fan_out`` forward and about twice that
backward: roughly 6 FLOPs per weight per sample. Everything else is left out on
purpose: bias additions, activations, the loss and its gradient cost ``O(n · units)``,
and the optimizer ``O(parameters)`` per step, both an order of magnitude (the layer
width) below the matrix products for any network where throughput is worth measuring.
The count is the same for every backend, so GFLOP/s compare backends on equal work;
it is not a measurement of what a framework actually executes.
"""

from __future__ import annotations

from itertools import pairwise

from .spec import ModelSpec


def forward_flops(spec: ModelSpec, n_samples: int) -> float:
    """Matrix-multiply FLOPs of one forward pass over `n_samples` samples."""
    return 2.0 * n_samples * sum(a * b for a, b in pairwise(spec.layer_sizes))


def training_flops(spec: ModelSpec, n_samples: int) -> float:
    """Matrix-multiply FLOPs of one training epoch (forward + backward) over `n_samples` samples."""
    layers = [a * b for a, b in pairwise(spec.layer_sizes)]
    forward = sum(layers)
    backward = sum(layers) + sum(layers[1:])  # grad W of every layer, grad input of all but the first
    return 2.0 * n_samples * (forward + backward)


def gflops(flops: float, seconds: float | None) -> float | None:
    """Throughput in GFLOP/s, or None without a positive time."""
    if not seconds or seconds <= 0:
        return None
    return flops / seconds / 1e9

"""Analytic FLOP count of a Keras model's layers (multiply-add = 2 FLOPs)."""

from __future__ import annotations

import math


def forward_flops(model) -> int:
    """FLOPs of one forward pass for one sample, from conv, separable-conv and dense layers."""
    import keras

    total = 0
    for layer in model.layers:
        out = layer.output.shape
        if getattr(layer, "data_format", "channels_last") == "channels_first" and len(out) == 4:
            out = (out[0], out[2], out[3], out[1])
        if isinstance(layer, keras.layers.SeparableConv2D):
            k = math.prod(layer.kernel_size)
            cin = layer.depthwise_kernel.shape[2]
            spatial = out[1] * out[2]
            total += 2 * spatial * k * cin + 2 * spatial * cin * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += 2 * out[1] * out[2] * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            total += 2 * cin * cout
    return int(total)


def train_flops(model) -> int:
    """Forward + backward for one sample: backward ≈ 2x forward (gradients for inputs and weights)."""
    return 3 * forward_flops(model)

"""The ONNX side of the exports: raw-rows graphs (the preprocessing expressions as ONNX nodes, the network,
the decision) and, where tf2onnx is not used (JAX), a dense network written to ONNX from its weights.

What the graphs take and return is as for the SavedModel exports (`kmodels.task.export_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kmodels import graph
from kmodels.graph import NUMBER, STRING, Column, NotExportable


# ---- ONNX --------------------------------------------------------------------------------------------
class _Onnx:
    """Accumulates ONNX nodes and initializers under names that cannot meet the network's."""

    def __init__(self, prefix: str = "kmodels") -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0
        self.prefix = prefix

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}/{hint}_{self.count}"

    def const(self, value: Any, dtype: Any = np.float64) -> str:
        from onnx import numpy_helper

        name = self.name("const")
        array = np.asarray(value, dtype=object if dtype is str else dtype)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        from onnx import helper

        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, domain=domain, **attrs))
        return out

def onnx_model(kinds: Mapping[str, str], outputs: Mapping[str, Column], network: Any, problem: Any,
               threshold: float) -> Any:
    """The raw-rows ONNX model: the preprocessing nodes, the network (`onnx.ModelProto` from Keras's
    export, input (n, F) float32) and the decision, in one graph."""
    from onnx import TensorProto, helper

    g = _Onnx()
    values: dict[Any, str] = {}
    first = next(iter(kinds))
    rows = g.op("Shape", [first])
    arith = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "floor": "Floor", "sqrt": "Sqrt",
             "identity": "Identity", "lt": "Less", "gt": "Greater", "eq": "Equal", "or": "Or"}
    for node in graph.walk(outputs.values()):
        a = [values[id(arg)] for arg in node.args]
        op = node.op
        if op == "input":
            v = node.attrs["name"]
        elif op == "const":
            v = g.const(node.attrs["value"])
        elif op == "is_missing" and node.args[0].kind == STRING:
            hit = g.op("LabelEncoder", [a[0]], domain="ai.onnx.ml", keys_strings=[graph.MISSING_STRING],
                       values_int64s=[1], default_int64=0)
            v = g.op("Cast", [hit], to=TensorProto.BOOL)
        elif op == "is_missing":
            v = g.op("Or", [g.op("IsNaN", [a[0]]), g.op("IsInf", [a[0]])])
        elif op == "where":
            v = g.op("Where", a)
        elif op == "to_float":
            v = g.op("Cast", a, to=TensorProto.DOUBLE)
        elif op == "lookup":
            v = g.op("LabelEncoder", a, domain="ai.onnx.ml", keys_strings=list(node.attrs["keys"]),
                     values_floats=list(node.attrs["values"]), default_float=node.attrs["default"])
            v = g.op("Cast", [v], to=TensorProto.DOUBLE)
        elif op == "date_part":
            raise NotExportable("This run's preprocessing parses dates, which ONNX has no operators for; export it "
                                "as a SavedModel (--format saved_model), which takes the same raw rows.")
        elif op == "log1p":
            v = g.op("Log", [g.op("Add", [a[0], g.const(1.0)])])
        elif op == "maximum":  # NaN stays NaN, as np.maximum
            v = g.op("Where", [g.op("IsNaN", [a[0]]), a[0], g.op("Max", a)])
        elif op in arith:
            v = g.op(arith[op], a)
        else:
            raise NotExportable(f"Unknown graph operation {op!r}.")
        values[id(node)] = v
    axis = g.const([1], np.int64)
    columns = [g.op("Unsqueeze", [g.op("Expand", [values[id(n)], rows]), axis]) for n in outputs.values()]
    features = g.op("Concat", columns, axis=1)
    net_in, net_out = network.graph.input[0].name, network.graph.output[0].name
    g.nodes.append(helper.make_node("Cast", [features], [net_in], name="kmodels/features", to=TensorProto.FLOAT))
    decision = _onnx_decision(g, problem, threshold, net_out)
    inputs = [helper.make_tensor_value_info(name, TensorProto.DOUBLE if kind == NUMBER else TensorProto.STRING, ["n"])
              for name, kind in kinds.items()]
    graph_outputs = []
    for name, (value, dtype, shape) in decision.items():
        g.nodes.append(helper.make_node("Identity", [value], [name], name=f"kmodels/out_{name}"))
        graph_outputs.append(helper.make_tensor_value_info(name, dtype, shape))
    body = helper.make_graph(g.nodes[:_split(g)] + list(network.graph.node) + g.nodes[_split(g):], "kmodels",
                             inputs, graph_outputs, initializer=g.inits + list(network.graph.initializer),
                             value_info=list(network.graph.value_info))
    opsets = {o.domain: o.version for o in network.opset_import}
    opsets["ai.onnx.ml"] = max(opsets.get("ai.onnx.ml", 0), 2)
    model = helper.make_model(body, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                              producer_name="kmodels")
    model.ir_version = network.ir_version
    return model

def _split(g: _Onnx) -> int:
    """Where the network's nodes go among ours: after the node that feeds it."""
    return next(i for i, n in enumerate(g.nodes) if n.name == "kmodels/features") + 1

def _onnx_decision(g: _Onnx, problem: Any, threshold: float, output: str) -> dict[str, tuple[str, int, list]]:
    from onnx import TensorProto

    if problem.per_label_threshold:
        raise NotExportable("A multi-label run exports to ONNX only without its joined label strings, which ONNX "
                            "cannot build; export it as a SavedModel (--format saved_model), which returns them.")
    out = g.op("Cast", [g.op("Flatten", [output], axis=1)], to=TensorProto.DOUBLE)
    if not problem.is_classification:
        return {"prediction": (g.op("Squeeze", [out, g.const([1], np.int64)]), TensorProto.DOUBLE, ["n"])}
    names = g.const(list(problem.class_names), str)
    axis = g.const([1], np.int64)
    if problem.uses_threshold:
        positive = g.op("Squeeze", [out, axis])
        negative = g.op("Sub", [g.const(1.0), positive])
        probabilities = g.op("Concat", [g.op("Unsqueeze", [negative, axis]), out], axis=1)
        index = g.op("Cast", [g.op("GreaterOrEqual", [positive, g.const(threshold)])], to=TensorProto.INT64)
    else:
        probabilities = out
        index = g.op("ArgMax", [out], axis=1, keepdims=0)
    chosen = g.op("Squeeze", [g.op("GatherElements", [probabilities, g.op("Unsqueeze", [index, axis])], axis=1), axis])
    return {"label": (g.op("Gather", [names, index], axis=0), TensorProto.STRING, ["n"]),
            "probability": (chosen, TensorProto.DOUBLE, ["n"]),
            "probabilities": (probabilities, TensorProto.DOUBLE, ["n", len(problem.class_names)])}

def run_onnx(path: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feed = {k: (v.astype(str) if v.dtype == object else v) for k, v in inputs.items()}
    return dict(zip(names, session.run(None, feed), strict=True))

# ---- a dense network as ONNX, without TensorFlow ---------------------------------------------------------
#: The Keras layers `onnx_network` writes as ONNX nodes (a chain of them: what the table models are made of).
ONNX_LAYERS = ("InputLayer", "Dense", "Dropout", "HashDropout", "Rescaling", "BatchNormalization", "Activation", "Concatenate",
               "Average", "Reshape", "DepthwiseConv1D", "ReLU", "EinsumDense")

_ONNX_ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "softmax": "Softmax", "tanh": "Tanh", "linear": None}

def onnx_network(model: Any, opset: int = 17) -> Any:
    """The ONNX graph of a Keras model made of `ONNX_LAYERS` and of such models nested in it (bagged members),
    features (n, F) float32 in, the model's output out, written from its weights: how a table run exports to
    ONNX on a backend without tf2onnx (JAX).

    Anything else is refused (`NotExportable`) with the layer named; what is written is checked against
    `kmodels predict` before it is kept, like every export.
    """
    from onnx import TensorProto, helper

    g = _Onnx(prefix="kmodels_network")  # its names must not meet the preprocessing's, joined in front of it
    current = _onnx_nodes(g, model, "features")
    g.nodes.append(helper.make_node("Identity", [current], ["output"], name="kmodels/network_out"))
    width = int(model.input_shape[-1])
    graph = helper.make_graph(g.nodes, "network", [helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                                                                  ["n", width])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                                             ["n", int(model.output_shape[-1])])],
                              initializer=g.inits)
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="kmodels")
    out.ir_version = 8
    return out


def _onnx_nodes(g: _Onnx, model: Any, features: str) -> str:
    """Write `model`'s layers as nodes reading `features`; the name of its output. The layers are visited through
    the model's own graph nodes (deepest first), so a nested model reads the tensors it is called on."""
    model = getattr(model, "_functional", None) or model  # a Sequential's graph is the functional model it builds
    names = {id(model.inputs[0]): features}  # each Keras tensor of this graph -> its ONNX name
    by_depth = model._nodes_by_depth  # Keras's topological order of the functional graph
    for node in [n for depth in sorted(by_depth, reverse=True) for n in by_depth[depth]]:
        layer = node.operation  # a speed-only layer (`saved_as`) is written as the Keras layer it computes
        kind = getattr(type(layer), "saved_as", type(layer)).__name__
        if kind == "InputLayer":
            continue
        inputs = [names[id(t)] for t in node.input_tensors]
        current = inputs[0]
        if kind in ("Functional", "Sequential") and len(inputs) == 1:
            current = _onnx_nodes(g, layer, current)
        elif kind not in ONNX_LAYERS:
            raise NotExportable(f"Layer {layer.name!r} ({kind}) has no ONNX form here (known: "
                                f"{', '.join(ONNX_LAYERS)}, and models of them); export ONNX on the TensorFlow "
                                "backend (`KERAS_BACKEND=tensorflow kmodels export RUN OUT --format onnx`).")
        elif kind == "Concatenate":
            current = g.op("Concat", inputs, axis=-1)
        elif kind == "Average":
            current = g.op("Mean", inputs)
        elif kind == "Dense":
            weights = layer.get_weights()
            current = g.op("MatMul", [current, g.const(weights[0], np.float32)])
            if layer.use_bias:
                current = g.op("Add", [current, g.const(weights[1], np.float32)])
            current = _onnx_activation(g, layer, current)
        elif kind == "Activation":
            current = _onnx_activation(g, layer, current)
        elif kind == "Reshape":
            current = g.op("Reshape", [current, g.const(np.array([-1, *layer.target_shape]), np.int64)])
        elif kind == "DepthwiseConv1D":
            current = _onnx_pointwise_depthwise(g, layer, current)
        elif kind == "ReLU":
            current = _onnx_relu(g, layer, current)
        elif kind == "EinsumDense":
            current = _onnx_einsum_dense(g, layer, current)
        elif kind == "Rescaling":
            current = g.op("Add", [g.op("Mul", [current, g.const(np.float32(layer.scale), np.float32)]),
                                   g.const(np.float32(layer.offset), np.float32)])
        elif kind == "BatchNormalization":
            gamma = np.asarray(layer.gamma.numpy() if layer.scale else 1.0, np.float64)
            beta = np.asarray(layer.beta.numpy() if layer.center else 0.0, np.float64)
            mean, var = (np.asarray(v.numpy(), np.float64) for v in (layer.moving_mean, layer.moving_variance))
            scale = gamma / np.sqrt(var + layer.epsilon)
            current = g.op("Add", [g.op("Mul", [current, g.const(scale, np.float32)]),
                                   g.const(beta - mean * scale, np.float32)])
        names[id(node.outputs[0])] = current
    return names[id(model.outputs[0])]


def _onnx_pointwise_depthwise(g: _Onnx, layer: Any, current: str) -> str:
    """A `DepthwiseConv1D` of kernel size 1 (`mlp`'s piecewise-linear bins): output channel `c * m + j` is input
    channel c times `kernel[0, c, j]`, plus its bias; as ONNX, a MatMul by the block matrix of those products."""
    if tuple(layer.kernel_size) != (1,) or tuple(layer.strides) != (1,) or tuple(layer.dilation_rate) != (1,):
        raise NotExportable(f"Layer {layer.name!r} (DepthwiseConv1D, kernel size {tuple(layer.kernel_size)}) has no "
                            "ONNX form here (only kernel size 1, stride 1); export ONNX on the TensorFlow backend.")
    weights = layer.get_weights()
    kernel = np.asarray(weights[0])[0]  # (channels, multiplier)
    channels, multiplier = kernel.shape
    block = np.zeros((channels, channels * multiplier), np.float32)
    for c in range(channels):
        block[c, c * multiplier:(c + 1) * multiplier] = kernel[c]
    current = g.op("MatMul", [current, g.const(block, np.float32)])
    if layer.use_bias:
        current = g.op("Add", [current, g.const(weights[1], np.float32)])
    return _onnx_activation(g, layer, current)


def _onnx_einsum_dense(g: _Onnx, layer: Any, current: str) -> str:
    """An `EinsumDense` (`mlp`'s per-feature embedding of its bins): ONNX's own Einsum with the layer's equation
    and kernel, plus its bias (Keras shapes it to the output's trailing axes, 1 where an axis has none, so it
    broadcasts as it does in Keras), then the activation."""
    weights = layer.get_weights()
    current = g.op("Einsum", [current, g.const(weights[0], np.float32)], equation=layer.equation)
    if len(weights) > 1:
        current = g.op("Add", [current, g.const(weights[1], np.float32)])
    return _onnx_activation(g, layer, current)


def _onnx_relu(g: _Onnx, layer: Any, current: str) -> str:
    """A `keras.layers.ReLU` without a negative slope or threshold: Relu, or Clip at `max_value`."""
    if float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
        raise NotExportable(f"Layer {layer.name!r} (ReLU with negative_slope={layer.negative_slope}, threshold="
                            f"{layer.threshold}) has no ONNX form here; export ONNX on the TensorFlow backend.")
    if layer.max_value is None:
        return g.op("Relu", [current])
    return g.op("Clip", [current, g.const(np.float32(0.0), np.float32), g.const(np.float32(layer.max_value),
                                                                               np.float32)])


def _onnx_activation(g: _Onnx, layer: Any, current: str) -> str:
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    if name not in _ONNX_ACTIVATIONS:
        raise NotExportable(f"Layer {layer.name!r}: activation {name!r} has no ONNX form here (known: "
                            f"{', '.join(_ONNX_ACTIVATIONS)}); export ONNX on the TensorFlow backend.")
    op = _ONNX_ACTIVATIONS[name]
    if op is None:
        return current
    return g.op(op, [current], axis=-1) if op == "Softmax" else g.op(op, [current])

"""The scoring layers as ONNX graphs, built node by node from the trained weights.

Why by hand rather than through `torch.onnx.export`: these layers are a few matrix products,
the TF-IDF one takes a sparse input that the torch exporter cannot express, and a graph built
from the weights needs no exporter (no torch) at all. Opset 17: `ScatterND` with a sum
reduction, `Erf` for the exact GELU that `nn.GELU()` computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17


def _save(graph: Any, path: Path) -> Path:
    from onnx import checker, helper, save_model

    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="taxonomist"
    )
    model.ir_version = 8  # what onnxruntime releases from 1.15 on read
    checker.check_model(model)
    save_model(model, str(path))
    return path


def sparse_linear(coef: np.ndarray, intercept: np.ndarray, path: Path) -> Path:
    """logits = X @ coef.T + intercept, for X given as COO triplets (row, column, value).

    Inputs: `rows` (nnz, 1) int64, `columns` (nnz,) int64, `values` (nnz,) float32 and
    `row_count` (1,) int64; output `logits` (row_count, classes) float32. A TF-IDF matrix
    of a few hundred thousand columns stays sparse all the way. ONNX Runtime's CPU
    `ScatterND` sums duplicate rows without locks across its threads, so the graph must run
    on one (`runtime._Part` does).
    """
    from onnx import TensorProto, helper, numpy_helper

    classes = coef.shape[0]
    weights = numpy_helper.from_array(np.ascontiguousarray(coef.T, dtype=np.float32), "weights")
    bias = numpy_helper.from_array(np.asarray(intercept, dtype=np.float32), "bias")
    width = numpy_helper.from_array(np.array([classes], dtype=np.int64), "classes")
    axis = numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")
    nodes = [
        helper.make_node("Gather", ["weights", "columns"], ["picked"], axis=0),
        helper.make_node("Unsqueeze", ["values", "axis1"], ["values_2d"]),
        helper.make_node("Mul", ["picked", "values_2d"], ["updates"]),
        helper.make_node("Concat", ["row_count", "classes"], ["shape"], axis=0),
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["zeros"],
            value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
        ),
        helper.make_node("ScatterND", ["zeros", "rows", "updates"], ["sums"], reduction="add"),
        helper.make_node("Add", ["sums", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "sparse_linear",
        [
            helper.make_tensor_value_info("rows", TensorProto.INT64, ["nnz", 1]),
            helper.make_tensor_value_info("columns", TensorProto.INT64, ["nnz"]),
            helper.make_tensor_value_info("values", TensorProto.FLOAT, ["nnz"]),
            helper.make_tensor_value_info("row_count", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", classes])],
        initializer=[weights, bias, width, axis],
    )
    return _save(graph, path)


def mlp(layers: list[tuple[np.ndarray, np.ndarray]], path: Path, input_name: str = "x") -> Path:
    """The `loop.mlp_head` network in evaluation mode: Linear, then (GELU, Linear) for each
    further layer; dropout is the identity there. `layers`: (weight (out, in), bias)."""
    from onnx import TensorProto, helper

    # softmax regression has no GELU: unused constants would make ONNX Runtime warn
    nodes: list[Any] = []
    inits = _constants() if len(layers) > 1 else []
    current = input_name
    for n, (weight, bias) in enumerate(layers):
        if n:
            current = _gelu(current, f"g{n}", nodes)
        current = _linear(current, weight, bias, f"l{n}", nodes, inits)
    nodes.append(helper.make_node("Identity", [current], ["logits"]))
    dim, classes = layers[0][0].shape[1], layers[-1][0].shape[0]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["n", dim])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", classes])],
        initializer=inits,
    )
    return _save(graph, path)


def mlp_layers(state: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) pairs of an `mlp_head` state dict, in order (its Linear layers)."""
    names = sorted(
        {k.rsplit(".", 1)[0] for k in state if k.endswith(".weight")}, key=lambda k: int(k)
    )
    return [
        (state[f"{n}.weight"].detach().cpu().numpy(), state[f"{n}.bias"].detach().cpu().numpy())
        for n in names
    ]


def gated_fusion(state: dict[str, Any], path: Path) -> Path:
    """`models.fusion.gated_network` in evaluation mode (dropout is the identity there).

    Inputs `t` (n, text_dim), `i` (n, image_dim) and the masks `has_text`, `has_image`
    (n, 1) float32; output `logits` (n, classes). As the torch module: the gate
    g = sigmoid(W_g [t, i]) is forced to 1 without a photo and to 0 without a title, and
    the output layer reads GELU(g * W_t t + (1 - g) * W_i i).
    """
    from onnx import TensorProto, helper

    def weights(name: str) -> tuple[np.ndarray, np.ndarray]:
        return (
            state[f"{name}.weight"].detach().cpu().numpy(),
            state[f"{name}.bias"].detach().cpu().numpy(),
        )

    nodes, inits = [], _constants()
    nodes += [
        helper.make_node("Mul", ["t", "has_text"], ["tm"]),
        helper.make_node("Mul", ["i", "has_image"], ["im"]),
        helper.make_node("Concat", ["tm", "im"], ["both"], axis=1),
    ]
    text = _linear("tm", *weights("text"), "text", nodes, inits)
    image = _linear("im", *weights("image"), "image", nodes, inits)
    gate = _linear("both", *weights("gate"), "gate", nodes, inits)
    nodes += [
        helper.make_node("Sigmoid", [gate], ["g_raw"]),
        # g = mt * (mi * g + (1 - mi)): a missing modality gets no say
        helper.make_node("Mul", ["has_image", "g_raw"], ["g_a"]),
        helper.make_node("Sub", ["one", "has_image"], ["g_b"]),
        helper.make_node("Add", ["g_a", "g_b"], ["g_c"]),
        helper.make_node("Mul", ["has_text", "g_c"], ["g"]),
        helper.make_node("Mul", ["g", text], ["mix_t"]),
        helper.make_node("Sub", ["one", "g"], ["g_rest"]),
        helper.make_node("Mul", ["g_rest", image], ["mix_i"]),
        helper.make_node("Add", ["mix_t", "mix_i"], ["mix"]),
    ]
    hidden = _gelu("mix", "out_gelu", nodes)
    out_weight, out_bias = weights("out.2")
    logits = _linear(hidden, out_weight, out_bias, "out", nodes, inits)
    nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    text_dim, image_dim = state["text.weight"].shape[1], state["image.weight"].shape[1]
    graph = helper.make_graph(
        nodes,
        "gated_fusion",
        [
            helper.make_tensor_value_info("t", TensorProto.FLOAT, ["n", text_dim]),
            helper.make_tensor_value_info("i", TensorProto.FLOAT, ["n", image_dim]),
            helper.make_tensor_value_info("has_text", TensorProto.FLOAT, ["n", 1]),
            helper.make_tensor_value_info("has_image", TensorProto.FLOAT, ["n", 1]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", out_weight.shape[0]])],
        initializer=inits,
    )
    return _save(graph, path)


def _constants() -> list[Any]:
    from onnx import numpy_helper

    return [
        numpy_helper.from_array(np.array(value, dtype=np.float32), name)
        for name, value in (("half", 0.5), ("one", 1.0), ("root2", np.sqrt(2.0)))
    ]


def _gelu(current: str, prefix: str, nodes: list[Any]) -> str:
    """Exact GELU, x/2 * (1 + erf(x / sqrt 2)), as `nn.GELU()` computes it."""
    from onnx import helper

    nodes += [
        helper.make_node("Div", [current, "root2"], [f"{prefix}_a"]),
        helper.make_node("Erf", [f"{prefix}_a"], [f"{prefix}_b"]),
        helper.make_node("Add", [f"{prefix}_b", "one"], [f"{prefix}_c"]),
        helper.make_node("Mul", [current, f"{prefix}_c"], [f"{prefix}_d"]),
        helper.make_node("Mul", [f"{prefix}_d", "half"], [f"{prefix}_out"]),
    ]
    return f"{prefix}_out"


def _linear(
    current: str,
    weight: np.ndarray,
    bias: np.ndarray,
    prefix: str,
    nodes: list[Any],
    inits: list[Any],
) -> str:
    """x @ weight.T + bias, as `nn.Linear`; weight (out, in)."""
    from onnx import helper, numpy_helper

    inits += [
        numpy_helper.from_array(np.ascontiguousarray(weight.T, dtype=np.float32), f"{prefix}_w"),
        numpy_helper.from_array(np.asarray(bias, dtype=np.float32), f"{prefix}_b"),
    ]
    nodes += [
        helper.make_node("MatMul", [current, f"{prefix}_w"], [f"{prefix}_mm"]),
        helper.make_node("Add", [f"{prefix}_mm", f"{prefix}_b"], [f"{prefix}_out"]),
    ]
    return f"{prefix}_out"

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
    of a few hundred thousand columns stays sparse all the way.
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
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    current = input_name
    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    one = numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")
    root2 = numpy_helper.from_array(np.array(np.sqrt(2.0), dtype=np.float32), "root2")
    inits += [half, one, root2]
    for n, (weight, bias) in enumerate(layers):
        if n:  # exact GELU: x/2 * (1 + erf(x / sqrt 2))
            nodes += [
                helper.make_node("Div", [current, "root2"], [f"g{n}_a"]),
                helper.make_node("Erf", [f"g{n}_a"], [f"g{n}_b"]),
                helper.make_node("Add", [f"g{n}_b", "one"], [f"g{n}_c"]),
                helper.make_node("Mul", [current, f"g{n}_c"], [f"g{n}_d"]),
                helper.make_node("Mul", [f"g{n}_d", "half"], [f"g{n}_out"]),
            ]
            current = f"g{n}_out"
        inits += [
            numpy_helper.from_array(np.ascontiguousarray(weight.T, dtype=np.float32), f"w{n}"),
            numpy_helper.from_array(np.asarray(bias, dtype=np.float32), f"b{n}"),
        ]
        nodes += [
            helper.make_node("MatMul", [current, f"w{n}"], [f"l{n}_mm"]),
            helper.make_node("Add", [f"l{n}_mm", f"b{n}"], [f"l{n}_out"]),
        ]
        current = f"l{n}_out"
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

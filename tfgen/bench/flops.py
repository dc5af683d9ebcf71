"""FLOPs of a training step, counted on its traced graph (see `FLOPS_METHOD`)."""

from __future__ import annotations

import collections
import math

import tensorflow as tf

#: The kernels that can run near the matmul rate; everything else is bound by memory or overhead.
DENSE_KERNELS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "DepthwiseConv2dNative", "MatMul",
                 "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")
#: Prefixes of kernels that stand in for a graph op at run time: oneDNN's (`_MklNativeConv2DBackpropFilter`,
#: `_MklMatMul`, on x86 CPUs with TF_ENABLE_ONEDNN_OPTS on, TensorFlow's default there) and grappler's
#: fusions (`_FusedConv2D`: a convolution with its bias and activation folded in).
KERNEL_PREFIXES = ("_MklNative", "_Mkl", "_")


def kernel_type(name: str) -> str:
    """The op type a profiled kernel stands for, so that its time is filed with that op's FLOPs.

    `_MklNativeConv2DBackpropFilter` → `Conv2DBackpropFilter`, `_MklNativeFusedConv2D`,
    `_FusedConv2D`, `_MklConv2DWithBias` → `Conv2D`, `_MklFusedMatMul` → `MatMul`. Other oneDNN
    kernels lose their prefix (`_MklNativeFusedBatchNormV3` → `FusedBatchNormV3`, the TF op of that
    name); any other name (`_Retval`, `Relu`) is returned as it is.
    """
    for prefix in KERNEL_PREFIXES:
        if name.startswith(prefix):
            base = name[len(prefix):]
            for candidate in (base, base.removeprefix("Fused"), base.removesuffix("WithBias"),
                              base.removeprefix("Fused").removesuffix("WithBias")):
                if candidate in DENSE_KERNELS:
                    return candidate
            return base if prefix != "_" else name
    return name
FLOPS_METHOD = ("TensorFlow's FLOP registry (what tf.compat.v1.profiler's float_operation() counts) over every live "
                "op (one the outputs or variable updates depend on) of the traced train_step graph: forward and "
                "backward convolutions (Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter), matmuls and "
                "elementwise arithmetic; Einsum (not in the registry) counted "
                "from its equation, BatchMatMul from its adj_x attribute (the registry reads transpose_a, which "
                "BatchMatMul does not have); activations, normalisation kernels and optimiser updates count 0")


def _einsum_flops(op) -> float:
    """2 × the product of every index's size (multiply-adds), for an Einsum with known shapes."""
    equation = op.get_attr("equation").decode()
    inputs, _, _ = equation.partition("->")
    sizes = {}
    for spec, tensor in zip(inputs.split(","), op.inputs):
        dims = tensor.shape.as_list()
        if "." in spec or len(spec) != len(dims) or any(d is None for d in dims):
            raise ValueError(f"cannot count {equation} on shapes {[t.shape for t in op.inputs]}")
        sizes.update(zip(spec, dims))
    return 2.0 * math.prod(sizes.values())


def _batch_matmul_flops(op) -> float:
    """2·k per output element. (TensorFlow's registry reads `transpose_a`, an attribute BatchMatMul
    does not have: for `adj_x=True`, as in the gradient of a batched dot product, it takes the
    wrong k and can overcount by orders of magnitude.)"""
    a, out = op.inputs[0].shape, op.outputs[0].shape
    if not (a.is_fully_defined() and out.is_fully_defined()):
        raise ValueError(f"unknown shapes {a}, {out}")
    k = a[-2] if op.get_attr("adj_x") else a[-1]
    return 2.0 * k * out.num_elements()


BATCH_MATMULS = ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def live_ops(graph) -> set:
    """Names of the ops that the function's outputs or side effects (variable updates) depend on.

    Gradient functions build some results nobody uses (the gradient of a batched matmul or
    a convolution with respect to an input that needs none); TensorFlow prunes them before
    running the function, so they are not counted either.
    """
    stack = [t.op for t in graph.outputs] + list(getattr(graph, "control_outputs", []))
    live = set()
    while stack:
        op = stack.pop()
        if op.name not in live:
            live.add(op.name)
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    return live


def op_flops(graph) -> tuple[dict, dict, collections.Counter]:
    """FLOPs of every live op of `graph` that has a count: ({op name: flops}, {name: type}, uncounted types)."""
    from tensorflow.python.framework import ops as tf_ops  # the registry tf.compat.v1.profiler reads
    from tensorflow.python.util import deprecation

    by_name, types, uncounted = {}, {}, collections.Counter()
    live = live_ops(graph)
    # The registry's shape helper (graph_util.tensor_shape_from_node_def_name) is marked deprecated and
    # would print "This API was designed for TensorFlow v1 ..." into `tfgen bench`'s output.
    with deprecation.silence():
        for op in graph.get_operations():
            if op.name not in live:
                continue
            try:
                if op.type == "Einsum":
                    value = _einsum_flops(op)
                elif op.type in BATCH_MATMULS:
                    value = _batch_matmul_flops(op)
                else:
                    value = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value
            except Exception:  # unknown shapes: counted as 0, and said so
                uncounted[op.type] += 1
                continue
            if value:
                by_name[op.name], types[op.name] = float(value), op.type
    return by_name, types, uncounted


def step_function(step, batch_size: int, image_shape, labels: bool = True):
    """`(tf.function(step), concrete function)` for one batch of `batch_size` (images[, labels])."""
    images = tf.TensorSpec([batch_size, *image_shape], tf.float32)
    spec = (images, tf.TensorSpec([batch_size], tf.int32)) if labels else images
    fn = tf.function(step)
    return fn, fn.get_concrete_function(spec)


def count_step_flops(concrete) -> dict:
    """FLOPs of one call of a traced training step, by op type (see `FLOPS_METHOD`).

    The gradient tape's backward ops live in the same graph as the forward ops (Keras 3
    layers inline into the step's `tf.function`), so Conv2DBackpropInput/Filter and the
    backward MatMuls are counted; `by_op_type` shows them.
    """
    by_name, types, uncounted = op_flops(concrete.graph)
    by_type = collections.Counter()
    for name, value in by_name.items():
        by_type[types[name]] += value
    nested = sorted({op.type for op in concrete.graph.get_operations()
                     if op.type in ("PartitionedCall", "StatefulPartitionedCall", "While", "StatelessWhile")})
    return {"total": float(sum(by_type.values())), "by_op_type": dict(by_type.most_common()),
            "uncounted_op_types": dict(uncounted), "nested_calls_not_counted": nested,
            "method": "tf_flops_registry", "_by_name": by_name}

"""Load an exported version and run its signatures, importing TensorFlow and nothing of zoo.

Run by ``zoo.export.check`` as a script in a separate Python process, so that what it
proves holds for any TensorFlow runtime: the SavedModel loads without zoo's code, its
ops are all TensorFlow's own (no Python-only ops such as ``PyFunc``, which TF Serving's
C++ runtime cannot run, and no custom ops), and each signature answers when loaded as
TF Serving loads it: the ``serve`` MetaGraph imported into a session, its variables
restored through the SavedModel's saver, and each signature run on the tensor names
its SignatureDef gives (tensorflow/cc/saved_model/loader.cc). A TF2 loader restores by
object graph instead, and would pass a model TF Serving cannot run.

    python standalone_check.py VERSION INPUTS.npz OUTPUTS.npz REPORT.json

INPUTS.npz holds, per signature, ``<signature>/<input>`` arrays; a string input is
stored as ``<signature>/<input>/bytes`` (uint8, concatenated) and ``.../offsets``.
"""

import json
import sys

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

PYTHON_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def graph_ops(version):
    model = saved_model_pb2.SavedModel()
    with open(f"{version}/saved_model.pb", "rb") as handle:
        model.ParseFromString(handle.read())
    ops, methods = set(), {}
    for graph in model.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
        methods.update({key: sig.method_name for key, sig in graph.signature_def.items()})
    functions = {f.signature.name for g in model.meta_graphs for f in g.graph_def.library.function}
    return sorted(ops - functions), methods


def read_inputs(path):
    stored = np.load(path)
    inputs = {}
    for key in stored.files:
        signature, name, *kind = key.split("/")
        if kind == ["offsets"]:
            continue
        if kind == ["bytes"]:
            data, offsets = stored[key].tobytes(), stored[f"{signature}/{name}/offsets"]
            value = [data[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
            inputs.setdefault(signature, {})[name] = np.array(value, dtype=object)
        else:
            inputs.setdefault(signature, {})[name] = stored[key]
    return inputs


def run_signatures(version, inputs_path, outputs_path):
    """Load the version as TF Serving does; run each signature on its inputs; the
    signatures' names."""
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], version)
        outputs = {}
        for signature, arguments in read_inputs(inputs_path).items():
            definition = meta_graph.signature_def[signature]
            fetches = {name: info.name for name, info in definition.outputs.items()}
            feeds = {definition.inputs[name].name: value for name, value in arguments.items()}
            for name, array in session.run(fetches, feeds).items():
                if array.dtype == object:
                    array = np.char.decode(array.astype(bytes), "utf-8")
                outputs[f"{signature}/{name}"] = array
    np.savez(outputs_path, **outputs)
    return sorted(k for k in meta_graph.signature_def if not k.startswith("__"))


def main(version, inputs_path, outputs_path, report_path):
    ops, methods = graph_ops(version)
    report = {
        "ops": ops,
        "python_ops": sorted(set(ops) & PYTHON_OPS),
        "custom_ops": sorted(op for op in ops if op_def_registry.get(op) is None),
        "methods": methods,
        "signatures": sorted(methods),
        "error": None,
        "tensorflow": tf.__version__,
    }
    try:
        report["signatures"] = run_signatures(version, inputs_path, outputs_path)
    except Exception as exc:  # the report says what failed; the caller refuses the version
        report["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
    report["zoo_modules_imported"] = sorted(m for m in sys.modules if m.split(".")[0] == "zoo")
    with open(report_path, "w") as handle:
        json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:5])

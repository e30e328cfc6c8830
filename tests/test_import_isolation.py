"""Deployment code imports and runs with torch, TensorRT and cuda-python unimportable.

Every module of the deployment floors (the core, ``ops``, ``runtime``, ``gallery``, ``pipeline`` and, when
it exists, ``serving``) is imported in a process where those packages cannot be, and the pipeline runs."""

import json
import subprocess
import sys
import textwrap

import pytest
from tests.test_floors import PACKAGE, floor_of


def deployment_modules() -> list[str]:
    """Every module on the core and deployment floors, from the files under edgereid/."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name != "edgereid" and floor_of(name)[0] in ("core", "deployment"):
            names.append(name)
    return names

SCRIPT = textwrap.dedent('''
    import importlib.abc, json, sys

    BLOCKED = ("torch", "tensorrt", "tensorrt_rtx", "cuda", "pycuda", "cupy", "onnx")

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked for this test")

    sys.meta_path.insert(0, Block())
    import importlib
    import numpy as np
    for name in json.loads(sys.argv[2]):
        importlib.import_module(name)
    from edgereid.pipeline import Pipeline
    from edgereid.gallery import Gallery

    frame = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    with Pipeline({"reid_model": sys.argv[1], "max_batch": 4}) as pipeline:
        result = pipeline.process([frame], [[[10, 10, 80, 190], [100, 20, 200, 190]]], "cam")[0]
        gallery = Gallery(pipeline.models["reid_model"].card)
        gallery.enroll("a", result.persons.embeddings[0])
        top = gallery.match(result.persons.embeddings)[0]
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"shape": list(result.persons.embeddings.shape), "top": top.best_identity,
                      "loaded": loaded}))
''')


def test_runtime_gallery_pipeline_import_without_torch_tensorrt_cuda(tiny_models, tmp_path):
    script = tmp_path / "isolated.py"
    script.write_text(SCRIPT)
    modules = deployment_modules()
    assert {"edgereid.ops.geometry", "edgereid.runtime.backends.tensorrt", "edgereid.gallery.store",
            "edgereid.pipeline.execution", "edgereid.engine_file"} <= set(modules) and len(modules) > 25
    proc = subprocess.run([sys.executable, str(script), str(tiny_models["test_reid"]["onnx"]), json.dumps(modules)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"shape": [2, 32], "top": "a", "loaded": []}


@pytest.mark.parametrize("old, new", [("edgereid.runtime.preprocess.nv12_to_bgr", "edgereid.ops.preprocess"),
                                      ("edgereid.runtime.postprocess.l2_normalize", "edgereid.ops.postprocess")])
def test_moved_user_facing_names_resolve_with_a_deprecation_warning(old, new):
    import importlib

    module, _, name = old.rpartition(".")
    with pytest.warns(DeprecationWarning, match=f"moved to {new}.{name}"):
        value = getattr(importlib.import_module(module), name)
    assert value is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError):
        importlib.import_module(module).not_a_name


def test_the_public_api_is_lazy_and_light():
    """`import edgereid` loads nothing heavy; the public names load on first use, without torch."""
    script = textwrap.dedent('''
        import json, sys
        import edgereid
        before = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "onnxruntime", "cuda", "numpy"))
        from edgereid import Pipeline, PipelineConfig, Gallery, ModelCard, FaceBoxes, FrameResult, load_backend
        after = sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("torch", "onnx", "cuda", "tensorrt"))
        print(json.dumps({"before": before, "after": sorted(set(after)), "all": edgereid.__all__,
                          "pipeline": Pipeline.__module__, "version": edgereid.__version__}))
    ''')
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["before"] == [] and report["after"] == []
    assert {"Pipeline", "Gallery", "ModelCard", "load_backend", "__version__"} <= set(report["all"])
    assert report["pipeline"] == "edgereid.pipeline.facade" and report["version"]
    with pytest.raises(AttributeError):
        __import__("edgereid").not_a_public_name

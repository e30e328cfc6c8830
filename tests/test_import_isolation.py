"""Deployment code imports and runs with torch, TensorRT and cuda-python unimportable."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import importlib.abc, json, sys

    BLOCKED = ("torch", "tensorrt", "tensorrt_rtx", "cuda", "pycuda", "cupy", "onnx")

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked for this test")

    sys.meta_path.insert(0, Block())
    import numpy as np
    import edgereid.runtime, edgereid.gallery, edgereid.pipeline
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
    proc = subprocess.run([sys.executable, str(script), str(tiny_models["test_reid"]["onnx"])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"shape": [2, 32], "top": "a", "loaded": []}

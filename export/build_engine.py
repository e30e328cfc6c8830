#!/usr/bin/env python3
"""Build a TensorRT (10.x/11.x) or TensorRT-RTX engine from an edgereid ONNX model (= `edgereid engine`).

    python export/build_engine.py --model M.onnx --out M.engine [--precision fp32|fp16|int8] [--calib DIR]
        [--batch MIN:OPT:MAX] [--workspace MB] [--timing-cache FILE] [--cache-dir DIR]

FP16/INT8 graphs are made from the FP32 ONNX and must pass the accuracy gate before any engine is
written; a sidecar <out>.json records the card, the cache key and the command that rebuilds it.
"""

import sys

from edgereid.cli import main

if __name__ == "__main__":
    sys.exit(main(["engine", *sys.argv[1:]]))

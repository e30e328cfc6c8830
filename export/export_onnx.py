#!/usr/bin/env python3
"""Export an edgereid checkpoint to ONNX with its model card (thin wrapper over `edgereid export`).

    python export/export_onnx.py --checkpoint reid.safetensors --out reid.onnx
"""

import sys

from edgereid.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))

"""The ``serve`` verb of the ``edgereid`` command: the pipeline behind a real Triton server (PyTriton)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from edgereid.cli.common import Verbs, add_verbs, ranged_int


def _cmd_serve(args: argparse.Namespace) -> int:
    ports = dict(http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    where = (f"HTTP 127.0.0.1:{args.http_port}, gRPC 127.0.0.1:{args.grpc_port}, metrics :{args.metrics_port} "
             "(SIGTERM or Ctrl-C stops it)")
    if args.repository:
        from edgereid.serving.repository_server import serve_repository

        def repository_ready(loaded: list[str], missing: list[str]) -> None:
            print(f"serving repository {args.repository}: {', '.join(loaded) or 'no model'}; {where}", flush=True)
            if missing:
                print(f"not loaded (their backend is not in PyTriton's CPU server; NVIDIA's Triton images have it): "
                      f"{', '.join(missing)}", flush=True)

        print(f"starting Triton for the repository {args.repository} ...", file=sys.stderr, flush=True)
        serve_repository(args.repository, ready=repository_ready, **ports)
    else:
        from edgereid.serving.triton import serve

        def ready(names: list[str]) -> None:
            print(f"serving {', '.join(names)}: {where}", flush=True)

        print(f"starting Triton for {args.config} ...", file=sys.stderr, flush=True)
        serve(args.config, instances=args.instances, ready=ready, **ports)
    print("stopped", flush=True)
    return 0


def _add_serve(verbs: Verbs) -> None:
    serve = verbs.add_parser("serve", help="the pipeline behind a real NVIDIA Triton server (extra serve): "
                             "edgereid_pipeline (frames + boxes in) and one crop model per configured model; or a "
                             "triton-repo repository's Python-backend parts")
    source = serve.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="pipeline config YAML")
    source.add_argument("--repository", help="a folder `edgereid triton-repo` wrote: its Python-backend "
                        "preprocessing answers here, its ONNX Runtime / TensorRT models need NVIDIA's Triton images")
    port = ranged_int(1, 65_535)
    serve.add_argument("--http-port", type=port, default=8000)
    serve.add_argument("--grpc-port", type=port, default=8001)
    serve.add_argument("--metrics-port", type=port, default=8002)
    serve.add_argument("--instances", type=ranged_int(1, 256), default=8,
                       help="requests to edgereid_pipeline handled at once (the pipeline batches across them)")
    serve.set_defaults(func=_cmd_serve)


def _cmd_triton_repo(args: argparse.Namespace) -> int:
    from edgereid.cli.common import existing_model
    from edgereid.serving.repository import write_model_repository

    written = write_model_repository([existing_model(m) for m in args.model], args.out, max_batch=args.max_batch)
    print(f"wrote a Triton model repository in {args.out} ({len(written)} configs):")
    for path in written:
        print(f"  {path}")
    print("serve it with NVIDIA's Triton image (onnxruntime / tensorrt backends; edgereid installed for the "
          f"Python-backend preprocessing); try the preprocessing here with `edgereid serve --repository {args.out}`")
    return 0


def _add_triton_repo(verbs: Verbs) -> None:
    repo = verbs.add_parser("triton-repo", help="a standalone Triton model repository: each model, its "
                            "Python-backend preprocessing and an ensemble joining them (configs from the cards)")
    repo.add_argument("--model", action="append", required=True, help="ONNX model with a card or engine with its "
                      "sidecar (repeatable)")
    repo.add_argument("--out", required=True, help="repository folder")
    repo.add_argument("--max-batch", type=ranged_int(1, 4096), default=32, help="max_batch_size of ONNX models "
                      "(engines take their profile's)")
    repo.set_defaults(func=_cmd_triton_repo)


VERBS = {"serve": _add_serve, "triton-repo": _add_triton_repo}


def register(verbs: Verbs, names: Sequence[str] | None = None) -> None:
    """Add this group's verbs to ``verbs``: all of them, or those named, in the order named."""
    add_verbs(verbs, VERBS, names)

"""The ``serve`` verb of the ``edgereid`` command: the pipeline behind a real Triton server (PyTriton)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from edgereid.cli.common import Verbs, add_verbs, ranged_int


def _cmd_serve(args: argparse.Namespace) -> int:
    from edgereid.serving.triton import serve

    def ready(names: list[str]) -> None:
        print(f"serving {', '.join(names)}: HTTP 127.0.0.1:{args.http_port}, gRPC 127.0.0.1:{args.grpc_port}, "
              f"metrics :{args.metrics_port} (SIGTERM or Ctrl-C stops it)", flush=True)

    print(f"starting Triton for {args.config} ...", file=sys.stderr, flush=True)
    serve(args.config, http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port,
          instances=args.instances, ready=ready)
    print("stopped", flush=True)
    return 0


def _add_serve(verbs: Verbs) -> None:
    serve = verbs.add_parser("serve", help="the pipeline behind a real NVIDIA Triton server (extra serve): "
                             "edgereid_pipeline (frames + boxes in) and one crop model per configured model")
    serve.add_argument("--config", required=True, help="pipeline config YAML")
    port = ranged_int(1, 65_535)
    serve.add_argument("--http-port", type=port, default=8000)
    serve.add_argument("--grpc-port", type=port, default=8001)
    serve.add_argument("--metrics-port", type=port, default=8002)
    serve.add_argument("--instances", type=ranged_int(1, 256), default=8,
                       help="requests to edgereid_pipeline handled at once (the pipeline batches across them)")
    serve.set_defaults(func=_cmd_serve)


VERBS = {"serve": _add_serve}


def register(verbs: Verbs, names: Sequence[str] | None = None) -> None:
    """Add this group's verbs to ``verbs``: all of them, or those named, in the order named."""
    add_verbs(verbs, VERBS, names)

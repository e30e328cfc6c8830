"""The ``bench`` verb of the ``edgereid`` command, three benchmarks behind one verb:

- ``bench --model M``: latency and crops/s of one model per batch size (raw, end to end, the per-crop loop),
  on ONNX Runtime, OpenVINO, TensorRT or PyTorch (:mod:`edgereid.eval.bench`);
- ``bench --scenario gateway``: how many cameras one CPU core sustains, for the ways a gateway can run its
  ReID and face models (:mod:`edgereid.eval.gateway_bench`);
- ``bench --gallery-sizes N,...``: enrol rate, memory, search latency and recall of galleries up to millions of
  identities (:mod:`edgereid.eval.gallery_bench`; no model needed).

Handlers import the benchmarks inside the function so that the command starts fast."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from edgereid.cli.common import (COUNT, Verbs, add_json_option, add_verbs, int_list, ranged_float, ranged_int,
                                 write_json)
from edgereid.errors import EdgeReidError

BACKEND_NAMES = {"ort": "onnxruntime", "trt": "tensorrt", "torch": "torch", "openvino": "openvino"}


def _progress(message: str) -> None:
    print(f"  {message} ...", file=sys.stderr, flush=True)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.gallery_sizes:
        return _bench_galleries(args)
    if args.scenario == "gateway":
        return _bench_gateway(args)
    if not args.model or len(args.model) != 1:
        raise EdgeReidError("bench times one model", expected="one --model (or --gallery-sizes, or --scenario "
                            "gateway)", got=f"{len(args.model or [])} --model options")
    return _bench_model(args, args.model[0])


def _bench_model(args: argparse.Namespace, model: str) -> int:
    from edgereid.eval.bench import environment, format_table, plot, run_bench
    from edgereid.runtime.backends import load_backend

    if args.precision and args.backend != "openvino":
        raise EdgeReidError("--precision is OpenVINO's inference precision", got=f"--backend {args.backend}",
                            fix="add --backend openvino, or convert the model (edgereid convert) for other backends")
    backend = load_backend(model, backend=BACKEND_NAMES[args.backend], threads=args.threads, precision=args.precision,
                           providers=(args.device,) if args.backend == "torch" else None)
    rows = run_bench(backend, args.batch, e2e=args.e2e, min_seconds=args.seconds,
                     progress=lambda msg: _progress(f"timing {msg}"))
    print(f"{model} on {backend.name} ({', '.join(backend.providers)})")
    print(format_table(rows))
    isa = getattr(backend, "isa", None)
    if isa:
        print(f"OpenVINO {isa['openvino']}: {isa['precision']}, {isa['threads']} threads, {isa['streams']} stream(s), "
              f"CPU capabilities {' '.join(isa['capabilities'])}")
    write_json(args.json, {"model": model, "backend": backend.name, "providers": list(backend.providers),
                           "isa": isa, "environment": environment(), "rows": [r.to_dict() for r in rows]})
    if args.plot:
        print(f"plot: {plot(rows, args.plot, f'{backend.card.name} on {backend.providers[0]}')}")
    return 0


def _bench_galleries(args: argparse.Namespace) -> int:
    from edgereid.eval.bench import environment
    from edgereid.eval.gallery_bench import bench_gallery, plot_gallery

    searches = tuple(args.gallery_searches.split(","))
    rows = bench_gallery(args.gallery_sizes, args.gallery_dim, searches, progress=_progress)
    keys = list(rows[0].to_dict())
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.to_dict().values()) + " |")
    write_json(args.json, {"dim": args.gallery_dim, "environment": environment(), "rows": [r.to_dict() for r in rows]})
    if args.plot:
        print(f"plot: {plot_gallery(rows, args.plot)}")
    return 0


def _bench_gateway(args: argparse.Namespace) -> int:
    from edgereid.bundled import bundled_model
    from edgereid.cli.common import existing_model
    from edgereid.eval.bench import environment
    from edgereid.eval.gateway_bench import bench_gateway, plot_gateway

    given = args.model or []
    if len(given) not in (0, 2):
        raise EdgeReidError("the gateway scenario runs a ReID and a face model", expected="no --model (the bundled "
                            "ones) or two: --model REID.onnx --model FACE.onnx", got=f"{len(given)} --model options")
    reid, face = (str(existing_model(m)) for m in given) if given else (str(bundled_model(t)) for t in ("reid", "face"))
    rows = bench_gateway(reid, face, seconds=max(4.0, args.seconds), precision=args.precision,
                         progress=_progress)
    print(f"ReID {reid}, face {face}: cameras one core sustains at 10 frames/s, 5 people per frame, p99 <= 200 ms")
    print("| path | description | cameras_per_core | p99_ms | crops_per_s |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.path} | {row.description} | {row.cameras_per_core} | {row.p99_ms} | {row.crops_per_s} |")
    baseline = next((r.cameras_per_core for r in rows if r.path == "a"), 0)
    if baseline:
        print("vs (a): " + ", ".join(f"({r.path}) {r.cameras_per_core / baseline:.2f}x" for r in rows))
    write_json(args.json, {"reid_model": reid, "face_model": face, "environment": environment(),
                           "rows": [r.to_dict() for r in rows]})
    if args.plot:
        print(f"plot: {plot_gateway(rows, args.plot)}")
    return 0


def _searches(text: str) -> str:
    from edgereid.eval.gallery_bench import SEARCHES

    unknown = sorted(set(text.split(",")) - set(SEARCHES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown searches {unknown}; choose from {', '.join(SEARCHES)}")
    return text


def _add_bench(verbs: Verbs) -> None:
    bench = verbs.add_parser("bench", help="latency and crops/s per batch size (raw, end to end, per-crop loop); "
                             "cameras per core of a gateway; gallery search at scale")
    bench.add_argument("--model", action="append", help="ONNX model (ort, openvino), engine with sidecar (trt) or "
                       "checkpoint (torch); with --scenario gateway, repeat it: the ReID model, then the face model")
    bench.add_argument("--batch", type=int_list(1, 4096), default="1,8,32", help="comma-separated batch sizes")
    bench.add_argument("--backend", default="ort", choices=list(BACKEND_NAMES),
                       help="ort: ONNX Runtime; openvino: OpenVINO on the CPU (extra openvino); trt: TensorRT engine "
                            "(GPU); torch: the checkpoint")
    bench.add_argument("--precision", choices=["f32", "bf16"], help="OpenVINO inference precision (default: bf16 "
                       "when the model passed `edgereid convert --precision bf16` and the CPU has BF16, else f32)")
    bench.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    bench.add_argument("--e2e", action="store_true", help="also time frames+boxes in, outputs out, and the "
                       "per-crop loop")
    bench.add_argument("--seconds", type=ranged_float(0.0, 86_400.0), default=2.0, help="minimum timing per measurement "
                       "(gateway: simulated seconds per trial, at least 4)")
    bench.add_argument("--threads", type=COUNT, help="ONNX Runtime intra-op / OpenVINO inference threads")
    bench.add_argument("--scenario", choices=["gateway"], help="gateway: the most cameras one core sustains "
                       "(10 frames/s, 5 people and faces per frame, p99 <= 200 ms) for each way of running the models")
    bench.add_argument("--gallery-sizes", type=int_list(1, 100_000_000), metavar="N,N,...",
                       help="benchmark gallery search at these numbers of identities (no model needed)")
    bench.add_argument("--gallery-dim", type=ranged_int(2, 65_536), default=512, help="embedding size of the gallery "
                       "benchmark (default 512, the ReID students')")
    bench.add_argument("--gallery-searches", type=_searches, default="numpy-exact,faiss-flat,faiss-pq-fastscan,faiss-hnsw",
                       help="which searches the gallery benchmark times")
    add_json_option(bench, "the rows and the environment")
    bench.add_argument("--plot", help="write a PNG plot")
    bench.set_defaults(func=_cmd_bench)


VERBS = {"bench": _add_bench}


def register(verbs: Verbs, names: Sequence[str] | None = None) -> None:
    """Add this group's verbs to ``verbs``: all of them, or those named, in the order named."""
    add_verbs(verbs, VERBS, names)

"""A model repository from ``edgereid triton-repo`` served on this machine by PyTriton's Triton (``edgereid serve
--repository``): the Python-backend preprocessing answers in the real server before the repository goes to a GPU.

PyTriton's server build has the Python backend only, so the repository's ONNX Runtime and TensorRT models (and the
ensembles that need them) stay unavailable and are reported so; the server is started with ``strict_readiness``
off so that it reports ready with them missing. The Python-backend models run in the stub's environment
(:mod:`edgereid.serving.stub_env`), which must import edgereid and OpenCV: edgereid's own package is lent to it
through a folder holding only a link to the package (never the rest of this interpreter's site-packages, whose
NumPy 2 breaks the stub), and OpenCV must be installed in it (``make setup`` does).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from edgereid.errors import EdgeReidError

STUB_IMPORTS = "import cv2, numpy, edgereid.card, edgereid.ops.geometry, edgereid.ops.preprocess"


def lend_package(folder: Path) -> Path:
    """A link ``folder/edgereid`` to this edgereid package: the one path the stub needs to import it."""
    import edgereid.card

    package = Path(edgereid.card.__file__).resolve().parent
    link = folder / "edgereid"
    link.symlink_to(package, target_is_directory=True)
    return folder


def check_stub_imports(env: Path, python_path: str) -> None:
    """Raise :class:`EdgeReidError` with the fix unless the stub environment ``env`` imports what the preprocessing
    models need, with ``python_path`` as its ``PYTHONPATH``."""
    python = env / "bin" / "python"
    found = subprocess.run([str(python), "-c", STUB_IMPORTS], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": python_path})
    if found.returncode != 0:
        raise EdgeReidError("the Triton stub environment cannot import the preprocessing models' modules",
                            expected=STUB_IMPORTS, got=(found.stderr.strip().splitlines() or ["?"])[-1][:300],
                            fix=f"{python} -m pip install --no-deps 'opencv-python-headless<5'")


def model_folders(repository: Path) -> list[str]:
    """The model names of a repository: its sub-folders with a ``config.pbtxt``."""
    if not repository.is_dir():
        raise EdgeReidError(f"{repository} is not a model repository folder",
                            fix="write one with `edgereid triton-repo --model M.onnx --out REPO`")
    names = sorted(p.name for p in repository.iterdir() if (p / "config.pbtxt").is_file())
    if not names:
        raise EdgeReidError(f"{repository} holds no models", expected="sub-folders with a config.pbtxt",
                            fix="write one with `edgereid triton-repo --model M.onnx --out REPO`")
    return names


def serve_repository(repository: str | Path, *, http_port: int = 8000, grpc_port: int = 8001,
                     metrics_port: int = 8002,
                     ready: Callable[[list[str], list[str]], None] = lambda *_: None) -> None:
    """Serve ``repository`` until SIGINT or SIGTERM; ``ready`` gets the models that loaded and those that did not
    (their backend is not in this server) once the server answers."""
    from edgereid.errors import require
    from edgereid.serving.stub_env import prepare_environment
    from edgereid.serving.triton import run_until_stopped

    repository = Path(repository).resolve()
    names = model_folders(repository)
    require("pytriton", "serve", "edgereid serve (install nvidia-pytriton with --no-deps, see the README)")
    env = prepare_environment()
    with tempfile.TemporaryDirectory(prefix="edgereid-stub-path-") as lent:
        python_path = str(lend_package(Path(lent)))
        check_stub_imports(env, python_path)
        previous = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = python_path  # the server, and so its stubs, inherit this process's environment
        try:
            from pytriton.triton import Triton, TritonConfig
            import tritonclient.http as http

            config = TritonConfig(model_repository=repository, http_address="127.0.0.1", http_port=http_port,
                                  grpc_address="127.0.0.1", grpc_port=grpc_port, metrics_port=metrics_port,
                                  strict_readiness=False, exit_on_error=False)
            with Triton(config=config) as triton:
                def report() -> None:
                    client = http.InferenceServerClient(f"127.0.0.1:{http_port}")
                    loaded = [name for name in names if client.is_model_ready(name)]
                    ready(loaded, [name for name in names if name not in loaded])

                run_until_stopped(triton, report)
        finally:
            if previous is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = previous

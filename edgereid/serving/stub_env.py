"""The Python environment Triton's Python-backend stub runs in, when PyTriton starts the server.

Two facts of the PyPI build (PyTriton 0.7.0, measured on the CI machine):

- the stub links ``libpython3.X.so`` by name and the loader finds the system's first; with an interpreter of
  another patch release the model fails to load (``'_thread.RLock' object has no attribute
  '_recursion_count'``). :func:`prepare_environment` puts this interpreter's own ``LIBDIR`` first on
  ``LD_LIBRARY_PATH`` of the server it starts;
- the stub binary is built against NumPy 1.x's C ABI: with NumPy 2 in its environment every output reaches the
  client empty (``binary_data_size: 0``; the same model answers correctly from a NumPy 1.26 environment). When
  this interpreter has NumPy 2, the stub therefore needs an environment of its own with ``numpy<2`` and
  ``pyzmq`` for the same Python version (:func:`stub_environment`); the serving process keeps its NumPy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from edgereid.errors import EdgeReidError

STUB_ENV_VARIABLE = "EDGEREID_TRITON_STUB_ENV"


def _candidates() -> list[Path]:
    given = os.environ.get(STUB_ENV_VARIABLE)
    if given:
        return [Path(given)]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgereid" / "triton-stub-env"
    return [Path(sys.prefix) / "triton-stub", cache]


def _fits(env: Path) -> str | None:
    """None when ``env`` has this Python's version with NumPy < 2 and pyzmq; else what is wrong."""
    python = env / "bin" / "python"
    if not python.is_file():
        return f"{python} does not exist"
    probe = "import sys, numpy, zmq; print(sys.version_info[0], sys.version_info[1], numpy.__version__.split('.')[0])"
    try:
        found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} does not run: {exc}"
    if found.returncode != 0:
        return (found.stderr.strip().splitlines() or ["it failed"])[-1][:200]
    major, minor, numpy_major = (int(v) for v in found.stdout.split())
    if (major, minor) != sys.version_info[:2]:
        return f"it is Python {major}.{minor}, this is {sys.version_info[0]}.{sys.version_info[1]}"
    if numpy_major >= 2:
        return "it has NumPy 2"
    return None


def stub_environment() -> Path:
    """The environment for the stub: this interpreter's own while its NumPy is 1.x, else the first of
    ``$EDGEREID_TRITON_STUB_ENV``, ``<sys.prefix>/triton-stub`` (what ``make setup`` creates) and
    ``~/.cache/edgereid/triton-stub-env`` that fits; an :class:`EdgeReidError` with the commands otherwise."""
    import numpy

    if int(numpy.__version__.split(".")[0]) < 2:
        return Path(sys.exec_prefix)
    problems = []
    for env in _candidates():
        problem = _fits(env)
        if problem is None:
            return env
        problems.append(f"{env}: {problem}")
    target = _candidates()[-1]
    raise EdgeReidError("Triton's Python-backend stub needs an environment with NumPy 1.x (PyTriton 0.7.0's stub "
                        "is built against NumPy 1's ABI and returns empty outputs with NumPy 2)",
                        got="; ".join(problems),
                        fix=f"create it once: {sys.executable} -m venv {target} && {target}/bin/pip install "
                            f"'numpy<2' pyzmq  (or point {STUB_ENV_VARIABLE} at such an environment)")


def prepare_environment() -> Path:
    """Set up this process so that the Triton server PyTriton starts can run its Python backend: this
    interpreter's ``libpython`` first on the loader path, and the stub environment (returned) selected."""
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and libdir not in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        os.environ["LD_LIBRARY_PATH"] = ":".join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p)
    env = stub_environment()
    import pytriton.server.triton_server as triton_server

    # PyTriton picks the stub's environment with this function only; it has no setting for it.
    triton_server.get_triton_python_backend_python_env = lambda: env
    return env

"""The base every inference backend derives from (in the spirit of Polygraphy's ``BaseRunner``).

A backend is opened on a model file, reads the model's card from it, and runs ready NCHW batches.
The public :meth:`Backend.infer` checks the batch against the card once, for every backend, and then
calls the backend's own :meth:`Backend._infer`. :meth:`Backend.close` releases everything the backend
allocated (sessions, device buffers, pinned memory, streams, CUDA graphs); backends are context
managers, and a closed backend raises :class:`~edgereid.errors.BackendClosedError`.

Backends whose input buffer lives on the GPU also implement :class:`DeviceInput`, the declared
interface through which a GPU preprocessor writes crops straight into that buffer.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from edgereid.card import ModelCard
from edgereid.errors import BackendClosedError, InputError


def batch_shape(batch: Any) -> tuple[int, ...]:
    """The shape of a host or device batch: NumPy, torch, or anything with ``__cuda_array_interface__``."""
    shape = getattr(batch, "shape", None)
    if shape is None and hasattr(batch, "__cuda_array_interface__"):
        shape = batch.__cuda_array_interface__["shape"]
    if shape is None:
        raise InputError("batch is not an array", expected="a NumPy array, a torch tensor or a device array "
                         "(__cuda_array_interface__ / DLPack)", got=type(batch).__name__)
    return tuple(int(d) for d in shape)


class Backend(abc.ABC):
    """Runs one model on ready NCHW batches; subclasses implement :meth:`_infer` and :meth:`_release`.

    ``card`` is read from the artifact itself; ``providers`` names where it runs; ``max_batch`` is the
    largest batch one call takes (None: unbounded) and ``fixed_batch`` says the model takes exactly
    ``max_batch`` rows (callers pad).
    """

    name: ClassVar[str] = "backend"
    card: ModelCard
    providers: tuple[str, ...] = ()
    max_batch: int | None = None
    fixed_batch: bool = False
    _closed: bool = False

    def infer(self, batch: Any) -> dict[str, np.ndarray]:
        """Every output by the card's output names, as host NumPy arrays."""
        self.check_batch(batch)
        return self._infer(batch)

    def check_batch(self, batch: Any) -> int:
        """The batch size, after checking the backend is open and the batch is ``[N, 3, H, W]`` per the card
        and within the backend's batch limits."""
        self._require_open()
        shape = batch_shape(batch)
        expected = self.card.input.batch_shape(None)[1:]
        if len(shape) != 4 or shape[1:] != expected:
            raise InputError(f"batch has the wrong shape for model '{self.card.name}'",
                             expected=f"[N, {', '.join(map(str, expected))}] ({self.card.input.layout})",
                             got=str(list(shape)),
                             fix="build batches with edgereid.ops.preprocess.preprocess_batch for this card")
        self._check_batch_size(shape[0])
        return shape[0]

    def _check_batch_size(self, n: int) -> None:
        if self.fixed_batch and n != self.max_batch:
            raise InputError(f"this model was exported with a fixed batch of {self.max_batch}", got=str(n),
                             fix="pad the batch to that size, or re-export with a dynamic batch axis")
        if self.max_batch is not None and n > self.max_batch:
            raise InputError(f"batch of {n} is larger than this backend takes", expected=f"<= {self.max_batch}",
                             fix="split the batch (CropModel does)")

    @abc.abstractmethod
    def _infer(self, batch: Any) -> dict[str, np.ndarray]:
        """Run a checked batch."""

    def _release(self) -> None:
        """Free what the backend allocated; called once, by :meth:`close`."""

    def close(self) -> None:
        """Release everything the backend allocated. Idempotent; later calls to :meth:`infer` raise."""
        if not self._closed:
            self._closed = True
            self._release()

    @property
    def closed(self) -> bool:
        return self._closed

    def _require_open(self) -> None:
        if self._closed:
            raise BackendClosedError(f"{self.name} backend for model '{self.card.name}' is closed",
                                     fix="open the model again with edgereid.runtime.backends.load_backend")

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ", ".join(self.providers)
        return f"<{type(self).__name__} {self.card.name} ({state})>"


@runtime_checkable
class DeviceInput(Protocol):
    """A backend whose input buffer lives on the GPU, for preprocessing that writes crops straight into it.

    ``input_pointer`` is the device address of the ``[max_batch, 3, H, W]`` input buffer of dtype
    ``input_dtype``; ``stream`` the CUDA stream its work runs on; :meth:`execute` runs on whatever the
    buffer holds for ``n`` rows (``min_batch <= n <= max_batch``) and :meth:`download` copies the outputs
    of the last execution back to the host.
    """

    stream: Any
    max_batch: int | None
    min_batch: int
    input_dtype: np.dtype

    @property
    def input_pointer(self) -> int: ...

    def execute(self, n: int) -> None: ...

    def download(self, n: int) -> dict[str, np.ndarray]: ...

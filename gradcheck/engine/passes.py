"""Forward passes of the numerical side: counted, reduced to ``L``, and run on an executor.

Every numerical engine calls the target's ``forward`` through a :class:`Runner`, which
counts the passes so that ``report.evaluations`` is honest (probes and verifications
included). Independent pieces of work — colour groups, directions, chunks of elements —
can be handed to any :class:`concurrent.futures.Executor` through :class:`Runners`; the
engines perturb working arrays in place, so every task gets its own working copy (any
object with ``arrays`` and ``forward()``, a :class:`WorkingCopy`: the conventions' working
copies are such objects). Without an executor everything runs
serially on one shared copy. There is no scheduler here: the executor is the user's (threads,
processes, a ``dask.distributed`` client) or one made from the ``workers`` or ``scheduler``
option (:mod:`gradcheck.engine.executors`). Every task is a module-level function or a
bound method of a frozen dataclass, and a working copy is made by a ``functools.partial``
of a module-level function, so processes can receive them by pickling.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import UsageError

__all__ = ["TASKS", "Loss", "Runner", "Runners", "WorkingCopy", "chunks"]

# Independent pieces of work handed to an executor at once: enough to keep a pool busy,
# few enough that building a working copy per task stays cheap.
TASKS = 16

Item = TypeVar("Item")
Result = TypeVar("Result")


class WorkingCopy(Protocol):
    """What the engines need of a working copy: arrays to perturb, a forward pass."""

    @property
    def arrays(self) -> dict[str, NDArray]:
        """The working arrays the forward pass reads, by variable name."""

    def forward(self) -> Any:
        """Run the forward pass at the current working arrays; return its output."""


class Runner:
    """A working copy whose forward passes are counted.

    ``arrays[name]`` is the working array the engines perturb in place.
    """

    def __init__(self, instance: WorkingCopy) -> None:
        self.instance = instance
        self.passes = 0
        self._base: NDArray | None = None

    def base(self) -> NDArray:
        """The output at the working copy's own point (one pass, the first time: a working
        copy is made at that point, and engines restore it after every perturbation)."""
        if self._base is None:
            self._base = self.output()
        return self._base

    @property
    def arrays(self) -> dict[str, NDArray]:
        """The working arrays of the copy, by variable name."""
        return self.instance.arrays

    def output(self) -> NDArray:
        """One forward pass at the current working arrays: the output as an array."""
        self.passes += 1
        return np.asarray(self.instance.forward())

    def loss(self, name: str, weights: NDArray) -> Loss:
        """``L(x) = Σ weights ⊙ (forward() − base)`` with variable ``name`` set to ``x``
        (see :class:`Loss`)."""
        work = self.arrays[name]
        base = None if np.iscomplexobj(work) else self.base()
        return Loss(self, work, weights.astype(np.float64), base)


class Loss:
    """``L(x) = Σ weights ⊙ (forward() − base)`` with a variable's working array set to ``x``.

    The engines perturb the working array in place (no copy per call); any other array is
    copied into it first. Summed in double precision, after subtracting the output at the
    point (:meth:`Runner.base`) output by output: outputs a perturbation does not reach
    are bit for bit the same and drop out exactly, so a difference of ``L`` rounds like the
    outputs it moves, not like the whole sum (moving one input of an elementwise layer
    changes one output of thousands). The constant it subtracts changes no derivative.

    After each call, :attr:`magnitude` is ``√Σ(weights ⊙ forward())²``: the size of what
    the call's rounding is made of (the roundings of independent outputs add up as a
    root-sum-square), over every output — one that did not move may have moved by less
    than its last place.
    """

    def __init__(
        self, runner: Runner, work: NDArray, weights: NDArray, base: NDArray | None
    ) -> None:
        self.runner, self.work, self.weights = runner, work, weights
        self.base = None if base is None else base.astype(np.result_type(base.dtype, np.float64))
        self.magnitude = 0.0

    def __call__(self, x: NDArray) -> complex | float:
        if x is not self.work:
            np.copyto(self.work, x)
        output = self.runner.output()
        if self.weights.ndim == 0 and self.base is not None:  # a loss: one number
            change = (output - self.base).item()  # in the output's own precision first
            self.magnitude = abs(float(self.weights) * output.item())
            return float(self.weights) * float(change)
        wide = output.astype(np.result_type(output.dtype, np.float64))
        if self.base is None:
            total = np.sum(self.weights * wide)
            self.magnitude = float(np.sqrt(np.sum(np.square(self.weights * wide.real))))
        else:
            # Every output rounds, moved or not: one that did not move may have moved by
            # less than its last place (a softmax probability of 1 beside one of 1e-35).
            total = np.sum(self.weights * (wide - self.base))
            self.magnitude = float(np.sqrt(np.sum(np.square(self.weights * wide.real))))
        return complex(total) if np.iscomplexobj(total) else float(total)


class Runners:
    """Runners of one kind (float64, narrow or complex working copies) and an executor.

    ``main`` serves serial work. :meth:`map` runs independent tasks, each on a runner of
    its own when an executor is given; :attr:`passes` counts the passes of all of them.
    """

    def __init__(self, make: Callable[[], WorkingCopy], executor: Executor | None = None) -> None:
        self.make = make
        self.executor = executor
        self.main = Runner(make())
        self._remote_passes = 0

    @property
    def passes(self) -> int:
        """Forward passes run so far, by the main runner and by every task."""
        return self.main.passes + self._remote_passes

    @property
    def parallel(self) -> bool:
        """Whether tasks run on an executor."""
        return self.executor is not None

    def map(self, task: Callable[[Runner, Item], Result], items: Sequence[Item]) -> list[Result]:
        """``[task(runner, item) for item in items]``, in parallel when there is an executor.

        Each parallel task builds its own working copy (``make()``), so tasks never see
        each other's perturbations. Results come back in the order of ``items``.
        """
        if self.executor is None or len(items) <= 1:
            return [task(self.main, item) for item in items]
        results = []
        try:
            futures = [
                self.executor.submit(_run_on_fresh_copy, self.make, task, item) for item in items
            ]
            for future in futures:
                result, passes = future.result()
                self._remote_passes += passes
                results.append(result)
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            if "pickle" not in str(error).lower():
                raise
            raise UsageError(
                f"the executor could not send the work to its workers ({error}). Worker "
                "processes need the layer's class, and everything it holds, importable: "
                "defined at module level, not inside a function or in __main__ (threads need "
                "nothing of the kind)."
            ) from None
        return results


def _run_on_fresh_copy(
    make: Callable[[], WorkingCopy], task: Callable[[Runner, Any], Result], item: Any
) -> tuple[Result, int]:
    runner = Runner(make())
    return task(runner, item), runner.passes


def chunks(count: int, pieces: int) -> list[NDArray[np.intp]]:
    """``range(count)`` cut into at most ``pieces`` contiguous, nearly equal chunks."""
    pieces = max(1, min(pieces, count))
    return [part for part in np.array_split(np.arange(count, dtype=np.intp), pieces) if part.size]

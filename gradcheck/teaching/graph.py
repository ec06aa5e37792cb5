"""Computational graphs: record the ``forward``/``backward`` calls of layers and draw them.

>>> from reference_layers import MulLayer
>>> mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
>>> apple, apple_num, tax = 100, 2, 1.1
>>> with trace() as graph:
...     apple_price = mul_apple_layer.forward(apple, apple_num)
...     price = mul_tax_layer.forward(apple_price, tax)
...     dapple_price, dtax = mul_tax_layer.backward(1)
...     dapple, dapple_num = mul_apple_layer.backward(dapple_price)
>>> print(graph)  # doctest: +NORMALIZE_WHITESPACE
computational graph: 2 layer calls
  [0] mul_apple_layer (MulLayer)  forward(apple=100, apple_num=2) -> 200
                                  backward(1.1) -> (2.2, 110)
  [1] mul_tax_layer (MulLayer)  forward(200 from [0], tax=1.1) -> price=220
                                backward(1) -> (1.1, 200)

``graph.to_dot()`` is Graphviz DOT text (no dependency); ``graph.render("apple.svg")``
runs Graphviz's ``dot`` program to draw it like the chapter's figures: each edge carries
its forward value above the line and its gradient (red) below.

How calls are recorded — two modes, both undone on leaving the block, even on an error
(the watching itself is :mod:`gradcheck.tracing`'s; this module turns calls into nodes):

- ``trace(layer, ...)`` wraps the ``forward`` and ``backward`` of just those objects
  (instance attributes that shadow the class's methods, deleted on exit). Nothing else is
  touched; it works in any thread and under any profiler or debugger.
- ``trace()`` with no argument sees *every* object whose class has both ``forward`` and
  ``backward``, however it was created: it installs a ``sys.setprofile`` hook for the
  current thread, which reports each Python call named ``forward``/``backward`` with its
  arguments and return value. No class or object is modified. Calls in other threads are
  not seen, and a profiler already installed (``cProfile``) is suspended for the block.

A call on an object that is already inside a call of the same method (``super().
backward(dout)`` in a subclass) is the same node and is recorded once.

How values are linked: an input is the output of an earlier call when it is the same
object (arrays, and the floats of the apple example), or a view of one. Python numbers and
0-d values have no reliable identity (CPython shares small ints, and ``float(y)`` makes a
new object), so a number is also linked to an earlier call's output that is *equal* to it
and not yet used by another call. Anything else is an input of the graph, named after the
variable it was passed as, when the caller has one.

The module is longer than most (about 550 lines) because a :class:`Graph` is read three
ways — its nodes, its text form, its Graphviz drawing — and the three share the linking
above; splitting them would scatter one object's logic over several files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import numpy as np

from gradcheck.report.formatting import format_value
from gradcheck.tracing import Call, NotWatchableError, Tracer, has_layer_protocol

__all__ = ["Graph", "GraphvizNotFoundError", "Node", "Value", "trace"]

# How the chapter draws its two nodes.
_SYMBOLS = {"MulLayer": "×", "AddLayer": "+"}
_GRADIENT_COLOUR = "#d62728"
_INSTALL_HINT = (
    "Graphviz's `dot` program is needed to draw the graph: install Graphviz "
    "(Debian/Ubuntu: `apt-get install graphviz`; macOS: `brew install graphviz`; conda: "
    "`conda install graphviz`), or use graph.to_dot() and paste the text into any Graphviz "
    "viewer."
)


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is not installed."""


@dataclass
class Value:
    """A value that flowed through the graph.

    Attributes
    ----------
    obj : object
        The value itself (kept so that its ``id`` is not reused while the graph lives).
    text : str
        Its summary when it was seen (later in-place edits do not change it).
    name : str or None
        The variable it was passed as or assigned to, when known.
    """

    obj: Any = field(repr=False)
    text: str
    name: str | None = None

    @classmethod
    def of(cls, obj: Any, name: str | None = None) -> Value:
        """Record ``obj`` with its summary as of now."""
        return cls(obj, format_value(obj), name)


@dataclass
class Node:
    """One layer call: a ``forward`` and, once it ran, the matching ``backward``.

    Attributes
    ----------
    number : int
        Position in the order of forward calls.
    layer : object
        The layer object.
    name : str or None
        The variable the layer was called through (``mul_apple_layer``), when known.
    inputs : list of Value
        ``forward``'s positional arguments.
    sources : list of int or None
        For each input, the number of the node whose output it is, or ``None`` for an
        input of the graph.
    output : Value or None
        What ``forward`` returned.
    dout : Value or None
        The upstream gradient ``backward`` received.
    grads : list of Value
        What ``backward`` returned, one per input (in order).
    """

    number: int
    layer: Any = field(repr=False)
    name: str | None
    inputs: list[Value]
    sources: list[int | None]
    output: Value | None = None
    dout: Value | None = None
    grads: list[Value] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """The layer's class name."""
        return type(self.layer).__name__

    @property
    def symbol(self) -> str:
        """``×`` for a MulLayer, ``+`` for an AddLayer, else the class name."""
        return _SYMBOLS.get(self.kind, self.kind)

    def grad(self, position: int) -> Value | None:
        """The gradient ``backward`` returned for input ``position``, if any."""
        return self.grads[position] if position < len(self.grads) else None


def _is_data(obj: Any) -> bool:
    """Numbers and arrays flow along edges; flags, None and strings do not."""
    if isinstance(obj, bool | np.bool_):
        return False
    return isinstance(obj, int | float | complex | np.generic | np.ndarray)


def _is_scalar(obj: Any) -> bool:
    return _is_data(obj) and np.ndim(obj) == 0


def _names(obj: Any, frame: FrameType | None) -> list[str]:
    """Variables of ``frame`` bound to exactly ``obj``."""
    if frame is None:
        return []
    return [
        name
        for name, value in list(frame.f_locals.items())
        if value is obj and not name.startswith("_") and name != "self"
    ]


def _layer_name(layer: Any, frame: FrameType | None) -> str | None:
    """How the caller refers to ``layer``: ``self.layers["Affine1"]``, ``self.lastLayer``
    (when a model calls its layers) or a variable (``mul_apple_layer``)."""
    owner = frame.f_locals.get("self") if frame is not None else None
    for attribute, value in list(getattr(owner, "__dict__", {}).items()):
        if value is layer:
            return str(attribute)
        if isinstance(value, dict):
            for key, item in value.items():
                if item is layer and isinstance(key, str):
                    return key
    names = _names(layer, frame)
    return names[0] if names else None


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(np.asarray(a) == np.asarray(b))
    except (TypeError, ValueError):
        return False


class Graph:
    """The recorded computational graph of a :func:`trace` block.

    Attributes
    ----------
    nodes : list of Node
        One per ``forward`` call, in call order.
    """

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._sources: list[Value] = []
        self._consumed: set[int] = set()

    # -- recording ---------------------------------------------------------------------

    def _producer(self, obj: Any) -> int | None:
        for node in reversed(self.nodes):
            if node.output is not None and node.output.obj is obj:
                return node.number
        base = getattr(obj, "base", None)
        while isinstance(base, np.ndarray):
            for node in reversed(self.nodes):
                if node.output is not None and node.output.obj is base:
                    return node.number
            base = base.base
        if _is_scalar(obj):
            for node in reversed(self.nodes):
                output = node.output
                if (
                    node.number not in self._consumed
                    and output is not None
                    and _is_scalar(output.obj)
                    and _equal(output.obj, obj)
                ):
                    return node.number
        return None

    def _source(self, obj: Any, caller: FrameType | None) -> Value:
        candidates = _names(obj, caller)
        for source in self._sources:
            if source.obj is obj and (source.name in candidates or not candidates):
                return source
        taken = {s.name for s in self._sources}
        fresh = [n for n in candidates if n not in taken] or candidates
        source = Value.of(obj, fresh[0] if fresh else None)
        self._sources.append(source)
        return source

    def _record_forward(self, layer: Any, args: tuple[Any, ...], caller: FrameType | None) -> Node:
        inputs, sources = [], []
        for arg in args:
            producer = self._producer(arg) if _is_data(arg) else None
            if producer is not None:
                self._consumed.add(producer)
                inputs.append(Value.of(arg))
            elif _is_data(arg):
                inputs.append(self._source(arg, caller))
            else:
                inputs.append(Value.of(arg))
            sources.append(producer)
        node = Node(len(self.nodes), layer, _layer_name(layer, caller), inputs, sources)
        self.nodes.append(node)
        return node

    def _record_backward(self, layer: Any, dout: Any) -> Node:
        # The latest forward of this layer still waiting for its backward: backward runs
        # in reverse order, so a layer used twice pairs up last-in, first-out.
        for node in reversed(self.nodes):
            if node.layer is layer and node.dout is None:
                break
        else:
            node = Node(len(self.nodes), layer, None, [], [])
            self.nodes.append(node)
        node.dout = Value.of(dout)
        return node

    def _name_results(self, frame: FrameType | None) -> None:
        """Name the outputs nobody consumed after the variables they were assigned to."""
        for node in self.nodes:
            if node.output is not None and node.number not in self._consumed:
                names = _names(node.output.obj, frame)
                node.output.name = names[0] if names else None

    # -- reading -----------------------------------------------------------------------

    @property
    def sinks(self) -> list[Node]:
        """Nodes whose output no recorded call used: the graph's results."""
        return [n for n in self.nodes if n.output is not None and n.number not in self._consumed]

    def __len__(self) -> int:
        return len(self.nodes)

    def __str__(self) -> str:
        lines = [f"computational graph: {len(self.nodes)} layer calls"]
        for node in self.nodes:
            head = f"  [{node.number}] {node.name or ''} ({node.kind})".replace("  ()", " ")
            args = []
            for value, source in zip(node.inputs, node.sources, strict=True):
                if source is not None:
                    args.append(f"{value.text} from [{source}]")
                else:
                    args.append(f"{value.name}={value.text}" if value.name else value.text)
            pad = " " * (len(head) + 2)
            if node.output is not None:
                out = node.output
                shown = f"{out.name}={out.text}" if out.name else out.text
                lines.append(f"{head}  forward({', '.join(args)}) -> {shown}")
            else:
                lines.append(f"{head}  (no forward recorded)")
            if node.dout is not None:
                grads = ", ".join(g.text for g in node.grads)
                grads = f"({grads})" if len(node.grads) != 1 else grads
                lines.append(f"{pad}backward({node.dout.text}) -> {grads}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Graph of {len(self.nodes)} layer calls>"

    # -- drawing -----------------------------------------------------------------------

    def to_dot(self, *, title: str | None = None) -> str:
        """The graph as Graphviz DOT text, in the style of the chapter's figures.

        Layers are circles (``×``, ``+``, or the class name), inputs and results plain
        names; every edge shows its forward value above the line and its gradient
        (red) below.

        Parameters
        ----------
        title : str, optional
            A caption drawn under the graph.

        Returns
        -------
        str
            DOT source; draw it with :meth:`render` or any Graphviz tool.
        """
        lines = [
            "digraph computational_graph {",
            '  graph [rankdir=LR, ordering=in, nodesep=0.3, ranksep=0.25, fontname="Helvetica", '
            'bgcolor="white", pad=0.2];',
            '  node [fontname="Helvetica", fontsize=14];',
            "  edge [arrowsize=0.7, penwidth=1.2];",
        ]
        if title:
            lines.append(f'  label="{_dot_string(title)}"; labelloc=b; fontsize=12;')
        source_ids = {id(s): f"in{i}" for i, s in enumerate(self._sources)}
        for source in self._sources:
            label = source.name or "input"
            lines.append(
                f'  {source_ids[id(source)]} [shape=plaintext, label="{_dot_string(label)}"];'
            )
        for node in self.nodes:
            lines.append(_node_dot(node))
        edge_count = 0

        def edge(tail: str, head: str, forward: Value | None, gradient: Value | None) -> None:
            nonlocal edge_count
            label = f"e{edge_count}"
            edge_count += 1
            lines.append(
                f"  {label} [shape=plaintext, margin=0, width=0, height=0, "
                f"label={_edge_label(forward, gradient)}];"
            )
            lines.append(f"  {tail} -> {label} [arrowhead=none];")
            lines.append(f"  {label} -> {head};")

        for node in self.nodes:
            for position, (value, producer) in enumerate(
                zip(node.inputs, node.sources, strict=True)
            ):
                if not _is_data(value.obj):
                    continue
                tail = f"n{producer}" if producer is not None else source_ids[id(value)]
                edge(tail, f"n{node.number}", value, node.grad(position))
        for number, node in enumerate(self.sinks):
            assert node.output is not None
            sink = f"out{number}"
            lines.append(
                f'  {sink} [shape=plaintext, label="{_dot_string(node.output.name or "output")}"];'
            )
            edge(f"n{node.number}", sink, node.output, node.dout)
        lines.append("}")
        return "\n".join(lines) + "\n"

    def render(self, path: str | Path, *, format: str | None = None) -> Path:
        """Draw the graph to a file with Graphviz's ``dot`` program.

        Parameters
        ----------
        path : str or Path
            The file to write; parent directories are created.
        format : str, optional
            Any Graphviz output format (``"svg"``, ``"png"``, ``"pdf"``); default from the
            file's suffix.

        Returns
        -------
        Path
            The file written.

        Raises
        ------
        GraphvizNotFoundError
            When ``dot`` is not installed (say how to install it).
        """
        target = Path(path)
        kind = format or target.suffix.lstrip(".") or "svg"
        target.parent.mkdir(parents=True, exist_ok=True)
        options = ["-Gdpi=144"] if kind == "png" else []
        target.write_bytes(_run_dot(self.to_dot(), kind, options))
        return target

    def svg(self) -> str:
        """The drawing as SVG text (needs Graphviz's ``dot``; see :meth:`render`)."""
        return _run_dot(self.to_dot(), "svg", []).decode("utf-8")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Notebooks show the drawing when Graphviz is installed, else the DOT text."""
        bundle = {"text/plain": str(self)}
        if shutil.which("dot"):
            bundle["image/svg+xml"] = self.svg()
        else:
            bundle["text/markdown"] = (
                "Graphviz is not installed, so here is the graph as DOT text "
                "(paste it into any Graphviz viewer):\n\n```dot\n" + self.to_dot() + "```"
            )
        return bundle


def _dot_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _node_dot(node: Node) -> str:
    symbol = node.symbol
    tooltip = _dot_string(f"{node.name or ''} {node.kind}".strip())
    if len(symbol) == 1:
        shape = f'shape=circle, fixedsize=true, width=0.5, fontsize=22, label="{symbol}"'
    else:
        shape = f'shape=box, style=rounded, label="{_dot_string(symbol)}"'
    xlabel = ""
    if node.name:
        xlabel = f', xlabel=<<font point-size="9" color="#888888">{escape(node.name)}</font>>'
    return f'  n{node.number} [{shape}, tooltip="{tooltip}"{xlabel}];'


def _edge_label(forward: Value | None, gradient: Value | None) -> str:
    """Forward value above an underline that continues the edge, gradient below it."""
    above = escape(forward.text) if forward is not None else " "
    below = escape(gradient.text) if gradient is not None else " "
    return (
        '<<table border="0" cellborder="0" cellspacing="0" cellpadding="2">'
        f'<tr><td border="1" sides="b">{above}</td></tr>'
        f'<tr><td><font color="{_GRADIENT_COLOUR}">{below}</font></td></tr></table>>'
    )


def _run_dot(source: str, kind: str, options: list[str]) -> bytes:
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(_INSTALL_HINT)
    done = subprocess.run(
        [program, f"-T{kind}", *options],
        input=source.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"dot -T{kind} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


class _Recorder:
    """Turns calls into graph entries; ignores a method re-entered on the same object."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.active: list[tuple[int, str]] = []

    def begin(self, call: Call) -> bool:
        if (id(call.layer), call.method) in self.active:
            return False
        if call.method == "forward":
            call.memo = self.graph._record_forward(call.layer, call.args, call.caller)
        else:
            call.memo = self.graph._record_backward(call.layer, call.args[0] if call.args else None)
        self.active.append((id(call.layer), call.method))
        return True

    def end(self, call: Call) -> None:
        self.active.pop()
        node: Node = call.memo
        if call.method == "forward":
            node.output = Value.of(call.result)
        else:
            parts = call.result if isinstance(call.result, tuple) else (call.result,)
            node.grads = [Value.of(part) for part in parts]


class _Trace:
    """The context manager :func:`trace` returns."""

    def __init__(self, layers: tuple[Any, ...]) -> None:
        for layer in layers:
            if not has_layer_protocol(layer):
                raise TypeError(
                    f"trace() watches layers with forward() and backward() methods; "
                    f"{type(layer).__name__} lacks one"
                )
        unique = list({id(layer): layer for layer in layers}.values())
        self.graph = Graph()
        self.tracer = Tracer(
            _Recorder(self.graph), [(None, layer) for layer in unique] if unique else None
        )
        self.user_frame: FrameType | None = None

    def __enter__(self) -> Graph:
        self.user_frame = sys._getframe(1)
        try:
            self.tracer.__enter__()
        except NotWatchableError as exc:
            raise TypeError(
                f"cannot watch {type(exc.layer).__name__}.{exc.method}: the object has no "
                "__dict__ (__slots__?). Use trace() without arguments instead."
            ) from exc.__cause__
        return self.graph

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.tracer.__exit__(kind, error, traceback)
        self.graph._name_results(self.user_frame)
        self.user_frame = None


def trace(*layers: Any) -> _Trace:
    """Record the computational graph of the layer calls inside a ``with`` block.

    Parameters
    ----------
    *layers : layer objects, optional
        Watch only these objects (their ``forward``/``backward`` are wrapped for the
        block). With none, every object whose class has ``forward`` and ``backward`` is
        watched, through a ``sys.setprofile`` hook on the current thread.

    Returns
    -------
    context manager
        ``with trace() as graph:`` gives a :class:`Graph`, complete when the block ends.
        Everything patched or installed is restored on exit, also after an exception.

    Raises
    ------
    TypeError
        When a given object has no ``forward`` or ``backward``, or cannot be wrapped.

    Examples
    --------
    >>> from reference_layers import AddLayer
    >>> add = AddLayer()
    >>> with trace(add) as graph:
    ...     total = add.forward(1.5, 2.0)
    ...     grads = add.backward(1.0)
    >>> graph.nodes[0].output.text, [g.text for g in graph.nodes[0].grads]
    ('3.5', ['1', '1'])
    >>> "forward" in vars(add)
    False
    """
    return _Trace(layers)

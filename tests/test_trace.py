"""Computational-graph tracing: the chapter's apple examples, linking, and clean restore."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from zoo import BROKEN

import gradcheck
from gradcheck.teaching.graph import Graph, GraphvizNotFoundError, trace
from reference_layers import AddLayer, Affine, MulLayer, Relu

_EDGE = re.compile(
    r'<td border="1" sides="b">([^<]*)</td></tr><tr><td><font color="#d62728">([^<]*)</font>'
)
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def _edges(graph: Graph) -> set[tuple[str, str]]:
    """(forward value, gradient) of every edge in the DOT text."""
    return set(_EDGE.findall(graph.to_dot()))


def _apple(watch: Callable[..., Any]) -> Graph:
    """The chapter's first example (buying two apples with tax)."""
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
    with watch(mul_apple_layer, mul_tax_layer) as graph:
        apple_price = mul_apple_layer.forward(apple, apple_num)
        price = mul_tax_layer.forward(apple_price, tax)
        dprice = 1
        dapple_price, dtax = mul_tax_layer.backward(dprice)
        dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    assert (price, dapple, dapple_num, dtax) == pytest.approx((220, 2.2, 110, 200))
    return graph


def _apple_orange(watch: Callable[..., Any]) -> Graph:
    """The chapter's second example (apples and oranges with tax)."""
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()
    layers = (mul_apple_layer, mul_orange_layer, add_apple_orange_layer, mul_tax_layer)
    with watch(*layers) as graph:
        apple_price = mul_apple_layer.forward(apple, apple_num)
        orange_price = mul_orange_layer.forward(orange, orange_num)
        all_price = add_apple_orange_layer.forward(apple_price, orange_price)
        price = mul_tax_layer.forward(all_price, tax)
        dprice = 1
        dall_price, dtax = mul_tax_layer.backward(dprice)
        dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
        dorange, dorange_num = mul_orange_layer.backward(dorange_price)
        dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    assert (price, dapple, dapple_num, dorange, dorange_num, dtax) == pytest.approx(
        (715, 2.2, 110, 3.3, 165, 650)
    )
    return graph


def _everything(*layers: Any) -> Any:
    return trace()


WATCHERS = {"given-layers": trace, "all-layers": _everything}


@pytest.mark.parametrize("watch", WATCHERS.values(), ids=WATCHERS.keys())
def test_apple_graph_has_the_published_values(watch: Callable[..., Any]) -> None:
    graph = _apple(watch)
    assert _edges(graph) == {
        ("100", "2.2"),
        ("2", "110"),
        ("200", "1.1"),
        ("1.1", "200"),
        ("220", "1"),
    }
    assert [node.symbol for node in graph.nodes] == ["×", "×"]
    assert graph.nodes[1].sources == [0, None]


@pytest.mark.parametrize("watch", WATCHERS.values(), ids=WATCHERS.keys())
def test_apple_orange_graph_has_the_published_values(watch: Callable[..., Any]) -> None:
    graph = _apple_orange(watch)
    assert _edges(graph) == {
        ("100", "2.2"),
        ("2", "110"),
        ("150", "3.3"),
        ("3", "165"),
        ("200", "1.1"),
        ("450", "1.1"),
        ("650", "1.1"),
        ("1.1", "650"),
        ("715", "1"),
    }
    assert [node.symbol for node in graph.nodes] == ["×", "×", "+", "×"]


def test_inputs_layers_and_results_are_named_after_their_variables() -> None:
    dot = _apple(trace).to_dot()
    for name in ("apple", "apple_num", "tax", "price", "mul_apple_layer", "mul_tax_layer"):
        assert f'"{name}"' in dot or f">{name}<" in dot


def test_text_form_lists_every_call() -> None:
    text = str(_apple(trace))
    assert "forward(apple=100, apple_num=2) -> 200" in text
    assert "backward(1) -> (1.1, 200)" in text


def test_given_layers_are_restored_after_the_block() -> None:
    layer = MulLayer()
    with trace(layer):
        assert "forward" in vars(layer)
    assert "forward" not in vars(layer) and "backward" not in vars(layer)
    assert layer.forward.__func__ is MulLayer.forward  # type: ignore[attr-defined]


def test_given_layers_are_restored_after_an_exception() -> None:
    layer = MulLayer()
    with pytest.raises(ZeroDivisionError), trace(layer):
        layer.forward(1.0, 2.0)
        _ = 1 / 0
    assert "forward" not in vars(layer) and "backward" not in vars(layer)


def test_an_exception_inside_forward_is_recorded_and_propagated() -> None:
    layer = MulLayer()
    with pytest.raises(TypeError), trace(layer) as graph:
        layer.forward(1.0, None)
    assert len(graph.nodes) == 1
    assert "forward" not in vars(layer)


def test_an_instance_attribute_forward_is_put_back() -> None:
    layer = MulLayer()

    def custom(x: Any, y: Any) -> Any:
        return x * y * 2

    layer.forward = custom  # type: ignore[method-assign]
    with trace(layer) as graph:
        layer.forward(1.0, 3.0)
    assert vars(layer)["forward"] is custom
    assert graph.nodes[0].output is not None and graph.nodes[0].output.text == "6"


@pytest.mark.parametrize("fail", [False, True])
def test_the_profile_hook_is_removed_after_the_block(fail: bool) -> None:
    before = sys.getprofile()
    with pytest.raises(RuntimeError) if fail else nullcontext(), trace():
        MulLayer().forward(2.0, 3.0)
        if fail:
            raise RuntimeError("boom")
    assert sys.getprofile() is before


def test_a_super_call_counts_once() -> None:
    layer, (x,) = BROKEN["affine-one-wrong-element"](np.random.default_rng(0))
    with trace() as graph:
        out = layer.forward(x)
        layer.backward(np.ones_like(out))
    assert len(graph.nodes) == 1
    assert len(graph.nodes[0].grads) == 1


def test_arrays_are_summarised_by_shape_and_first_values() -> None:
    rng = np.random.default_rng(0)
    affine, relu = Affine(rng.standard_normal((4, 3)), np.zeros(3)), Relu()
    x = rng.standard_normal((5, 4))
    with trace(affine, relu) as graph:
        y = relu.forward(affine.forward(x))
        affine.backward(relu.backward(np.ones_like(y)))
    dot = graph.to_dot()
    assert "(5, 4) [" in dot and "(5, 3) [" in dot and "…" in dot
    assert graph.nodes[1].sources == [0]


def test_a_view_of_an_output_is_linked_to_it() -> None:
    first, second = Relu(), Relu()
    with trace(first, second) as graph:
        out = first.forward(np.arange(6.0).reshape(2, 3))
        second.forward(out.reshape(3, 2))
    assert graph.nodes[1].sources == [0]


@pytest.mark.parametrize("convert", [float, np.float64, np.asarray], ids=["float", "f64", "0-d"])
def test_numbers_are_linked_by_value_when_identity_is_lost(convert: Callable[[Any], Any]) -> None:
    first, second = MulLayer(), MulLayer()
    with trace(first, second) as graph:
        out = first.forward(2.5, 3.0)
        copy = convert(out + 0.0)
        second.forward(copy, 4.0)
    assert graph.nodes[1].sources == [0, None]


def test_a_number_equal_to_a_used_output_is_not_linked_again() -> None:
    first, second, third = MulLayer(), MulLayer(), MulLayer()
    with trace(first, second, third) as graph:
        out = first.forward(2.5, 3.0)
        second.forward(out, 1.5)
        third.forward(7.5 + 0.0, 2.0)
    assert graph.nodes[2].sources == [None, None]


def test_a_layer_used_twice_pairs_backward_calls_last_in_first_out() -> None:
    layer = MulLayer()
    with trace(layer) as graph:
        first = layer.forward(2.0, 3.0)
        layer.forward(first, 5.0)
        layer.backward(1.0)
    assert graph.nodes[1].dout is not None and graph.nodes[0].dout is None


def test_objects_without_the_layer_protocol_are_refused() -> None:
    with pytest.raises(TypeError, match="forward"):
        trace(object())


def test_trace_is_exported() -> None:
    assert gradcheck.trace is trace


@needs_dot
def test_render_draws_svg_and_png(tmp_path: Path) -> None:
    graph = _apple(trace)
    svg = graph.render(tmp_path / "apple.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and ">220<" in svg and ">2.2<" in svg
    assert graph.render(tmp_path / "apple.png").read_bytes()[:4] == b"\x89PNG"
    assert "image/svg+xml" in graph._repr_mimebundle_()


def test_without_graphviz_render_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    graph = _apple(trace)
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        graph.render(tmp_path / "apple.svg")
    bundle = graph._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and "digraph" in bundle["text/markdown"]

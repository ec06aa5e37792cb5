"""Every convention people write backprop code in: correct code passes, planted bugs fail
with the wrong element named, in float64 and float32, and nothing the user owns changes."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from styles import (
    CASES,
    BuggyAffine,
    Embedding,
    FlagNet,
    ListAffine,
    ListNet,
    LossNet,
    ResidualBlock,
    scaled_backward,
    scaled_forward,
)
from test_properties import _snapshot

import gradcheck
from gradcheck.conventions import Convention, register, unregister
from gradcheck.strategies import indices
from reference_layers import Affine

DTYPES = [np.float64, np.float32]
BUGS = [(name, bug) for name in sorted(CASES) for bug in sorted(CASES[name].wrong)]


def _built(name: str, dtype: Any, bug: str | None) -> tuple[Any, tuple[Any, ...], Any]:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return CASES[name].build(rng, dtype, bug)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_correct_code_passes_and_the_report_names_its_convention(name: str, dtype: Any) -> None:
    obj, inputs, options = _built(name, dtype, None)
    before = _snapshot((obj, inputs))
    report = gradcheck.check(obj, *inputs, **options)
    assert report.passed, str(report)
    assert report.convention == CASES[name].convention
    assert f"convention: {CASES[name].convention}" in str(report)
    assert _snapshot((obj, inputs)) == before


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "bug"), BUGS)
def test_a_planted_bug_fails_with_the_wrong_element_named(name: str, bug: str, dtype: Any) -> None:
    obj, inputs, options = _built(name, dtype, bug)
    before = _snapshot((obj, inputs))
    report = gradcheck.check(obj, *inputs, **options)
    assert not report.passed, str(report)
    wrong = report.variable(CASES[name].wrong[bug])
    assert wrong.mismatches > 0 and wrong.worst, str(report)
    assert f"{wrong.name}: {wrong.mismatches} of {wrong.checked} elements wrong" in str(report)
    assert _snapshot((obj, inputs)) == before


# -- never a silent pass --------------------------------------------------------------------
class ListAffineWithTemperature(ListAffine):
    """A list-convention layer that also divides by ``self.temperature`` and gives it no
    gradient: the output depends on an array no convention paired."""

    def __init__(self, W: Any, b: Any) -> None:
        super().__init__(W, b)
        self.temperature = np.array(2.0)

    def forward(self, x: Any) -> Any:
        return super().forward(x) / self.temperature

    def backward(self, dout: Any) -> Any:
        return super().backward(dout / self.temperature)


class LossNetWithScale(LossNet):
    """A model whose loss reads ``self.scale``, which is not in ``params``."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.scale = np.ones(3)

    def loss(self, X: Any, y: Any = None) -> Any:
        loss, grads = super().loss(X, y)
        return loss + float(np.sum(self.scale**2)), grads


def test_an_unpaired_array_in_a_list_layer_is_never_a_plain_pass() -> None:
    rng = np.random.default_rng(0)
    layer = ListAffineWithTemperature(rng.standard_normal((4, 3)), rng.standard_normal(3))
    report = gradcheck.check(layer, rng.standard_normal((5, 4)))
    assert all(v.passed for v in report.variables)
    assert str(report.verdict) == "INCOMPLETE" and report.unchecked == ["temperature"]
    assert "? ListAffineWithTemperature: temperature changes the output" in str(report)
    with pytest.raises(gradcheck.GradientCheckError, match="temperature"):
        gradcheck.assert_gradients(layer, rng.standard_normal((5, 4)))


def test_an_array_outside_a_models_params_is_never_a_plain_pass() -> None:
    rng = np.random.default_rng(0)
    net = LossNetWithScale(*[rng.standard_normal(s) for s in ((4, 5), 5, (5, 3), 3)])
    report = gradcheck.check(net, rng.standard_normal((6, 4)), np.array([0, 1, 2, 0, 1, 2]))
    assert not report.passed and report.unchecked == ["scale"]


def test_arrays_forward_recomputes_are_not_counted() -> None:
    rng = np.random.default_rng(0)
    layer = ListAffine(rng.standard_normal((4, 3)), rng.standard_normal(3))
    layer.forward(rng.standard_normal((5, 4)))  # leaves a cache behind
    assert gradcheck.check(layer, rng.standard_normal((5, 4))).passed


# -- conventions a user teaches -------------------------------------------------------------
class Weighted:
    """Parameters in ``self.weights``, gradients in ``self.weight_grads``."""

    def __init__(self, s: Any, bug: str | None = None) -> None:
        self.weights, self.weight_grads, self.bug = {"s": s}, {}, bug

    def forward(self, x: Any) -> Any:
        self.x = x
        return x * self.weights["s"]

    def backward(self, dout: Any) -> Any:
        self.weight_grads["s"] = (dout * self.x).sum(axis=0) * (3 if self.bug else 1)
        return dout * self.weights["s"]


@pytest.fixture
def weights_convention() -> Any:
    class WeightsDicts(Convention):
        name = "weights/weight_grads dicts"

        def recognises(self, obj: Any) -> bool:
            return hasattr(obj, "weights") and hasattr(obj, "weight_grads")

        def parameters(self, layer: Any) -> Any:
            return layer.weights

        def gradients(self, layer: Any, returned: Any) -> Any:
            return layer.weight_grads

    register(WeightsDicts())
    yield
    unregister("weights/weight_grads dicts")


def test_without_its_convention_a_users_store_is_never_a_plain_pass() -> None:
    report = gradcheck.check(Weighted(np.ones(3), bug="factor"), np.ones((2, 3)))
    assert not report.passed and report.unchecked == ["weights['s']"]


@pytest.mark.usefixtures("weights_convention")
def test_a_convention_a_user_registers_is_used_and_named() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3))
    report = gradcheck.check(Weighted(np.full(3, 1.5)), x)
    assert report.passed and report.convention == "weights/weight_grads dicts"
    assert [v.name for v in report.variables] == ["x", "s"]
    wrong = gradcheck.check(Weighted(np.full(3, 1.5), bug="factor"), x)
    assert wrong.variable("s").mismatches == 3


def test_register_refuses_what_is_not_a_convention() -> None:
    with pytest.raises(TypeError, match="Convention subclass"):
        register(object())  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no convention called 'nonesuch'"):
        unregister("nonesuch")


# -- details of the built-in conventions ----------------------------------------------------
def test_tied_weights_in_one_list_get_the_sum_of_their_gradients() -> None:
    class TiedAffine:
        """``x W Wᵀ``-style reuse: the same array twice in ``params``."""

        def __init__(self, W: Any) -> None:
            self.params = [W, W]
            self.grads = [np.zeros_like(W), np.zeros_like(W)]

        def forward(self, x: Any) -> Any:
            self.x, self.h = x, x @ self.params[0]
            return self.h @ self.params[1].T

        def backward(self, dout: Any) -> Any:
            W = self.params[0]
            self.grads[1][...] = dout.T @ self.h
            dh = dout @ W
            self.grads[0][...] = self.x.T @ dh
            return dh @ W.T

    rng = np.random.default_rng(0)
    report = gradcheck.check(TiedAffine(rng.standard_normal((3, 3))), rng.standard_normal((4, 3)))
    assert report.passed, str(report)
    assert [v.name for v in report.variables] == ["x", "params[0]"]
    assert any("params[1] is the same array as params[0]" in n for n in report.notes)


def test_a_model_honours_forward_kwargs_and_says_so_when_they_are_missing() -> None:
    rng = np.random.default_rng(0)
    net, data = (
        FlagNet(rng.standard_normal((4, 3))),
        (rng.standard_normal((6, 4)), np.array([0, 2, 1, 1, 0, 2])),
    )
    plain = gradcheck.check(net, *data)
    assert not plain.passed
    assert any("forward_kwargs={'train_flg': True}" in note for note in plain.notes)
    assert gradcheck.check(net, *data, forward_kwargs={"train_flg": True}).passed


def test_integer_and_boolean_inputs_are_constants_even_with_a_gradient() -> None:
    class Masked:
        def forward(self, x: Any, keep: Any, idx: Any) -> Any:
            self.keep = keep
            return x * keep + x[:, idx].sum(axis=1, keepdims=True)

        def backward(self, dout: Any) -> Any:
            dx = dout * self.keep
            np.add.at(dx, (slice(None), [0, 0]), dout.sum(axis=1, keepdims=True))
            return dx, np.zeros(self.keep.shape), np.zeros(2)  # gradients for constants too

    x = np.random.default_rng(0).standard_normal((3, 4))
    report = gradcheck.check(
        Masked(), x, np.array([[True, False, True, True]] * 3), np.array([0, 0])
    )
    assert report.passed, str(report)
    assert [c.name for c in report.constants] == ["keep", "idx"]


def test_parameters_created_by_forward_are_refused_with_the_reason() -> None:
    class Lazy(ListAffine):
        def __init__(self) -> None:
            self.params, self.grads, self.bug, self.rebind = [], [], None, False

        def forward(self, x: Any) -> Any:
            if not self.params:
                self.params = [np.ones((x.shape[1], 2)), np.zeros(2)]
                self.grads = [np.zeros((x.shape[1], 2)), np.zeros(2)]
            return super().forward(x)

    with pytest.raises(gradcheck.CheckError, match=r"^Lazy: params\[0\] is created by forward"):
        gradcheck.check(Lazy(), np.ones((3, 4)))


def test_a_pair_passes_keyword_arguments_and_names_its_functions() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    report = gradcheck.check((scaled_forward, scaled_backward), x, w, forward_kwargs={"scale": 2.5})
    assert report.passed and report.target == "scaled"

    def doubled_backward(dout: Any, cache: Any) -> Any:
        dx, dw = scaled_backward(dout, cache)
        return dx, 2 * dw

    wrong = gradcheck.check((scaled_forward, doubled_backward), x, w, forward_kwargs={"scale": 2.5})
    assert not wrong.passed and wrong.variable("w").mismatches == w.size


def test_a_pair_whose_forward_returns_no_cache_is_refused() -> None:
    with pytest.raises(
        gradcheck.CheckError,
        match=r"^relu_forward returned ndarray; expected "
        r"\(out, cache\)",
    ):
        gradcheck.check((relu_forward, relu_backward), np.ones((2, 2)))


def relu_forward(x: Any) -> Any:
    return np.maximum(x, 0)


def relu_backward(dout: Any, cache: Any) -> Any:
    return dout


def test_a_wrong_gradient_in_a_sublayer_is_named_by_its_path() -> None:
    rng = np.random.default_rng(0)
    block = ResidualBlock(
        BuggyAffine(rng.standard_normal((4, 3)), rng.standard_normal(3), bug="factor"),
        Affine(rng.standard_normal((3, 4)), rng.standard_normal(4)),
    )
    report = gradcheck.check(block, rng.standard_normal((5, 4)))
    assert not report.passed
    assert [v.name for v in report.variables if not v.passed] == ["fc1.W"]
    assert "the gradient of fc1.W is off by a constant factor: ×3" in str(report.conclusion)


# -- check_network --------------------------------------------------------------------------
def test_check_network_finds_the_guilty_layer_of_a_sequel_style_net() -> None:
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(s) for s in ((4, 5), 5, (5, 3), 3)]
    data = (rng.standard_normal((6, 4)), np.array([0, 2, 1, 1, 0, 2]))
    assert gradcheck.check_network(ListNet(*weights), *data).passed
    report = gradcheck.check_network(ListNet(*weights, bug="factor"), *data)
    assert report.guilty == "ListAffine[2]"
    assert [name for name, _ in report.layers][-1] == "loss_layer"
    assert "params[2] is ListAffine[2].params[0]" in str(report.conclusion)


def test_check_network_honours_forward_kwargs() -> None:
    rng = np.random.default_rng(0)
    net, data = (
        FlagNetWithLayers(rng.standard_normal((4, 3))),
        (rng.standard_normal((6, 4)), np.array([0, 2, 1, 1, 0, 2])),
    )
    assert not gradcheck.check_network(net, *data).passed
    assert gradcheck.check_network(net, *data, forward_kwargs={"train_flg": True}).passed


class FlagNetWithLayers(FlagNet):
    """:class:`FlagNet` exposing its one layer, as nets checked by check_network do."""

    def __init__(self, W: Any) -> None:
        super().__init__(W)
        self.layers = [Affine(W, np.zeros(W.shape[1]))]

    def loss(self, x: Any, t: Any, train_flg: bool = False) -> float:
        self.layers[0].forward(x)
        return super().loss(x, t, train_flg)


@settings(max_examples=10, deadline=None)
@given(idx=indices(st.tuples(st.integers(1, 3), st.integers(1, 4)), high=5))
def test_drawn_indices_always_expose_an_embedding_that_drops_repeats(idx: Any) -> None:
    W = np.random.default_rng(0).standard_normal((5, 3))
    assert gradcheck.check(Embedding(W), idx).passed
    assert idx.size < 2 or not gradcheck.check(Embedding(W, bug="dropped"), idx).passed

"""check_network names the guilty layer, or the wiring, of a net whose gradient is wrong."""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from zoo import AffineBiasTimesBatch, AffineOneWrongElement

import gradcheck
from gradcheck import CheckError, OptionError
from gradcheck.network import suggestion
from reference_layers import (
    Affine,
    BatchNormalization,
    Dropout,
    MultiLayerNet,
    Relu,
    SoftmaxWithLoss,
    TwoLayerNet,
)
from reference_layers.functions import softmax

# ---------------------------------------------------------------------------------------
# Layers with one planted bug each


class ReluWrongMask(Relu):
    """``dx = dout where x < 0``: the mask is inverted."""

    def backward(self, dout: NDArray[Any]) -> NDArray[Any]:
        assert self.mask is not None
        return np.where(self.mask, 0, dout)


class SoftmaxWithLossNoMean(SoftmaxWithLoss):
    """``dx = y - t``: the division by the batch size is missing."""

    def backward(self, dout: Any = 1) -> NDArray[Any]:
        return super().backward(dout) * self.x_shape[0]  # type: ignore[index]


def _two_layer_net(
    seed: int = 0, dtype: Any = np.float64, sizes: tuple[int, ...] = (4, 5, 3)
) -> tuple[TwoLayerNet, NDArray[Any], NDArray[Any]]:
    rng = np.random.default_rng(seed)
    net = TwoLayerNet(sizes[0], sizes[1], sizes[2], weight_init_std=0.5, seed=rng, dtype=dtype)
    x = rng.standard_normal((3, sizes[0])).astype(dtype)
    return net, x, rng.integers(0, sizes[-1], size=3)


def _plant(net: TwoLayerNet, name: str, layer: Any) -> None:
    net.layers[name] = layer


PLANTED: dict[str, Callable[[TwoLayerNet], None]] = {
    "Affine1": lambda net: _plant(
        net, "Affine1", AffineOneWrongElement(net.params["W1"], net.params["b1"])
    ),
    "Relu1": lambda net: _plant(net, "Relu1", ReluWrongMask()),
    "Affine2": lambda net: _plant(
        net, "Affine2", AffineBiasTimesBatch(net.params["W2"], net.params["b2"])
    ),
    "lastLayer": lambda net: setattr(net, "lastLayer", SoftmaxWithLossNoMean()),
}


@pytest.mark.parametrize("guilty", sorted(PLANTED))
def test_a_planted_bug_is_blamed_on_its_layer(guilty: str) -> None:
    net, x, t = _two_layer_net()
    PLANTED[guilty](net)
    report = gradcheck.check_network(net, x, t)
    assert not report.passed
    assert report.guilty == guilty, str(report)
    assert report.conclusion is not None and report.conclusion.startswith(f"{guilty}")
    assert [name for name, r in report.layers if not r.passed] == [guilty]
    assert report.end_to_end is not None and not report.end_to_end.passed


def test_the_wrong_element_is_named() -> None:
    net, x, t = _two_layer_net()
    PLANTED["Affine1"](net)
    report = gradcheck.check_network(net, x, t)
    weights = report.layer("Affine1").variable("W")
    assert weights.mismatches == 1 and weights.worst[0].index == (2, 1)
    assert "dW[2, 1]" in str(report)


def test_batch_size_bug_is_named_in_the_conclusion() -> None:
    net, x, t = _two_layer_net()
    PLANTED["Affine2"](net)
    conclusion = gradcheck.check_network(net, x, t).conclusion
    assert conclusion is not None
    assert conclusion.startswith("Affine2.backward: db is ×3 too large")
    assert "batch size" in conclusion


def test_missing_mean_in_the_loss_is_named() -> None:
    net, x, t = _two_layer_net()
    PLANTED["lastLayer"](net)
    conclusion = str(gradcheck.check_network(net, x, t).conclusion)
    assert conclusion.startswith("lastLayer.backward:") and "×3 too large" in conclusion


def test_a_parameter_wrong_end_to_end_is_traced_to_its_owner() -> None:
    net, x, t = _two_layer_net()
    PLANTED["Relu1"](net)
    report = gradcheck.check_network(net, x, t)
    assert report.owners == {
        "W1": "Affine1.W",
        "b1": "Affine1.b",
        "W2": "Affine2.W",
        "b2": "Affine2.b",
    }
    assert "params['W1'] is Affine1.W" in str(report.conclusion)
    assert "reaches it from Relu1.backward" in str(report.conclusion)


# ---------------------------------------------------------------------------------------
# Correct nets pass


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(3))
def test_the_two_layer_net_passes(seed: int, dtype: Any) -> None:
    net, x, t = _two_layer_net(seed, dtype)
    report = gradcheck.check_network(net, x, t, seed=seed)
    assert report.passed, str(report)
    assert report.guilty is None and report.conclusion is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("seed", range(2))
def test_the_multi_layer_net_passes(activation: Any, seed: int, dtype: Any) -> None:
    rng = np.random.default_rng(seed)
    net = MultiLayerNet(4, [5, 6], 3, activation=activation, seed=rng, dtype=dtype)
    x, t = rng.standard_normal((3, 4)).astype(dtype), rng.integers(0, 3, size=3)
    report = gradcheck.check_network(net, x, t, seed=seed)
    assert report.passed, str(report)
    assert [name for name, _ in report.layers] == [
        "Affine1",
        "Activation_function1",
        "Affine2",
        "Activation_function2",
        "Affine3",
        "lastLayer",
    ]


class RegularizedNet:
    """``Affine -> Relu -> BatchNorm -> Dropout -> Affine -> loss``, layers in a list.

    Like the textbook's MultiLayerNetExtend, forward passes ``train`` to BatchNorm and
    Dropout; ``loss`` and ``gradient`` both train (``eval_in_loss`` breaks that).
    """

    def __init__(self, seed: int, dtype: Any = np.float64, eval_in_loss: bool = False) -> None:
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": rng.standard_normal((4, 6)).astype(dtype),
            "b1": np.zeros(6, dtype=dtype),
            "gamma1": (1 + 0.1 * rng.standard_normal(6)).astype(dtype),
            "beta1": (0.1 * rng.standard_normal(6)).astype(dtype),
            "W2": rng.standard_normal((6, 3)).astype(dtype),
            "b2": np.zeros(3, dtype=dtype),
        }
        p = self.params
        self.layers: list[Any] = [
            Affine(p["W1"], p["b1"]),
            Relu(),
            BatchNormalization(p["gamma1"], p["beta1"]),
            Dropout(0.3, seed=seed),
            Affine(p["W2"], p["b2"]),
        ]
        self.last_layer = SoftmaxWithLoss()
        self.eval_in_loss = eval_in_loss

    def predict(self, x: NDArray[Any], train: bool) -> NDArray[Any]:
        for layer in self.layers:
            if isinstance(layer, BatchNormalization | Dropout):
                x = layer.forward(x, train=train)
            else:
                x = layer.forward(x)
        return x

    def loss(self, x: NDArray[Any], t: NDArray[Any], train: bool | None = None) -> Any:
        train = not self.eval_in_loss if train is None else train
        return self.last_layer.forward(self.predict(x, train), t)

    def gradient(self, x: NDArray[Any], t: NDArray[Any]) -> dict[str, Any]:
        self.loss(x, t, train=True)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        first, second = self.layers[0], self.layers[4]
        norm = next(layer for layer in self.layers if isinstance(layer, BatchNormalization))
        return {
            "W1": first.dW,
            "b1": first.db,
            "gamma1": norm.dgamma,
            "beta1": norm.dbeta,
            "W2": second.dW,
            "b2": second.db,
        }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(3))
def test_a_net_with_batchnorm_and_seeded_dropout_passes(seed: int, dtype: Any) -> None:
    net = RegularizedNet(seed, dtype)
    rng = np.random.default_rng(seed + 10)
    x, t = rng.standard_normal((5, 4)).astype(dtype), rng.integers(0, 3, size=5)
    report = gradcheck.check_network(net, x, t, seed=seed)
    assert report.passed, str(report)
    assert [name for name, _ in report.layers][:4] == [
        "Affine[0]",
        "Relu[1]",
        "BatchNormalization[2]",
        "Dropout[3]",
    ]


def test_layers_are_checked_with_the_keywords_the_net_passed() -> None:
    net = RegularizedNet(0)
    rng = np.random.default_rng(0)
    report = gradcheck.check_network(net, rng.standard_normal((5, 4)), rng.integers(0, 3, 5))
    assert report.layer("Dropout[3]").options["forward_kwargs"] == {"train": "True"}


def test_loss_and_gradient_in_different_modes_is_explained() -> None:
    net = RegularizedNet(0, eval_in_loss=True)
    rng = np.random.default_rng(0)
    report = gradcheck.check_network(net, rng.standard_normal((5, 4)), rng.integers(0, 3, 5))
    assert report.guilty == "wiring"
    assert any("same mode" in hint for hint in report.hints), str(report)


# ---------------------------------------------------------------------------------------
# Wiring: every layer right, the composition wrong


class WrongOrderNet(TwoLayerNet):
    """Runs backward through the layers in forward order (all widths equal, so it runs)."""

    def gradient(self, x: NDArray[Any], t: Any) -> dict[str, NDArray[Any]]:
        self.loss(x, t)
        dout = self.lastLayer.backward(1)
        for layer in self.layers.values():
            dout = layer.backward(dout)
        first, second = self.layers["Affine1"], self.layers["Affine2"]
        return {"W1": first.dW, "b1": first.db, "W2": second.dW, "b2": second.db}


class MisreadNet(TwoLayerNet):
    """Reads ``grads['W1']`` from ``Affine2`` (same shape as ``W1``)."""

    def gradient(self, x: NDArray[Any], t: Any) -> dict[str, NDArray[Any]]:
        grads = super().gradient(x, t)
        grads["W1"] = self.layers["Affine2"].dW
        return grads


class ResidualNet:
    """``h = Relu0(Affine0(x))``; ``y = Affine2(Relu1(Affine1(h))) + Affine3(h)``; loss.

    ``accumulate=False`` forgets to add the skip branch's gradient into ``dh``.
    """

    def __init__(self, seed: int, accumulate: bool = True) -> None:
        rng = np.random.default_rng(seed)
        shapes = {"0": (4, 5), "1": (5, 5), "2": (5, 3), "3": (5, 3)}
        self.params: dict[str, NDArray[Any]] = {}
        self.layers: OrderedDict[str, Any] = OrderedDict()
        for i, shape in shapes.items():
            self.params[f"W{i}"] = rng.standard_normal(shape) / np.sqrt(shape[0])
            self.params[f"b{i}"] = 0.1 * rng.standard_normal(shape[1])
            self.layers[f"Affine{i}"] = Affine(self.params[f"W{i}"], self.params[f"b{i}"])
            if i in "01":
                self.layers[f"Relu{i}"] = Relu()
        self.lastLayer = SoftmaxWithLoss()
        self.accumulate = accumulate

    def predict(self, x: NDArray[Any]) -> NDArray[Any]:
        h = self.layers["Relu0"].forward(self.layers["Affine0"].forward(x))
        branch = self.layers["Relu1"].forward(self.layers["Affine1"].forward(h))
        return self.layers["Affine2"].forward(branch) + self.layers["Affine3"].forward(h)

    def loss(self, x: NDArray[Any], t: Any) -> Any:
        return self.lastLayer.forward(self.predict(x), t)

    def gradient(self, x: NDArray[Any], t: Any) -> dict[str, NDArray[Any]]:
        self.loss(x, t)
        dy = self.lastLayer.backward(1)
        dh = self.layers["Affine1"].backward(
            self.layers["Relu1"].backward(self.layers["Affine2"].backward(dy))
        )
        skip = self.layers["Affine3"].backward(dy)
        if self.accumulate:
            dh = dh + skip
        self.layers["Affine0"].backward(self.layers["Relu0"].backward(dh))
        grads = {}
        for i in "0123":
            grads[f"W{i}"] = self.layers[f"Affine{i}"].dW
            grads[f"b{i}"] = self.layers[f"Affine{i}"].db
        return grads


def _data(seed: int = 0, width: int = 4, classes: int = 3) -> tuple[NDArray[Any], NDArray[Any]]:
    rng = np.random.default_rng(seed + 100)
    return rng.standard_normal((3, width)), rng.integers(0, classes, size=3)


def _assert_wiring(report: gradcheck.NetworkReport, hint: str) -> None:
    assert not report.passed
    assert all(r.passed for _, r in report.layers), str(report)
    assert report.guilty == "wiring"
    assert report.conclusion is not None
    assert report.conclusion.startswith("every layer's backward is right")
    assert any(hint in h for h in report.hints), str(report)


def test_backward_in_the_wrong_order_is_a_wiring_bug() -> None:
    net = WrongOrderNet(4, 4, 4, weight_init_std=0.5, seed=0)
    report = gradcheck.check_network(net, *_data(classes=4))
    _assert_wiring(report, "reverse order of forward")


def test_a_branch_gradient_not_accumulated_is_a_wiring_bug() -> None:
    report = gradcheck.check_network(ResidualNet(0, accumulate=False), *_data())
    _assert_wiring(report, "add the gradients where the branches meet")
    assert "Relu0's output feeds Affine1 and Affine3" in " ".join(report.hints)


def test_a_parameter_gradient_read_from_the_wrong_layer_is_a_wiring_bug() -> None:
    net = MisreadNet(4, 4, 4, weight_init_std=0.5, seed=0)
    report = gradcheck.check_network(net, *_data(classes=4))
    _assert_wiring(report, "grads['W1'] is Affine2.dW, but params['W1'] is Affine1.W")


@pytest.mark.parametrize("seed", range(3))
def test_the_residual_net_passes(seed: int) -> None:
    report = gradcheck.check_network(ResidualNet(seed), *_data(seed), seed=seed)
    assert report.passed, str(report)
    assert report.hints == []


# ---------------------------------------------------------------------------------------
# The user's net is untouched; the report is readable and JSON-ready


def test_the_users_arrays_are_bit_identical_after() -> None:
    net = RegularizedNet(1)
    PLANTED_NET, x, t = _two_layer_net()
    PLANTED["Relu1"](PLANTED_NET)
    for subject, data in [(net, _data(1, classes=3)), (PLANTED_NET, (x, t))]:
        before = copy.deepcopy((subject.__dict__, data))
        rng_state = np.random.get_state()  # noqa: NPY002
        gradcheck.check_network(subject, *data)
        after = (subject.__dict__, data)
        _assert_same_tree(before, after)
        assert _same_state(rng_state, np.random.get_state())  # noqa: NPY002
    dropout = net.layers[3]
    assert dropout.mask is None  # the user's layer was never run


def _assert_same_tree(before: Any, after: Any) -> None:
    if isinstance(before, np.ndarray):
        assert before.dtype == after.dtype and before.tobytes() == after.tobytes()
    elif isinstance(before, dict):
        assert before.keys() == after.keys()
        for key in before:
            _assert_same_tree(before[key], after[key])
    elif isinstance(before, list | tuple):
        for a, b in zip(before, after, strict=True):
            _assert_same_tree(a, b)
    elif isinstance(before, np.random.Generator):
        assert before.bit_generator.state == after.bit_generator.state
    elif hasattr(before, "__dict__"):
        _assert_same_tree(vars(before), vars(after))
    else:
        assert before == after


def _same_state(a: Any, b: Any) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_text_report_is_a_table_then_the_conclusion_then_the_guilty_layer() -> None:
    net, x, t = _two_layer_net()
    PLANTED["Affine2"](net)
    text = str(gradcheck.check_network(net, x, t))
    lines = text.splitlines()
    assert lines[0].startswith("gradcheck TwoLayerNet (network): FAILED")
    assert lines[1].split() == ["layer", "verdict", "worst", "element", "diagnosis"]
    assert [line.split()[1] for line in lines[2:7]] == [
        "Affine1",
        "Relu1",
        "Affine2",
        "lastLayer",
        "gradient()",
    ]
    assert lines[7].startswith("  → Affine2.backward: db is ×3 too large")
    assert "gradcheck Affine2 (layer): FAILED" in text
    assert "np.int64" not in text


def test_the_report_is_json_ready() -> None:
    net, x, t = _two_layer_net()
    PLANTED["Affine2"](net)
    data = json.loads(json.dumps(gradcheck.check_network(net, x, t).to_dict()))
    assert data["guilty"] == "Affine2" and data["passed"] is False
    assert [layer["verdict"] for layer in data["layers"]] == [
        "passed",
        "passed",
        "FAILED",
        "passed",
    ]
    assert data["end_to_end"]["passed"] is False


def test_a_net_without_layers_is_refused() -> None:
    net, x, t = _two_layer_net()
    with pytest.raises(CheckError, match=r"net\.layers"):
        gradcheck.check_network(net.params, x, t)


def test_an_option_that_names_one_layer_is_refused() -> None:
    net, x, t = _two_layer_net()
    with pytest.raises(OptionError, match="does not apply to check_network"):
        gradcheck.check_network(net, x, t, wrt="W")


class AffineReturningNothing(Affine):
    """``backward`` computes ``dx`` but forgets to return it."""

    def backward(self, dout: NDArray[Any]) -> Any:
        super().backward(dout)


def test_a_malformed_backward_is_blamed_on_its_layer() -> None:
    net, x, t = _two_layer_net()
    net.layers["Affine2"] = AffineReturningNothing(net.params["W2"], net.params["b2"])
    report = gradcheck.check_network(net, x, t)
    assert report.guilty == "Affine2" and report.layers[-1][0] == "lastLayer"
    assert "returned None" in str(report.conclusion)
    assert report.to_dict()["layers"][2]["verdict"] == "ERROR"


def test_a_net_without_the_model_protocol_is_checked_layer_by_layer() -> None:
    net, x, t = _two_layer_net()
    net.params = None  # type: ignore[assignment]
    report = gradcheck.check_network(net, x, t)
    assert report.passed and report.end_to_end is None
    assert "no end-to-end check" in str(report)


def test_a_bias_right_before_batchnorm_passes_in_float32() -> None:
    net = RegularizedNet(0, np.float32)
    net.layers[1], net.layers[2] = net.layers[2], net.layers[1]  # Affine -> BatchNorm -> Relu
    rng = np.random.default_rng(10)
    x, t = rng.standard_normal((5, 4)).astype(np.float32), rng.integers(0, 3, size=5)
    assert gradcheck.check_network(net, x, t).passed


def test_a_gradient_that_raises_is_reported_not_raised() -> None:
    net, x, t = _two_layer_net()

    def broken(x: Any, t: Any) -> Any:
        raise ValueError("shapes do not align")

    net.gradient = broken  # type: ignore[method-assign]
    report = gradcheck.check_network(net, x, t)
    assert report.guilty == "wiring" and report.end_to_end is None
    assert "ValueError: shapes do not align" in str(report)


def test_softmax_of_the_reference_is_used_only_for_sanity() -> None:
    # The loss layer is checked with integer labels as a constant.
    net, x, t = _two_layer_net()
    report = gradcheck.check_network(net, x, t)
    loss = report.layer("lastLayer")
    assert [c.name for c in loss.constants] == ["t"]
    assert softmax(np.zeros(3)).sum() == pytest.approx(1.0)


def test_a_failing_model_check_can_point_to_check_network() -> None:
    net, _, _ = _two_layer_net()
    assert "check_network" in str(suggestion(net))
    assert suggestion(net.layers["Affine1"]) is None


# ---------------------------------------------------------------------------------------
# One report interface: a network report renders as text, Markdown and HTML


def test_a_network_report_renders_as_markdown_and_html_with_the_guilty_layer() -> None:
    net, x, t = _two_layer_net()
    PLANTED["Affine2"](net)
    report = gradcheck.check_network(net, x, t)
    markdown = report._repr_markdown_()
    assert "Affine2" in markdown and "db is ×3 too large" in markdown
    assert markdown.index("Affine1") < markdown.index("gradient() end to end")
    page = report.to_html()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page  # the guilty layer's heatmaps
    assert "db is ×3 too large" in page


def test_a_mix_of_layer_and_network_reports_is_one_html_page(tmp_path: Any) -> None:
    from gradcheck.report.html import write_html

    net, x, t = _two_layer_net()
    layer_report = gradcheck.check(Relu(), x)
    written = write_html([layer_report, gradcheck.check_network(net, x, t)], tmp_path / "r.html")
    text = written.read_text()
    assert "gradcheck Relu" in text and "TwoLayerNet" in text


def test_a_net_that_calls_the_loss_backward_with_its_default_dout_passes() -> None:
    class DefaultDoutNet(TwoLayerNet):
        def gradient(self, x: NDArray[Any], t: Any) -> dict[str, NDArray[Any]]:
            self.loss(x, t)
            dout = self.lastLayer.backward()  # dout=1 by default, as the book's nets do
            for layer in reversed(self.layers.values()):
                dout = layer.backward(dout)
            return {
                "W1": self.layers["Affine1"].dW,
                "b1": self.layers["Affine1"].db,
                "W2": self.layers["Affine2"].dW,
                "b2": self.layers["Affine2"].db,
            }

    rng = np.random.default_rng(0)
    net = DefaultDoutNet(4, 5, 3, weight_init_std=0.5, seed=rng)
    report = gradcheck.check_network(net, rng.standard_normal((3, 4)), rng.integers(0, 3, 3))
    assert report.passed, str(report)

"""Build ``backprop_tour.ipynb`` (without outputs) from the cells below.

Run ``python examples/make_backprop_tour.py`` after editing a cell; commit both files.
``tests/test_notebook.py`` executes the notebook, so it cannot go stale.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """\
# A tour of backpropagation with gradcheck

This notebook walks through the backpropagation chapter of *Deep Learning from Scratch*
with gradcheck: computational graphs you can draw from your own code, layers whose
gradients are checked element by element, a bug and the picture that shows where it is,
and why nobody trains a network with numerical gradients.

Pictures of graphs need Graphviz's `dot` program (`apt-get install graphviz`,
`brew install graphviz` or `conda install graphviz`); without it the graph is shown as DOT
text you can paste into any Graphviz viewer.""",
    ),
    (
        "code",
        """\
import numpy as np

import gradcheck
from reference_layers import AddLayer, Affine, MulLayer, Relu, Sigmoid, SoftmaxWithLoss""",
    ),
    (
        "md",
        """\
## 1. A computational graph: buying apples

Two apples at 100 yen each, with 10 % consumption tax. Each node is a layer with a
`forward` and a `backward` method. `gradcheck.trace()` records the calls made inside the
`with` block and draws them like the book's figures: the forward value above each edge,
the gradient (red) below it.""",
    ),
    (
        "code",
        """\
apple, apple_num, tax = 100, 2, 1.1

mul_apple_layer = MulLayer()
mul_tax_layer = MulLayer()

with gradcheck.trace() as graph:
    apple_price = mul_apple_layer.forward(apple, apple_num)
    price = mul_tax_layer.forward(apple_price, tax)

    dprice = 1
    dapple_price, dtax = mul_tax_layer.backward(dprice)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)

print(graph)
graph""",
    ),
    (
        "md",
        """\
The price is 220 yen. The gradients say how much it moves per unit change of each
input: 2.2 per yen of the apple's price, 110 per extra apple, 200 per unit of tax.

## 2. Apples and oranges

An `AddLayer` passes its upstream gradient unchanged to both inputs. Here `trace` is given
the layers to watch: only their methods are wrapped, and only for the block.""",
    ),
    (
        "code",
        """\
orange, orange_num = 150, 3

mul_apple_layer = MulLayer()
mul_orange_layer = MulLayer()
add_apple_orange_layer = AddLayer()
mul_tax_layer = MulLayer()

with gradcheck.trace(mul_apple_layer, mul_orange_layer, add_apple_orange_layer,
                     mul_tax_layer) as graph:
    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    price = mul_tax_layer.forward(all_price, tax)

    dprice = 1
    dall_price, dtax = mul_tax_layer.backward(dprice)
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    dorange, dorange_num = mul_orange_layer.backward(dorange_price)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)

graph""",
    ),
    (
        "md",
        """\
## 3. Layers, checked

Every layer of the chapter follows the same protocol. `gradcheck.check` compares the
gradients `backward` returns with numerical ones, element by element, for the inputs and
for the parameters (`W` → `dW`). In a notebook the report shows as a table.""",
    ),
    (
        "code",
        """\
rng = np.random.default_rng(0)
x = rng.standard_normal((5, 4))

for layer in [Relu(), Sigmoid(), Affine(rng.standard_normal((4, 3)), np.zeros(3))]:
    print(gradcheck.check(layer, x).summary())

gradcheck.check(Affine(rng.standard_normal((4, 3)), rng.standard_normal(3)), x)""",
    ),
    (
        "md",
        """\
The last layer of a classifier takes labels too. They are integers, so gradcheck treats
them as constants and checks the gradient with respect to the scores only.""",
    ),
    (
        "code",
        """\
scores = rng.standard_normal((5, 3))
labels = np.array([0, 2, 1, 1, 0])
print(gradcheck.check(SoftmaxWithLoss(), scores, labels))""",
    ),
    (
        "md",
        """\
## 4. A bug, and the picture that shows it

A typo in `backward` spoils one element of `dW`. The report names it, and the heatmap of
`|analytic − numerical| / tolerance` points at it: green cells are within tolerance, red
ones are wrong, outlined in black on all three pictures.""",
    ),
    (
        "code",
        """\
class AffineWithATypo(Affine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.dW = self.dW.copy()
        self.dW[2, 1] += 0.5          # the typo
        return dx


layer = AffineWithATypo(rng.standard_normal((4, 3)), rng.standard_normal(3))
report = gradcheck.check(layer, x)
assert not report.passed
report""",
    ),
    (
        "md",
        """\
A classic: `dW = dout.T @ x` instead of `x.T @ dout`. For a square `W` the shapes match,
so nothing crashes — but `dW` is transposed. The error picture is symmetric about the
diagonal, and the analytic picture is the numerical one mirrored.""",
    ),
    (
        "code",
        """\
class AffineTransposedGradient(Affine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.dW = dout.T @ self.x      # should be self.x.T @ dout
        return dx


layer = AffineTransposedGradient(rng.standard_normal((3, 3)), rng.standard_normal(3))
report = gradcheck.check(layer, rng.standard_normal((5, 3)))
report""",
    ),
    (
        "md",
        """\
`report.plot()` draws the same pictures with matplotlib (the `plot` extra), and
`report.to_html()` gives a standalone page to save or share.""",
    ),
    (
        "code",
        """\
try:
    figure = report.plot()
except ImportError as error:
    print(error)""",
    ),
    (
        "md",
        """\
## 5. A whole network

`trace()` without arguments sees every layer called inside the block, also when a model
calls them: here the chapter's two-layer net computes its gradient. Arrays are summarised
by their shape and first values.""",
    ),
    (
        "code",
        """\
from reference_layers import TwoLayerNet

net = TwoLayerNet(input_size=4, hidden_size=5, output_size=3, weight_init_std=0.5)
x_batch = rng.standard_normal((3, 4))
t_batch = np.array([0, 2, 1])

with gradcheck.trace() as graph:
    grads = net.gradient(x_batch, t_batch)

graph""",
    ),
    (
        "md",
        """\
## 6. Why backpropagation

A numerical gradient needs two forward passes per parameter, and a forward pass costs
time proportional to the number of parameters: the cost grows quadratically, backprop's
linearly. `gradcheck.teaching.speed` measures both on small two-layer nets (sampled and scaled up
here, to stay quick); `gradcheck speed` in a shell runs the full comparison around the
book's 784 → 50 → 10 net.""",
    ),
    (
        "code",
        """\
try:
    from gradcheck.teaching.speed import SpeedConfig, compare_speed
except ImportError:
    print("gradcheck.teaching.speed is not available in this version; skipping the comparison")
else:
    config = SpeedConfig(input_size=64, hidden_sizes=(4, 16), batch_size=20,
                         quick=True, samples=30, min_backprop_seconds=0.02)
    comparison = compare_speed(config)
    print(f"{'parameters':>10}  {'numerical (s)':>13}  {'backprop (s)':>12}  {'ratio':>7}")
    for size in comparison.results:
        print(f"{size.parameters:>10}  {size.textbook.seconds:>13.4f}  "
              f"{size.backprop.seconds:>12.6f}  {size.ratio:>7.0f}×")""",
    ),
    (
        "md",
        """\
The numerical gradient is hundreds to thousands of times slower, and the gap widens with
the size of the net — which is why we train with backprop and use numerical gradients
only to *check* it, on small inputs, as gradcheck does.""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The notebook, without outputs."""
    notebook = new_notebook()
    notebook.cells = [
        new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        for kind, source in CELLS
    ]
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number:02d}"  # stable ids keep the committed file's diffs small
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


if __name__ == "__main__":
    path = HERE / "backprop_tour.ipynb"
    nbformat.write(build(), path)
    print(f"wrote {path}")

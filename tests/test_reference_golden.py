"""Published values from the textbook, reproduced by the reference layers.

The computational-graph examples of the backprop chapter (apples, oranges, tax), and the
loss/softmax examples of the chapters before it.
"""

import numpy as np
import pytest

from reference_layers import AddLayer, MulLayer
from reference_layers.functions import cross_entropy_error, softmax


def test_apple_graph_forward_and_backward():
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple_layer = MulLayer()
    mul_tax_layer = MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    price = mul_tax_layer.forward(apple_price, tax)

    dapple_price, dtax = mul_tax_layer.backward(1)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)

    assert price == pytest.approx(220)
    assert dapple == pytest.approx(2.2)
    assert dapple_num == pytest.approx(110)
    assert dtax == pytest.approx(200)


def test_apple_orange_graph_forward_and_backward():
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple_layer = MulLayer()
    mul_orange_layer = MulLayer()
    add_apple_orange_layer = AddLayer()
    mul_tax_layer = MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    price = mul_tax_layer.forward(all_price, tax)

    dall_price, dtax = mul_tax_layer.backward(1)
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    dorange, dorange_num = mul_orange_layer.backward(dorange_price)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)

    assert price == pytest.approx(715)
    assert dapple_num == pytest.approx(110)
    assert dapple == pytest.approx(2.2)
    assert dorange == pytest.approx(3.3)
    assert dorange_num == pytest.approx(165)
    assert dtax == pytest.approx(650)


# The loss-function examples: t says class 2; y puts 0.6 (then 0.1) on it.
T_ONE_HOT = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
Y_CONFIDENT = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
Y_WRONG = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]


@pytest.mark.parametrize(
    ("y", "expected"), [(Y_CONFIDENT, 0.510825457099338), (Y_WRONG, 2.302584092994546)]
)
def test_cross_entropy_error_textbook_values(y, expected):
    assert cross_entropy_error(np.array(y), np.array(T_ONE_HOT)) == pytest.approx(expected)


def test_softmax_textbook_values():
    assert softmax(np.array([0.3, 2.9, 4.0])) == pytest.approx(
        [0.01821127, 0.24519181, 0.73659691], abs=1e-8
    )

"""Shared by the unit tests: `shape_error`, how a declared shape refuses an argument."""

import re

import jaxtyping
import pytest


@pytest.fixture
def shape_error():
    """`with shape_error("frames", "u8[1,2,32,32,3]"): ...` expects the call to be refused by
    its signature (moog_lib.shapes.typed): a jaxtyping.TypeCheckError that names the argument
    and shows what it got (dtype and shape, as jaxtyping prints them)."""

    def expect(argument: str, actual: str):
        return pytest.raises(jaxtyping.TypeCheckError,
                             match=rf"parameter '{argument}'\.\nActual value: {re.escape(actual)}")

    return expect

"""Array shapes, declared once: the decorator `typed` (chapter 00, section 3).

A function under `@typed` has its annotations checked at every call: arrays written
with jaxtyping (`Float[ArrayLike, "B T H W 3"]`), everything else by beartype.

Generated from chapters/00_introduction.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "typed",
]


import beartype
import jaxtyping

# chapters/00_introduction.py, cell 5
_CHECKER = beartype.beartype(conf=beartype.BeartypeConf(is_pep484_tower=True))


def typed(function):
    """Check `function`'s annotated arguments and result at every call.

    Shapes and dtypes by jaxtyping (one size per axis name within a call), other types by
    beartype (an `int` passes where a `float` is annotated). Under `jax.jit` the check
    runs once, while tracing. A mismatch raises `jaxtyping.TypeCheckError`, a `TypeError`.
    """
    return jaxtyping.jaxtyped(function, typechecker=_CHECKER)

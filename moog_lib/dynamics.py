"""The recurrent core: the initial state, the stop-gradient mask, `PredictCorrect`, streaming.

`initial_noise` and `fixed_noise` draw the state before the first frame;
`stop_gradient_mask` says where the carried state is cut from the gradient;
`scan_over_time` scans any NNX module's step over the frames of a clip;
`frame_step` is one frame of the loop and `PredictCorrect` the module
(`unroll` runs `frame_step` over frames);
`chunks_of` and `stream` run it over a video of any length, chunk by chunk.

Generated from chapters/03_model.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "initial_noise",
    "fixed_noise",
    "stop_gradient_mask",
    "scan_over_time",
    "frame_step",
    "PredictCorrect",
    "chunks_of",
    "stream",
]


import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Bool, Float

from moog_lib import attention, configs
from moog_lib.attention import resolve_dtype, scale_only_norm
from moog_lib.shapes import typed


# chapters/03_model.py, cell 19
def initial_noise(key: jax.Array, batch_size: int, num_tokens: int, token_dim: int,
                  scale: float = 1e-4) -> jnp.ndarray:
    """`scale · N(0, I)` of shape [B, K, D], float32: fresh noise for every example."""
    for name, value in (("batch_size", batch_size), ("num_tokens", num_tokens),
                        ("token_dim", token_dim)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ValueError(f"initial_noise: {name} must be a positive int, got {value!r}")
    return scale * jax.random.normal(key, (batch_size, num_tokens, token_dim), jnp.float32)


def fixed_noise(batch_size: int, num_tokens: int, token_dim: int, scale: float) -> jnp.ndarray:
    """One draw shared by every example: token k is `scale · N(0, I)` from `fold_in(key(0), k)`,
    so the first K tokens are the same whatever K is. [B, K, D], float32."""
    keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.key(0), k))(jnp.arange(num_tokens))
    tokens = jax.vmap(lambda k: jax.random.normal(k, (token_dim,), jnp.float32))(keys)
    return jnp.broadcast_to(scale * tokens, (batch_size, num_tokens, token_dim))


# chapters/03_model.py, cell 25
def stop_gradient_mask(key: jax.Array, batch_size: int, num_frames: int,
                       probability: float) -> jnp.ndarray:
    """bool [B, T]: where True, the state carried into that frame is cut from the gradient."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"stop_gradient_mask: probability must be in [0, 1], got {probability}")
    return jax.random.bernoulli(key, probability, (batch_size, num_frames))


def scan_over_time(module: nnx.Module, step, carry, inputs):
    """`jax.lax.scan` of `step(module, carry, x_t) -> (carry, y_t)` over axis 1 (time) of
    every array in the pytree `inputs` [B, T, ...]; returns (carry, outputs [B, T, ...]).

    The library's one scan over an NNX module: it is split into its graph and arrays
    outside the scan and merged inside the body, so the body is a pure function of arrays.
    """
    graphdef, variables = nnx.split(module)
    batch_major = lambda x: jnp.swapaxes(x, 0, 1)

    def body(carry, x):
        return step(nnx.merge(graphdef, variables), carry, x)

    carry, outputs = jax.lax.scan(body, carry, jax.tree.map(batch_major, inputs))
    return carry, jax.tree.map(batch_major, outputs)


# chapters/03_model.py, cell 29
def _state_noise(key, batch_size: int, num_tokens, token_dim: int, scale: float,
                 fixed: bool) -> jnp.ndarray:
    """The noise `PredictCorrect.initial_state` normalises, [B, K, D]: `fixed_noise` if
    `fixed`, else `initial_noise`; K (`num_tokens`) must be an int >= 1."""
    if not isinstance(num_tokens, int | np.integer) or num_tokens < 1:
        raise ValueError(f"initial_state: the number of tokens K must be an int >= 1, "
                         f"got {num_tokens!r}")
    if fixed:
        return fixed_noise(batch_size, num_tokens, token_dim, scale)
    return initial_noise(key, batch_size, num_tokens, token_dim, scale)


def _check_unroll_inputs(state, token_dim: int, gradient_input: bool,
                         loss_gradient_fn) -> None:
    """Raise ValueError unless `PredictCorrect.unroll` can run on a `state` [B, K, D] whose
    shape its signature has checked (`gradient_input`: built with `loss_gradient_input`)."""
    if state.shape[2] != token_dim:
        raise ValueError(f"unroll: the tokens must have the module's width D = {token_dim} "
                         f"(config.token_dim), got state and features of width {state.shape[2]}")
    if state.shape[1] < 1:
        raise ValueError("unroll: the state needs at least one token (K >= 1)")
    if gradient_input != (loss_gradient_fn is not None):
        raise ValueError("unroll: pass loss_gradient_fn exactly when the model was built "
                         "with loss_gradient_input=True")


def _frame_inputs(features, last_features, stop_gradient, loss_gradient_inputs):
    """`unroll`'s per-frame inputs, checked and split: (frames 0 … T−2, the last frame)."""
    num_frames = features.shape[1] + (last_features is not None)
    if num_frames < 1:
        raise ValueError("unroll: no frames to run (features of length 0 and no last_features)")
    if stop_gradient is not None and stop_gradient.shape[1] != num_frames:
        raise ValueError(f"unroll: stop_gradient covers {stop_gradient.shape[1]} frames, the "
                         f"features {num_frames}")
    if last_features is None:
        features, last_features = features[:, :-1], features[:, -1]
    rest = (stop_gradient, loss_gradient_inputs)
    return ((features,) + jax.tree.map(lambda x: x[:, :-1], rest),
            (last_features,) + jax.tree.map(lambda x: x[:, -1], rest))


# chapters/03_model.py, cell 32
def frame_step(module, state, inputs, *, loss_gradient_fn=None):
    """One predict–correct step of `module` (a `PredictCorrect`) on `inputs` = (features
    [B, N, D], stop-gradient flags [B] or None, the loss-gradient inputs of this frame)."""
    features, stop, extra = inputs
    if stop is not None:
        state = jnp.where(stop[:, None, None], jax.lax.stop_gradient(state), state)
    predicted = module.predict(state)
    gradient = (None if loss_gradient_fn is None
                else jax.lax.stop_gradient(loss_gradient_fn(predicted, extra)))
    corrected = module.correct(predicted, features, gradient)
    return corrected, (predicted, corrected)


# chapters/03_model.py, cell 34
class PredictCorrect(nnx.Module):
    """The recurrent core: `z_p = z + P(z)`, `z_c = LN(z_p + C(z_p, F_t))`.

    Built from `configs.ModelConfig`. With `config.loss_gradient_input` (the
    release's switch, not in the paper) the corrector's query is
    `gradient_projection([z_p, dL/dz_p])` instead of `z_p`.
    """

    def __init__(self, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32):
        width = config.token_dim
        self.dtype = resolve_dtype(dtype, config.compute_dtype)
        self.token_dim = width
        self.initial_state_scale = config.initial_state_scale
        self.fixed_initial_state = config.fixed_initial_state
        kwargs = dict(rngs=rngs, dtype=self.dtype, param_dtype=param_dtype)
        self.predictor = attention.Transformer.from_config(
            width, config.predictor, qk_norm_scale=config.qk_norm_scale, **kwargs)
        self.corrector = attention.Transformer.from_config(
            width, config.corrector, kv_size=width, qk_norm_scale=config.qk_norm_scale,
            cross_compete=config.corrector_competition, **kwargs)
        self.correction_norm = scale_only_norm(width, config.correction_norm_eps, rngs,
                                                self.dtype, param_dtype)
        self.gradient_projection = (nnx.Linear(2 * width, width, **kwargs)
                                    if config.loss_gradient_input else None)

    def initial_state(self, key: jax.Array, batch_size: int, num_tokens: int) -> jnp.ndarray:
        """The state before the first frame: LN(scale · N(0, I)), [B, K, D].

        With `fixed_initial_state` (a departure, see §4) `key` is ignored: token k
        is drawn from `fold_in(key(0), k)`, the same in every clip and for any K.
        """
        noise = _state_noise(key, batch_size, num_tokens, self.token_dim,
                             self.initial_state_scale, self.fixed_initial_state)
        return self.correction_norm(noise)

    @typed
    def predict(self, state: Float[ArrayLike, "B K D"]) -> Float[Array, "B K D"]:
        """z_p = z + P(z)."""
        return state + self.predictor(state)

    @typed
    def correct(self, predicted: Float[ArrayLike, "B K D"], features: Float[ArrayLike, "B N D"],
                loss_gradient: Float[ArrayLike, "B K D"] | None = None) -> Float[Array, "B K D"]:
        """z_c = LN(z_p + C(q, F_t)), q = z_p (or the loss-gradient query, if switched on)."""
        query = predicted
        if self.gradient_projection is not None:
            if loss_gradient is None:
                raise ValueError("correct: loss_gradient_input is on; pass loss_gradient [B, K, D]")
            joined = jnp.concatenate([predicted, loss_gradient.astype(predicted.dtype)], -1)
            query = self.gradient_projection(joined)
        return attention.recompute(self.correction_norm,
                                   predicted + self.corrector(query, features))

    @typed
    def unroll(self, features: Float[ArrayLike, "B F N D"], state: Float[ArrayLike, "B K D"], *,
               last_features: Float[ArrayLike, "B N D"] | None = None,
               stop_gradient: Bool[ArrayLike, "B T"] | None = None,
               loss_gradient_fn: Callable | None = None, loss_gradient_inputs=None) -> dict:
        """Run the loop over the frames of `features`, from `state`.

        Returns {"z_p": [B, T, K, D], "z_c": [B, T, K, D], "state": [B, K, D]}
        (the state to carry into the next chunk). A `jax.lax.scan` over frames.

        - `last_features` [B, N, D]: the last frame apart; `features` holds the others.
        - `stop_gradient`: where True, the state carried into that frame is cut
          from the gradient (see `stop_gradient_mask`).
        - `loss_gradient_fn(z_p, inputs_t) -> dL/dz_p` [B, K, D], called inside
          the loop with `inputs_t` the frame-t slice (axis 1) of the pytree
          `loss_gradient_inputs`; required iff `loss_gradient_input` is on.
        """
        _check_unroll_inputs(state, self.token_dim, self.gradient_projection is not None,
                             loss_gradient_fn)
        head, last = _frame_inputs(features, last_features, stop_gradient, loss_gradient_inputs)
        step = functools.partial(frame_step, loss_gradient_fn=loss_gradient_fn)
        state, (predicted, corrected) = scan_over_time(self, step, state.astype(self.dtype), head)
        state, (last_p, last_c) = step(self, state, last)
        append = lambda frames, last: jnp.concatenate([frames, last[:, None]], axis=1)
        return {"z_p": append(predicted, last_p), "z_c": append(corrected, last_c), "state": state}


# chapters/03_model.py, cell 48
def chunks_of(frames, chunk_size: int):
    """Split a video [B, T, ...] along time into chunks [B, <= chunk_size, ...] (a generator)."""
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunks_of: chunk_size must be a positive int, got {chunk_size!r}")
    for start in range(0, frames.shape[1], chunk_size):
        yield frames[:, start:start + chunk_size]


def stream(step_fn, chunks, state):
    """Run `step_fn(chunk, state) -> (outputs, new_state)` over `chunks`, carrying the state.

    Yields `(outputs, state)` after every chunk and keeps nothing itself, so
    memory stays that of one chunk however long the video is. Pass a jitted
    `step_fn` to compile once per chunk shape.
    """
    for chunk in chunks:
        outputs, state = step_fn(chunk, state)
        yield outputs, state

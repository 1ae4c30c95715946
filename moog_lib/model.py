"""The whole model: `MooG` (encoder + predict–correct loop + decoder) and its checks.

`MooG` runs a clip through `encoder.Encoder`, `dynamics.PredictCorrect` and
`decoder.Decoder` and returns the subsampled predictions, targets, loss and
states; `check_offsets` checks the subsampling offsets a caller passes.

Generated from chapters/04_decoder.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "check_offsets",
    "MooG",
]


import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import ArrayLike, Float, Int

from moog_lib import configs, dynamics, encoder
from moog_lib.decoder import (
    Decoder,
    check_subsample,
    decode_clip,
    sample_coordinates,
    subsample_frames,
    subsample_offsets,
)
from moog_lib.shapes import typed


# chapters/04_decoder.py, cell 22
@typed
def check_offsets(offsets: Int[ArrayLike, "B T 2"], subsample: int) -> None:
    """Raise ValueError unless the `offsets` lie in [0, S) (checked outside jit only; the
    signature checks that they are integers [B, T, 2])."""
    if not isinstance(offsets, jax.core.Tracer):  # concrete: checked on the host
        values = np.asarray(offsets)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= subsample:
            raise ValueError(f"offsets must lie in [0, S) = [0, {subsample}), got values "
                             f"from {low} to {high}")


def _check_inputs(frames, *, stride: int, subsample: int, key, state, num_tokens, offsets,
                  training: bool, stop_prob: float, token_dim: int) -> None:
    """Raise ValueError unless `MooG.__call__` can run on these arguments, whose shapes its
    signature has checked (`subsample` and `stop_prob` as it resolved them): what a type
    cannot say is validated before anything is computed."""
    encoder.check_frames(frames, stride=stride)
    check_subsample(frames.shape[2], frames.shape[3], subsample)
    needs_key = state is None or (offsets is None and training) or stop_prob > 0
    if needs_key and key is None:
        raise ValueError("MooG: pass key=jax.random.key(...) for the initial noise, the "
                         "random offsets (training) and the stop-gradient draws")
    if state is not None:
        if state.shape[2] != token_dim:
            raise ValueError(f"MooG: the carried state's tokens must be D = {token_dim} wide "
                             f"(config.token_dim), got {state.shape[2]}")
        if num_tokens is not None and num_tokens != state.shape[1]:
            raise ValueError(f"MooG: num_tokens={num_tokens} but the carried state has "
                             f"{state.shape[1]} tokens")
    elif num_tokens is not None and num_tokens < 1:
        raise ValueError(f"MooG: the number of tokens K must be an int >= 1, "
                         f"got {num_tokens!r}")
    if offsets is not None:
        check_offsets(offsets, subsample)


# chapters/04_decoder.py, cell 26
def _loss_gradient_fn(decoder: Decoder):
    """dL_t/dz_p for the loss-gradient switch: the decoder's loss on frame t, per example."""
    graphdef, params = nnx.split(decoder)

    def loss_gradient(z_p, inputs):
        coords, target = inputs  # [B, Q, 2], [B, Q, 3]

        def loss(z):  # summed over examples, so each example's gradient ignores the others
            colours = nnx.merge(graphdef, params)(z, coords).astype(jnp.float32)
            return jnp.mean((colours - target) ** 2, axis=(1, 2)).sum()

        return jax.grad(loss)(z_p)

    return loss_gradient


# chapters/04_decoder.py, cell 29
class MooG(nnx.Module):
    """Encoder + predict–correct loop + decoder, built from `configs.ModelConfig`.

    `model(frames, key=...)` returns a dict with the subsampled predicted
    frames, aligned targets, the loss, z_p, z_c, the final state and the
    offsets (see chapter 04). `dtype` overrides `config.compute_dtype`.
    """

    def __init__(self, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32):
        self.config = config
        kwargs = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.encoder = encoder.Encoder(config, **kwargs)
        self.dynamics = dynamics.PredictCorrect(config, **kwargs)
        self.decoder = Decoder(config, **kwargs)

    def initial_state(self, key: jax.Array, batch_size: int,
                      num_tokens: int | None = None) -> jnp.ndarray:
        """LN(1e-4 · N(0, I)) of shape [B, K, D]; K defaults to config.num_tokens."""
        num_tokens = self.config.num_tokens if num_tokens is None else num_tokens
        return self.dynamics.initial_state(key, batch_size, num_tokens)

    @typed
    def __call__(self, frames: Float[ArrayLike, "B T H W 3"], *, key: jax.Array | None = None,
                 state: Float[ArrayLike, "B K D"] | None = None, num_tokens: int | None = None,
                 training: bool = False, subsample: int | None = None,
                 offsets: Int[ArrayLike, "B T 2"] | None = None, return_attention: bool = False,
                 average_attention: bool = True) -> dict:
        """Run MooG on a clip `frames` with values in [0, 1].

        - `key`: needed for the initial noise (when `state` is None), the random
          offsets (training) and the stop-gradient draws (training, p > 0).
        - `state`: a carried state to continue from (chunked unrolling).
        - `num_tokens`: K for a fresh state (default `config.num_tokens`).
        - `training`: S = config.train_subsample with random offsets; otherwise
          S = config.eval_subsample with zero offsets. `subsample` and
          `offsets` override either.
        """
        cfg = self.config
        if subsample is None:
            subsample = cfg.train_subsample if training else cfg.eval_subsample
        stop_prob = cfg.state_stop_gradient_prob if training else 0.0
        _check_inputs(frames, stride=self.encoder.stride, subsample=subsample, key=key,
                      state=state, num_tokens=num_tokens, offsets=offsets, training=training,
                      stop_prob=stop_prob, token_dim=cfg.token_dim)
        batch, num_frames, height, width, _ = frames.shape
        frames = jnp.asarray(frames, jnp.float32)

        state_key, offset_key, stop_key = (jax.random.split(key, 3) if key is not None
                                           else (None, None, None))
        if state is None:
            state = self.initial_state(state_key, batch, num_tokens)
        if offsets is None:
            offsets = (subsample_offsets(offset_key, batch, num_frames, subsample) if training
                       else jnp.zeros((batch, num_frames, 2), jnp.int32))
        offsets = jnp.asarray(offsets, jnp.int32)
        stop = (dynamics.stop_gradient_mask(stop_key, batch, num_frames, stop_prob)
                if stop_prob > 0 else None)

        target = subsample_frames(frames, offsets, subsample)  # [B, T, h, w, 3]
        coords = sample_coordinates(height, width, offsets, subsample)  # [B, T, h, w, 2]
        # The last frame apart (chapter 03, `unroll`): `jit` drops it when nothing reads it.
        features = self.encoder(frames[:, :-1])  # [B, T − 1, N, D]
        last_features = self.encoder(frames[:, -1])  # [B, N, D]

        loss_gradient_fn = inputs = None
        if self.dynamics.gradient_projection is not None:
            loss_gradient_fn = _loss_gradient_fn(self.decoder)
            inputs = (coords.reshape(batch, num_frames, -1, 2),
                      target.reshape(batch, num_frames, -1, 3))
        out = self.dynamics.unroll(features, state, last_features=last_features, stop_gradient=stop,
                                   loss_gradient_fn=loss_gradient_fn, loss_gradient_inputs=inputs)

        # Decode all T predicted states in one batched call.
        result = decode_clip(self.decoder, out["z_p"], coords, target,
                             return_attention=return_attention,
                             average_attention=average_attention)
        return result | {"z_p": out["z_p"], "z_c": out["z_c"], "state": out["state"],
                         "offsets": offsets}

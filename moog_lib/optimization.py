"""The optimiser and its schedule, the pretraining loss, and the jitted train and eval steps.

`make_optimizer` (with `learning_rate_schedule`) builds the paper's optimiser;
`split_model` and `merge_model` turn a model into a `TrainState` pytree and back;
`video_batch`, `frame_metrics` and `pretraining_loss` are the objective;
`make_train_step` and `make_eval_step` compile a step from them.

Generated from chapters/06_pretraining.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "learning_rate_schedule",
    "make_optimizer",
    "TrainState",
    "split_model",
    "merge_model",
    "video_batch",
    "frame_metrics",
    "pretraining_loss",
    "make_train_step",
    "make_eval_step",
]


import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from moog_lib import configs, decoder


# chapters/06_pretraining.py, cell 5
def learning_rate_schedule(train: configs.TrainConfig) -> optax.Schedule:
    """Linear warm-up from 0 to the peak, then cosine decay to `final_learning_rate`."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=train.peak_learning_rate, warmup_steps=train.warmup_steps,
        decay_steps=max(train.steps, train.warmup_steps + 1), end_value=train.final_learning_rate)


def make_optimizer(train: configs.TrainConfig) -> optax.GradientTransformation:
    """Clip the global norm, then Adam with Nesterov momentum (paper) or AdamW (release)."""
    schedule = learning_rate_schedule(train)
    if train.optimizer == "adam_nesterov":
        step = optax.adam(schedule, b1=train.b1, b2=train.b2, nesterov=True)
    elif train.optimizer == "adamw":
        step = optax.adamw(schedule, b1=train.b1, b2=train.b2, weight_decay=train.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {train.optimizer!r}; expected 'adam_nesterov' "
                         "(the paper's) or 'adamw' (the release's)")
    return optax.chain(optax.clip_by_global_norm(train.grad_clip_norm), step)


# chapters/06_pretraining.py, cell 8
@struct.dataclass
class TrainState:
    """Everything that changes during training, as one pytree: jit it, shard it, save it."""

    step: jax.Array
    params: nnx.State
    opt_state: optax.OptState


def split_model(model: nnx.Module, tx: optax.GradientTransformation):
    """Split an NNX model once: (graphdef, rest, TrainState). The state holds what the NNX
    filter `model.trainable` selects (default every `nnx.Param`; chapter 07's frozen
    readouts train only their head); `rest` holds the rest, never updated."""
    trainable = getattr(model, "trainable", nnx.Param)
    graphdef, params, rest = nnx.split(model, trainable, ...)
    return graphdef, rest, TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))


def merge_model(graphdef, rest, state: TrainState) -> nnx.Module:
    """The NNX model at `state`, e.g. for inspection or figures."""
    return nnx.merge(graphdef, state.params, rest)


# chapters/06_pretraining.py, cell 10
def video_batch(batch: dict) -> jnp.ndarray:
    """The clips of a batch as float32 [B, T, H, W, 3] in [0, 1] (uint8 is divided by 255)."""
    video = batch["video"]
    if jnp.issubdtype(video.dtype, jnp.integer):
        return video.astype(jnp.float32) / 255.0
    return video.astype(jnp.float32)


def frame_metrics(out: dict, frames: jnp.ndarray) -> dict:
    """PSNR of the predictions and of copying the previous frame, on frames 1 … T−1.

    Both are measured at the same sampled pixels: the target of frame t against
    the prediction for t, and against frame t−1 rolled and subsampled with
    frame t's offsets. Frame 0 is left out (there is nothing to copy, and the
    model predicts it from noise).
    """
    subsample = frames.shape[2] // out["target"].shape[2]
    previous = decoder.subsample_frames(frames[:, :-1], out["offsets"][:, 1:], subsample)
    target = out["target"][:, 1:]
    return {
        "psnr": decoder.reconstruction_psnr(out["prediction"][:, 1:], target),
        "copy_psnr": decoder.reconstruction_psnr(previous, target),
    }


def pretraining_loss(model, batch: dict, key: jax.Array, *, training: bool = True):
    """Next-frame prediction: MooG's L2 loss at S = 8 (training) or S = 4 (evaluation)."""
    frames = video_batch(batch)
    out = model(frames, key=key, training=training)
    return out["loss"], dict(loss=out["loss"], **frame_metrics(out, frames))


# chapters/06_pretraining.py, cell 11
def make_train_step(graphdef, rest, tx: optax.GradientTransformation, loss_fn=pretraining_loss):
    """A jitted `step(state, batch, key) -> (state, metrics)`.

    The model is split once (`split_model`); the step is a pure function of
    arrays, so `jax.jit` compiles it once and shards it by its inputs: a
    replicated state and a batch split over the "data" axis make it data-parallel.
    `loss_fn(model, batch, key) -> (loss, metrics)`. `rest` is an argument of the
    compiled program (bound with `functools.partial`), not a constant baked into it:
    a frozen backbone in `rest` stays one copy of its arrays, and it is not donated.
    """

    def step(state: TrainState, batch: dict, key: jax.Array, rest):
        def objective(params):
            return loss_fn(nnx.merge(graphdef, params, rest), batch, key)

        (_, metrics), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics, grad_norm=optax.global_norm(grads))
        return TrainState(state.step + 1, params, opt_state), metrics

    return functools.partial(jax.jit(step, donate_argnums=0), rest=rest)


def make_eval_step(graphdef, rest, loss_fn=pretraining_loss):
    """A jitted `evaluate(params, batch, key) -> metrics` at evaluation settings (S = 4)."""

    def evaluate(params, batch, key, rest):
        return loss_fn(nnx.merge(graphdef, params, rest), batch, key, training=False)[1]

    return functools.partial(jax.jit(evaluate), rest=rest)

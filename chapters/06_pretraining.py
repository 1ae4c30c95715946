# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 — Pretraining: the train step, data parallelism, checkpoints and run folders
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/06_pretraining.ipynb)
#
# **What you will learn.** The paper pretrains MooG on next-frame prediction for
# a million steps on 64 TPUv3 chips. This chapter builds the pieces of a
# training loop that runs the same code on your laptop, a Colab TPU and a pod
# (chapter 06a puts them together into `train.fit`):
#
# - the paper's optimiser (Adam with Nesterov momentum, b1 0.9, b2 0.95) and
#   schedule (linear warm-up, cosine decay to 1e-7), and the release's AdamW as a
#   switch;
# - a *functional* train step: split the NNX model once, jit a pure function of
#   arrays, merge back only to look inside;
# - data parallelism with `jax.sharding`: a mesh over every device, the batch
#   split on a `"data"` axis, parameters replicated; per-host data loading and
#   `jax.distributed` for multi-host runs; and how much memory a step needs;
# - checkpoints with orbax that are atomic, rotate, survive a kill, skip a
#   corrupt step and keep the data position with grain's own handler;
# - weights files: a checked float32 `.npz` and a JSON manifest, the format of
#   the trained weights this repository ships;
# - metrics you can read: a JSON-lines log, curves, and the number that tells
#   prediction from copying — the PSNR of simply repeating the previous frame;
# - a run folder that holds one run: its config is checked before anything is
#   written, and a run of another config is refused rather than overwritten.
#
# The code goes to four modules: `moog_lib.optimization` (the optimiser, the
# loss and the train and eval steps, §1–2), `moog_lib.parallel` (devices,
# hosts and memory, §3), `moog_lib.checkpoint` (checkpoints and weights
# files, §4–5) and `moog_lib.runs` (the run folder: its metrics log, its
# config and the checks before training, §6–7).
#
# **Prerequisites.** Chapters 03–04 (the model and its loss) and 05–05c (data);
# optax; the idea of data-parallel training.
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 86 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `cpu` | 2 CPU cores | the chapter as in CI, on the `cpu` preset's batch |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 5 min, not measured on a TPU: about 5 compiles of the paper-size step (assumed ≈ 1 min each: §2, §3 and the exercises) and one batch of clips rendered at 128² on Colab's CPU (≈ 0.15 s each) |

# %%
# Setup, the same in every chapter (chapter 00, section 5, explains it). On Colab:
# install this repository, keeping the jax, jaxlib, libtpu and flax Colab ships.
# Then `notebook.setup()` sets XLA flags before JAX starts, picks the preset
# (MOOG_PRESET; `colab` on a TPU, else `tiny`) and prints what runs.
import subprocess
import sys

REPOSITORY = "https://github.com/moog-tutorial/moog-tutorial"
if "google.colab" in sys.modules:
    pip = f"{sys.executable} -m pip"
    subprocess.run(f"{pip} freeze | grep -iE '^(jax|jaxlib|libtpu|flax)==' > /tmp/keep.txt && "
                   f"{pip} install -q -c /tmp/keep.txt 'moog-tutorial[video] @ git+{REPOSITORY}@main'",
                   shell=True, check=True)
from moog_lib import configs, notebook

PRESET = notebook.setup()

# %%
#| default_exp optimization

# %% [markdown]
# ## 1. Optimiser and schedule
#
# Appendix C of the paper: Adam with Nesterov momentum, `b1 = 0.9`,
# `b2 = 0.95`, gradients clipped to a global norm of 1, the learning rate
# warmed up linearly over 1,000 steps to 1e-4 and then decayed along a cosine to
# 1e-7 at the last step. optax has every piece. The authors' release trains with
# AdamW (weight decay 1e-4 on every parameter) instead; `optimizer="adamw"` in
# `TrainConfig` switches to it. The paper reports the former, so it is our
# default.

# %%
#| export optimization
"""The optimiser and its schedule, the pretraining loss, and the jitted train and eval steps.

`make_optimizer` (with `learning_rate_schedule`) builds the paper's optimiser;
`split_model` and `merge_model` turn a model into a `TrainState` pytree and back;
`video_batch`, `frame_metrics` and `pretraining_loss` are the objective;
`make_train_step` and `make_eval_step` compile a step from them.
"""
import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from moog_lib import configs, decoder


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

# %%
import matplotlib.pyplot as plt
import numpy as np

from moog_lib import configs

paper_train = configs.get("paper").train
schedule = learning_rate_schedule(paper_train)
assert float(schedule(0)) == 0.0
assert abs(float(schedule(1000)) - 1e-4) < 1e-9  # the peak, after warm-up
assert abs(float(schedule(paper_train.steps)) - 1e-7) < 1e-10  # the floor at the end
steps = np.linspace(0, paper_train.steps, 400).astype(int)
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].plot(steps, [float(schedule(s)) for s in steps])
axes[0].set(title="paper schedule", xlabel="step", ylabel="learning rate")
axes[1].plot(range(3000), [float(schedule(s)) for s in range(3000)])
axes[1].set(title="the first 3,000 steps", xlabel="step")
plt.show()

# %% [markdown]
# ## 2. A functional train step
#
# An NNX model is a Python object; `jax.jit` wants pure functions of arrays.
# The bridge is `nnx.split`: it returns a static *graph definition* and the
# parameters as a pytree. We split **once**, keep parameters and optimiser state
# in a `TrainState` pytree, and inside the jitted step `nnx.merge` rebuilds the
# model from them — tracing it, not copying it. To look inside a trained model,
# merge once more outside the step (`merge_model`).

# %%
#| export optimization
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

# %% [markdown]
# The loss is chapter 04's: MooG decodes each predicted state `z_p` at `S = 8`
# randomly offset pixels and compares with the frame. To read the numbers we add
# the PSNR of the predictions and of a baseline that *copies the previous frame*
# — on the same frames (1 … T−1) and the same sampled pixels. Beating copying
# is the first sign that a model predicts motion rather than repeating what it
# saw; at the compute of this repository's runs MooG just reaches it (chapter
# 06b; the shipped `cpu_moog`: 19.67 dB against 19.39 dB for copying on its 8
# held-out clips, as its JSON records and `tests/test_shipped.py` reproduces).

# %%
#| export optimization
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

# %%
#| export optimization
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

# %% [markdown]
# Now one step on the session's preset, on a batch of rendered clips. The same
# batch twice must lower the loss (a check that the gradient has the right sign
# and the step does something).

# %%
import time

import jax
from flax import nnx

from moog_lib import data, datasets, decoder
from moog_lib.model import MooG

config = configs.get(PRESET)
model = MooG(config.model, rngs=nnx.Rngs(0))
tx = make_optimizer(config.train)
graphdef, rest, state = split_model(model, tx)
train_step = make_train_step(graphdef, rest, tx)
d = config.data
clips = datasets.SyntheticSource(d.scene_preset, "train", num_clips=d.batch_size,
                             resolution=d.resolution, num_frames=d.num_frames)
batch = {"video": np.stack([clips[i]["video"] for i in range(d.batch_size)])}
key = jax.random.key(0)
losses = []
for _ in range(3):
    tic = time.perf_counter()
    state, metrics = train_step(state, batch, key)
    losses.append(float(metrics["loss"]))
    print(f"loss {losses[-1]:.4f} | psnr {float(metrics['psnr']):.2f} dB | "
          f"copy {float(metrics['copy_psnr']):.2f} dB | {time.perf_counter() - tic:.2f} s")
assert losses[-1] < losses[0]
assert int(state.step) == 3 and set(metrics) == {"loss", "psnr", "copy_psnr", "grad_norm"}
trained = merge_model(graphdef, rest, state)  # an ordinary NNX module again
assert isinstance(trained, MooG)

# %% [markdown]
# **How fast is this step?** `benchmarks/step.py` times it, with `--release DIR` the authors'
# step interleaved: on a quiet 2-core CPU (paper size, B = 1, 128², float32) ours takes 2.41 s
# at T = 2 and 17.7 s at T = 8, theirs 3.15 and 26.7 s: 1.32× and 1.55× faster (1.36× and
# 1.41–1.68× in earlier runs), at 0.65 and 0.49 of the matmul rate, by attention without its
# weights, products given the tokens as one matrix, norms recomputed (chapter 02) and a last
# frame not encoded (chapters 03–04; README: commands). The paper used 64 TPUv3 chips, ~48 h.

# %% [markdown]
# ## 3. Data parallelism, from one CPU to a pod
#
# The step above is already data-parallel: `jax.jit` partitions a computation
# by the shardings of its inputs. We build a 1-D mesh over **all** of
# `jax.devices()` with one axis, `"data"`, replicate the `TrainState` on it and
# split each batch along its first axis (`data.shard_clip_batch`). XLA inserts
# the all-reduce of the gradients. The same code runs on 1 CPU device, on 8
# simulated ones (`XLA_FLAGS=--xla_force_host_platform_device_count=8`, or
# `MOOG_CPU_DEVICES=8` before the setup cell), on the single v5e chip of a Colab
# TPU and on every chip of a pod.
#
# On a pod, each host is a separate Python process. Call
# `initialize_distributed()` first thing (on Cloud TPU it needs no arguments);
# each host then loads only *its* clips (`HostShard`: every
# `process_count`-th clip) and contributes its `local_batch_size` rows; the
# global array is assembled by `jax.make_array_from_process_local_data`.
#
# **When the model outgrows one device**, replicating parameters stops working.
# The next step is to shard them too (FSDP): give each parameter a
# `PartitionSpec` that splits its largest axis over the `"data"` axis (e.g.
# `P(None, "data")` for a `[512, 2048]` kernel) and `jax.device_put` the
# `TrainState` with those shardings; `jax.jit` then gathers each weight where it
# is used. MooG's 35M parameters (140 MB in float32, 420 MB with Adam's
# moments) fit easily on one chip, so we keep the simpler layout.

# %%
#| export parallel
"""Data parallelism over many devices and hosts, and what a step needs in memory.

`initialize_distributed` joins a multi-host run; `replicate` puts a pytree on
every device of a mesh; `local_batch_size` and `HostShard` give each host its
share of the batch and of the clips; `compiled_memory` and `step_memory` ask XLA
how much memory a compiled train step needs. The mesh and the batch sharding
themselves are chapter 05's (`data.data_parallel_mesh`, `data.shard_clip_batch`).
"""
import jax
import jax.numpy as jnp
from flax import nnx

from moog_lib import configs, data, optimization
from moog_lib.model import MooG


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Join a multi-host run (a TPU pod, or several CPU processes) before anything else uses JAX.

    On Cloud TPU pods every argument is detected automatically; elsewhere pass
    them (or set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID).
    On CPU the processes exchange data through gloo collectives.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # ignored on TPU
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


def replicate(tree, mesh: jax.sharding.Mesh):
    """Place every array of `tree` on every device of `mesh` (parameters, optimiser state)."""
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.tree.map(lambda x: jax.device_put(x, replicated), tree)


def local_batch_size(global_batch_size: int, mesh: jax.sharding.Mesh) -> int:
    """This host's share of the global batch; it must split evenly over every device."""
    devices = mesh.devices.size
    if global_batch_size % devices:
        raise ValueError(f"batch_size {global_batch_size} must be divisible by the {devices} "
                         f"devices of the mesh; use a multiple of {devices}")
    return global_batch_size // jax.process_count()


class HostShard(data.ClipSource):
    """Every `jax.process_count()`-th clip of `source`, starting at this host's index."""

    def __init__(self, source, index: int | None = None, count: int | None = None):
        self.source = source
        self.index = jax.process_index() if index is None else index
        self.count = jax.process_count() if count is None else count

    def __len__(self):
        return len(range(self.index, len(self.source), self.count))

    def __getitem__(self, i):
        return self.source[self.index + i * self.count]

# %%
mesh = data.data_parallel_mesh()
replicated = replicate(state, mesh)
sharded = data.shard_clip_batch(batch, mesh)
print("mesh:", dict(mesh.shape), "| batch sharding:", sharded["video"].sharding.spec)
assert all(x.sharding.is_fully_replicated for x in jax.tree.leaves(replicated))
assert local_batch_size(d.batch_size, mesh) * jax.process_count() == d.batch_size
assert len(HostShard(clips, index=0, count=2)) == (len(clips) + 1) // 2

# %% [markdown]
# **Will a step fit on the chip?** Parameters are not what fills a device: the
# activations the backward pass keeps are. XLA knows before anything runs —
# compile the step ahead of time (`.lower(...).compile()`, no data needed, only
# shapes) and ask for its `memory_analysis()`: the bytes of its arguments (the
# `TrainState` and the batch), its outputs, and the temporaries it needs. On a
# TPU this is the TPU's own buffer assignment; on a CPU it is the CPU's, a
# rough guide to the TPU's.

# %%
#| export parallel
def compiled_memory(compiled) -> dict:
    """GiB of a compiled step's arguments, outputs and temporaries (XLA's
    `memory_analysis()`), and "peak": their sum, donated buffers counted once."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        raise ValueError(f"the {jax.default_backend()} backend gives no memory analysis")
    sizes = {name: getattr(analysis, f"{name}_size_in_bytes") / 2**30
             for name in ("argument", "output", "temp", "alias")}
    sizes["peak"] = sizes["argument"] + sizes["output"] + sizes["temp"] - sizes["alias"]
    return sizes


def step_memory(config: configs.Config) -> dict:
    """`compiled_memory` of the train step `fit` runs for `config` (its batch, clip length
    and resolution), compiled for the default device and not run."""
    d = config.data
    tx = optimization.make_optimizer(config.train)
    graphdef, rest, state = optimization.split_model(MooG(config.model, rngs=nnx.Rngs(0)), tx)
    video = jax.ShapeDtypeStruct((d.batch_size, d.num_frames, d.resolution, d.resolution, 3),
                                 jnp.float32)
    step = optimization.make_train_step(graphdef, rest, tx)  # jitted, with `rest` bound
    lowered = step.func.lower(state, {"video": video}, jax.random.key(0), **step.keywords)
    return compiled_memory(lowered.compile())


# %%
memory = step_memory(config)
print(f"{config.name} step on {jax.devices()[0].device_kind}: " + ", ".join(
    f"{name} {gib:.3g} GiB" for name, gib in memory.items()))
assert memory["temp"] > 0 and memory["peak"] >= memory["argument"]

# %% [markdown]
# For the `colab` preset we compiled the step here, on the CPU, with its
# bfloat16 compute kept (`python benchmarks/step.py --preset colab --keep-dtype
# --compile-only --batch B`, which prints the same analysis and XLA's FLOP
# count; 2 CPU cores, December 2026):
#
# | clips per step | temporaries | peak | TFLOP per step | estimated v5e step time at 40 % of 197 TFLOP/s |
# |---|---|---|---|---|
# | 1 | 8.29 GiB | 8.68 GiB | 1.77 | 22 ms |
# | 4 | 32.8 GiB | 33.2 GiB | 7.06 | 90 ms |
# | 16 | 130.7 GiB | 131.1 GiB | 28.2 | 358 ms |
#
# About 8 GiB a clip, in the CPU's assignment: the full-resolution convolutions
# of the encoder at 128² and the attention of every frame, kept for the
# backward pass. A v5e chip has 16 GB, so the `colab` preset trains **one clip
# per step** — which is also the paper's share per device: 128 clips over 64
# TPUv3 chips of two 16 GB cores each. Both columns are estimates until someone
# runs this cell on the TPU, where it prints the TPU's own numbers.

# %% [markdown]
# ## 4. Checkpoints that survive being killed
#
# A checkpoint holds the whole `TrainState` (flattened to `{path: array}`, so its
# layout does not depend on Python classes), the data pipeline's position, and
# JSON metadata such as the random seed. The per-step keys are
# `fold_in(key, step)`, so nothing else random needs saving. Orbax makes each
# save atomic (it writes a temporary folder and renames it when complete) and
# keeps the newest `keep`; `restore` walks back from the newest step and skips,
# with a warning, any it cannot read.
#
# The position is saved by grain's own orbax handler (`grain.checkpoint`'s
# `CheckpointSave` and `CheckpointRestore`), a third item beside `state` and
# `metadata`: one JSON file per process, `iterator/process_<i>-of-<n>.json`.
# In a multi-host run each host reads its own share of the clips (§3) and
# restores its own position, so a run resumes on as many processes as saved
# it. Older checkpoints kept the position in the metadata (`data_state`);
# `restore` still reads them.

# %%
#| export checkpoint
"""Saving and loading: rotating training checkpoints, and plain weights files.

`Checkpointer` keeps the last few `TrainState`s of a run with orbax, atomically,
skipping unreadable steps on restore. `save_weights` and `load_weights` write
and read a module's parameters as a float32 `.npz` plus a `.json` manifest (with
the `.npz`'s SHA-256), as in `moog_lib/trained/` (format `WEIGHTS_FORMAT`).
"""
import hashlib
import io
import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import grain
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from moog_lib import data, optimization


def _flat(tree) -> dict:
    """{"path": array} for any pytree: a checkpoint layout that does not depend on node types."""
    return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


# optax.multi_transform nests a label's optimiser state: .opt_state.inner_states['head'].inner_state…
_MULTI_TRANSFORM = re.compile(r"^\.opt_state\.inner_states\['[^']+'\]\.inner_state")


def _read_step(manager, step: int, items: dict, abstract: dict):
    """(restored items, the state's arrays in `abstract`'s order) of one step. A step from
    before chapter 07 froze readout backbones with an NNX filter (before December 2026)
    holds every parameter and the head's optimiser state nested by `optax.multi_transform`:
    it is read as the entries `abstract` names, if it holds each once, shaped alike."""
    try:
        restored = manager.restore(step, args=ocp.args.Composite(**items))
        return restored, [restored["state"][key] for key in abstract]
    except Exception as strict:
        try:
            raw = ocp.args.Composite(**{**items, "state": ocp.args.StandardRestore()})
            restored, saved = manager.restore(step, args=raw), {}
        except Exception:
            raise strict from None
        for key, value in restored["state"].items():
            saved.setdefault(_MULTI_TRANSFORM.sub(".opt_state", key), []).append(value)
        if any(len(saved.get(k, ())) != 1 or saved[k][0].shape != x.shape for k, x in abstract.items()):
            raise strict from None
        return restored, [jax.device_put(jnp.asarray(saved[k][0], x.dtype), x.sharding)
                          for k, x in abstract.items()]

# %% [markdown]
# `Checkpointer` saves the three items as one orbax step; on restore it reads the
# iterator's item where the step has one, else the metadata's `data_state`.

# %%
#| export checkpoint
class Checkpointer:
    """Atomic, rotating checkpoints of a `TrainState`, a grain iterator and JSON
    metadata, with orbax.

    Orbax writes each step into a temporary folder and renames it only when every
    file is complete, so a run killed mid-save leaves the previous checkpoints
    intact. `restore` walks back from the newest step and skips (with a warning)
    any it cannot read. The iterator is optional; grain's handler saves it as
    `<step>/iterator/process_<i>-of-<n>.json`, one file per process.
    """

    def __init__(self, directory, keep: int = 3):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options)
        self.unreadable: dict[int, str] = {}  # step: why `restore` could not read it

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, state: optimization.TrainState, metadata: dict, iterator=None) -> None:
        """Save `state` and `metadata` at `state.step`, and the position of `iterator` (a
        grain `DatasetIterator`, e.g. `iter(data.make_pipeline(...))`) when given."""
        items = {"state": ocp.args.StandardSave(_flat(state)),
                 "metadata": ocp.args.JsonSave(metadata)}
        if iterator is not None:
            items["iterator"] = grain.checkpoint.CheckpointSave(iterator)
        self.manager.save(int(state.step), args=ocp.args.Composite(**items), force=True)
        self.manager.wait_until_finished()

    def restore(self, like: optimization.TrainState, iterator=None):
        """(state, metadata) of the newest readable step, shaped and sharded like `like`; or
        None, with the reason each step could not be read in `self.unreadable`.

        With `iterator`, also moves it, in place, to that step's position: from the
        step's iterator item, or, in a checkpoint written before there was one, from
        `metadata["data_state"]`. A step with neither counts as unreadable."""
        treedef = jax.tree_util.tree_structure(like)
        abstract = {key: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
                    for key, x in _flat(like).items()}
        self.unreadable = {}
        for step in reversed(self.steps()):
            items = {"state": ocp.args.StandardRestore(abstract),
                     "metadata": ocp.args.JsonRestore()}
            own_item = (self.directory / str(step) / "iterator").is_dir()
            if iterator is not None and own_item:
                items["iterator"] = grain.checkpoint.CheckpointRestore(iterator)
            try:
                restored, arrays = _read_step(self.manager, step, items, abstract)
                if iterator is not None and not own_item:  # the format before the item
                    if "data_state" not in restored["metadata"]:
                        raise ValueError("no data position: neither an iterator item nor "
                                         "metadata['data_state']")
                    iterator.set_state(restored["metadata"]["data_state"])
            except Exception as err:  # a corrupt or partial step: use the one before
                self.unreadable[step] = f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
                continue
            for bad, reason in self.unreadable.items():  # say which newer steps were skipped
                warnings.warn(f"checkpoint step {bad} in {self.directory} cannot be read "
                              f"({reason}); using step {step}", stacklevel=2)
            return jax.tree_util.tree_unflatten(treedef, arrays), restored["metadata"]
        return None

    def close(self):
        self.manager.close()

# %% [markdown]
# Let's save two steps, each with the position of chapter 05's pipeline over the
# clips above, and look inside one: three items, each a folder. The iterator's
# holds one JSON file for this process: `next_index`, the batches drawn so far.

# %%
import tempfile
import warnings
from pathlib import Path

pipeline = data.make_pipeline(clips, batch_size=1, seed=0, num_frames=d.num_frames,
                              resolution=d.resolution)
batches = iter(pipeline)
next(batches)  # step 3 has drawn one batch
scratch = Path(tempfile.mkdtemp())
manager = Checkpointer(scratch / "checkpoints", keep=2)
manager.save(state, {"seed": 0}, iterator=batches)
after_3 = next(batches)  # the batch a run resumed at step 3 must draw next
later, _ = train_step(state, batch, key)
manager.save(later, {"seed": 0}, iterator=batches)
assert manager.steps() == [3, 4]
step_3 = scratch / "checkpoints" / "3"
for item in sorted(p for p in step_3.iterdir() if p.is_dir()):
    print(f"3/{item.name}/:", ", ".join(sorted(p.name for p in item.iterdir())))
position = step_3 / "iterator" / f"process_{jax.process_index()}-of-{jax.process_count()}.json"
print(position.name, "|", " ".join(position.read_text().split()))

# %% [markdown]
# Now damage the newest step on purpose: restoring warns, falls back to the step
# before, and moves a fresh iterator there, so it draws the batch the saved one drew next.

# %%
for f in (scratch / "checkpoints" / "4" / "metadata").iterdir():
    f.write_text("garbage")  # simulate a damaged file
fresh = iter(pipeline)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    restored, metadata = manager.restore(later, iterator=fresh)
assert int(restored.step) == 3 and metadata == {"seed": 0}
np.testing.assert_array_equal(next(fresh)["video"], after_3["video"])
assert any("cannot be read" in str(w.message) for w in caught)
print("fell back to step", int(restored.step), "|", caught[-1].message)
manager.close()

# %% [markdown]
# ## 5. Weights files
#
# A checkpoint holds everything a run needs to go on, in orbax's layout; to
# hand a trained model to someone else we want less: its parameters, in a file
# anything can read. Training the `cpu` preset takes a while, and a reader who
# wants to *look* at a trained MooG should not have to, so the repository
# carries the weights of one small run (and of readout heads on it) in
# `moog_lib/trained/`, a few MB that `pip install` brings along (chapter 06a
# loads them with one call, chapter 06b looks at them). The format is deliberately plain: one
# `.npz` of float32 arrays keyed by parameter path (`"decoder/readout/kernel"`),
# read with `allow_pickle=False`, so loading runs no code from the file; and a
# `.json` manifest beside it with the config, the command that trained it, its
# held-out numbers and the SHA-256 of the `.npz`. Loading checks the hash, every
# name and every shape, and says what differs. `tools/ship_weights.py` turns a
# finished run into such a pair.

# %%
#| export checkpoint
WEIGHTS_FORMAT = 1


def _weights_files(path) -> tuple[Path, Path]:
    """(`<path>.npz`, `<path>.json`), with or without the .npz suffix on `path`."""
    path = Path(path)
    stem = path.name[:-len(".npz")] if path.name.endswith(".npz") else path.name
    return path.with_name(stem + ".npz"), path.with_name(stem + ".json")


def _param_leaves(module: nnx.Module):
    """(the pure dict of `module`'s nnx.Params, its flat [('a/b/c', array)], its treedef)."""
    pure = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    leaves, treedef = jax.tree_util.tree_flatten_with_path(pure)
    return [("/".join(str(k.key) for k in path), leaf) for path, leaf in leaves], treedef


def _write_atomic(path: Path, write) -> None:
    """`write(file)` into a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

# %% [markdown]
# `save_weights` writes the `.npz` to memory first, so that the SHA-256 in the
# manifest is the hash of exactly the bytes on disk; both files are written
# atomically, like a checkpoint.

# %%
#| export checkpoint
def save_weights(module: nnx.Module, path, *, manifest: dict) -> Path:
    """Write every nnx.Param of `module` to `<path>.npz` (float32, keyed by '/'-joined
    parameter path) and `manifest` plus format, counts and the npz's SHA-256 to
    `<path>.json`; both atomically. Returns the .npz path."""
    npz, meta = _weights_files(path)
    leaves, _ = _param_leaves(module)
    arrays = {name: np.asarray(jax.device_get(leaf), np.float32) for name, leaf in leaves}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    _write_atomic(npz, lambda f: f.write(payload))
    record = {**manifest, "format": WEIGHTS_FORMAT, "arrays": len(arrays),
              "parameters": int(sum(a.size for a in arrays.values())),
              "sha256": hashlib.sha256(payload).hexdigest()}
    _write_atomic(meta, lambda f: f.write((json.dumps(record, indent=1) + "\n").encode()))
    return npz

# %% [markdown]
# `load_weights` trusts nothing in the files: it checks the format, the hash,
# every name and shape against the module it fills, and that every value is
# finite, and names what differs.

# %%
#| export checkpoint
def load_weights(module: nnx.Module, path) -> dict:
    """Fill `module`'s nnx.Params, in place, from `<path>.npz`; returns the manifest.

    Refuses (ValueError) a file whose SHA-256 differs from its manifest's,
    arrays whose names or shapes differ from the module's parameters, and NaN or Inf.
    """
    npz, meta = _weights_files(path)
    for file in (meta, npz):
        if not file.exists():
            raise FileNotFoundError(f"load_weights: {file} does not exist")
    manifest = json.loads(meta.read_text())
    if manifest.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{meta}: weights format {manifest.get('format')!r}, expected "
                         f"{WEIGHTS_FORMAT}")
    payload = npz.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest.get("sha256"):
        raise ValueError(f"{npz}: SHA-256 {digest} differs from the {manifest.get('sha256')} "
                         f"recorded in {meta.name}: the file is damaged or belongs to other "
                         "weights (re-download it or ship both files again)")
    with np.load(io.BytesIO(payload), allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    leaves, treedef = _param_leaves(module)
    expected = dict(leaves)
    missing = [n for n in expected if n not in arrays]
    unexpected = [f"{n} {list(arrays[n].shape)}" for n in arrays if n not in expected]
    mismatched = [f"{n}: file {list(arrays[n].shape)}, module {list(expected[n].shape)}"
                  for n in expected if n in arrays and arrays[n].shape != expected[n].shape]
    if missing or unexpected or mismatched:
        problems = [f"{len(found)} {kind}: " + ", ".join(found) for kind, found in
                    (("missing", [f"{n} {list(expected[n].shape)}" for n in missing]),
                     ("unexpected", unexpected), ("with another shape", mismatched)) if found]
        raise ValueError(f"{npz} does not fit {type(module).__name__} "
                         f"({len(expected)} parameters): " + "; ".join(problems))
    for name in expected:
        data.check_finite(f"{npz}: array {name!r}", arrays[name],
                          "these weights were saved from a diverged run")
    values = [jnp.asarray(arrays[name], dtype=leaf.dtype) for name, leaf in leaves]
    state = nnx.state(module, nnx.Param)
    nnx.replace_by_pure_dict(state, jax.tree_util.tree_unflatten(treedef, values))
    nnx.update(module, state)
    return manifest

# %% [markdown]
# A round trip on a `tiny` MooG: save it, load the file into a model initialised
# differently, and the outputs are bit-identical. A damaged file is refused.

# %%
import dataclasses

tiny = configs.get("tiny")
original = MooG(tiny.model, rngs=nnx.Rngs(0))
saved = save_weights(original, scratch / "weights" / "tiny_moog.npz",
                     manifest={"config": dataclasses.asdict(tiny), "command": "none: a check"})
loaded = MooG(tiny.model, rngs=nnx.Rngs(1))  # other initial parameters
manifest = load_weights(loaded, saved)
assert manifest["command"] == "none: a check"
assert manifest["arrays"] == len(jax.tree.leaves(nnx.state(original, nnx.Param)))
frames = jax.random.uniform(jax.random.key(3), (1, tiny.data.num_frames,
                                                tiny.data.resolution, tiny.data.resolution, 3))
before = original(frames, key=jax.random.key(4), training=False)["prediction"]
after = loaded(frames, key=jax.random.key(4), training=False)["prediction"]
assert np.array_equal(np.asarray(before), np.asarray(after))
damaged = bytearray(saved.read_bytes())
damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte
saved.write_bytes(bytes(damaged))
try:
    load_weights(loaded, saved)
except ValueError as error:
    print("refused:", str(error)[:110], "...")
else:
    raise AssertionError("a damaged file must be refused")
print(f"{manifest['parameters']:,} parameters in {manifest['arrays']} arrays, "
      f"{saved.stat().st_size / 1e6:.2f} MB")

# %% [markdown]
# ## 6. Metrics you can read
#
# Every `log_every` steps the training loop (chapter 06a) appends one JSON line
# with the mean loss, PSNR, copy-the-previous-frame PSNR, learning rate,
# gradient norm, frames per second and the share of time spent waiting for data;
# every `eval_every` steps one more line for the held-out split (test-split
# clips, `S = 4`, zero offsets).

# %%
#| export runs
"""A run's folder: its config file, its metrics log and plot, and the checks before training.

`MetricsLog` appends a run's metrics as JSON lines and `plot_metrics` draws them;
`read_config` and `config_from_dict` read a run's `config.json`;
`check_config` and `check_count` refuse settings training cannot use;
`prepare_run_folder` (with `config_differences`, `move_run_aside` and
`RESUMABLE_FIELDS`) decides whether a folder may start or resume a run.
"""
import dataclasses
import json
import math
import time
from pathlib import Path

import jax

from moog_lib import configs


class MetricsLog:
    """Append-only JSON lines, one record per log or evaluation: `{"step", "split", ...}`."""

    def __init__(self, path):
        self.path = Path(path)

    def write(self, step: int, split: str, metrics: dict) -> dict:
        record = {"step": int(step), "split": split, "time": time.time()}
        record.update({k: float(v) for k, v in metrics.items()})
        if jax.process_index() == 0:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        return record

    def read(self, split: str | None = None) -> list[dict]:
        if not self.path.exists():
            return []
        records = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        return [r for r in records if split is None or r["split"] == split]


_NOT_PLOTTED = {"step", "split", "time", "loss", "grad_norm", "learning_rate",
                "frames_per_second", "data_wait_share", "copy_psnr"}


def plot_metrics(log: MetricsLog, path=None):
    """Loss and metric curves, train and every held-out split.

    The metric panel shows PSNR with the copy-the-last-frame baseline for
    pretraining, or a readout's first metric (e.g. AbsRel) otherwise.
    """
    import matplotlib.pyplot as plt

    records = log.read()
    splits = list(dict.fromkeys(r["split"] for r in records))
    metric = "psnr" if any("psnr" in r for r in records) else next(
        (k for r in records for k in r if k not in _NOT_PLOTTED), None)
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 3.8))
    for split in splits:
        rows = log.read(split)
        steps, style = [r["step"] for r in rows], "-" if split == "train" else "o-"
        ax_loss.plot(steps, [r["loss"] for r in rows], style, label=split)
        if metric is not None:
            ax_metric.plot(steps, [r.get(metric, float("nan")) for r in rows], style,
                           label=f"model, {split}")
        if metric == "psnr":
            ax_metric.plot(steps, [r["copy_psnr"] for r in rows], style, alpha=0.5,
                           label=f"copy last frame, {split}")
    ax_loss.set(xlabel="step", ylabel="loss", yscale="log", title="loss")
    ax_metric.set(xlabel="step", ylabel=metric or "", title=metric or "")
    if metric == "psnr":
        ax_metric.set(ylabel="PSNR (dB), frames 1…T−1", title="next-frame PSNR")
    for ax in (ax_loss, ax_metric):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig

# %% [markdown]
# A log written by hand: two training records and one held-out record, read
# back by split and drawn.

# %%
demo_log = MetricsLog(scratch / "demo_metrics.jsonl")
for step, loss, psnr in ((5, 0.08, 13.1), (10, 0.05, 14.0)):
    demo_log.write(step, "train", {"loss": loss, "psnr": psnr, "copy_psnr": 19.0})
demo_log.write(10, "eval", {"loss": 0.06, "psnr": 13.5, "copy_psnr": 19.2})
assert [r["step"] for r in demo_log.read("train")] == [5, 10] and len(demo_log.read()) == 3
print(demo_log.read("eval")[0])
plt.show(plot_metrics(demo_log))

# %% [markdown]
# ## 7. A folder holds one run
#
# A run folder carries the config it was trained with as `config.json`.
# `read_config` and `config_from_dict` read it back, checking every field's
# name and type, so a run written before a field existed still loads and a
# typo is named rather than ignored.

# %%
#| export runs
def read_config(workdir) -> configs.Config:
    """The config a run in `workdir` was trained with (its config.json)."""
    config_path = Path(workdir) / "config.json"
    if Path(workdir).is_file():
        raise ValueError(f"{workdir} is a file, not a run folder; pass the folder a run was "
                         "trained in")
    if not config_path.exists():
        raise ValueError(f"{workdir} has no config.json; pass the config it was trained with")
    try:
        values = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path} is not JSON ({err.msg}, line {err.lineno} column "
                         f"{err.colno}); restore the run's config (json.dumps of "
                         "dataclasses.asdict(config))") from None
    return config_from_dict(values, source=str(config_path))


def config_from_dict(values: dict, source: str = "config") -> configs.Config:
    """Rebuild a `configs.Config` from `dataclasses.asdict` output (e.g. a run's config.json).

    A missing field takes its default (a run written before the field existed); an
    unknown field or a value of another type is a ValueError naming `source` and the
    dotted field."""
    import typing

    def value_of(kind, value, name):
        if typing.get_origin(kind) is tuple and isinstance(value, list | tuple):
            item = typing.get_args(kind)[0]
            if all(type(v) is item for v in value):
                return tuple(value)
        elif kind is float and type(value) is int:
            return float(value)
        elif type(value) is kind:
            return value
        expected = "a list of numbers" if typing.get_origin(kind) is tuple else kind.__name__
        raise ValueError(f"{source}: {name} is {value!r}; expected {expected}")

    def build(cls, fields, prefix):
        section = prefix[:-1] or "the top level"
        if not isinstance(fields, dict):
            raise ValueError(f"{source}: {section} is {fields!r}; expected a section of "
                             f"{cls.__name__} fields")
        hints = typing.get_type_hints(cls)
        unknown = [prefix + name for name in fields if name not in hints]
        if unknown:
            raise ValueError(f"{source}: unknown field {', '.join(unknown)} (a typo, or a "
                             "newer version's); remove it or correct its name")
        kwargs = {name: build(hints[name], value, f"{prefix}{name}.")
                  if dataclasses.is_dataclass(hints[name])
                  else value_of(hints[name], value, prefix + name)
                  for name, value in fields.items()}
        try:
            return cls(**kwargs)
        except TypeError as err:  # a field without a default is missing
            raise ValueError(f"{source}: {section} lacks a field ({err})") from None

    return build(configs.Config, values, "")

# %% [markdown]
# The session's config survives the trip through JSON, and a misspelt field is
# named:

# %%
assert config_from_dict(json.loads(json.dumps(dataclasses.asdict(config)))) == config
misspelt = dataclasses.asdict(config)
misspelt["train"]["step"] = misspelt["train"].pop("steps")
try:
    config_from_dict(misspelt, source="config.json")
except ValueError as err:
    print("refused:", err)
else:
    raise AssertionError("a misspelt field must be refused")

# %% [markdown]
# **Why a folder refuses a second run.** Resuming with another config used to
# start from scratch in the old run's folder, and checkpoint rotation then
# deleted the old run. Now `fit` (chapter 06a) first calls `prepare_run_folder`,
# which writes nothing: a fresh run needs a folder without a run in it (a
# `config.json` or checkpoints), and a resumed run needs the config in
# `config.json`, except `RESUMABLE_FIELDS`: the run's length (`train.steps`: the
# cosine schedule then stretches to the new length, so the learning rate from
# the resumed step on changes), how often it logs, evaluates and saves, how many
# checkpoints it keeps, and where its rendered dataset lives. Anything else is
# refused, naming the fields and the two ways out; `force_new_run` renames the
# old run to `<workdir>.old-<time>`, so nothing is ever deleted. `check_config`
# refuses, at the same moment, values training would divide by or could not
# build a model with.

# %%
#| export runs
# What may change when a run is resumed, in `train` and in the readouts' `readout.train`.
RESUMABLE_FIELDS = tuple(f"{section}.{field}" for section in ("train", "readout.train")
                         for field in ("steps", "log_every", "eval_every", "checkpoint_every",
                                       "keep_checkpoints")) + ("data.data_dir",)
COMPUTE_DTYPES = ("float32", "bfloat16")
_WAYS_OUT = ("choose another workdir, or pass --force-new-run (force_new_run=True) to move "
             "the old run to <workdir>.old-<time> and start afresh")


def check_count(name: str, value, what: str) -> None:
    """A ValueError unless `value` is a positive whole number; `what` says what it counts."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive whole number ({what})")


def check_config(config: configs.Config) -> configs.Config:
    """`config`, once its counts, cadences and dtype are checked; else a ValueError
    naming the dotted field and what it expects."""
    for section, t in (("train", config.train), ("readout.train", config.readout.train)):
        for field, what in (("steps", "training steps"), ("log_every", "steps per log record"),
                            ("eval_every", "steps between evaluations"),
                            ("checkpoint_every", "steps between checkpoints"),
                            ("keep_checkpoints", "checkpoints kept")):
            check_count(f"{section}.{field}", getattr(t, field), what)
        if not 0 <= t.warmup_steps or not 0 < t.peak_learning_rate < math.inf:
            raise ValueError(f"{section}: warmup_steps={t.warmup_steps}, peak_learning_rate="
                             f"{t.peak_learning_rate}; expected warmup >= 0 and a positive rate")
    for field in ("resolution", "num_frames", "batch_size", "clip_frames", "num_clips",
                  "eval_clips"):
        check_count(f"data.{field}", getattr(config.data, field), "a count of clips, frames "
                     "or pixels")
    for field in ("token_dim", "num_tokens"):
        check_count(f"model.{field}", getattr(config.model, field), "model size")
    if config.model.compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"model.compute_dtype={config.model.compute_dtype!r}: expected one of "
                         f"{', '.join(map(repr, COMPUTE_DTYPES))}")
    return config

# %% [markdown]
# Comparing two configs field by field, and moving a run aside without
# deleting anything:

# %%
#| export runs
def config_differences(old: configs.Config, new: configs.Config) -> dict:
    """{dotted field: (old value, new value)} for every field where `new` differs."""
    def flat(node, prefix=""):
        return {k: v for f in dataclasses.fields(node) for k, v in (
            flat(getattr(node, f.name), f"{prefix}{f.name}.").items()
            if dataclasses.is_dataclass(getattr(node, f.name))
            else [(prefix + f.name, getattr(node, f.name))])}

    a, b = flat(old), flat(new)
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def move_run_aside(workdir) -> Path:
    """Rename `workdir` to `<workdir>.old-<time>` (deleting nothing); returns the new name."""
    workdir = Path(workdir).absolute()
    if Path.cwd().resolve().is_relative_to(workdir.resolve()):
        raise ValueError(f"cannot move {workdir} aside while it holds the current directory; "
                         "run the command from elsewhere")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = workdir.with_name(f"{workdir.name}.old-{stamp}"), 1
    while target.exists():
        target, n = workdir.with_name(f"{workdir.name}.old-{stamp}-{n}"), n + 1
    if jax.process_index() == 0:
        workdir.rename(target)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("moog: old run moved aside")
    return target

# %% [markdown]
# And the decision itself: may this folder take this run?

# %%
#| export runs
def prepare_run_folder(config: configs.Config, workdir, *, resume: bool,
                       force_new_run: bool = False) -> Path:
    """`workdir` as a Path, once it may take this run; writes nothing except with
    `force_new_run`, which moves a run already there aside (`move_run_aside`).

    A folder holds a run when it has a config.json or checkpoints. Resuming needs
    its config to equal `config` except for `RESUMABLE_FIELDS`; a fresh run needs
    a folder without a run. Otherwise a one-line ValueError names the differing
    fields (old → new) and the ways out.
    """
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise ValueError(f"workdir {workdir} is a file; pass a folder (created if missing)")
    checkpoint_dir = workdir / "checkpoints"
    saved = sorted(p.name for p in checkpoint_dir.iterdir()) if checkpoint_dir.is_dir() else []
    if not saved and not (workdir / "config.json").exists():
        return workdir
    if force_new_run:
        print(f"moved the run in {workdir} to {move_run_aside(workdir)}; starting afresh")
        return workdir
    if not resume:
        raise ValueError(f"{workdir} already holds a run (checkpoints: {', '.join(saved) or 'none'}"
                         f"); pass --resume (resume=True) to continue it, or {_WAYS_OUT}")
    if not (workdir / "config.json").exists():
        raise ValueError(f"{workdir} holds checkpoints but no config.json to check them "
                         f"against; {_WAYS_OUT}")
    differences = {k: v for k, v in config_differences(read_config(workdir), config).items()
                   if k not in RESUMABLE_FIELDS}
    if differences:
        shown = [f"{k} {old!r} → {new!r}" for k, (old, new) in differences.items()]
        if len(shown) > 6:
            shown = shown[:6] + [f"and {len(shown) - 6} more"]
        raise ValueError(f"{workdir} holds a run of another config ({'; '.join(shown)}); to "
                         f"resume it pass the config it was trained with, or {_WAYS_OUT}")
    return workdir

# %%
folder = scratch / "one_run"
folder.mkdir()
(folder / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
longer = configs.override(config, [f"train.steps={2 * config.train.steps}", "train.log_every=1"])
assert prepare_run_folder(longer, folder, resume=True) == folder  # extending a run is fine
other = configs.override(config, [f"model.token_dim={config.model.token_dim + 16}"])
for kwargs in ({"resume": True}, {"resume": False}):
    try:
        prepare_run_folder(other if kwargs["resume"] else config, folder, **kwargs)
    except ValueError as err:
        print("refused:", err)
    else:
        raise AssertionError("a run folder took a second run")
prepare_run_folder(other, folder, resume=True, force_new_run=True)
assert not folder.exists() and len(list(scratch.glob("one_run.old-*/config.json"))) == 1
try:
    check_config(configs.override(config, ["train.checkpoint_every=0"]))
except ValueError as err:
    print("refused:", err)

# %% [markdown]
# ## Summary
#
# - Optimiser: clip at global norm 1, Adam with Nesterov momentum (b1 0.9,
#   b2 0.95); schedule: linear warm-up, cosine decay to 1e-7. AdamW is the
#   release's switch.
# - The NNX model is split once; the jitted step is a pure function of a
#   `TrainState` pytree, a batch and a key.
# - Data parallelism is a property of the inputs' shardings: replicate the state
#   on a `"data"` mesh over all devices, split the batch along it. Multi-host
#   runs add `jax.distributed` and per-host data.
# - XLA says how much memory a step needs before it runs (`step_memory`):
#   about 8 GiB a clip at the paper's size, so a v5e chip trains one clip per step.
# - Checkpoints are atomic, rotate, fall back past damaged steps and carry the
#   data position (grain's handler, a file per process): resuming is exact (06a).
# - Read a step by its PSNR *next to* the copy-the-previous-frame PSNR.
# - Weights files are plain float32 `.npz` files with a JSON manifest (config,
#   command, held-out numbers, SHA-256); `load_weights` checks the hash, names,
#   shapes and values before it fills a model.
# - A run writes its metrics as JSON lines (`MetricsLog`, `plot_metrics`).
# - A folder holds one run: `prepare_run_folder` checks the config against the
#   folder's `config.json` before anything is written; only the run's length,
#   cadences and data folder may change on resume, and `force_new_run` moves
#   the old run aside instead of deleting it.
#
# ## Exercises
#
# 1. ★ What learning rate does the paper's schedule use at step 500, and at the
#    half-way point of the cosine? Compute both with `learning_rate_schedule`
#    and by hand.
# 2. ★★ Switch the optimiser to the release's AdamW and take three steps on the
#    same batch. How do the parameters differ from Adam's after one step, and
#    why does weight decay barely matter in three steps?
# 3. ★★★ Shard the parameters instead of replicating them: give every 2-D
#    kernel whose last axis divides by the number of devices the spec
#    `P(None, "data")`, place the state with those shardings, run one step and
#    check the loss equals the replicated step's.

# %% [markdown]
# ### Solution 1

# %%
peak, warmup, final, total = 1e-4, 1000, 1e-7, paper_train.steps
assert abs(float(schedule(500)) - peak * 500 / warmup) < 1e-10
middle = warmup + (total - warmup) // 2
by_hand = final + (peak - final) * 0.5 * (1 + np.cos(np.pi * 0.5))
assert abs(float(schedule(middle)) - by_hand) < 1e-9
print(f"step 500: {float(schedule(500)):.2e}; step {middle}: {float(schedule(middle)):.3e}")

# %% [markdown]
# ### Solution 2

# %%
import jax.numpy as jnp

adamw = configs.override(config, ["train.optimizer=adamw"]).train
for name, train_config in (("adam+nesterov", config.train), ("adamw", adamw)):
    optimizer = make_optimizer(train_config)
    g, r, s = split_model(MooG(config.model, rngs=nnx.Rngs(0)), optimizer)
    step_fn = make_train_step(g, r, optimizer)
    before = jax.device_get(s.params)  # the step donates (reuses) the old state's buffers
    s1, _ = step_fn(s, batch, key)
    change = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), s1.params, before)
    print(name, "largest parameter change after one step:",
          f"{max(jax.tree.leaves(change)):.2e}")
# Both take a step of about the learning rate per parameter (Adam normalises the
# gradient); weight decay subtracts lr * 1e-4 * w, a ten-thousandth of that.

# %% [markdown]
# ### Solution 3

# %%
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

devices = mesh.devices.size


def spec_for(x):
    if x.ndim == 2 and x.shape[-1] % devices == 0:
        return NamedSharding(mesh, P(None, "data"))
    return NamedSharding(mesh, P())


g, r, s = split_model(MooG(config.model, rngs=nnx.Rngs(0)), tx)
plain_state = replicate(jax.tree.map(jnp.copy, s), mesh)  # own buffers: steps donate theirs
fsdp_state = jax.tree.map(lambda x: jax.device_put(x, spec_for(x)), s)
step_fn = make_train_step(g, r, tx)
_, fsdp_metrics = step_fn(fsdp_state, data.shard_clip_batch(batch, mesh), key)
_, plain_metrics = step_fn(plain_state, data.shard_clip_batch(batch, mesh), key)
assert abs(float(fsdp_metrics["loss"]) - float(plain_metrics["loss"])) < 1e-6
print("sharded-parameter step matches:", float(fsdp_metrics["loss"]))

# %% [markdown]
# ## References
#
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024, Appendix C (training details).
# - Y. Nesterov (1983) and T. Dozat, *Incorporating Nesterov Momentum into Adam*
#   (2016): the NAdam update optax implements with `nesterov=True`.
# - I. Loshchilov, F. Hutter. *Decoupled Weight Decay Regularization* (AdamW),
#   ICLR 2019; *SGDR: Stochastic Gradient Descent with Warm Restarts* (cosine
#   schedules), ICLR 2017.
# - JAX documentation: *Distributed arrays and automatic parallelization*;
#   Orbax documentation: *CheckpointManager*; Grain documentation: *Dataset
#   iterators and checkpointing*.

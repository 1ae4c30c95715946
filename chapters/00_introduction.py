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
# # 00 — Introduction: moving off the grid
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/00_introduction.ipynb)
#
# **What you will learn.** What MooG is and why its tokens live "off the grid";
# the notation every later chapter uses, and how the library writes it into the
# shapes its functions declare and check; the four presets (`tiny`, `cpu`,
# `colab`, `paper`) and how to pick one; how the chapters and the `moog_lib`
# library relate; and how to run everything, locally or on a Colab TPU.
#
# **Prerequisites.** Python and NumPy; some familiarity with JAX and with
# attention (chapter 02 builds attention from scratch).
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 3 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 1–2 min, nearly all of it the setup cell's install; the cells run in seconds; not measured on a TPU |

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
#| default_exp configs

# %% [markdown]
# ## 1. What MooG is
#
# Most video models keep one feature vector per image patch: token `(i, j)`
# always describes patch `(i, j)` of the frame. When the camera pans, the
# content under a token changes and the representation has to be rewritten.
# MooG (*Moving Off-the-Grid*, van Steenkiste et al., NeurIPS 2024) instead keeps
# a **set of K latent tokens that are not tied to pixel positions**. It is a
# recurrent state-space model that runs frame by frame:
#
# 1. **encode** each frame with a small CNN into a grid of features `F_t`;
# 2. **predict**: a transformer rolls the state forward, `z_p = z + P(z)`;
# 3. **decode** the predicted state into the *next frame*: each pixel queries
#    the tokens with cross-attention from its coordinates;
# 4. **correct**: the predicted tokens cross-attend into the new frame's
#    features, `z_c = LN(z_p + C(z_p, F_t))`, and the corrected state is carried
#    on.
#
# The only training signal is next-frame prediction. Because a token is free to
# attend to any pixel, the cheapest way to predict the next frame is to let a
# token *follow* a piece of the scene as it moves: the tokens end up bound to
# scene content rather than to image locations. Readouts — depth, point tracks,
# boxes — then cross-attend into the tokens. The paper compares these
# off-the-grid tokens with on-the-grid baselines of about the same size (its
# Section 4, Tables 1–3), and the comparison is not one-sided: in Table 2, with
# readouts trained end to end on MOVi-E, Grid Rec. is ahead of MooG on points
# and on boxes. Chapter 10 builds the baselines and chapter 10a runs the
# comparison, so that you can run it yourself.
#
# ```
#  frame t ──► encoder ──► F_t ─────────────────────────┐
#                                                       ▼
#  z_{t-1} ──► predictor ──► z_p ──► corrector(z_p, F_t) ──► z_c ──► (next frame)
#                             │
#                             └──► decoder(pixel coords) ──► predicted frame t
# ```
#
# ## 2. The chapters and the library
#
# | chapter | topic | exports |
# |---|---|---|
# | 00 | introduction, notation and shapes, presets, the setup cell | `moog_lib.configs`, `moog_lib.shapes`, `moog_lib.notebook` |
# | 01 | Fourier features | `moog_lib.fourier` |
# | 02 | attention and the transformer block | `moog_lib.attention` |
# | 03 | encoder and the predict–correct loop | `moog_lib.encoder`, `moog_lib.dynamics` |
# | 04 | decoding off-the-grid tokens, the whole model | `moog_lib.decoder`, `moog_lib.model` |
# | 05 | data: the per-clip dict, the input pipeline | `moog_lib.data` |
# | 05a | scenes: what a MOVi-like scene is made of | `moog_lib.scenes` |
# | 05b | rendering with exact labels | `moog_lib.render` |
# | 05c | datasets: clips on disk, MOVi-E, TAP-Vid-DAVIS, video files | `moog_lib.datasets` |
# | 06 | pretraining: the train step, data parallelism, checkpoints, weights files, run folders | `moog_lib.optimization`, `moog_lib.parallel`, `moog_lib.checkpoint`, `moog_lib.runs` |
# | 06a | the training loop: resuming, budgets, reports, the shipped weights | `moog_lib.train` |
# | 06b | the shipped model and a small-scale study | — |
# | 07–09 | readouts: depth, points, boxes | `moog_lib.readouts`, `moog_lib.points`, `moog_lib.boxes` |
# | 10 | on-the-grid baselines | `moog_lib.baselines` |
# | 10a | do the tokens follow the scene? the comparison | `moog_lib.comparison` |
# | 11 | what the tokens do | `moog_lib.analysis`, `moog_lib.figures` |
# | 11a | real and long video, streaming in constant memory, the report | `moog_lib.streaming`, `moog_lib.report` |
# | 12 | the authors' Ego4D model in our modules | `moog_lib.ego4d` |
# | 12a | the release's files: check, rename, load, save | `moog_lib.release` |
# | 12b | tracking a video with the authors' weights | `moog_lib.tracking` |
# | 13 | the command line (`moog train`, `moog demo`, …) | `moog_lib.cli` |
#
# Every chapter is a Jupytext notebook; the cells marked `#| export` are
# written into `moog_lib/` by `tools/export.py`, so the library you
# `import moog_lib` from is exactly the code you read here.
#
# ## 3. Notation
#
# | symbol | meaning | paper value |
# |---|---|---|
# | B | batch size (clips) | 128 |
# | T | frames per clip | 8 |
# | H, W | frame height and width in pixels | 128, 128 |
# | h, w | encoder grid (H, W divided by the encoder stride 4) | 32, 32 |
# | K | number of tokens in the state | 1024 |
# | D | token width | 512 |
# | `z` | a state, [B, K, D] | |
# | `z_p`, `z_c` | predicted and corrected states | |
# | `F_t` | encoder features of frame t, [B, h·w, D] | |
# | S | decoder subsampling factor (train 8, eval 4) | |
# | B_f | number of Fourier bases (encoder 20, decoder 16) | |
#
# ### Shapes in the code
#
# The library writes these letters into its signatures. `PredictCorrect.unroll`
# (chapter 03) begins
#
# ```python
# @typed  # from moog_lib.shapes import typed
# def unroll(self, features: Float[ArrayLike, "B T N D"], state: Float[ArrayLike, "B K D"], *, ...)
# ```
#
# `Float[ArrayLike, "B T N D"]` ([jaxtyping](https://docs.kidger.site/jaxtyping/))
# says: a floating-point array (float32, bfloat16, …) of rank 4, whose axes we
# call B, T, N and D. `ArrayLike` admits a JAX array, a tracer inside `jit` and
# a NumPy array; results are `Array`, JAX arrays. A number fixes an axis
# (`"B T H W 3"`: three channels), `*batch` stands for any number of leading
# axes and `...` for axes nothing else refers to. A letter is one size within
# one call: `features` and `state` above must agree on B and on D. `Int`,
# `Bool` and `Shaped` (any dtype) work the same way.
#
# `@typed` (this chapter exports it, in `moog_lib.shapes`) checks the
# annotations every time the function is called: jaxtyping the arrays,
# beartype the rest (`int`, `bool`, `None`). Under
# `jax.jit` a function is called once, while it is traced, when shapes and
# dtypes are known and values are not: the check runs then and costs nothing
# in the compiled code. A mismatch raises `jaxtyping.TypeCheckError` (a
# `TypeError`) that names the argument, its dtype and shape and the sizes the
# letters took. The authors' release declares its shapes the same way, with
# kauldron's jaxtyping-style `Float['*b T H W c']` under `@typechecked`
# (`moog/modules.py`, `Moog.__call__`).
#
# So the model's modules (chapters 01–04) check no shapes by hand. A
# hand-written `ValueError` remains for what a type cannot say: values (frames in `[0, 1]`, no NaN),
# divisibility (H by the encoder's stride) and arguments that depend on one
# another; and wherever a person rather than a program hands over the input
# (the command line, config overrides, files, videos and points), with a
# message that says what to do.

# %%
#| export shapes
"""Array shapes, declared once: the decorator `typed` (chapter 00, section 3).

A function under `@typed` has its annotations checked at every call: arrays written
with jaxtyping (`Float[ArrayLike, "B T H W 3"]`), everything else by beartype.
"""
import beartype
import jaxtyping

_CHECKER = beartype.beartype(conf=beartype.BeartypeConf(is_pep484_tower=True))


def typed(function):
    """Check `function`'s annotated arguments and result at every call.

    Shapes and dtypes by jaxtyping (one size per axis name within a call), other types by
    beartype (an `int` passes where a `float` is annotated). Under `jax.jit` the check
    runs once, while tracing. A mismatch raises `jaxtyping.TypeCheckError`, a `TypeError`.
    """
    return jaxtyping.jaxtyped(function, typechecker=_CHECKER)


# %% [markdown]
# A function declared this way, called once right and once with a state of
# three clips beside frames of two:

# %%
import jax.numpy as jnp
import jaxtyping
import numpy as np
from jaxtyping import Array, ArrayLike, Float


@typed
def mean_frame(frames: Float[ArrayLike, "B T H W 3"],
               state: Float[ArrayLike, "B K D"]) -> Float[Array, "B H W 3"]:
    return jnp.mean(jnp.asarray(frames), axis=1)


clip = np.zeros((2, 8, 16, 16, 3), np.float32)
assert mean_frame(clip, jnp.zeros((2, 4, 32))).shape == (2, 16, 16, 3)
try:
    mean_frame(clip, jnp.zeros((3, 4, 32)))
except jaxtyping.TypeCheckError as err:
    print(err)
else:
    raise AssertionError("a state of three clips was accepted beside two clips")

# %% [markdown]
# ## 4. Presets
#
# Everything that differs between a CI run and the paper's 64-chip run is a
# *preset*: a frozen dataclass with the model, data and training settings.
# `configs.get(name)` returns one; `configs.override(config, ["model.num_tokens=64"])`
# changes fields by dotted path.

# %%
#| export
# Plumbing: the configuration dataclasses of the transformer and the model; you may skip it.
"""The configuration of everything, and its presets.

Dataclasses for the model (`ModelConfig`, `TransformerConfig`), the data,
training and readouts, grouped in `Config`; the presets `tiny`, `cpu`, `colab`
and `paper` (`PRESETS`, `get`) and checked overrides (`override`).
"""
import dataclasses
import typing

TPU_PRESETS = ("colab", "paper")


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """A stack of pre-LN transformer blocks (chapter 02)."""

    num_layers: int
    num_heads: int
    qkv_size: int  # total width of q, k and v over all heads
    mlp_size: int


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The MooG model (chapters 03–04). Defaults are the paper's (Table 5, Eq. 1–2), with the
    layer sizes of the authors' release (`moog/configs/movi.py`)."""

    token_dim: int = 512  # D
    num_tokens: int = 1024  # K (a default: K can change at call time)
    encoder_features: tuple[int, ...] = (64, 128, 128, 256, 256, 512)
    encoder_strides: tuple[int, ...] = (1, 1, 1, 2, 1, 2)
    encoder_fourier_bases: int = 20
    predictor: TransformerConfig = TransformerConfig(3, 4, 256, 2048)
    corrector: TransformerConfig = TransformerConfig(2, 8, 512, 2048)
    decoder: TransformerConfig = TransformerConfig(6, 2, 128, 2048)
    decoder_fourier_bases: int = 16
    initial_state_scale: float = 1e-4
    correction_norm_eps: float = 1e-4
    train_subsample: int = 8
    eval_subsample: int = 4
    compute_dtype: str = "float32"  # "bfloat16" on TPU: parameters stay float32
    # The authors' release offers these; the paper reports neither (off by default).
    loss_gradient_input: bool = False
    state_stop_gradient_prob: float = 0.0
    # Departures for a small world (chapter 06b's study), off by default:
    # one initial draw shared by every clip (token k keeps its identity across clips),
    fixed_initial_state: bool = False
    # and the QK-norm scales start at this value (attention logits start ×s² sharper).
    qk_norm_scale: float = 1.0
    # The corrector's tokens compete for the frame's features (Slot Attention's softmax
    # over tokens, chapter 02 §3).
    corrector_competition: bool = False
    # Chapter 10's Grid Rec.: its decoder reads the grid tokens g_t, as in the paper
    # (Appendix C.3.2); True decodes the corrected tokens c_t instead (off by default).
    grid_rec_decode_corrected: bool = False


# %% [markdown]
# A `ModelConfig()` built with no arguments is the paper's model, and every
# config is frozen: a preset cannot be changed by accident, only copied with
# changes (`override`, below).

# %%
default_model = ModelConfig()
print(f"the paper's model: K × D = {default_model.num_tokens} × {default_model.token_dim}, "
      f"predictor {default_model.predictor}")
assert (default_model.num_tokens, default_model.token_dim) == (1024, 512)
try:
    default_model.num_tokens = 64
except dataclasses.FrozenInstanceError as err:
    print("frozen:", err)
else:
    raise AssertionError("a config could be changed in place")

# %% [markdown]
# The data, the training schedule and the readouts have a section each; a
# `Config` holds one of every section and a name.

# %%
#| export
# Plumbing: the configuration dataclasses of the data, training and readouts; you may skip it.
@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where clips come from and their shape (chapters 05–05c)."""

    source: str = "synthetic"
    scene_preset: str = "movi_e"
    resolution: int = 128
    num_frames: int = 8  # frames per training window
    batch_size: int = 128  # global: split over hosts and devices
    clip_frames: int = 24  # frames per rendered clip (windows are sampled from it)
    num_clips: int = 10_000  # rendered training clips
    eval_clips: int = 64  # held-out (test split) clips for evaluation
    data_dir: str = ""  # "" renders clips on the fly; else build/read a dataset there


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule (chapter 06). Defaults are the paper's (Appendix C.2–C.3)."""

    steps: int = 1_000_000
    peak_learning_rate: float = 1e-4
    warmup_steps: int = 1000
    final_learning_rate: float = 1e-7
    optimizer: str = "adam_nesterov"  # or "adamw" (the release's)
    b1: float = 0.9
    b2: float = 0.95
    weight_decay: float = 1e-4  # used by "adamw" only
    grad_clip_norm: float = 1.0
    seed: int = 0
    log_every: int = 50
    eval_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3


@dataclasses.dataclass(frozen=True)
class ReadoutConfig:
    """Readout heads on MooG's tokens (chapters 07–09). Defaults are the paper's (Section 3.2,
    Appendix C).

    The paper does not publish the Huber δ or the certainty threshold of the point
    loss; these are TAPIR's (4 and 6 pixels at 256×256). `train` is the readouts'
    own optimiser and schedule; `points_per_clip` queries are drawn per training clip.
    """

    grid: TransformerConfig = TransformerConfig(3, 8, 512, 2048)  # depth: decoder design
    recurrent: TransformerConfig = TransformerConfig(3, 8, 512, 2048)  # points, boxes
    latent_dim: int = 512  # width of one recurrent latent (one per query)
    query_fourier_bases: int = 16
    huber_delta: float = 4 / 256  # in normalised coordinates
    certainty_threshold: float = 6 / 256
    coordinate_weight: float = 1000.0
    points_per_clip: int = 64
    train: TrainConfig = TrainConfig(steps=100_000, warmup_steps=1000, peak_learning_rate=1e-4)
    # A departure for short readouts (chapter 08), off by default: the point and box heads
    # move the query's coordinates (in logit space) instead of predicting them afresh,
    # so an untrained head starts at the still baseline.
    relative_coordinates: bool = False


@dataclasses.dataclass(frozen=True)
class Config:
    name: str
    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    readout: ReadoutConfig = ReadoutConfig()


# %% [markdown]
# A preset is a function that returns a `Config`. `tiny` is sized for CI
# (seconds on two CPU cores); `cpu` is a small world that a laptop trains in
# minutes, and its docstring lists every way it departs from the paper.

# %%
#| export
def _tiny() -> Config:
    """CI: seconds on two CPU cores. 32² frames, 4 frames, K = 16, D = 32."""
    small = TransformerConfig(num_layers=1, num_heads=2, qkv_size=32, mlp_size=64)
    return Config(
        name="tiny",
        model=ModelConfig(
            token_dim=32, num_tokens=16, encoder_features=(8, 16, 16, 32, 32, 32),
            encoder_fourier_bases=8, predictor=small, corrector=small,
            decoder=TransformerConfig(num_layers=2, num_heads=2, qkv_size=32, mlp_size=64),
            decoder_fourier_bases=8,
        ),
        data=DataConfig(scene_preset="movi_e", resolution=32, num_frames=4, batch_size=2,
                        clip_frames=8, num_clips=16, eval_clips=2),
        train=TrainConfig(steps=20, peak_learning_rate=1e-3, warmup_steps=5, log_every=5,
                          eval_every=10, checkpoint_every=10),
        readout=ReadoutConfig(grid=small, recurrent=small, latent_dim=32, query_fourier_bases=8,
                              points_per_clip=16,
                              train=TrainConfig(steps=10, peak_learning_rate=1e-3, warmup_steps=2,
                                                log_every=5, eval_every=10, checkpoint_every=10)),
    )


def _cpu() -> Config:
    """A laptop: a small world (`movi_a` at 32²) that trains in minutes on 2 CPU cores.

    Chosen from the one-knob study of chapter 06b §2 (`benchmarks/small_scale.py`;
    `benchmarks/binding_probe.py` before it): the knobs that helped at 1,200 steps,
    together. Departures from the paper: the scene family (plain colours, objects
    that keep moving), 32² frames with the first conv at stride 2 (16×16 feature
    tokens), K = 16 tokens of width 128, one-layer transformers a quarter as wide,
    6 Fourier bases (the paper's 16–20 alias at 32²), decoder subsampling S = 2, a
    peak learning rate of 3e-3, and three departures that make the decoder's
    attention sharp early: one fixed initial draw of unit scale shared by every
    clip (`fixed_initial_state`, `initial_state_scale=1`), QK-norm scales that
    start at 2 (`qk_norm_scale`) and tokens that compete for the frame's
    features in the corrector (`corrector_competition`, chapter 02 §3); and point
    and box readouts (two-layer heads) that start from the still baseline
    (`readout.relative_coordinates`, chapter 08). Its 1,200 steps (the study's
    `depth_1_all` row, one core, 12.7 min): 19.06 dB held-out against 20.41 dB for
    copying the previous frame, attention sharpness 0.59, F = −0.52.
    """
    small = TransformerConfig(2, 4, 64, 128)
    one_layer = TransformerConfig(1, 4, 64, 128)
    return Config(
        name="cpu",
        model=ModelConfig(
            token_dim=128, num_tokens=16, encoder_features=(32, 32, 64),
            encoder_strides=(2, 1, 1), encoder_fourier_bases=6, predictor=one_layer,
            corrector=one_layer, decoder=TransformerConfig(1, 2, 64, 128),
            decoder_fourier_bases=6, train_subsample=2, eval_subsample=2,
            initial_state_scale=1.0, fixed_initial_state=True, qk_norm_scale=2.0,
            corrector_competition=True,
        ),
        data=DataConfig(scene_preset="movi_a", resolution=32, num_frames=8, batch_size=8,
                        num_clips=1000, eval_clips=32, data_dir="data"),
        train=TrainConfig(steps=1200, peak_learning_rate=3e-3, warmup_steps=100, log_every=25,
                          eval_every=300, checkpoint_every=300),
        readout=ReadoutConfig(grid=small, recurrent=small, latent_dim=64,
                              relative_coordinates=True,
                              train=TrainConfig(steps=300, peak_learning_rate=1e-3,
                                                warmup_steps=30, log_every=25, eval_every=300,
                                                checkpoint_every=300)),
    )


# %% [markdown]
# The two TPU presets keep the paper's model and differ in the batch and the
# length of the schedule. `get` looks a preset up by name:

# %%
#| export
def _colab() -> Config:
    """One Colab TPU host (v5e-1, 16 GB): the paper's model, bfloat16 compute, one clip a
    step — a step needs about 8 GiB a clip (chapter 06 §3), which is also the paper's
    share per 16 GB TPUv3 core (128 clips over 64 chips of two cores)."""
    return Config(
        name="colab",
        model=ModelConfig(compute_dtype="bfloat16"),
        data=DataConfig(resolution=128, num_frames=8, batch_size=1),
        train=TrainConfig(steps=50_000),
        readout=ReadoutConfig(train=TrainConfig(steps=5_000)),
    )


def _paper() -> Config:
    """The paper's model and schedule (Appendix C).

    Hardware: 64 TPUv3 chips for about 48 hours, batch 128 clips of 8 frames at
    128×128, 1M steps of Adam with Nesterov momentum (b1 0.9, b2 0.95), global
    norm clipping 1.0, warm-up over 1000 steps to 1e-4 then cosine decay to 1e-7.
    34,726,787 parameters. Expected numbers: the readout results of the paper's
    Tables 1–3 (MOVi-E points AJ, boxes IoU, depth AbsRel; DAVIS and Waymo
    transfer), which this repository has not reproduced at this scale.
    """
    return Config(
        name="paper",
        model=ModelConfig(compute_dtype="bfloat16"),
        data=DataConfig(resolution=128, num_frames=8, batch_size=128),
        train=TrainConfig(),
    )


_PRESETS = {"tiny": _tiny, "cpu": _cpu, "colab": _colab, "paper": _paper}
PRESETS = tuple(_PRESETS)


def get(name: str) -> Config:
    """The preset `name`: one of "tiny", "cpu", "colab", "paper"."""
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return _PRESETS[name]()


# %%
assert PRESETS == ("tiny", "cpu", "colab", "paper") and get("tiny") == _tiny()
try:
    get("small")
except ValueError as err:
    print("an unknown name is refused:", err)
else:
    raise AssertionError("get accepted an unknown preset")

# %% [markdown]
# `override` returns a changed copy. Each value is parsed as a Python literal
# and must keep the field's type, and a path must name an existing field, so a
# typo fails loudly instead of being ignored (checked after the tables below):

# %%
#| export
def override(config: Config, assignments: typing.Iterable[str]) -> Config:
    """Apply "section.field=value" assignments, e.g. "model.num_tokens=64".

    Values are parsed as Python literals (ints, floats, tuples, strings) and must
    keep the field's type.
    """
    import ast

    for assignment in assignments:
        path, sep, text = assignment.partition("=")
        if not sep:
            raise ValueError(f"override {assignment!r}: expected 'section.field=value'")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare string such as model.compute_dtype=bfloat16
        config = _replace_path(config, path.strip().split("."), value, assignment)
    return config


def _replace_path(node, keys, value, assignment):
    key = keys[0]
    if not dataclasses.is_dataclass(node) or key not in {f.name for f in dataclasses.fields(node)}:
        raise ValueError(f"override {assignment!r}: {type(node).__name__} has no field {key!r}")
    current = getattr(node, key)
    if len(keys) > 1:
        return dataclasses.replace(node, **{key: _replace_path(current, keys[1:], value, assignment)})
    if dataclasses.is_dataclass(current):
        raise ValueError(f"override {assignment!r}: {key!r} is a section; set one of its fields")
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not type(current):
        raise ValueError(
            f"override {assignment!r}: {key!r} expects {type(current).__name__}, "
            f"got {type(value).__name__}"
        )
    return dataclasses.replace(node, **{key: value})


# %% [markdown]
# The presets side by side:

# %%
rows = []
for name in PRESETS:
    c = get(name)
    m, d, t = c.model, c.data, c.train
    rows.append(
        f"| `{name}` | {d.resolution}² × {d.num_frames} | {d.batch_size} | {m.num_tokens} × "
        f"{m.token_dim} | {m.decoder.num_layers} | {m.compute_dtype} | {t.steps:,} |"
    )
from IPython.display import Markdown, display

display(Markdown(
    "| preset | frames | batch | K × D | decoder layers | compute | steps |\n"
    "|---|---|---|---|---|---|---|\n" + "\n".join(rows)
))

# %% [markdown]
# The `cpu` preset is a small world, not a small copy of the paper: besides
# being smaller (one layer per transformer) it changes the scenes (`movi_a`:
# plain colours, objects that keep moving), switches on three departures that
# get its decoder's attention sharp within minutes (`fixed_initial_state`,
# `qk_norm_scale`, `corrector_competition`; chapters 03 and 02), and lets
# its point and box readouts start from the still
# baseline (`readout.relative_coordinates`, chapter 08).
# Chapter 06b's small-scale study measures what each change buys. Every field
# where it differs from the paper:

# %%
def departures(config: Config, reference: Config) -> list[str]:
    """Markdown rows `| field | config | reference |` for every model, data and readout field
    that differs."""
    rows = []
    for section in ("model", "data", "readout"):
        ours, theirs = getattr(config, section), getattr(reference, section)
        rows += [f"| `{section}.{f.name}` | {getattr(ours, f.name)} | {getattr(theirs, f.name)} |"
                 for f in dataclasses.fields(ours) if getattr(ours, f.name) != getattr(theirs, f.name)]
    return rows


cpu_departures = departures(get("cpu"), get("paper"))
display(Markdown("| field | `cpu` | paper |\n|---|---|---|\n" + "\n".join(cpu_departures)))
assert any("fixed_initial_state" in row for row in cpu_departures)
assert not get("paper").model.fixed_initial_state and get("paper").model.qk_norm_scale == 1.0

# %%
assert get("paper").model == ModelConfig(compute_dtype="bfloat16")
assert override(get("tiny"), ["model.num_tokens=8"]).model.num_tokens == 8
assert override(get("tiny"), ["train.peak_learning_rate=1"]).train.peak_learning_rate == 1.0
try:
    override(get("tiny"), ["model.num_tokenz=8"])
except ValueError as err:
    print("a typo is caught:", err)
else:
    raise AssertionError("override accepted an unknown field")

# %% [markdown]
# The preset of the current session is `PRESET` (set by the setup cell above
# from the `MOOG_PRESET` environment variable):

# %%
config = get(PRESET)
print(config.name, config.model.num_tokens, "tokens at", config.data.resolution, "px")

# %% [markdown]
# ## 5. The setup cell
#
# The second cell of every chapter is the same few lines. On Colab it installs
# this repository without touching the jax, jaxlib, libtpu and flax that Colab
# ships (they are built for its TPU runtime); everywhere it then calls
# `notebook.setup()`, which
#
# - sets XLA's flags *before* JAX starts (XLA reads them once, when the first
#   JAX computation runs; `MOOG_CPU_DEVICES=8` gives eight simulated CPU devices
#   for trying data parallelism on a laptop);
# - picks the preset: `MOOG_PRESET` if set, else `colab` on a TPU and `tiny`
#   elsewhere, falling back to `tiny` (with a warning) when a TPU preset finds
#   no TPU;
# - prints the versions and devices, so that a notebook's output says what ran.
#
# Its code lives in the library, so it is tested once rather than copied into every chapter:

# %%
#| export notebook
"""Setting up a chapter: XLA flags before JAX starts, the preset, what runs where."""
import os
import sys


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def simulate_cpu_devices(count) -> None:
    """Ask XLA for `count` CPU devices (to try data parallelism on one machine).

    Takes effect only if JAX has not started yet; says so otherwise."""
    count = int(count)
    if count < 1:
        raise ValueError(f"MOOG_CPU_DEVICES must be a positive int, got {count}")
    if "jax" in sys.modules:
        print("note: JAX was already imported; the device count takes effect after a restart")
    flag = f"--xla_force_host_platform_device_count={count}"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def setup(preset: str | None = None) -> str:
    """Prepare this process for a chapter and return the preset to run it with.

    The preset is `preset`, else `$MOOG_PRESET`, else `colab` on a TPU and `tiny`
    elsewhere; a TPU preset without a TPU falls back to `tiny` with a warning.
    `$MOOG_CPU_DEVICES=N` simulates N CPU devices. Prints the versions, the preset
    and the devices.
    """
    if os.environ.get("MOOG_CPU_DEVICES"):
        simulate_cpu_devices(os.environ["MOOG_CPU_DEVICES"])
    import flax
    import jax

    import moog_lib
    from moog_lib import configs

    on_tpu = jax.default_backend() == "tpu"
    chosen = preset or os.environ.get("MOOG_PRESET") or ("colab" if on_tpu else "tiny")
    configs.get(chosen)  # an unknown name is refused here, with the list of presets
    if chosen in configs.TPU_PRESETS and not on_tpu:
        print(f"WARNING: preset '{chosen}' wants a TPU and none is attached; using 'tiny'.")
        chosen = "tiny"
    print(f"python {sys.version.split()[0]} | jax {jax.__version__} | flax {flax.__version__}"
          f" | moog_lib {moog_lib.__version__} | preset {chosen}")
    print("devices:", jax.devices())
    return chosen


# %%
assert setup("tiny") == "tiny" and in_colab() is False
try:
    setup("tiny_typo")
except ValueError as err:
    print("a typo is caught:", err)
else:
    raise AssertionError("setup accepted an unknown preset")

# %% [markdown]
# ## 6. How to run everything
#
# From a clone of the repository, with Python 3.11 or newer:
#
# ```bash
# make demo   # the main job: creates .venv, installs, runs and writes its outputs
# make test   # exporter check, lint, unit tests, every chapter through nbval
# ```
#
# One chapter in Jupyter: `jupyter lab chapters/` (Jupytext opens the `.py`
# files as notebooks), or on Colab through the badge at the top of each chapter
# (it opens the generated copy in `notebooks/`). On a Colab TPU runtime the
# setup cell installs the library without touching Colab's JAX and picks the
# `colab` preset; anywhere else set `MOOG_PRESET` (`tiny`, `cpu`).
#
# ## Summary
#
# - MooG is a recurrent model whose K tokens are a set, not a grid; it learns
#   from next-frame prediction alone, and its tokens come to follow scene
#   content.
# - Chapters are the source; `moog_lib` is exported from them.
# - Array shapes are declared once, in signatures (`Float[ArrayLike, "B K D"]`
#   under `@typed`), and checked at every call; hand-written errors are
#   kept for values and for the places where a person hands over the input.
# - Presets: `tiny` (CI), `cpu` (a laptop), `colab` (one TPU host), `paper`.
#
# ## Exercises
#
# 1. ★ How many pixels does each token of the paper's state cover on average at
#    128×128? And each token of the `cpu` preset at 32×32?
# 2. ★★ Make a preset for a 96×96 experiment from `cpu` with `override`, with
#    twice the tokens, and check the encoder grid is an integer size.
# 3. ★★ Which override is rejected, and why: `model.encoder_strides=[1, 2]`,
#    `model.num_tokens=64.0`, `data.batch_size=4`?

# %% [markdown]
# ### Solution 1

# %%
paper, cpu = get("paper"), get("cpu")
print("paper:", paper.data.resolution**2 / paper.model.num_tokens, "pixels per token")
print("cpu:  ", cpu.data.resolution**2 / cpu.model.num_tokens, "pixels per token")
assert paper.data.resolution**2 / paper.model.num_tokens == 16.0

# %% [markdown]
# ### Solution 2

# %%
import math

mine = override(get("cpu"), ["data.resolution=96", f"model.num_tokens={2 * cpu.model.num_tokens}"])
stride = math.prod(mine.model.encoder_strides)
assert mine.data.resolution % stride == 0
print("encoder grid:", mine.data.resolution // stride, "×", mine.data.resolution // stride)

# %% [markdown]
# ### Solution 3

# %%
for assignment in ["model.encoder_strides=[1, 2]", "model.num_tokens=64.0", "data.batch_size=4"]:
    try:
        override(get("cpu"), [assignment])
        print("accepted:", assignment)
    except ValueError as err:
        print("rejected:", err)
# A list becomes a tuple and is accepted; 64.0 is a float where an int is expected.

# %% [markdown]
# ## References
#
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024. arXiv:2411.05927.
# - The authors' release: github.com/google-deepmind/representations4d (`moog/`).
# - A. Rush. *The Annotated Transformer* (the style these chapters follow).

"""The configuration of everything, and its presets.

Dataclasses for the model (`ModelConfig`, `TransformerConfig`), the data,
training and readouts, grouped in `Config`; the presets `tiny`, `cpu`, `colab`
and `paper` (`PRESETS`, `get`) and checked overrides (`override`).

Generated from chapters/00_introduction.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "TPU_PRESETS",
    "TransformerConfig",
    "ModelConfig",
    "DataConfig",
    "TrainConfig",
    "ReadoutConfig",
    "Config",
    "PRESETS",
    "get",
    "override",
]


import dataclasses
import typing

# chapters/00_introduction.py, cell 9
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


# chapters/00_introduction.py, cell 13
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


# chapters/00_introduction.py, cell 15
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


# chapters/00_introduction.py, cell 17
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


# chapters/00_introduction.py, cell 20
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

"""How fast does a decoder learn to route pixels to tokens? (chapter 06b's diagnostic)

Reconstruct the *same* frame (no prediction, no time), with the `cpu` preset's
encoder and decoder, in one of two ways:

- `grid`: the decoder reads the encoder's h·w feature tokens, which sit on the
  grid and carry their position (the Grid baseline's job, chapter 10);
- `perceiver`: K tokens start from the initial state, correct once into the
  frame's features with MooG's corrector, and the decoder reads them — MooG's
  binding problem without the dynamics.

Prints held-out PSNR (full frames of test-split clips) and decoder-attention
sharpness (chapter 11) during training. One run is a few minutes on one core.

    python benchmarks/binding_probe.py --mode grid --qk-norm-scale 1
    python benchmarks/binding_probe.py --mode perceiver --paper-init
    python benchmarks/binding_probe.py --mode perceiver          # the cpu preset's switches
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from moog_lib import analysis, configs, decoder, dynamics, encoder, fourier, render


class FrameAutoencoder(nnx.Module):
    def __init__(self, config: configs.ModelConfig, mode: str, *, rngs: nnx.Rngs):
        self.encoder = encoder.Encoder(config, rngs=rngs)
        self.decoder = decoder.Decoder(config, rngs=rngs)
        self.dynamics = dynamics.PredictCorrect(config, rngs=rngs) if mode == "perceiver" else None
        self.num_tokens = config.num_tokens

    def __call__(self, frames, coords, key):
        tokens = self.encoder(frames)  # [B, h·w, D]
        if self.dynamics is not None:
            state = self.dynamics.initial_state(key, frames.shape[0], self.num_tokens)
            tokens = self.dynamics.correct(self.dynamics.predict(state), tokens)
        return self.decoder(tokens, coords, return_attention=True)


def frames_of(split: str, num_clips: int, resolution: int, cache: Path) -> np.ndarray:
    path = cache / f"movi_a_{split}_{num_clips}_{resolution}.npy"
    if not path.exists():
        clips = render.render_clips("movi_a", split, range(num_clips), resolution=resolution,
                                    num_frames=24)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.stack([c["video"] for c in clips]))
    return np.load(path).astype(np.float32) / 255.0  # [N, T, H, W, 3]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("grid", "perceiver"), default="perceiver")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32, help="frames per step")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--paper-init", action="store_true",
                        help="fresh 1e-4 noise per clip and QK-norm scales at 1 (the paper's)")
    parser.add_argument("--fixed-initial-state", type=int, choices=(0, 1), default=None)
    parser.add_argument("--initial-state-scale", type=float, default=None)
    parser.add_argument("--qk-norm-scale", type=float, default=None)
    parser.add_argument("--cache", default="data/binding_probe")
    args = parser.parse_args(argv)

    config = configs.get("cpu")
    changes = ["model.fixed_initial_state=False", "model.initial_state_scale=0.0001",
               "model.qk_norm_scale=1.0"] if args.paper_init else []
    for field, value in (("fixed_initial_state", args.fixed_initial_state),
                         ("initial_state_scale", args.initial_state_scale),
                         ("qk_norm_scale", args.qk_norm_scale)):
        if value is not None:
            changes.append(f"model.{field}={bool(value) if field.startswith('fixed') else value}")
    mc = configs.override(config, changes).model
    resolution, subsample = config.data.resolution, mc.train_subsample
    train_frames = frames_of("train", 512, resolution, Path(args.cache))
    train_frames = train_frames.reshape(-1, resolution, resolution, 3)
    test_frames = frames_of("test", 32, resolution, Path(args.cache))[:, 0]

    net = FrameAutoencoder(mc, args.mode, rngs=nnx.Rngs(0))
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.learning_rate, 100, args.steps, 1e-6)
    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adam(schedule, b1=0.9, b2=0.95, nesterov=True))
    optimizer = nnx.Optimizer(net, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(net, optimizer, frames, key):
        offsets = jax.random.randint(key, (frames.shape[0], 1, 2), 0, subsample)
        target = decoder.subsample_frames(frames[:, None], offsets, subsample)[:, 0]
        coords = decoder.sample_coordinates(resolution, resolution, offsets, subsample)[:, 0]
        coords, target = coords.reshape(len(frames), -1, 2), target.reshape(len(frames), -1, 3)

        def loss_fn(net):
            colours, _ = net(frames, coords, key)
            return jnp.mean((colours - target) ** 2)

        loss, grads = nnx.value_and_grad(loss_fn)(net)
        optimizer.update(net, grads)
        return loss

    @nnx.jit
    def evaluate(net, frames):
        coords = fourier.coordinate_grid(resolution, resolution).reshape(-1, 2)
        coords = jnp.broadcast_to(coords, (len(frames),) + coords.shape)
        colours, weights = net(frames, coords, jax.random.key(5))
        mse = jnp.mean((jnp.clip(colours, 0, 1) - frames.reshape(len(frames), -1, 3)) ** 2, (1, 2))
        return jnp.mean(-10 * jnp.log10(mse)), weights.mean(axis=(0, 2))

    print(f"{args.mode}: {', '.join(changes) or 'the cpu preset'}; {args.steps} steps of "
          f"{args.batch} frames at {resolution}², S = {subsample}")
    rng, tic = np.random.default_rng(0), time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = train_frames[rng.integers(len(train_frames), size=args.batch)]
        train_step(net, optimizer, batch, jax.random.key(step - 1))
        if step % max(args.steps // 8, 1) == 0:
            psnr, weights = evaluate(net, test_frames)
            print(f"step {step}: held-out PSNR {float(psnr):.2f} dB, attention sharpness "
                  f"{analysis.attention_sharpness(np.asarray(weights)):.3f} "
                  f"({(time.perf_counter() - tic) / step:.2f} s/step)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

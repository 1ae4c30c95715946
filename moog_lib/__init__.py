"""moog_lib: MooG (Moving Off-the-Grid, NeurIPS 2024) in JAX/Flax NNX.

Every module except this file is generated from a chapter in `chapters/` by
`tools/export.py`. Import what you need, e.g. `from moog_lib import configs`.
Modules come in layers (nothing imports upward):

- configs, shapes (chapter 00: the decorator `typed` that checks declared array
  shapes), data: import nothing of ours; fourier, attention import shapes;
  notebook (the setup cell of every chapter) imports configs; scenes (chapter 05a) imports data,
  render (chapter 05b's renderer) data and scenes, and datasets (chapter 05c) all three;
- encoder, dynamics (chapter 03), then decoder, model (chapter 04: MooG itself):
  build on them;
- optimization, parallel, checkpoint, runs (chapter 06), then train (06a): on those;
- readouts (chapter 07), then points (08) and boxes (09);
- baselines (chapter 10), then comparison (chapter 10a); analysis, figures (chapter 11), then streaming, report (11a): on those; so are chapter 12's ego4d (the authors'
  Ego4D model), then 12a's release (reading their checkpoint files), then 12b's tracking
  (points through a video);
- cli: on top.
"""

__version__ = "0.1.0"

"""Data parallelism over many devices and hosts, and what a step needs in memory.

`initialize_distributed` joins a multi-host run; `replicate` puts a pytree on
every device of a mesh; `local_batch_size` and `HostShard` give each host its
share of the batch and of the clips; `compiled_memory` and `step_memory` ask XLA
how much memory a compiled train step needs. The mesh and the batch sharding
themselves are chapter 05's (`data.data_parallel_mesh`, `data.shard_clip_batch`).

Generated from chapters/06_pretraining.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "initialize_distributed",
    "replicate",
    "local_batch_size",
    "HostShard",
    "compiled_memory",
    "step_memory",
]


import jax
import jax.numpy as jnp
from flax import nnx

from moog_lib import configs, data, optimization
from moog_lib.model import MooG


# chapters/06_pretraining.py, cell 16
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


# chapters/06_pretraining.py, cell 19
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

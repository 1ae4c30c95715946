"""Setting up a chapter: XLA flags before JAX starts, the preset, what runs where.

Generated from chapters/00_introduction.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "in_colab",
    "simulate_cpu_devices",
    "setup",
]


import os
import sys


# chapters/00_introduction.py, cell 29
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

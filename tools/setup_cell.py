# Shared setup, identical in every chapter (tests/test_chapters.py checks it).
# On Colab: install this repository without replacing the preinstalled jax, jaxlib,
# libtpu and flax. Everywhere: set XLA flags before JAX starts, pick the preset
# (MOOG_PRESET; TPU presets fall back to `tiny` without a TPU) and say what runs.
import os
import subprocess
import sys

REPOSITORY = "https://github.com/moog-tutorial/moog-tutorial"
REVISION = "main"  # the Colab badge opens main's notebook, so install main too
IN_COLAB = "google.colab" in sys.modules


def _run_visible(command):
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        for line in p.stdout:
            print(line, end="")
    if p.returncode:
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(command)}")


if IN_COLAB:
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True)
    keep = [
        line
        for line in frozen.stdout.splitlines()
        if line.split("==")[0].lower() in {"jax", "jaxlib", "libtpu", "flax"}
    ]
    with open("/tmp/moog_keep.txt", "w") as f:
        f.write("\n".join(keep) + "\n")
    _run_visible(
        [sys.executable, "-m", "pip", "install", "-c", "/tmp/moog_keep.txt",
         f"moog-tutorial[video] @ git+{REPOSITORY}@{REVISION}"]
    )
if "jax" in sys.modules:
    print("note: JAX was already imported; XLA flags set now take effect after a restart")
if os.environ.get("MOOG_CPU_DEVICES"):  # simulate N devices on one CPU
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={os.environ['MOOG_CPU_DEVICES']}"
    )

import flax
import jax

import moog_lib
from moog_lib import configs

ON_TPU = jax.default_backend() == "tpu"
PRESET = os.environ.get("MOOG_PRESET") or ("colab" if ON_TPU else "tiny")
if PRESET in configs.TPU_PRESETS and not ON_TPU:
    print(f"WARNING: preset '{PRESET}' wants a TPU and none is attached; using 'tiny'.")
    PRESET = "tiny"
print(f"python {sys.version.split()[0]} | jax {jax.__version__} | flax {flax.__version__}"
      f" | moog_lib {moog_lib.__version__} | preset {PRESET}")
print("devices:", jax.devices())

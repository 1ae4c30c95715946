"""moog_lib.notebook: what the setup cell of every chapter does."""

import jax
import pytest

from moog_lib import notebook


def test_preset_from_argument_environment_or_backend(monkeypatch, capsys):
    monkeypatch.delenv("MOOG_CPU_DEVICES", raising=False)
    monkeypatch.setenv("MOOG_PRESET", "cpu")
    assert notebook.setup() == "cpu"
    assert notebook.setup("tiny") == "tiny"  # an argument wins over the environment
    monkeypatch.delenv("MOOG_PRESET")
    assert notebook.setup() == "tiny"  # no TPU here
    assert "preset tiny" in capsys.readouterr().out


def test_a_tpu_preset_without_a_tpu_falls_back_to_tiny(monkeypatch, capsys):
    monkeypatch.delenv("MOOG_CPU_DEVICES", raising=False)
    assert jax.default_backend() != "tpu"
    assert notebook.setup("colab") == "tiny"
    assert "wants a TPU" in capsys.readouterr().out
    monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
    monkeypatch.setattr(jax, "devices", lambda: ["TPU v5e"])
    monkeypatch.delenv("MOOG_PRESET", raising=False)
    assert notebook.setup() == "colab"


def test_unknown_preset_and_bad_device_count_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        notebook.setup("huge")
    with pytest.raises(ValueError, match="MOOG_CPU_DEVICES must be a positive int"):
        notebook.simulate_cpu_devices(0)


def test_simulated_devices_are_asked_for_in_xla_flags(monkeypatch, capsys):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    notebook.simulate_cpu_devices(8)
    import os

    assert os.environ["XLA_FLAGS"] == ("--xla_cpu_multi_thread_eigen=false "
                                       "--xla_force_host_platform_device_count=8")
    assert "after a restart" in capsys.readouterr().out  # JAX is already running here
    assert not notebook.in_colab()

from types import SimpleNamespace

import psutil
import pytest


@pytest.fixture(autouse=True)
def quick_cpu_sample(settings):
    """A full health run samples the CPU for HEALTH_CPU_SAMPLE_SECONDS; not worth waiting for here."""
    settings.HEALTH = {**settings.HEALTH, "CPU_SAMPLE_SECONDS": 0}


@pytest.fixture
def machine(monkeypatch):
    """A host at 10 % CPU, 40 % memory and 50 % disk (psutil's answers); tests change what they need."""
    state = SimpleNamespace(cpu=10.0, memory=40.0, disk=50.0)
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval=None: state.cpu)
    gib = 1024**3
    monkeypatch.setattr(
        psutil, "virtual_memory", lambda: SimpleNamespace(percent=state.memory, total=8 * gib, available=4 * gib)
    )
    monkeypatch.setattr(
        psutil, "disk_usage", lambda path: SimpleNamespace(percent=state.disk, total=100 * gib, free=50 * gib)
    )
    return state

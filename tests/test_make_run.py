"""`make run`, the README's first command: the demo answers on the address it is given."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def allowed_hosts_of_make_run(tmp_path, *make_args: str, **environment: str) -> str:
    """ALLOWED_HOSTS as `make run`'s commands get it, printed by a stand-in shell instead of running them."""
    shell = tmp_path / "shell"
    shell.write_text('#!/bin/sh\necho "$ALLOWED_HOSTS"\n')
    shell.chmod(0o755)
    environ = {name: value for name, value in os.environ.items() if name not in ("ALLOWED_HOSTS", "ADDR")}
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "run", *make_args, f"SHELL={shell}"],
        cwd=ROOT,
        env={**environ, **environment},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0]


@pytest.mark.parametrize(
    "addr, host",
    [("192.168.1.20:8000", "192.168.1.20"), ("demo.example.com:8080", "demo.example.com"), ("[::1]:8001", "[::1]")],
)
def test_the_host_of_addr_is_allowed(tmp_path, addr, host):
    """Django answers 400 (DisallowedHost) to a Host not in ALLOWED_HOSTS, DEBUG or not: with
    `ADDR=192.168.1.20:8000 make run` (the README's "for another") every page was a 400."""
    allowed = allowed_hosts_of_make_run(tmp_path, f"ADDR={addr}").split(",")

    assert host in allowed
    assert {"localhost", "127.0.0.1", "[::1]"} <= set(allowed)


def test_an_allowed_hosts_set_beforehand_is_kept(tmp_path):
    assert allowed_hosts_of_make_run(tmp_path, ALLOWED_HOSTS="jobs.internal") == "jobs.internal"

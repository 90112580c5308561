"""Static files: served by WhiteNoise from the web processes, compressed once collected."""

import gzip

from django.core.management import call_command
from django.test import override_settings


def test_collectstatic_writes_a_compressed_copy_of_each_asset_beside_it(tmp_path):
    """Drill: docs/deployment.md promised compressed files after collectstatic; it wrote none,
    and htmx went out as 51 kB to clients that accept gzip."""
    with override_settings(STATIC_ROOT=tmp_path):
        call_command("collectstatic", interactive=False, verbosity=0)

    script = tmp_path / "monitoring" / "dashboard.js"
    assert gzip.decompress((tmp_path / "monitoring" / "dashboard.js.gz").read_bytes()) == script.read_bytes()
    assert "htmx-2.min.js.gz" in [path.name for path in tmp_path.rglob("htmx*.min.js.gz")]  # the one base.html loads

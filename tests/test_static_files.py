"""Static files: served by WhiteNoise from the web processes, compressed once collected."""

import gzip
from pathlib import Path

from django.core.management import call_command, get_commands, load_command_class
from django.test import RequestFactory, override_settings

import monitoring


def test_collectstatic_writes_a_compressed_copy_of_each_asset_beside_it(tmp_path):
    """Drill: docs/deployment.md promised compressed files after collectstatic; it wrote none,
    and htmx went out as 51 kB to clients that accept gzip."""
    with override_settings(STATIC_ROOT=tmp_path):
        call_command("collectstatic", interactive=False, verbosity=0)

    script = tmp_path / "monitoring" / "dashboard.js"
    assert gzip.decompress((tmp_path / "monitoring" / "dashboard.js.gz").read_bytes()) == script.read_bytes()
    assert "htmx-2.min.js.gz" in [path.name for path in tmp_path.rglob("htmx*.min.js.gz")]  # the one base.html loads


def demo_server_handler():
    """The WSGI handler `make run`'s `runserver` serves with (DEBUG on), its options as parsed by default."""
    command = load_command_class(get_commands()["runserver"], "runserver")
    options = command.create_parser("manage.py", "runserver").parse_args([])
    return command.get_handler(**vars(options))


def get(handler, path: str) -> tuple[str, bytes]:
    """`path` requested from `handler` as runserver's server does it: PATH_INFO percent-decoded."""
    answer = {}
    environ = RequestFactory().get(path).environ
    body = b"".join(handler(environ, lambda status, headers, exc_info=None: answer.update(status=status)))
    return answer["status"], body


@override_settings(DEBUG=True)
def test_the_demo_server_answers_a_path_out_of_the_static_folders_not_found(db):
    """Drill: `curl http://127.0.0.1:8000/static/..%2fsettings.py` under `make run` answered 500 with a
    traceback: staticfiles' runserver handler let the SuspiciousFileOperation of its path check
    through. WhiteNoise serves the demo's static files, as it does in production.
    (`db`: the handler closes the database connections at each request's end, which another test may
    have left open.)"""
    handler = demo_server_handler()

    for path in ("/static/..%2fsettings.py", "/static/..%2f..%2fconfig%2fsettings.py", "/static/%2e%2e%2fx"):
        status, body = get(handler, path)
        assert status.startswith("404"), (path, status)
        assert b"SECRET_KEY" not in body
    status, body = get(handler, "/static/monitoring/dashboard.js")
    assert status.startswith("200")
    assert body == (Path(monitoring.__file__).parent / "static" / "monitoring" / "dashboard.js").read_bytes()

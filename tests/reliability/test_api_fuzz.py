"""The API fuzzed from its own OpenAPI schema (schemathesis), harder than tests/test_api_schema.py:
five times the examples per operation and mode, and every error must say what went wrong.

The requests are built by tests/test_api_schema.py's `fuzz` (its fixtures too);
RELIABILITY_FUZZ_EXAMPLES changes the number of examples (150 by default).
"""

import os

import pytest
from schemathesis import GenerationMode

from tests.test_api_schema import OPERATIONS, existing_ids, fuzz, wsgi_app  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.reliability]

MAX_EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "150"))


def every_error_has_a_message(ctx, response, case):
    """An error is {"detail": "<what went wrong>", "errors": [{"field", "message"}]}, never empty."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"].strip(), f"no message: {body}"
    for error in body.get("errors", []):
        assert error.get("field") and error.get("message"), f"an error without field or message: {body}"
    return True


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("method, path", OPERATIONS)
def test_no_request_makes_the_api_fail_or_answer_without_a_message(
    wsgi_app, alice, bearer, existing_ids, method, path, mode
):
    fuzz(
        wsgi_app,
        bearer(alice),
        existing_ids,
        method,
        path,
        mode,
        max_examples=MAX_EXAMPLES,
        checks=[every_error_has_a_message],
    )

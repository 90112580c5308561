"""The API fuzzed from its own OpenAPI schema (schemathesis), harder than tests/test_api_schema.py:
five times the examples per operation and mode, and every error must say what went wrong.

The requests are built as in tests/test_api_schema.py (whose fixtures and helpers this uses);
RELIABILITY_FUZZ_EXAMPLES changes the number of examples (150 by default).
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.test_api_schema import OPERATIONS, existing_ids, sends_a_python_repr, wsgi_app  # noqa: F401  (fixtures)

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
    headers = bearer(alice)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app, headers=headers)
    schema.config.generation.update(with_security_parameters=False)  # the real token is always sent
    operation = schema[path][method]
    parameters = [p for p in operation.iter_parameters() if "x-original-security-type" not in p.definition]
    if mode == GenerationMode.NEGATIVE and not parameters and not list(operation.body):
        pytest.skip("no parameter and no body: nothing a client could send wrong")
    strategy = operation.as_strategy(mode)
    for name, ids in existing_ids.items():
        if f"{{{name}}}" in path:  # half of the time a row that exists
            real = st.sampled_from(ids).map(lambda id, name=name: {name: id})
            strategy = st.one_of(
                strategy, real.flatmap(lambda params: operation.as_strategy(mode, path_parameters=params))
            )
    # As in tests/test_api_schema.py: a job type's pydantic model takes "13" for 13.
    excluded = [negative_data_rejection] if (method, path) == ("POST", "/api/jobs") else []

    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answers(case):
        for name in [name for name in case.headers or {} if name.lower() == "host"]:
            del case.headers[name]  # Django refuses a made-up Host before any API code runs
        misjudged = [negative_data_rejection] if sends_a_python_repr(case.query) else []
        case.call_and_validate(
            headers=headers, excluded_checks=excluded + misjudged, additional_checks=[every_error_has_a_message]
        )

    answers()

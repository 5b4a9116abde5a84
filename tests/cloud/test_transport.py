"""Error parsing of the transport (reconciler.cloud.transport): every body shape the services send becomes a
typed error carrying the server's own message, and odd bodies give clear text, never a traceback.

Pure unit tests: `requests.Response` objects are built by hand.
"""

from __future__ import annotations

import json

import pytest
import requests

from reconciler.cloud.errors import (
    BadRequest,
    CloudApiError,
    CloudResponseError,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
)
from reconciler.cloud.transport import error_from_response, json_body, server_message

URL = "http://127.0.0.1:8777/image/KR1/v2/images/00000000-0000-4000-8000-000000000001"
PATH = "/image/KR1/v2/images/00000000-0000-4000-8000-000000000001"
WEBOB_404 = (
    "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>"
    "No image found<br /><br /></body></html>"
)


def response(
    status: int,
    body: bytes | str | dict | list = b"",
    *,
    content_type: str | None = "application/json",
    reason: str = "",
) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    if isinstance(body, dict | list):
        body = json.dumps(body)
    answer._content = body.encode("utf-8") if isinstance(body, str) else body
    if content_type is not None:
        answer.headers["Content-Type"] = content_type
    answer.reason = reason
    answer.url = URL
    return answer


# -- message shapes -------------------------------------------------------------------------------


def test_glance_json_message_loses_its_html_residue():
    """Glance's {"message", "code", "title"} body gives the message without `<br /><br />` and newlines."""
    body = {
        "message": "Image 42 is protected and cannot be deleted.<br /><br />\n\n\n",
        "code": "403 Forbidden",
        "title": "Forbidden",
    }
    assert server_message(response(403, body, reason="Forbidden")) == "Image 42 is protected and cannot be deleted."


def test_glance_conflict_message_keeps_both_sentences_without_html():
    """Glance's two-part conflict message keeps both sentences, joined by a space, and no HTML."""
    body = {
        "message": "There was a conflict when trying to complete your request.<br /><br />\n"
        "Property foo does not exist.\n\n",
        "code": "409 Conflict",
        "title": "Conflict",
    }
    message = server_message(response(409, body, reason="Conflict"))
    assert message == "There was a conflict when trying to complete your request. Property foo does not exist."
    assert "<" not in message and "\n" not in message


def test_nova_fault_body_gives_its_message():
    """A Nova/Cinder fault {"conflictingRequest": {"message", "code"}} gives the inner message."""
    body = {
        "conflictingRequest": {"message": "Cannot 'stop' instance abc while it is in vm_state stopped", "code": 409}
    }
    assert server_message(response(409, body)) == "Cannot 'stop' instance abc while it is in vm_state stopped"


def test_keystone_error_body_gives_its_message():
    """Keystone's {"error": {"message", "code", "title"}} gives the inner message."""
    body = {"error": {"message": "The request you have made requires authentication.", "code": 401, "title": "x"}}
    assert server_message(response(401, body)) == "The request you have made requires authentication."


def test_html_error_page_gives_the_explanation_only():
    """webob's HTML error page gives the body's explanation: no tags, and not the title repeated."""
    answer = response(404, WEBOB_404, content_type="text/html; charset=UTF-8", reason="Not Found")
    assert server_message(answer) == "No image found"


def test_html_error_page_with_one_word_reason():
    """An HTML page whose status reason is one word (403 Forbidden) also gives just the explanation."""
    page = (
        "<html>\n <head>\n  <title>403 Forbidden</title>\n </head>\n <body>\n  <h1>403 Forbidden</h1>\n"
        "  Image 42 is protected.<br /><br />\n\n\n\n </body>\n</html>"
    )
    answer = response(403, page, content_type="text/html; charset=UTF-8", reason="Forbidden")
    assert server_message(answer) == "Image 42 is protected."


def test_plain_text_body_is_the_message():
    """A text/plain body is the message, its whitespace tidied."""
    answer = response(503, "Service temporarily unavailable\n", content_type="text/plain", reason="Unavailable")
    assert server_message(answer) == "Service temporarily unavailable"


def test_empty_body_gives_the_reason_phrase():
    """An empty body gives the HTTP reason phrase."""
    assert server_message(response(409, b"", content_type=None, reason="Conflict")) == "Conflict"


def test_truncated_json_gives_a_clear_message():
    """A JSON body cut short gives "(an error body that is not valid JSON ...)" with what arrived."""
    message = server_message(response(500, '{"message": "abc', reason="Internal Server Error"))
    assert message.startswith("(an error body that is not valid JSON")
    assert '{"message": "abc' in message


def test_json_without_message_gives_a_clear_message():
    """A JSON body with no message anywhere says so and shows the body."""
    message = server_message(response(400, {"foo": 1, "bar": {"baz": 2}}))
    assert message.startswith("(an error body without a message")
    assert '"foo": 1' in message


def test_json_list_body_gives_a_clear_message():
    """A JSON body that is not an object (a list) gives the "without a message" text, not a crash."""
    message = server_message(response(400, ["x"]))
    assert message.startswith("(an error body without a message")


def test_very_long_plain_body_is_truncated():
    """A very long text body is cut to at most 500 characters, ending in an ellipsis."""
    message = server_message(response(500, "x" * 20_000, content_type="text/plain"))
    assert len(message) <= 500
    assert message.endswith("…")


def test_very_long_json_message_is_truncated():
    """A very long JSON message is cut to at most 500 characters."""
    message = server_message(response(400, {"message": "y" * 20_000}))
    assert len(message) <= 500
    assert message.endswith("…")


def test_very_long_invalid_json_is_truncated():
    """A long body that is not valid JSON is quoted only in part."""
    message = server_message(response(500, '{"message": "' + "z" * 20_000))
    assert message.startswith("(an error body that is not valid JSON")
    assert len(message) < 400


# -- typed errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (429, RateLimited),
        (503, RateLimited),
    ],
)
def test_error_class_follows_the_status(status, cls):
    """error_from_response picks the error class from the status."""
    error = error_from_response("image", "DELETE", URL, response(status, {"message": "nope"}))
    assert type(error) is cls
    assert error.status == status
    assert error.server_message == "nope"


@pytest.mark.parametrize("status", [500, 502, 418])
def test_other_statuses_give_the_base_api_error(status):
    """A status with no class of its own (500, 502, 418) gives CloudApiError itself."""
    error = error_from_response("compute", "GET", URL, response(status, {"computeFault": {"message": "boom"}}))
    assert type(error) is CloudApiError
    assert error.status == status
    assert error.server_message == "boom"


def test_error_text_names_service_method_path_and_status():
    """str(error) names the service, the method, the URL's path and the status, with the server's message."""
    url = URL + "?limit=1000"
    error = error_from_response("image", "DELETE", url, response(409, {"message": "in use<br /><br />\n\n\n"}))
    text = str(error)
    for part in ("image", "DELETE", PATH, "409", "in use"):
        assert part in text
    assert "limit=1000" not in text
    assert (error.service, error.method, error.path) == ("image", "DELETE", PATH)


# -- json_body ------------------------------------------------------------------------------------


def test_json_body_of_a_non_json_200_is_a_response_error():
    """json_body on a 200 whose body is HTML raises CloudResponseError, without a chained ValueError."""
    answer = response(200, "<html><body>hello</body></html>", content_type="text/html")
    with pytest.raises(CloudResponseError) as caught:
        json_body(answer, "listing images in KR1")
    error = caught.value
    assert "listing images in KR1" in str(error)
    assert "200" in str(error)
    assert "text/html" in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_json_body_of_truncated_json_is_a_response_error():
    """json_body on a truncated JSON document raises CloudResponseError naming what was being done."""
    with pytest.raises(CloudResponseError, match="reading image 42"):
        json_body(response(200, '{"id": "42", "na'), "reading image 42")


def test_json_body_returns_the_document():
    """json_body returns the parsed document of a JSON answer."""
    assert json_body(response(200, {"images": []}), "listing") == {"images": []}

"""Tests for asyncflow.consumers.webhook: WebhookConsumer against a local HTTP server, in-process."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np
import pytest

from asyncflow.consumers import WebhookConsumer
from asyncflow.core.errors import NodeConfigError


@dataclass
class Server:
    """A local HTTP server that records the bodies POSTed to it and answers ``status``."""

    url: str
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def server() -> Iterator[Server]:
    record = Server(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            record.bodies.append(json.loads(body))
            record.headers.append(dict(self.headers))
            self.send_response(record.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no" if record.status >= 300 else b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    record.url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    try:
        yield record
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_webhook_posts_each_item_as_json(server: Server) -> None:
    node = WebhookConsumer(server.url, headers={"X-Token": "s3cret"})
    node.open()
    try:
        node.consume({"frame": 1, "boxes": [[1, 2, 3, 4]]})
        node.consume("text")
        node.consume(1, [2])
    finally:
        node.close()
    assert server.bodies == [{"frame": 1, "boxes": [[1, 2, 3, 4]]}, "text", [1, [2]]]
    assert server.headers[0]["Content-Type"] == "application/json"
    assert server.headers[0]["X-Token"] == "s3cret"


def test_webhook_sends_numpy_arrays_and_scalars_as_lists(server: Server) -> None:
    node = WebhookConsumer(server.url)
    node.open()
    boxes = np.array([[10, 20, 30, 40, 0, 0.5]], np.float32)
    node.consume({"boxes": boxes, "count": np.int64(1), "score": np.float32(0.25), "tags": {"a"}})
    node.close()
    assert server.bodies == [{"boxes": [[10.0, 20.0, 30.0, 40.0, 0.0, 0.5]], "count": 1, "score": 0.25, "tags": ["a"]}]


def test_webhook_non_2xx_answer_raises_naming_the_status(server: Server) -> None:
    server.status = 500
    node = WebhookConsumer(server.url, name="hook")
    node.open()
    with pytest.raises(httpx.HTTPStatusError, match=r"WebhookConsumer 'hook': POST .* answered 500") as info:
        node.consume({"x": 1})
    node.close()
    assert info.value.response.status_code == 500
    assert server.bodies == [{"x": 1}]


def test_webhook_unencodable_item_names_the_node(server: Server) -> None:
    node = WebhookConsumer(server.url, name="hook")
    node.open()
    with pytest.raises(TypeError, match="WebhookConsumer 'hook' cannot send object item"):
        node.consume(object())
    node.close()
    assert server.bodies == []


def test_webhook_connection_failure_raises() -> None:
    node = WebhookConsumer("http://127.0.0.1:9/nothing", timeout=2)
    node.open()
    with pytest.raises(httpx.TransportError):
        node.consume(1)
    node.close()


def test_webhook_consume_before_open_says_so() -> None:
    with pytest.raises(RuntimeError, match="before open"):
        WebhookConsumer("http://127.0.0.1/").consume(1)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("ftp://x",), {}, "url must be an http:// or https:// URL"),
        ((None,), {}, "url must be"),
        (("http://x",), {"timeout": 0}, "timeout must be a number of seconds > 0"),
        (("http://x",), {"timeout": "1"}, "timeout"),
        (("http://x",), {"headers": {"a": 1}}, "headers must be a dict of str to str"),
    ],
)
def test_webhook_rejects_bad_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(NodeConfigError, match=match):
        WebhookConsumer(*args, **kwargs)


def test_webhook_pickles_without_its_client(server: Server) -> None:
    node = WebhookConsumer(server.url, timeout=3, headers={"A": "b"}, name="hook")
    node.open()
    copy = pickle.loads(pickle.dumps(node))
    node.close()
    assert (copy.url, copy.timeout, copy.headers, copy.name) == (server.url, 3.0, {"A": "b"}, "hook")
    assert copy._client is None
    copy.open()
    copy.consume([1])
    copy.close()
    assert server.bodies == [[1]]

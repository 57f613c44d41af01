import urllib.error
import urllib.request

import pytest


def health(server):
    with urllib.request.urlopen(server.url + "/health", timeout=5) as response:
        return response.status


def test_http_readiness_waits_until_healthy(slow_api):
    assert health(slow_api) == 200


def test_a_tcp_connect_alone_is_too_early(tcp_ready_api):
    # Why `ready="/health"`: the port accepts connections well before the app can serve.
    with pytest.raises(urllib.error.HTTPError, match="503"):
        health(tcp_ready_api)

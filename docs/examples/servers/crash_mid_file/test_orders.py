import urllib.request

import pytest


def get(api, path):
    with urllib.request.urlopen(api.url + path, timeout=5) as response:
        return response.status


def test_list_orders(api):
    assert get(api, "/") == 200


def test_a_request_that_brings_the_server_down(api):
    with pytest.raises(OSError):  # the connection drops: the server process is gone
        get(api, "/crash")


def test_something_without_the_server():
    assert sum([1, 2]) == 3

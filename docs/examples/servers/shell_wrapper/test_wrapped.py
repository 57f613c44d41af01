import socket
import urllib.request

import psutil
import pytest


@pytest.fixture(scope="module")
def tree():
    return []  # the processes the first test saw, for the second to check


def test_the_wrapped_server_answers(wrapped, tree):
    shell = psutil.Process(wrapped.pid)
    tree.extend([shell, *shell.children(recursive=True)])
    assert [p.name() for p in tree][0] == "sh"
    assert len(tree) == 2  # the shell and the Python server under it
    with urllib.request.urlopen(wrapped.url + "/", timeout=5) as response:
        assert response.status == 200


def test_teardown_stopped_the_whole_tree_and_freed_the_port(tree, port):
    assert tree
    for proc in tree:
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    with socket.create_server(("127.0.0.1", port)):
        pass  # the next server can bind the same port at once

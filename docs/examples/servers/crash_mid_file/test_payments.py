import urllib.request


def test_pay(api):
    # Runs against a fresh server, with a ServerRestartedWarning saying what happened.
    with urllib.request.urlopen(api.url + "/", timeout=5) as response:
        assert response.status == 200

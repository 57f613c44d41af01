import urllib.request


def test_next_run(api):
    # Starting `api` first stopped the server the killed run left (a StaleServerWarning says
    # so); a server on another port that leakguard did not start is left alone.
    with urllib.request.urlopen(api.url + "/", timeout=5) as response:
        assert response.status == 200

"""Hosts that read one file per request (Bitbucket Cloud, Bitbucket Server over REST, CodeCommit) read a level
of imports concurrently: the same requests, one round trip of waiting instead of one per file."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from gitflows import Flow
from gitflows.cache import Cache
from gitflows.errors import AuthenticationError, PathNotFoundError
from gitflows.hosts import read_each
from gitflows.storage import from_dict
from gitflows.storage.bitbucket import Bitbucket

from ..fakes.bitbucket_api import FakeBitbucketCloud
from ..fakes.serve import NO_MOCK, serve
from .conftest import TOKEN, assert_secret_hidden


@pytest.fixture
def cloud(source, monkeypatch):
    monkeypatch.setenv("BB_USER", "robot-user")
    monkeypatch.setenv("BB_APP_PASSWORD", TOKEN)
    fake, httpd = serve(lambda base: FakeBitbucketCloud(NO_MOCK, source, base=base, username="robot-user",
                                                          password=TOKEN))
    yield fake, httpd
    httpd.shutdown()
    httpd.server_close()


def _storage(fake, ref):
    return Bitbucket(project="ACME", repo="flows", workspace="acme", host=fake.base, path="flows/etl.py", ref=ref,
                     cloud_username_secret="BB_USER", cloud_app_password_secret="BB_APP_PASSWORD")


def _registered(fake):
    """The serialized storage of etl as registered (closure recorded), with an empty cache and no request counted."""
    storage = _storage(fake, "trunk")
    storage.add_flow(Flow("etl"))
    storage.build()
    shutil.rmtree(Cache().root, ignore_errors=True)
    fake.requests.clear()
    return storage.serialize()


def test_a_registered_closure_is_read_concurrently_on_bitbucket_cloud(cloud, source):
    fake, httpd = cloud
    data = _registered(fake)
    httpd.latency, httpd.max_in_flight = 0.2, 0
    assert from_dict(data).get_flow().run().results["transform"] == "v1:0,10,20"
    assert len(fake.requests) == 5  # one per file, as before
    assert httpd.max_in_flight == 5  # all of them at once


def test_a_failure_among_concurrent_reads_is_raised_once_the_others_end(cloud, source, caplog):
    fake, httpd = cloud
    data = _registered(fake)
    fake.fail(r"/flows/lib/fmt\.py$", 401, {"type": "error", "error": {"message": "Bad credentials"}})
    with pytest.raises(AuthenticationError, match="BB_APP_PASSWORD") as err:
        from_dict(data).get_flow()
    # no read left running behind the error
    assert not [t for t in threading.enumerate() if t.name.startswith("gitflows-read")]
    assert_secret_hidden(TOKEN, error=err.value, caplog=caplog)


def test_read_each_leaves_missing_files_out_and_raises_the_first_failure_after_all_reads():
    finished = []

    def read(path, sha, blob):
        time.sleep(0.05 if path == "slow.py" else 0)
        finished.append(path)
        if path.startswith("missing"):
            raise PathNotFoundError(path)
        if path.startswith("bad"):
            raise RuntimeError(path)
        return path.encode()

    items = [(p, "c" * 40, None) for p in ["a.py", "missing.py", "slow.py"]]
    assert read_each(read, items, workers=8) == {"a.py": b"a.py", "slow.py": b"slow.py"}
    finished.clear()
    items = [(p, "c" * 40, None) for p in ["bad1.py", "slow.py", "bad2.py"]]
    with pytest.raises(RuntimeError, match="bad1"):
        read_each(read, items, workers=8)
    assert sorted(finished) == ["bad1.py", "bad2.py", "slow.py"]  # every read ended before the raise


def test_a_cold_load_lists_the_folders_on_the_scripts_way_while_it_reads_the_script(cloud, source):
    """The script, the root and the script's folder at once; then the package folder; then the level of imports at
    once: 8 requests in 3 round trips of waiting instead of 8."""
    fake, httpd = cloud
    results = []
    requests, waves = _waves(fake, httpd, lambda: results.append(
        _storage(fake, source.v1).get_flow(flow_name="etl").run().results["transform"]))
    assert results == ["v1:0,10,20"]
    assert requests == 8 and waves == 3
    assert httpd.max_in_flight >= 4  # the level of imports: 4 files


def _waves(fake, httpd, load) -> tuple[int, int]:
    """(requests, waves) of *load()*: a wave is the requests sent before any of them was answered."""
    httpd.latency = 0.2
    started = []
    real = fake._dispatch

    def timed(request):
        started.append(time.monotonic())
        return real(request)

    fake._dispatch = timed
    try:
        load()
    finally:
        fake._dispatch = real
    return len(started), 1 + sum(1 for a, b in zip(started, started[1:]) if b - a > 0.1)


def test_beside_folders_bigger_than_a_page_the_probes_go_out_together(cloud, source, monkeypatch):
    """Folders listed only in part make resolution probe paths (listings of possible packages, reads of possible
    modules): the same probes as one at a time, sent a folder depth at a time."""
    from gitflows.hosts.bitbucket import BitbucketCloudHost

    fake, httpd = cloud
    fake.page_cap = 10
    sha = source.commit({**{f"flows/m{i:03}.py": "X = 1\n" for i in range(40)},
                         **{f"flows/lib/m{i:03}.py": "X = 1\n" for i in range(40)}}, "80 modules beside the flow")
    monkeypatch.setattr(BitbucketCloudHost, "concurrent_reads", 1)
    alone, alone_waves = _waves(fake, httpd, lambda: _storage(fake, sha).get_flow(flow_name="etl"))
    shutil.rmtree(Cache().root, ignore_errors=True)
    monkeypatch.setattr(BitbucketCloudHost, "concurrent_reads", 8)
    together, waves = _waves(fake, httpd, lambda: _storage(fake, sha).get_flow(flow_name="etl"))
    assert together == alone  # the same requests
    assert alone_waves == alone and waves <= 4, (alone, alone_waves, together, waves)

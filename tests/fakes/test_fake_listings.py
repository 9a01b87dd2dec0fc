"""The fakes' non-recursive folder listings, checked with plain `requests` against the shapes the real APIs send."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from .bitbucket_api import FakeBitbucketCloud, FakeBitbucketServer
from .github_api import FakeGitHub
from .gitlab_api import FakeGitLab
from .gitrepo import FLOW_WITH_HELPERS, GitRepo

TOKEN = "s3cret-token"
FLOWS_DIR = ["flows/consts.py", "flows/etl.py", "flows/lib", "flows/unrelated.py"]
ROOT = ["README.md", "flows"]


def oid(repo: GitRepo, path: str) -> str:
    return repo.entry_at(repo.v1, path)["sha"]


def test_gitrepo_lists_one_folder(source):
    assert [e["path"] for e in source.list_dir(source.v1, "flows")] == FLOWS_DIR
    assert [e["path"] for e in source.list_dir(source.v1, "")] == ROOT
    assert [e["path"] for e in source.list_dir(source.v1, "flows/lib/")] == [
        "flows/lib/__init__.py", "flows/lib/fmt.py", "flows/lib/helpers.py"]
    assert len(source.list_dir(source.v1, "flows", recursive=True)) == 7
    assert source.list_dir(source.v1, "flows/nope") is None
    assert source.list_dir(source.v1, "flows/etl.py") is None  # a file is no folder
    assert source.entry_at(source.v1, "")["type"] == "tree"


# --- GitHub ------------------------------------------------------------------------------------------------


@pytest.fixture
def github(rsps, source):
    return FakeGitHub(rsps, source, token=TOKEN)


def gh_get(fake, path, **params):
    return requests.get(fake.api + "/repos/acme/flows" + path, params=params,
                        headers={"Authorization": f"token {TOKEN}"})


def test_github_lists_a_directory(github, source):
    reply = gh_get(github, "/contents/flows", ref=source.v1)
    assert reply.status_code == 200
    entries = reply.json()
    assert isinstance(entries, list)
    assert [e["path"] for e in entries] == FLOWS_DIR
    by_name = {e["name"]: e for e in entries}
    etl, lib = by_name["etl.py"], by_name["lib"]
    assert set(etl) == {"type", "size", "name", "path", "sha", "url", "git_url", "html_url", "download_url", "_links"}
    assert etl["type"] == "file" and etl["size"] == len(FLOW_WITH_HELPERS["flows/etl.py"])
    assert etl["sha"] == oid(source, "flows/etl.py")
    assert etl["git_url"].endswith(f"/repos/acme/flows/git/blobs/{etl['sha']}")
    assert etl["url"] == f"{github.api}/repos/acme/flows/contents/flows/etl.py?ref={source.v1}"
    assert etl["download_url"].endswith(f"/acme/flows/{source.v1}/flows/etl.py")
    assert etl["_links"] == {"self": etl["url"], "git": etl["git_url"], "html": etl["html_url"]}
    assert lib["type"] == "dir" and lib["size"] == 0 and lib["download_url"] is None
    assert lib["sha"] == oid(source, "flows/lib")
    assert lib["git_url"].endswith(f"/git/trees/{lib['sha']}") and "/tree/" in lib["html_url"]
    assert github.requests == [("GET", f"/repos/acme/flows/contents/flows?ref={source.v1}")]


def test_github_lists_the_root_with_or_without_slash_and_at_a_branch(github, source):
    for path in ("/contents", "/contents/"):
        reply = gh_get(github, path, ref="trunk")
        assert reply.status_code == 200
        assert [(e["name"], e["type"]) for e in reply.json()] == [("README.md", "file"), ("flows", "dir")]
    assert gh_get(github, "/contents/flows/").json()[1]["path"] == "flows/etl.py"  # default branch


def test_github_file_contents_unchanged(github, source):
    body = gh_get(github, "/contents/flows/etl.py", ref=source.v1).json()
    assert body["type"] == "file" and body["encoding"] == "base64"
    assert base64.b64decode(body["content"]).decode() == FLOW_WITH_HELPERS["flows/etl.py"]


@pytest.mark.parametrize("path,ref", [("/contents/flows/nope", "trunk"), ("/contents/flows", "no-such-branch"),
                                      ("/contents", "f" * 40)])
def test_github_missing_path_or_ref(github, path, ref):
    reply = gh_get(github, path, ref=ref)
    assert reply.status_code == 404
    assert reply.json() == {"message": "Not Found", "status": "404",
                            "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content"}


def test_github_listing_needs_the_token(github, source):
    reply = requests.get(github.api + "/repos/acme/flows/contents/flows", headers={"Authorization": "token wrong"})
    assert reply.status_code == 401 and reply.json()["message"] == "Bad credentials"


def test_github_directory_listing_stops_at_1000_entries(rsps, tmp_path):
    repo = GitRepo(tmp_path / "big")
    sha = repo.commit({f"many/f{i:04}.txt": "x\n" for i in range(1003)}, "many")
    fake = FakeGitHub(rsps, repo)
    entries = requests.get(fake.api + "/repos/acme/flows/contents/many", params={"ref": sha}).json()
    assert len(entries) == 1000 and entries[-1]["name"] == "f0999.txt"


def test_github_symlinks_and_submodules_in_a_listing(rsps, tmp_path):
    repo = GitRepo(tmp_path / "links")
    repo.commit({"d/real.txt": "hi\n"}, "one")
    (repo.path / "d" / "link.txt").symlink_to("real.txt")
    sub = "1" * 40
    repo.git("add", "d/link.txt")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{sub},d/sub")
    repo.git("commit", "-q", "-m", "links")
    fake = FakeGitHub(rsps, repo)
    entries = {e["name"]: e for e in requests.get(fake.api + "/repos/acme/flows/contents/d").json()}
    assert entries["link.txt"]["type"] == "symlink"
    # GitHub types submodules "file" in directory listings (kept for backwards compatibility)
    assert entries["sub"]["type"] == "file" and entries["sub"]["sha"] == sub and entries["sub"]["size"] == 0
    assert entries["sub"]["download_url"] is None


# --- GitLab ------------------------------------------------------------------------------------------------


@pytest.fixture
def gitlab(rsps, source):
    return FakeGitLab(rsps, source, token=TOKEN, page_cap=2)


def gl_tree(fake, **params):
    return requests.get(f"{fake.base}/api/v4/projects/3/repository/tree", params=params,
                        headers={"PRIVATE-TOKEN": TOKEN})


def test_gitlab_lists_one_folder_page_by_page(gitlab, source):
    first = gl_tree(gitlab, path="flows", ref=source.v1, per_page=100)
    assert first.status_code == 200
    h = first.headers
    assert (h["X-Page"], h["X-Per-Page"], h["X-Total"], h["X-Total-Pages"], h["X-Next-Page"]) == ("1", "2", "4", "2", "2")
    # GitLab lists trees before blobs
    assert [(e["path"], e["type"]) for e in first.json()] == [("flows/lib", "tree"), ("flows/consts.py", "blob")]
    lib = first.json()[0]
    assert lib == {"id": oid(source, "flows/lib"), "name": "lib", "type": "tree", "path": "flows/lib", "mode": "040000"}
    assert set(first.json()[1]) == {"id", "name", "type", "path", "mode"}
    following = first.links["next"]["url"]
    assert parse_qs(urlsplit(following).query)["path"] == ["flows"]
    second = requests.get(following, headers={"PRIVATE-TOKEN": TOKEN})
    assert [e["path"] for e in second.json()] == ["flows/etl.py", "flows/unrelated.py"]
    assert second.headers["X-Next-Page"] == "" and "next" not in second.links
    assert gitlab.requests[0] == ("GET", f"/api/v4/projects/3/repository/tree?path=flows&ref={source.v1}&per_page=100")


def test_gitlab_recursive_folder_and_root(gitlab, source):
    below = gl_tree(gitlab, path="flows/lib", ref=source.v1, recursive="true", per_page=2)
    assert below.headers["X-Total"] == "3"
    assert [e["path"] for e in below.json()] == ["flows/lib/__init__.py", "flows/lib/fmt.py"]
    everything = gl_tree(gitlab, path="flows", ref=source.v1, recursive="true")
    assert everything.headers["X-Total"] == "7"  # every entry below flows/, trees too
    root = gl_tree(gitlab, ref="trunk")
    assert root.headers["X-Total"] == "2" and [e["path"] for e in root.json()] == ["flows", "README.md"]
    assert gl_tree(gitlab, ref="trunk", recursive="true").headers["X-Total"] == "9"  # unchanged without path


@pytest.mark.parametrize("params", [{"path": "flows/nope"}, {"path": "flows/etl.py"}, {"path": "flows", "ref": "nope"}])
def test_gitlab_missing_folder(gitlab, params):
    reply = gl_tree(gitlab, **{"ref": "trunk", **params})
    assert reply.status_code == 404 and reply.json() == {"message": "404 Tree Not Found"}


# --- Bitbucket Server --------------------------------------------------------------------------------------


@pytest.fixture
def bb_server(rsps, source):
    return FakeBitbucketServer(rsps, source, token=TOKEN, page_cap=3)


def bbs_get(fake, path, **params):
    return requests.get(f"{fake.base}/rest/api/1.0/projects/ACME/repos/flows{path}", params=params,
                        headers={"Authorization": f"Bearer {TOKEN}"})


def test_bitbucket_server_browses_a_folder_page_by_page(bb_server, source):
    reply = bbs_get(bb_server, "/browse/flows", at=source.v1, limit=100)
    assert reply.status_code == 200
    body = reply.json()
    assert body["path"] == {"components": ["flows"], "parent": "", "name": "flows", "toString": "flows"}
    assert body["revision"] == source.v1
    children = body["children"]
    assert (children["size"], children["limit"], children["isLastPage"], children["start"],
            children["nextPageStart"]) == (3, 3, False, 0, 3)
    etl = children["values"][1]
    assert etl == {"path": {"components": ["etl.py"], "parent": "", "name": "etl.py", "extension": "py",
                            "toString": "etl.py"},
                   "contentId": oid(source, "flows/etl.py"), "type": "FILE",
                   "size": len(FLOW_WITH_HELPERS["flows/etl.py"])}
    lib = children["values"][2]
    assert lib == {"path": {"components": ["lib"], "parent": "", "name": "lib", "toString": "lib"},
                   "node": oid(source, "flows/lib"), "type": "DIRECTORY"}
    rest = bbs_get(bb_server, "/browse/flows", at=source.v1, start=3).json()["children"]
    assert [v["path"]["name"] for v in rest["values"]] == ["unrelated.py"]
    assert rest["isLastPage"] is True and "nextPageStart" not in rest
    assert bb_server.requests[0] == ("GET", f"/rest/api/1.0/projects/ACME/repos/flows/browse/flows?at={source.v1}&limit=100")


def test_bitbucket_server_browses_the_root_and_a_subfolder(bb_server, source):
    for path in ("/browse", "/browse/"):
        body = bbs_get(bb_server, path, at="trunk").json()
        assert body["path"] == {"components": [], "parent": "", "name": "", "toString": ""}
        assert [(v["path"]["name"], v["type"]) for v in body["children"]["values"]] == [("README.md", "FILE"),
                                                                                        ("flows", "DIRECTORY")]
    lib = bbs_get(bb_server, "/browse/flows/lib", at=source.v1).json()
    assert lib["path"]["parent"] == "flows" and lib["path"]["components"] == ["flows", "lib"]
    assert [v["path"]["toString"] for v in lib["children"]["values"]] == ["__init__.py", "fmt.py", "helpers.py"]


def test_bitbucket_server_browses_a_file_as_lines(bb_server, source):
    body = bbs_get(bb_server, "/browse/flows/lib/helpers.py", at=source.v1).json()
    assert body == {"lines": [{"text": "def scale(rows, factor):"}, {"text": "    return [r * factor for r in rows]"}],
                    "start": 0, "size": 2, "isLastPage": True, "limit": 3}


def test_bitbucket_server_missing_path_or_commit(bb_server, source):
    reply = bbs_get(bb_server, "/browse/flows/nope", at=source.v1)
    assert reply.status_code == 404
    [error] = reply.json()["errors"]
    assert error["exceptionName"] == "com.atlassian.bitbucket.content.NoSuchPathException"
    assert "flows/nope" in error["message"] and error["context"] is None
    reply = bbs_get(bb_server, "/browse/flows", at="nope")
    assert reply.status_code == 404
    assert reply.json()["errors"][0]["exceptionName"] == "com.atlassian.bitbucket.commit.NoSuchCommitException"


def test_bitbucket_server_browse_needs_the_token(bb_server):
    reply = requests.get(f"{bb_server.base}/rest/api/1.0/projects/ACME/repos/flows/browse/flows")
    assert reply.status_code == 401


# --- Bitbucket Cloud ---------------------------------------------------------------------------------------


@pytest.fixture
def bb_cloud(rsps, source):
    return FakeBitbucketCloud(rsps, source, token=TOKEN, page_cap=3)


def bbc_get(fake, url, **params):
    if not url.startswith("http"):
        url = f"{fake.base}/2.0/repositories/acme/flows{url}"
    return requests.get(url, params=params, headers={"Authorization": f"Bearer {TOKEN}"})


def test_bitbucket_cloud_lists_a_folder_page_by_page(bb_cloud, source):
    first = bbc_get(bb_cloud, f"/src/{source.v1}/flows/", pagelen=100)
    assert first.status_code == 200
    body = first.json()
    assert (body["pagelen"], body["page"], body["size"]) == (3, 1, 4)
    assert [v["path"] for v in body["values"]] == FLOWS_DIR[:3]
    etl, lib = body["values"][1], body["values"][2]
    assert etl["type"] == "commit_file" and etl["size"] == len(FLOW_WITH_HELPERS["flows/etl.py"])
    assert etl["attributes"] == [] and etl["escaped_path"] == "flows/etl.py" and etl["mimetype"] is None
    assert etl["commit"]["hash"] == source.v1 and etl["commit"]["type"] == "commit"
    assert lib["type"] == "commit_directory" and lib["path"] == "flows/lib" and "size" not in lib
    second = bbc_get(bb_cloud, body["next"]).json()
    assert second["page"] == 2 and [v["path"] for v in second["values"]] == ["flows/unrelated.py"]
    assert "next" not in second
    assert bb_cloud.requests[0] == ("GET", f"/2.0/repositories/acme/flows/src/{source.v1}/flows/?pagelen=100")


def test_bitbucket_cloud_folder_without_trailing_slash_and_nested(bb_cloud, source):
    assert [v["path"] for v in bbc_get(bb_cloud, f"/src/{source.v1}/flows/lib").json()["values"]] == [
        "flows/lib/__init__.py", "flows/lib/fmt.py", "flows/lib/helpers.py"]
    raw = bbc_get(bb_cloud, f"/src/{source.v1}/flows/etl.py")
    assert raw.status_code == 200 and raw.text == FLOW_WITH_HELPERS["flows/etl.py"]


def test_bitbucket_cloud_root_listing_depth(bb_cloud, source):
    root = bbc_get(bb_cloud, f"/src/{source.v1}/").json()
    assert root["size"] == 2 and [v["path"] for v in root["values"]] == ROOT  # max_depth defaults to 1
    two = bbc_get(bb_cloud, f"/src/{source.v1}/", max_depth=2).json()
    assert two["size"] == 2 + 4
    # what the host sends: max_depth=50 lists everything, and `next` keeps max_depth
    deep = bbc_get(bb_cloud, f"/src/{source.v1}/", max_depth=50, pagelen=100).json()
    assert deep["size"] == 9 and "max_depth=50" in deep["next"]
    paths, page = [v["path"] for v in deep["values"]], deep
    while "next" in page:
        page = bbc_get(bb_cloud, page["next"]).json()
        paths += [v["path"] for v in page["values"]]
    assert len(paths) == 9 and set(FLOW_WITH_HELPERS) <= set(paths)
    assert bbc_get(bb_cloud, f"/src/{source.v1}/flows/", max_depth=2).json()["size"] == 7


def test_bitbucket_cloud_missing_folder_or_commit(bb_cloud, source):
    reply = bbc_get(bb_cloud, f"/src/{source.v1}/flows/nope/")
    assert reply.status_code == 404
    assert reply.json() == {"type": "error", "error": {"message": "No such file or directory: flows/nope"}}
    assert bbc_get(bb_cloud, f"/src/{source.v1}/flows/nope").json()["error"]["message"] == (
        "No such file or directory: flows/nope")
    assert bbc_get(bb_cloud, f"/src/{'f' * 40}/flows/").status_code == 404


def test_bitbucket_cloud_listing_needs_credentials(bb_cloud, source):
    assert requests.get(f"{bb_cloud.base}/2.0/repositories/acme/flows/src/{source.v1}/flows/").status_code == 401

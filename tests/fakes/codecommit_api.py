"""A fake CodeCommit answering from a real git repository inside botocore, the way Stubber does.

botocore's Stubber answers a queue of calls fixed in advance; this fake hooks the same event
(``before-call.codecommit.*``) but answers from the repository, so a test does not have to know
in which order the loader asks for folders and blobs. Like Stubber, it validates every request's
parameters against the service model and every answer against the operation's output shape, and
errors are the ``{"Error": {"Code", "Message"}}`` dicts botocore turns into ``ClientError``.
"""

from __future__ import annotations

import posixpath

import boto3
from botocore.awsrequest import AWSResponse
from botocore.validate import ParamValidator

from .gitrepo import GitRepo


class FakeCodeCommit:
    def __init__(self, repo: GitRepo, name: str = "flows") -> None:
        self.repo, self.name = repo, name
        self.calls: list[tuple[str, dict]] = []
        self.failures: list[list] = []  # [operation, code, message, status, times]
        self.tampered: dict[str, bytes] = {}  # blob id -> what GetBlob answers instead
        boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events
        events.register("before-parameter-build.codecommit.*", self._capture)
        events.register("before-call.codecommit.*", self._handle)
        self.validator = ParamValidator()

    def fail(self, operation: str, code: str, message: str = "", status: int = 400, times: int = 1) -> None:
        self.failures.append([operation, code, message or code, status, times])

    def _capture(self, params, model, context, **kwargs):
        report = self.validator.validate(params, model.input_shape)
        assert not report.has_errors(), report.generate_report()
        context["fake_params"] = dict(params)

    def _handle(self, model, context, **kwargs):
        op = model.name
        params = context["fake_params"]
        self.calls.append((op, params))
        for failure in self.failures:
            if failure[0] == op and failure[4] > 0:
                failure[4] -= 1
                return self._error(failure[1], failure[2], failure[3])
        if params.get("repositoryName") != self.name:
            return self._error("RepositoryDoesNotExistException", f"{params.get('repositoryName')} does not exist")
        result = getattr(self, op)(**params)
        if isinstance(result, tuple):
            return result
        out = self.validator.validate(result, model.output_shape)
        assert not out.has_errors(), out.generate_report()
        result["ResponseMetadata"] = {"HTTPStatusCode": 200, "RequestId": "fake", "HTTPHeaders": {}, "RetryAttempts": 0}
        return AWSResponse("http://127.0.0.1/", 200, {}, None), result

    @staticmethod
    def _error(code: str, message: str, status: int = 400):
        parsed = {"Error": {"Code": code, "Message": message},
                  "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "fake", "HTTPHeaders": {}}}
        return AWSResponse("http://127.0.0.1/", status, {}, None), parsed

    # -- operations ----------------------------------------------------------------
    def GetRepository(self, repositoryName):
        return {"repositoryMetadata": {"accountId": "123456789012", "repositoryId": "f7579e13-b83e-4027-aaef-650c0EXAMPLE",
                                       "repositoryName": repositoryName, "defaultBranch": self.repo.default_branch,
                                       "Arn": f"arn:aws:codecommit:us-east-1:123456789012:{repositoryName}",
                                       "cloneUrlHttp": f"https://git-codecommit.us-east-1.amazonaws.com/v1/repos/{repositoryName}"}}

    def GetBranch(self, repositoryName, branchName):
        sha = self.repo.branches().get(branchName)
        if sha is None:
            return self._error("BranchDoesNotExistException", f"Branch {branchName} does not exist.")
        return {"branch": {"branchName": branchName, "commitId": sha}}

    def GetCommit(self, repositoryName, commitId):
        sha = self.repo.rev_parse(commitId)
        if sha is None or sha != commitId:
            return self._error("CommitIdDoesNotExistException", f"Commit id {commitId} does not exist.")
        info = self.repo.commit_info(sha)
        return {"commit": {"commitId": sha, "treeId": info["tree"], "parents": info["parents"], "message": info["message"],
                           "author": {"name": info["author_name"], "email": info["author_email"], "date": "0"},
                           "committer": {"name": info["committer_name"], "email": info["committer_email"], "date": "0"},
                           "additionalData": ""}}

    def GetFolder(self, repositoryName, commitSpecifier, folderPath):
        sha = self.repo.rev_parse(commitSpecifier)
        if sha is None:
            return self._error("CommitDoesNotExistException", f"Commit {commitSpecifier} does not exist.")
        folder = folderPath.strip("/")
        entries = [e for e in self.repo.ls_tree(sha) if posixpath.dirname(e["path"]) == folder]
        if folder and not any(e["path"] == folder and e["type"] == "tree" for e in self.repo.ls_tree(sha)):
            return self._error("FolderDoesNotExistException", f"Folder {folderPath} does not exist.")
        info = self.repo.commit_info(sha)
        return {"commitId": sha, "folderPath": folderPath, "treeId": info["tree"],
                "subFolders": [{"treeId": e["sha"], "absolutePath": e["path"], "relativePath": e["path"].rsplit("/", 1)[-1]}
                               for e in entries if e["type"] == "tree"],
                "files": [{"blobId": e["sha"], "absolutePath": e["path"], "relativePath": e["path"].rsplit("/", 1)[-1],
                           "fileMode": "NORMAL"} for e in entries if e["type"] == "blob"],
                "symbolicLinks": [], "subModules": []}

    def GetBlob(self, repositoryName, blobId):
        if blobId in self.tampered:
            return {"content": self.tampered[blobId]}
        try:
            return {"content": self.repo.cat(blobId)}
        except Exception:
            return self._error("BlobIdDoesNotExistException", f"Blob {blobId} does not exist.")

    def GetFile(self, repositoryName, commitSpecifier, filePath):
        sha = self.repo.rev_parse(commitSpecifier)
        found = self.repo.blob_at(sha, filePath.strip("/")) if sha else None
        if found is None:
            return self._error("FileDoesNotExistException", f"File {filePath} does not exist.")
        return {"commitId": sha, "blobId": found[0], "filePath": filePath, "fileMode": "NORMAL",
                "fileSize": len(found[1]), "fileContent": found[1]}

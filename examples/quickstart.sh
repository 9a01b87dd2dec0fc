#!/usr/bin/env bash
# The main job end to end on the embedded defaults: a local git repo with a flow that imports a
# sibling module; `gitflows check` in the pre-commit hook; a commit; a push to a local bare repo whose
# pre-push hook registers the flow pinned to the pushed commit (pending); confirmation once the commit
# is on the remote; `gitflows run`; and an agent that loads exactly that commit and runs it.
# Registry: SQLite. Everything happens in a temporary folder; nothing leaves this machine.
set -euo pipefail
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GITFLOWS_CACHE_DIR="$work/cache"
export GITFLOWS_REGISTRY="sqlite:///$work/registry.db"
export GIT_AUTHOR_NAME=quickstart GIT_AUTHOR_EMAIL=quickstart@example.com
export GIT_COMMITTER_NAME=quickstart GIT_COMMITTER_EMAIL=quickstart@example.com
step() { printf '\n== %s\n' "$*"; }

step "a bare repository as the remote, and a working repository"
git init -q --bare -b main "$work/remote/flows.git"
git init -q -b main "$work/repo" && cd "$work/repo"
git remote add origin "$work/remote/flows.git"
mkdir -p flows/lib
cat > flows/lib/helpers.py <<'PY'
def scale(rows, factor):
    return [r * factor for r in rows]
PY
cat > flows/etl.py <<PY
from gitflows import Flow, Parameter, task
from gitflows.storage import Git
from lib.helpers import scale


@task
def extract(n):
    return list(range(n))


@task(max_retries=2, retry_delay=0.1)
def transform(rows):
    return scale(rows, 10)


@task
def load(rows):
    print(f"loaded {len(rows)} rows: {rows}")
    return len(rows)


with Flow("etl", storage=Git(flow_path="flows/etl.py", repo="flows", repo_host="file://$work/remote")) as flow:
    n = Parameter("n", default=3)
    load(transform(extract(n)))
PY
echo "flows/etl.py imports flows/lib/helpers.py; storage: Git at file://$work/remote/flows.git"

step "gitflows hooks install (pre-commit: check, pre-push: register)"
gitflows hooks install

step "git commit (the pre-commit hook runs gitflows check)"
git add -A && git commit -q -m "add the etl flow" && echo "committed $(git rev-parse --short HEAD)"

step "git push (the pre-push hook registers the flow, pinned to the pushed commit, as pending)"
git push -q origin main 2>&1

step "gitflows register --confirm-pending (the commit is on the remote now)"
gitflows register --confirm-pending

step "gitflows flows (what the registry holds)"
gitflows flows

step "gitflows run etl --param n=5 (a run for an agent)"
gitflows run etl --param n=5

step "gitflows agent --once (loads the pinned commit, verifies every file, runs it in a child process)"
gitflows agent --once

step "gitflows runs"
gitflows runs

#!/usr/bin/env bash
# The main job end to end on the embedded defaults: a local git repo holding a flow script,
# checked offline the way the pre-commit hook does it, committed, then loaded from the repo
# and run. Everything happens in a temporary folder; nothing leaves this machine.
set -euo pipefail
GITFLOWS="${GITFLOWS:-gitflows}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GITFLOWS_CACHE_DIR="$work/cache"
cd "$work"
git init -q repo && cd repo
git config user.email quickstart@example.com && git config user.name quickstart
mkdir -p flows/lib
cat > flows/lib/helpers.py <<'PY'
def scale(rows, factor):
    return [r * factor for r in rows]
PY
cat > flows/etl.py <<'PY'
from gitflows import Flow, Parameter, task
from gitflows.storage.local import Local
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


with Flow("etl", storage=Local(path="flows/etl.py", stored_as_script=True)) as flow:
    n = Parameter("n", default=3)
    load(transform(extract(n)))
PY
echo "== gitflows check (what the pre-commit hook runs)"
"$GITFLOWS" check flows/etl.py
git add -A && git commit -qm "add etl flow"
echo "== gitflows flows"
"$GITFLOWS" flows flows/etl.py
echo "== gitflows run"
"$GITFLOWS" run flows/etl.py --param n=5

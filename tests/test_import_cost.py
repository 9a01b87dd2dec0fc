from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("boto3", "botocore", "github", "gitlab", "atlassian", "dulwich", "google", "azure", "docker",
         "psycopg", "requests", "cloudpickle", "keyring", "dask", "distributed", "graphviz")


def test_import_gitflows_loads_no_backend_library():
    code = ("import sys, json, gitflows, gitflows.storage, gitflows.storage.local, gitflows.executors; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    offenders = sorted({m for m in loaded for h in HEAVY if m == h or m.startswith(h + ".")})
    assert offenders == []


def test_a_local_run_imports_neither_dask_nor_cloudpickle():
    code = ("import sys, json\nfrom gitflows import Flow, task, unmapped\n"
            "@task\ndef inc(x):\n    return x + 1\n"
            "with Flow('f') as flow:\n    inc.map([1, 2, 3])\n"
            "assert flow.run().results['inc'] == [2, 3, 4]\nprint(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    assert not [m for m in loaded if m.split(".")[0] in ("dask", "distributed", "cloudpickle", "graphviz")]

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("boto3", "botocore", "github", "gitlab", "atlassian", "dulwich", "google", "azure", "docker",
         "psycopg", "requests", "cloudpickle", "keyring")


def test_import_gitflows_loads_no_backend_library():
    code = ("import sys, json, gitflows, gitflows.storage, gitflows.storage.local; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    offenders = sorted({m for m in loaded for h in HEAVY if m == h or m.startswith(h + ".")})
    assert offenders == []

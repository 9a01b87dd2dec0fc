"""An example flow: `gitflows run examples/etl.py --param n=5`."""

from gitflows import Flow, Parameter, task
from gitflows.storage.local import Local


@task
def extract(n):
    return list(range(n))


@task(max_retries=2, retry_delay=0.1)
def transform(rows):
    return [r * 10 for r in rows]


@task
def load(rows):
    print(f"loaded {len(rows)} rows: {rows}")
    return len(rows)


with Flow("etl", storage=Local(path="examples/etl.py", stored_as_script=True)) as flow:
    n = Parameter("n", default=3)
    load(transform(extract(n)))

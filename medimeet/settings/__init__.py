"""Settings split by environment.

- ``base``: everything shared; every machine-specific value comes from the environment.
- ``local``: the embedded default used by ``make run`` (no variables needed).
- ``test``: the test suite (fast hasher, eager tasks, in-memory mail).
- ``production``: secure defaults; secrets have no defaults and must be set.
"""

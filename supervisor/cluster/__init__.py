"""Shells on a Ray cluster, through Ray's Job Submission API.

A cluster shell is recorded in the local home like any other; its Ray submission id is its shell id.
On the node, `runner` runs the job under mgsup's own monitor and writes what the submitting side
needs (`framing`) into the job's Ray log; `mirror` brings that log, the job's state and a
coordination run's progress back into the local record on every read.

Where things live: `address` (what a cluster address is), `client` (the one adapter over Ray's
SDK, with its errors mapped to ours), `submission` (what a start sends: entrypoint, runtime_env,
resources), `framing`, `relay` and `runner` (the node side, stdlib only), `jobstate` (Ray's job status to
our lifecycle, pure), `mirror` (the local copy of a job), `backend` (what `Supervisor` calls),
`polling` (waiting on a cluster shell with a backed-off poll).

Nothing here imports Ray until a cluster is used: `pip install "mgsup[ray]"` adds it.
"""

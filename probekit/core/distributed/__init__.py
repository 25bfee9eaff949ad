"""probekit's work spread over a Ray cluster (the optional extra ``pip install "probekit[ray]"``).

Off by default; ``--ray auto`` starts a local cluster for the command, ``--ray ADDRESS`` joins an existing one
(:mod:`.session`). While a session is active, activation extraction runs its length-sorted windows as Ray tasks
(:mod:`.extract`: the same batches as one process, so the same bytes in the cache), and experiment grids run
their cells as Ray tasks whose results are written once under a task key (:mod:`.grid`).
"""

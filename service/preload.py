"""What the one fork server of a process imports before it forks anything.

multiprocessing's fork server is one per process: the first start method to start it fixes what it
has imported, and a later ``set_forkserver_preload`` changes nothing in a server already running.
The engine pool (service/engine/pool.py) and the contained rule-file loader
(service/rulefiles/contained.py) both fork from it, so both name the same list: whichever starts
first, each child starts with the engine and the loader imported already (a contained load costs a
fork, not an import of the YAML parser).
"""

FORKSERVER_PRELOAD = ["service.engine.pool", "service.engine.durable", "service.rulefiles.loader"]

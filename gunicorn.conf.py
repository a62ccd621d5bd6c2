"""gunicorn's settings for the service, read by ``gunicorn wsgi:app`` started in this folder
(gunicorn reads ``./gunicorn.conf.py`` by default; ``-c FILE`` names another).  Workers, bind
address and timeouts stay on the command line (README, ``make run``); this file holds what
every deployment wants alike."""

from __future__ import annotations

import gc


def pre_fork(server, worker) -> None:
    """In the master, before each worker is forked: freeze what the master holds.  With
    ``--preload`` that is the whole application, shared with the workers copy-on-write; a
    collection in a worker would write to every page of it (Python's ``gc.freeze``
    documentation).  Without it (how the service is started) the master holds little."""
    gc.freeze()


def post_worker_init(worker) -> None:
    """Freeze what the worker holds once its application is loaded (modules, the Flask app,
    every scheme served): some 290,000 objects that live as long as the worker.  Unfrozen, every
    full collection of the cyclic garbage collector walks them all again (164-519 ms every few
    thousand answers, measured), to find nothing: they are never garbage.  Frozen, collections
    skip them; they are still freed by reference counting when let go (a rule set replaced by a
    newer one: a loaded scheme holds no reference cycle).  Collected first, so that garbage of
    the start is not kept for good.

    Here, in the worker once its application is loaded: the service runs without ``--preload``
    (each worker loads its own application after the fork).  ``score_units`` sees the frozen
    generation (``gc.get_freeze_count()``) and leaves it frozen."""
    gc.collect()
    gc.freeze()
    worker.log.info("froze %d objects of the worker's start (gc.freeze)", gc.get_freeze_count())

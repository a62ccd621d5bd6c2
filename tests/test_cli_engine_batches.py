"""``scoring score`` through the contained durable-rules engine, not only through the oracle.

The batch matcher of ``scoring score`` was still made with the spin settings the engine pool
dropped when its round trip stopped spin-waiting (issue 12): every run without ``--oracle``
failed at its first batch with a TypeError, while the tests, all with ``--oracle``, passed."""

from __future__ import annotations

from click.testing import CliRunner

from service import cli
from service.engine.pool import EnginePool
from service.rulefiles.loader import load_all
from tools import units_file

from .conftest import RULES


def test_units_scored_through_the_engine_print_what_the_oracle_prints(tmp_path):
    scheme = max(load_all(RULES).values(), key=lambda s: len(s.matches))
    path = units_file.write(scheme, 12, tmp_path / "units.jsonl", "jsonl", 3)
    args = ["score", scheme.id, str(path), "--rules", str(RULES), "--jobs", "1"]
    engine = CliRunner().invoke(cli.main, args)
    oracle = CliRunner().invoke(cli.main, [*args, "--oracle"])
    assert engine.exit_code == 0, engine.output
    assert oracle.exit_code == 0, oracle.output
    # the same points, ranks and sentences: only the engine's name differs
    engine_name = EnginePool.name
    assert "计算引擎：oracle" in oracle.output
    assert engine.output == oracle.output.replace("计算引擎：oracle", f"计算引擎：{engine_name}")


def test_units_shared_out_over_processes_through_the_engine(tmp_path):
    """Enough units for two processes (``PARALLEL_FROM`` batches): this one, scoring with the
    engine process it forked before loading, and a forked one with its own."""
    scheme = max(load_all(RULES).values(), key=lambda s: len(s.matches))
    count = cli.PARALLEL_FROM * cli.CHUNK + 7
    path = units_file.write(scheme, count, tmp_path / "units.jsonl", "jsonl", 4)
    args = ["score", scheme.id, str(path), "--rules", str(RULES), "--json"]
    engine = CliRunner().invoke(cli.main, [*args, "--jobs", "2"])
    oracle = CliRunner().invoke(cli.main, [*args, "--jobs", "1", "--oracle"])
    assert engine.exit_code == 0, engine.output
    assert oracle.exit_code == 0, oracle.output
    name = f'"matcher": "{EnginePool.name}"'
    assert engine.output.count(name) == count
    assert engine.output == oracle.output.replace('"matcher": "oracle"', name)

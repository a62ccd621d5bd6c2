"""The load benchmark's verdicts: issue 12's what-if targets, quiet and with a core taken."""

from tools.loadbench import BUSY_P99_MS, BUSY_RATE, TARGET_P99_MS, TARGET_RATE, Result, targets


def _run(rate, p99, busy=False, errors=0) -> Result:
    r = Result("what-if+忙核" if busy else "what-if", 10, 10.0, int(rate * 10), 10.0, p99, errors)
    r.busy, r.server_cpu, r.load = busy, 0.002 * r.count, (3.5, 3.1, 4.0)
    return r


def _verdicts(*runs) -> list[str]:
    return [line for line in targets(list(runs)) if "达到" in line]


def test_each_what_if_figure_is_printed_beside_its_target_with_the_load_and_the_cpu():
    quiet, busy = _verdicts(_run(320, 45), _run(200, 90, busy=True))
    assert f"目标 ≥ {TARGET_RATE}" in quiet and f"目标 ≤ {TARGET_P99_MS}" in quiet
    assert quiet.endswith("平均负载 3.5、3.1、4.0") and "服务端每次 2.00 ms CPU" in quiet
    assert "未达到" not in quiet
    assert "另一进程占满一核" in busy and f"目标 ≥ {BUSY_RATE}" in busy
    assert f"目标 ≤ {BUSY_P99_MS}" in busy and "未达到" not in busy


def test_a_p99_over_the_target_or_a_collapse_under_a_busy_core_is_not_met():
    quiet, busy = _verdicts(_run(555, 56.8), _run(100, 300, busy=True))
    assert "未达到" in quiet
    assert "未达到" in busy
    (busy_with_errors,) = _verdicts(_run(400, 80, busy=True, errors=3))
    assert "未达到" in busy_with_errors

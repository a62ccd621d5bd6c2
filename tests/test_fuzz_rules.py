"""A bounded run of the rule-file mutation fuzzer (tools/fuzz_rules.py): every mutated scheme is
accepted or rejected with errors at a file, line and column of that scheme; nothing else."""

from tools.fuzz_rules import Corpus, check_load, make_input, run


def test_a_bounded_fuzz_run_finds_no_uncaught_exception(tmp_path):
    # a fixed number of inputs, the same every run: about 15 s here (300 loads a second),
    # more on a busy machine
    report = run(iterations=5000, seed=20261130, jobs=0, out=tmp_path)
    found = "\n\n".join(f"{sig}\n{info['text']}" for sig, info in report.distinct.items())
    assert report.uncaught == 0, found
    assert report.loads == 5000
    assert (
        report.accepted and report.rejected
    )  # the mutations reach past the reader, and not always


def test_inputs_are_reproducible_from_seed_worker_and_iteration():
    corpus = Corpus.shipped()
    assert make_input(corpus, 5, 1, 42) == make_input(corpus, 5, 1, 42)
    assert make_input(corpus, 5, 1, 42) != make_input(corpus, 5, 1, 43)


def test_the_shipped_schemes_themselves_are_accepted():
    for prefix, files in Corpus.shipped().schemes:
        assert check_load(prefix, files) == "accepted", prefix

"""Test collection settings shared by the test suite and the doctests."""

# Running __main__.py would start the command line during doctest collection.
collect_ignore = ["destructors/__main__.py"]

# The Dask front end imports Dask at module level; without the optional
# extra, skip its doctests (tests/test_dask.py skips itself).
try:
    import dask.array  # noqa: F401
except ImportError:
    collect_ignore.append("destructors/_dask.py")


def pytest_terminal_summary(terminalreporter):
    """Report what the property-based fuzzers tried, per category."""
    import sys

    fuzz = sys.modules.get("test_fuzz")
    outcomes = getattr(fuzz, "OUTCOMES", None)
    if outcomes:
        terminalreporter.section("fuzz outcomes (inputs per estimator and kind)")
        for key in sorted(outcomes):
            terminalreporter.write_line(f"{key}: {outcomes[key]}")

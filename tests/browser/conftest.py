"""Session fixtures for the browser tests: one JupyterLab server and one headless Chromium.

JupyterLab is started here (127.0.0.1, a free port, a random token, ``--allow-root`` when root)
on a copy of ``lessons/`` and stopped at the end of the session; see ``labdriver.py``.
"""

import pytest
from labdriver import Browser, JupyterLab

LATENCIES: dict[str, list[float]] = {}  # lesson stem -> keypress-to-redraw latencies (ms)


@pytest.fixture(scope="session")
def jupyter_lab():
    lab = JupyterLab().start()
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def chromium():
    with Browser() as browser:
        yield browser


@pytest.fixture
def latency_log():
    return LATENCIES


def pytest_terminal_summary(terminalreporter):
    if not LATENCIES:
        return
    import numpy as np

    terminalreporter.section("explorer keypress-to-redraw latency (ms)")
    terminalreporter.write_line(f"{'lesson':<28} {'moves':>5} {'median':>7} {'p90':>7} {'max':>7}")
    for stem, values in sorted(LATENCIES.items()):
        v = np.asarray(values)
        if not v.size:  # a lesson without an explorer (lesson 7)
            terminalreporter.write_line(f"{stem:<28} {0:>5} {'—':>7} {'—':>7} {'—':>7}")
            continue
        terminalreporter.write_line(
            f"{stem:<28} {v.size:>5} {np.median(v):>7.0f} {np.percentile(v, 90):>7.0f} {v.max():>7.0f}"
        )
    terminalreporter.write_line("(one keypress per slider; benchmarks/widget_latency.py measures more)")

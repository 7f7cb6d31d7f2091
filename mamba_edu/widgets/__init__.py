"""One interactive explorer per lesson.

Each explorer returns an ``ipywidgets`` container whose sliders redraw its matplotlib
figure(s) in place (``set_data``/``set_ydata`` on existing artists, no new figures).
In a notebook use ``%matplotlib widget`` (ipympl); in tests the Agg backend works.

=====  ==============================  ===============================
lesson explorer                         module
=====  ==============================  ===============================
1      :func:`lti_explorer`            :mod:`mamba_edu.widgets.lti`
2      :func:`discretization_explorer` :mod:`mamba_edu.widgets.discretization`
3      :func:`diagonal_explorer`       :mod:`mamba_edu.widgets.diagonal`
4      :func:`selectivity_explorer`    :mod:`mamba_edu.widgets.selectivity`
5      :func:`scan_explorer`           :mod:`mamba_edu.widgets.scan`
6      :func:`why_selection_explorer`  :mod:`mamba_edu.experiments.explorer`
8      :func:`ssd_explorer`            :mod:`mamba_edu.widgets.ssd`
=====  ==============================  ===============================
"""

from importlib import import_module

_EXPLORERS = {
    "lti_explorer": "mamba_edu.widgets.lti",
    "discretization_explorer": "mamba_edu.widgets.discretization",
    "diagonal_explorer": "mamba_edu.widgets.diagonal",
    "selectivity_explorer": "mamba_edu.widgets.selectivity",
    "scan_explorer": "mamba_edu.widgets.scan",
    "why_selection_explorer": "mamba_edu.experiments.explorer",
    "ssd_explorer": "mamba_edu.widgets.ssd",
}

__all__ = list(_EXPLORERS)


def __getattr__(name):
    if name in _EXPLORERS:
        return getattr(import_module(_EXPLORERS[name]), name)
    raise AttributeError(f"module 'mamba_edu.widgets' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

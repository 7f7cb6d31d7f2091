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
4      :func:`selective_explorer`      :mod:`mamba_edu.widgets.selective`
5      :func:`experiments_explorer`    :mod:`mamba_edu.widgets.experiments`
6      :func:`scan_explorer`           :mod:`mamba_edu.widgets.scan`
8      :func:`ssd_explorer`            :mod:`mamba_edu.widgets.ssd`
=====  ==============================  ===============================
"""

from mamba_edu._lazy import lazy_getattr

_EXPLORERS = {
    "lti_explorer": "mamba_edu.widgets.lti",
    "discretization_explorer": "mamba_edu.widgets.discretization",
    "diagonal_explorer": "mamba_edu.widgets.diagonal",
    "selective_explorer": "mamba_edu.widgets.selective",
    "experiments_explorer": "mamba_edu.widgets.experiments",
    "scan_explorer": "mamba_edu.widgets.scan",
    "ssd_explorer": "mamba_edu.widgets.ssd",
}
_ALIASES = {"selectivity_explorer": "selective_explorer", "why_selection_explorer": "experiments_explorer"}  # old names

__all__ = list(_EXPLORERS) + list(_ALIASES)


__getattr__ = lazy_getattr(__name__, _EXPLORERS, _ALIASES)


def __dir__():
    return sorted(set(globals()) | set(__all__))

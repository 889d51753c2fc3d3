import os

import pytest
import torch

# Plots are written with the Agg backend whatever the test machine has.
os.environ.setdefault("MPLBACKEND", "Agg")

# Under pytest-xdist each worker is one process per core: intra-op threads on top of that
# oversubscribe the cores, and tiny matrix products then stall for milliseconds while
# OpenMP threads wait for a core (measured: 2.8 ms instead of 9 us for a 128x8 product).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture
def passes(monkeypatch):
    """The passes over the rows refinement makes, counted (``gradient_too`` of each)."""
    from torchlinreg.exact import rowpasses

    made = []
    call = rowpasses.RowPasses.__call__

    def counted(self, *args, **kwargs):
        made.append(kwargs.get("gradient_too", True))
        return call(self, *args, **kwargs)

    monkeypatch.setattr(rowpasses.RowPasses, "__call__", counted)
    return made


# statsmodels' bundled data sets (no network), one copy a module (a test that edits one copies it)
@pytest.fixture(scope="module")
def grunfeld():
    import statsmodels.api as sm

    return sm.datasets.grunfeld.load_pandas().data


@pytest.fixture(scope="module")
def fair():
    import statsmodels.api as sm

    return sm.datasets.fair.load_pandas().data


@pytest.fixture(scope="module")
def macrodata():
    import statsmodels.api as sm

    return sm.datasets.macrodata.load_pandas().data

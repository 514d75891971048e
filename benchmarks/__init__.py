"""fastgd's asv benchmark suite (see README.md in this folder).

asv imports every module of this package. Scripts kept here (``targets.py``,
``gate.py``, ``float32_calls.py``) run as ``python benchmarks/<script>.py``
and import ``common`` and ``targets`` from their own folder; the aliases
below give them this package's modules when asv imports them instead.
"""

import sys

from . import common

sys.modules.setdefault("common", common)

from . import targets  # noqa: E402  (needs the alias above)

sys.modules.setdefault("targets", targets)

"""fastgd's asv benchmark suite (see README.md in this folder).

asv imports every module of this package. Scripts kept here (``targets.py``,
``gate.py``) run as ``python benchmarks/<script>.py`` and ``import common``
from their own folder; the alias below gives them this package's module
when asv imports them instead.
"""

import sys

from . import common

sys.modules.setdefault("common", common)

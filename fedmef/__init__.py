"""FedMef: memory-efficient federated dynamic pruning (Huang et al., CVPR 2024).

``fedmef`` holds the algorithm; the product's other top-level folders join its namespace as
``fedmef.server`` (server/), ``fedmef.client`` (python_client/) and ``fedmef.export`` (export/).

Why a finder and not a setuptools ``package-dir`` mapping: ``flwr run`` unpacks the app (the
repository's files) into its own directory and puts it first on ``sys.path``, so its ``fedmef/``
shadows any installed copy. A mapping only exists in an installed copy; this finder looks for
the sibling folders next to whichever ``fedmef/`` was imported, and falls back to the installed
subpackages (a regular install ships them inside ``fedmef/``).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

SUBPACKAGE_FOLDERS = {"server": "server", "client": "python_client", "export": "export"}


class _SiblingFolderFinder(importlib.machinery.PathFinder):
    """Resolve ``fedmef.<sub>`` to ``<checkout>/<folder>/`` when that folder exists."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        head, _, sub = fullname.partition(".")
        if head != __name__ or sub not in SUBPACKAGE_FOLDERS:
            return None
        folder = Path(__file__).resolve().parent.parent / SUBPACKAGE_FOLDERS[sub]
        init = folder / "__init__.py"
        if not init.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[str(folder)])


# A re-import of fedmef from another directory (Flower reloads apps) replaces the older finder.
sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__name__", "") != _SiblingFolderFinder.__name__]
sys.meta_path.insert(0, _SiblingFolderFinder)

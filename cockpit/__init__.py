"""cockpit: an autonomous ML research loop with a terminal cockpit on top."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

# The repository keeps widgets/ and runners/ beside cockpit/ (the design card's layout); a
# wheel installs them inside this package, so site-packages never holds generic top-level
# names. In a source checkout the two are mounted here, so both import as cockpit.<name>.
_HERE = Path(__file__).resolve().parent
for _name in ("widgets", "runners"):
    _source = _HERE.parent / _name
    if not (_HERE / _name).is_dir() and (_source / "__init__.py").is_file():
        _spec = importlib.util.spec_from_file_location(
            f"{__name__}.{_name}", _source / "__init__.py", submodule_search_locations=[str(_source)])
        _module = importlib.util.module_from_spec(_spec)
        sys.modules[_spec.name] = _module
        _spec.loader.exec_module(_module)
        globals()[_name] = _module

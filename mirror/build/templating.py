"""Where the jinja2 templates come from: the top-level `templates/` folder, shipped in
the wheel as the package `mirror.templates` (edition/ for pages, digest/ for mail)."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable
from importlib.resources.abc import Traversable
from pathlib import Path

import jinja2


class TemplateLoader(jinja2.BaseLoader):
    """Templates of one folder of `mirror.templates`; no path may climb out of it."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if ".." in template.split("/"):
            raise jinja2.TemplateNotFound(template)
        source = template_root().joinpath(self.folder, *template.split("/"))
        if not source.is_file():
            raise jinja2.TemplateNotFound(template)
        return source.read_text(encoding="utf-8"), None, lambda: True


@functools.cache
def template_root() -> Traversable:
    try:
        return importlib.resources.files("mirror.templates")
    except ModuleNotFoundError:  # running from a source tree that is not installed
        return Path(__file__).resolve().parents[2] / "templates"

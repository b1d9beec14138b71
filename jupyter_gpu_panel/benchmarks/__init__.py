"""One-click benchmark notebooks: templates, the ``benchmark`` CLI and the REST handlers."""

from .notebook import build_notebook
from .templates import TEMPLATES, Template, list_templates

__all__ = ["TEMPLATES", "Template", "build_notebook", "list_templates"]

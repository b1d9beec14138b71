"""One-click benchmark notebooks: templates, the ``benchmark`` CLI and the REST handlers."""

from .templates import TEMPLATES, Template, build_notebook, list_templates

__all__ = ["TEMPLATES", "Template", "build_notebook", "list_templates"]

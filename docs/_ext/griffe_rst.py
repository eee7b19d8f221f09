"""Griffe extensions for the API reference.

``RstToMarkdown``: the package's docstrings use a few reStructuredText
constructs (``:class:`~x.Y``` roles, ``.. code-block::`` directives, double-backtick literals) that
Markdown would show raw. They become Markdown code spans and fenced blocks here, at build time; the
docstrings themselves are left as they are (Dagster's UI and ``help()`` read them too).

``FieldDescriptions``: a config field declared ``name: T = Field(..., description="...")`` (pydantic, so
Dagster's resources and configs) is documented by its description, which Dagster also shows in the UI;
without this, Griffe sees an undocumented attribute and the reference leaves it out."""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj|const):`~?([^`]+)`")
DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block::[ \t]*(?P<lang>\S*)[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*\n|[ \t]*\n)+)",
                       re.M)
LITERAL = re.compile(r"``([^`\n]+)``")


def _directive(match: re.Match[str]) -> str:
    indent, lang = match["indent"], match["lang"] or "text"
    body = textwrap.dedent(match["body"]).strip("\n")
    fenced = "\n".join(f"{indent}{line}" if line else "" for line in body.splitlines())
    return f"{indent}```{lang}\n{fenced}\n{indent}```\n\n"


def rst_to_markdown(text: str) -> str:
    """``:class:`~a.B``` → `` `B` ``, ``.. code-block:: lang`` + indented body → a fenced block,
    ````x```` → `` `x` ``."""
    text = ROLE.sub(lambda m: f"`{m[1].rsplit('.', 1)[-1] if m[0].count('~') else m[1]}`", text)
    text = LITERAL.sub(r"`\1`", text if text.endswith("\n") else text + "\n")
    return DIRECTIVE.sub(_directive, text).rstrip("\n")


class RstToMarkdown(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)


class FieldDescriptions(griffe.Extension):
    def on_attribute_instance(self, *, node: Any, attr: griffe.Attribute, **kwargs: Any) -> None:
        call = getattr(node, "value", None)
        if attr.docstring is not None or not isinstance(call, ast.Call):
            return
        name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
        if name != "Field":
            return
        for keyword in call.keywords:
            if keyword.arg == "description":
                try:
                    text = ast.literal_eval(keyword.value)
                except ValueError:
                    return
                attr.docstring = griffe.Docstring(rst_to_markdown(str(text)), parent=attr)

"""Every table of the portal turns into stacked rows on a phone (``<table class="stack">``, see
portal.css): each data cell names its column in ``data-label``, which the phone layout shows
before the value. A scan of the templates, so that a new table cannot forget it."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "app" / "templates"
TABLE = re.compile(r"<table\b[^>]*>.*?</table>", re.S)


def _tables() -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(TEMPLATES)), match.group(0))
        for path in sorted(TEMPLATES.rglob("*.html"))
        for match in TABLE.finditer(path.read_text(encoding="utf-8"))
    ]


def test_the_scan_finds_the_tables() -> None:
    names = {name for name, _table in _tables()}
    assert {"setup/connection.html", "admin/users.html", "support/sessions.html"} <= names


def test_every_table_stacks_on_a_phone() -> None:
    plain = [(name, table.split(">", 1)[0] + ">") for name, table in _tables()]
    assert [(name, tag) for name, tag in plain if not re.search(r'class="[^"]*\bstack\b', tag)] == []


def test_every_data_cell_names_its_column() -> None:
    unlabelled = [
        (name, cell)
        for name, table in _tables()
        for cell in re.findall(r"<td\b[^>]*>", table)
        if "data-label=" not in cell
    ]
    assert unlabelled == []

"""What an executed notebook produced, and the execution report (JSON + Markdown).

Metrics are read from the values a notebook glues with ``myst_nb.glue``: the
same values the book's prose shows, so the report and the book cannot disagree.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

# Glue names that count as key metrics in the Markdown table.
KEY_METRIC = re.compile(r"(_acc|_accuracy|_params|_loss|_seconds)$")


@dataclass
class NotebookResult:
    notebook: str
    profile: str
    status: str  # "ok", "failed" or "timeout"
    seconds: float
    metrics: dict[str, float | int | str] = field(default_factory=dict)
    error: str | None = None
    output: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def key_metrics(self) -> dict:
        return {k: v for k, v in self.metrics.items() if KEY_METRIC.search(k)}


def _parse_scalar(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text.strip("'\"")


def glued_values(nb: nbformat.NotebookNode) -> dict:
    """Every scalar a notebook glued (figures and tables are skipped)."""
    values = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if not record:
                continue
            data = output.get("data", {})
            prefix = record.get("mime_prefix", "")
            if len(data) != 1 or prefix + "text/plain" not in data:
                continue  # a figure or a rich object, not a number
            text = data[prefix + "text/plain"]
            if text.startswith("<"):
                continue  # a repr such as <Figure ...>
            values[record["name"]] = _parse_scalar(text)
    return values


def stderr_outputs(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell index, text) of every stderr stream: the book must show none."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append((index, output.get("text", "")))
    return found


def failed_cell(nb: nbformat.NotebookNode) -> str | None:
    """Describe the first cell whose execution raised, numbered as in the source notebook."""
    number = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags or "papermill-error-cell-tag" in tags:
            continue  # cells papermill added: not in the source notebook
        number += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return (
                    f"cell {number} ({first_line[:60]!r}): "
                    f"{output.get('ename')}: {output.get('evalue')}"
                )
    return None


def write_report(results: list[NotebookResult], json_path: Path, markdown_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    payload = [asdict(r) for r in results]
    json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    markdown_path.write_text(markdown_table(results), encoding="utf-8")


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_table(results: list[NotebookResult]) -> str:
    lines = [
        "| notebook | profile | status | seconds | key metrics |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for r in results:
        metrics = ", ".join(f"{k} = {_format(v)}" for k, v in r.key_metrics.items())
        status = r.status if r.ok else f"{r.status}: {r.error}"
        lines.append(f"| {r.notebook} | {r.profile} | {status} | {r.seconds:.1f} | {metrics} |")
    return "\n".join(lines) + "\n"

"""Run several methods on one context into a folder: a PNG and a JSON per method, an
``index.html`` page showing them in order, and ``index.json`` with timings and errors.

One method failing (a missing optional network, a bad layer name) does not cost the
others: its error is recorded in the index and the run goes on.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from styletrans.atomic import OutputExistsError, atomic_path
from styletrans.diagnostics.base import Context, Method


def gallery_outputs(out_dir: Path, names: list[str]) -> list[Path]:
    return [out_dir / "index.html", out_dir / "index.json"] + [
        out_dir / f"{name}{suffix}" for name in names for suffix in (".png", ".json")]


def render_gallery(context: Context, methods: Mapping[str, Method], out_dir: str | os.PathLike, *,
                   overwrite: bool = False, dpi: int = 80, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``methods`` (name -> configured method) and write the gallery; returns the index."""
    out_dir = Path(out_dir)
    if not overwrite:  # fail before minutes of work, not after
        for path in gallery_outputs(out_dir, list(methods)):
            if path.exists():
                raise OutputExistsError(path)
    entries = []
    for number, (name, method) in enumerate(methods.items(), start=1):
        log(f"[{number}/{len(methods)}] {name} ...")
        start = time.perf_counter()
        entry: dict[str, Any] = {"method": name, "summary": type(method).summary}
        try:
            result = method.run(context)
            result.save(out_dir / f"{name}.png", out_dir / f"{name}.json", overwrite=overwrite, dpi=dpi)
            entry.update(png=f"{name}.png", json=f"{name}.json", facts=_facts(result.to_json()))
        except Exception as exc:  # one broken panel must not cost the other eleven
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["seconds"] = round(time.perf_counter() - start, 2)
        log(f"[{number}/{len(methods)}] {name}: " + (entry.get("error") or f"{entry['seconds']:.1f}s"))
        entries.append(entry)
    index = {"image": context.image_name if context.has_image else None, "device": str(context.device),
             "methods": entries, "failed": [e["method"] for e in entries if "error" in e]}
    with atomic_path(out_dir / "index.json", overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(index, indent=1))
    with atomic_path(out_dir / "index.html", overwrite=overwrite) as tmp:
        tmp.write_text(_html(index))
    return index


def _facts(data: dict[str, Any], limit: int = 8) -> dict[str, Any]:
    """The top-level numbers and short strings of a method's JSON, for the index."""
    facts = {}
    for key, value in data.items():
        if key in ("method", "settings"):
            continue
        if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) < 60):
            facts[key] = round(value, 4) if isinstance(value, float) else value
        if len(facts) >= limit:
            break
    return facts


def _html(index: dict[str, Any]) -> str:
    sections = []
    for number, entry in enumerate(index["methods"], start=1):
        head = f"<h2>{number}. {html.escape(entry['method'])}</h2><p>{html.escape(entry['summary'])}</p>"
        if "error" in entry:
            body = f"<p class=error>failed: {html.escape(entry['error'])}</p>"
        else:
            facts = ", ".join(f"{html.escape(k)}: <b>{html.escape(str(v))}</b>" for k, v in entry["facts"].items())
            body = (f'<img src="{entry["png"]}" alt="{html.escape(entry["method"])}">'
                    f'<p>{facts} ({entry["seconds"]:.1f}s, <a href="{entry["json"]}">JSON</a>)</p>')
        sections.append(f"<section>{head}{body}</section>")
    title = "styletrans diagnostics" + (f": {html.escape(index['image'])}" if index["image"] else "")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}}
img{{max-width:100%;border:1px solid #ddd}}.error{{color:#b00}}</style></head>
<body><h1>{title}</h1>
{chr(10).join(sections)}
</body></html>
"""

"""MkDocs hook: links from docs/ to repository files outside it (reports/, tests/, README.md).

The pages link to committed reports as GitHub shows them, with relative paths such as
``../reports/engine-cpu.md``. MkDocs only knows the files under docs/, so it would call every such
link broken. This hook checks each one itself before MkDocs sees the page: a link to a file or
folder that does not exist is a warning (``mkdocs build --strict`` fails on it); one that exists
becomes a link to ``repo_url`` when mkdocs.yml sets it, else the path as inline code. Links
inside docs/ are left to MkDocs' own validation, which fails on a missing page or anchor.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("mkdocs.hooks.repository_links")

LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def on_page_markdown(markdown, page, config, files):
    docs_dir = Path(config.docs_dir).resolve()
    root = Path(config.config_file_path).resolve().parent
    page_dir = posixpath.dirname(page.file.src_uri)
    repo_url = (config.repo_url or "").rstrip("/")

    def rewrite(match):
        text, target = match["text"], match["target"]
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or target.startswith(("#", "/")) or not parts.path:
            return match[0]
        path = (docs_dir / page_dir / parts.path).resolve()
        if path.is_relative_to(docs_dir):
            return match[0]  # a page of the site: MkDocs validates it
        if not path.is_relative_to(root) or not path.exists():
            log.warning("Doc file '%s' links to '%s', which is not a file of the repository",
                        page.file.src_uri, target)
            return match[0]
        relative = path.relative_to(root).as_posix() + ("/" if path.is_dir() else "")
        if repo_url:
            kind = "tree" if path.is_dir() else "blob"
            return f"[{text}]({repo_url}/{kind}/HEAD/{relative})"
        if text.strip("`").rstrip("/") in (relative.rstrip("/"), parts.path.rstrip("/")):
            return f"`{relative}`"
        return f"{text} (`{relative}`)"

    lines, fenced = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        lines.append(line if fenced else LINK.sub(rewrite, line))
    return "\n".join(lines)

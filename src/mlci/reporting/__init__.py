"""Pictures of the results: the HTML report, charts for Markdown and the terminal, the PR comment.

Built from the plain JSON the stages leave in ``artifacts/`` (metrics, gate, drift, registry)
and from ``report.md``: it never re-runs a stage. matplotlib (the ``plots`` extra) is imported
only to draw; without it the report has its tables and says how to add the pictures.
"""

from __future__ import annotations

from mlci.reporting._charts import text_chart
from mlci.reporting._comment import MARKER, Comment, CommentError, post_comment
from mlci.reporting._html import HTML, write_html
from mlci.reporting._settings import ReportSettings, report_settings

__all__ = [
    "HTML",
    "MARKER",
    "Comment",
    "CommentError",
    "ReportSettings",
    "post_comment",
    "report_settings",
    "text_chart",
    "write_html",
]

"""Verify: a copy of the edition (a folder or a mirror URL) and a trusted key in; a report
of what is missing, tampered or stale out, as a reader would check it.

`run` reads the copy and checks it; `freshness` compares it with the other mirrors.
"""

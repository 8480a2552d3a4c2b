"""Verify: a copy of the edition (a folder or a mirror URL) and a trusted key in; a report
of what is missing, tampered or stale out, as a reader would check it.

`run` reads the copy through `readers` (a folder, a mirror's URL) and judges it with
`checks` (pure, over bytes) and `memory` (the rollback memory); `freshness` compares it
with the other mirrors.
"""

"""Fetch: feeds, sitemaps and article pages from the origin in; new and changed articles
and their images (checked, sanitised) into the store.

`stage` runs it; `origin` is the bounded HTTP client, `urls`, `feeds`, `extract`,
`sanitise` and `images` each read one kind of input.
"""

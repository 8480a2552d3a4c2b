"""Fetch: feeds, sitemaps and article pages from the origin in; new and changed articles
and their images (checked, sanitised) into the store.

`stage` runs it; `origin` is the bounded HTTP client, `urls`, `feeds`, `extract`,
`sanitise` and `images` each read one kind of input. The parsers run in worker processes;
`records` holds what they give back, and imports no parser, so neither does the main
process.
"""

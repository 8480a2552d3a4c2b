"""Digest: the new articles and the subscriber list in; one composed message per
subscriber out, handed to `mirror.mail`.

`compose` builds the messages (pure), `run` decides who gets what and records it,
`subscribers` keeps the list, `unsubscribe` serves the one-click unsubscribe page.
"""

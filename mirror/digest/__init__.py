"""Digest: the new articles and the subscriber list in; one composed message per
subscriber out, handed to `mirror.mail`.

Pure: `compose` builds the messages (with `text`, the plain-text layout, and `tokens`,
the unsubscribe tokens and Message-IDs; the MIME encoding is `mirror.mail.wire`).
I/O: `run` decides who gets what, hands it to `mirror.mail.delivery` and records it,
`subscribers` keeps the list, `unsubscribe` serves the one-click unsubscribe page.
"""

"""Mail: composed messages in; delivered (or failed, or deferred) out, over SMTP or into
an outbox folder.

    delivery.deliver(outgoing, transport, ...)  paces, retries, one Delivery per message
    └── delivery.Transport.send(outgoing)       one message to one recipient, or a named error:
        ├── smtp.SmtpTransport                  a few reused SMTP sessions (TLS), pipelined
        └── outbox.OutboxTransport              <hash of message id>.eml files in a folder

`wire` is the message as bytes (`Outgoing`, the SMTP DATA payload, the MIME encoding of
headers and body): pure, it imports no transport, so the digest's composer can use it.
"""

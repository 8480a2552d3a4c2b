"""Mail: composed messages in; delivered (or failed, or deferred) out, over SMTP or into
an outbox folder.
"""

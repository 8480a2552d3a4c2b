"""Mail in: readers' mail (from IMAP or a pipe) in; replies (mirrors, latest, help,
confirmations), subscribers and bounces out, through the digest's composer, the mail
transport and the store. Readers in a blocked region write to one address and get links
back, subscribe and unsubscribe by mail; delivery reports keep the list clean.
"""

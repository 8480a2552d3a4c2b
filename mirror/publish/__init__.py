"""Publish: a built, signed edition in; the same files on every mirror out, swapped in
atomically, with a report per mirror.

`publisher` syncs one edition to the mirrors; `status` reports what each mirror serves.
"""

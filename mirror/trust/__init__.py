"""Trust: keys and signatures. Bytes and keys in; signatures, certificates and manifests
out, and checked.

`minisign` is the signature format (pure), `certificate` the root's keys.json, `manifest`
the signed list of an edition's files, `keyfiles` the key files of the config (I/O).
"""

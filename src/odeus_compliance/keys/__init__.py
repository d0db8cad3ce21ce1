"""Keys below the audit log and the reports that use them.

- :mod:`ring`: the key ring (a KEK from the master key, wrapped data keys by kind and epoch, rotation,
  destruction) and the audit log's identity; :mod:`datakey`: an unwrapped data key; :mod:`note_keys`:
  Ed25519 signer and verifier keys in the C2SP note formats; :mod:`certificates`: the demo signing CA.
"""

"""The key ring: a KEK derived from the master key, wrapped data keys by kind and epoch, the log signer."""

"""Batches (issue 17): every load and every deletion, with the outcome of each record and
what it replaced or removed, so that it can be listed, shown and undone.

- `storage`: the batch tables (migration 0012): start and finish a batch, record outcomes,
  keep the versions a batch replaced, list and show;
- `undo`: `libgate batches undo N`, in one transaction;
- `deletion`: `libgate records delete` and `libgate items delete`, each a batch of kind delete.
"""

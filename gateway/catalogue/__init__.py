"""The catalogue: databases of bibliographic records, their items, and (later) search."""

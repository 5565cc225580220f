"""The catalogue: databases of bibliographic records and their items (`model`, `repository`,
`items_import`), loading them (`loading`), and searching them (`query`, `planner`, `search`,
with the index in `indexes`, `normalise` and `search_index`)."""

"""The catalogue: databases of bibliographic records and their items (`model`, `repository`,
`items_import`), loading them (`loading`), and searching them (`query`, `planner`, `search`,
with the Tantivy index in `textindex`, its fields in `indexes`, tokens from `normalise`, and
the store-side rows (identifiers, browse headings) in `search_index`)."""

"""The expansion stage, between spec and graph: ``${...}`` expressions, params, blocks and imports."""

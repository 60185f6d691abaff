"""Prepare: ids, values and validation, column by column; a bad row fails alone."""

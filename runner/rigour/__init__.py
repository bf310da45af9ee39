"""Research rigour: pre-registration, reports, blind coding."""

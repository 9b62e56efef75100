"""One module per dashboard screen."""

"""Helpers shared by the pages; never a page itself."""

"""Shipped themes and presets (data files; see app/theme.py and app/menus.py)."""

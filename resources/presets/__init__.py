"""Presets: TOML files of ExperimentConfig fields, merged onto the defaults when loaded."""

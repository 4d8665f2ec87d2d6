"""Converters from official third-party files to safetensors artifacts, and a safe reader for pickled checkpoints."""

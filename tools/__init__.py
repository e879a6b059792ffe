"""Command-line tools: data preparation, demos, benchmarks. Run each as ``python tools/<name>.py``."""

"""Speed and memory benchmarks of layerwise against PyTorch CPU eager (see README.md)."""

"""asv benchmarks of bizra (asv.conf.json at the repository root points here)."""

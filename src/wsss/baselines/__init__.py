"""Reference baselines that measure the benchmark itself (not WSSS methods)."""

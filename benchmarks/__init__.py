"""fdebench's benchmark suite (not collected by the default ``pytest``; run ``pytest benchmarks/``).

See :mod:`benchmarks.bench_engine` for how to run it and :mod:`benchmarks.summarize` for the
report.
"""

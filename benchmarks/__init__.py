"""Performance benchmarks for epos-bridge: ``python -m benchmarks.run [--quick]`` (see README.md).

Every figure is reported as a ratio against a baseline measured in the same run, plus the
absolute numbers; nothing here is a timed assertion.
"""

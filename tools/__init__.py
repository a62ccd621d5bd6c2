"""Developer tools outside the product: benchmarks, load tests, screenshots, demonstration data.

Run from a checkout (``python -m tools.<name>``); nothing here is installed with the service.
"""

"""What runs inside every serving container, and on the local target: vLLM and its edge.

One piece of code for both targets, so what the tests exercise on CPU is what the
Modal snapshot hooks call. Never imports ``modal``.
"""

"""The test bed shared by tests/ and bench/: the example stack run through the engine against a sandbox (with hooks
to kill a run at a chosen request or lose an answer), a snapshot of what a run leaves behind, and tiny models built
on the spot. Never imported by the product (provisioning/, sandbox/, tasks.py).
"""

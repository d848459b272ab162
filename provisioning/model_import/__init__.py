"""Importing Hugging Face models into Elasticsearch: trace with eland (tracing.py), cache the traced artifact on disk
(cache.py) and upload it concurrently and resumably (upload.py).

Only tracing.py imports torch/transformers/eland.ml, and only inside its functions: planning a stack whose models are
already in place must not pay for (or need) those imports.
"""

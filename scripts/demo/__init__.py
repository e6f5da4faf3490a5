"""Demos: the learning database (script and notebook) and real sentence embeddings."""

"""Loading embeddings into a FLOAT[n] column."""

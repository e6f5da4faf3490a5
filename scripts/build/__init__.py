"""Build helpers the Makefile runs as plain files with the system python3 (standard library only)."""

"""Scalability studies: sweep scenario parameters through the real broker and store, measure, project capacity."""

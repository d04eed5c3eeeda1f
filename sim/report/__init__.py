"""Reports: figures and tables written from outcome tables."""

"""Training fast style-transfer networks with PyTorch Lightning (``styletrans train``)."""

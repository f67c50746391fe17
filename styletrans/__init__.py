"""styletrans: fast neural style transfer with PyTorch Lightning and ONNX Runtime."""

__version__ = "0.1.0"

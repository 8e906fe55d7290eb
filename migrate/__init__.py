"""migrate: carry legacy TensorFlow 1 models into fast, servable form."""

__version__ = "0.1.0"

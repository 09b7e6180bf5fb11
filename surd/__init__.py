"""surd: build SURD-style text-to-image datasets and train the SUR-adapter on them."""

__version__ = "0.1.0"

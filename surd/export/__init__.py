"""Datasets out to the formats other tools read (Hugging Face imagefolder + the official trainer's prompt2vec)."""

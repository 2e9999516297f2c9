"""Models: the families of choices.py (bag-of-words, recurrent, TF Hub transformer), their layers, TF Hub handles, HF import."""

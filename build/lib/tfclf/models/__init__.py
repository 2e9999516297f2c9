"""Models: the tables' families (bag-of-words, recurrent, TF Hub transformer), their layers, TF Hub handles, HF import."""

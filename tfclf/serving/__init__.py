"""Serving: the raw-string SavedModel export, prediction with it, and `tfclf serve` (TF Serving's REST API)."""

"""Serving: the raw-string SavedModel export and prediction with it."""

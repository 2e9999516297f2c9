"""Training: optimizers, losses, metrics, callbacks, distribution, distillation and the fit itself."""

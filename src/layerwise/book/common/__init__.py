"""The book's ``common`` package: layers, functions, gradients, optimizers, nets, trainer, utilities."""

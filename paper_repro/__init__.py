"""paper_repro: provably minimal adversarial examples for small ReLU networks on MNIST.

The package follows the pipeline's order: ``data`` → ``models`` → ``train`` → ``attacks`` →
``bounds`` → ``exact`` → ``experiments``; ``cli`` is the ``paper-repro`` command.
"""

__version__ = "0.1.0"

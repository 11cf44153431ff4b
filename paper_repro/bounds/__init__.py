"""Sound (incomplete) bounds on a ReLU network's outputs over an input region."""

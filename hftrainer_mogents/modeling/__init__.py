"""The MoGenTS networks: pure nn.Modules whose parameter names match the official checkpoints."""

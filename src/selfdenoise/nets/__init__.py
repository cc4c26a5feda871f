"""Plain ``nn.Module`` networks used by the methods."""

"""Training and evaluation: YAML configs, the (DDP-capable) training loop, validation."""

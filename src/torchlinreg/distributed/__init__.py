"""torch.distributed for both engines: collectives, DDP training, each rank's share of a file."""

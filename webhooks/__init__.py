"""Inbound webhooks, each verifying its provider's signature before anything else."""

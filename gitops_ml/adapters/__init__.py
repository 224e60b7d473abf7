"""Adapters: the only importers of git, docker, kubernetes, boto3 and oras; they map errors to ours."""

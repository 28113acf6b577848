"""Weights: finding, downloading, recognising and loading pretrained weights."""

"""Consensus: the BlockGraph (votes, weights, head, finality; blockgraph) and next-epoch
validator weights from Proof-of-Impact scores (poi_weights)."""

"""Dataset tables: the Parquet files of a dataset (validators, blocks, attestations) read,
checked and written, and attestation uploads decoded into the same columns.

Modules: parquet (sniff, checked read, atomic write), validators (the validator table and its
loader, keygen), blocks, attestations (rows as fixed-width columns), uploads (request bodies).
"""

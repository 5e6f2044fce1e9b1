"""The data model every layer shares: named errors and reasons (errors), the attestation body
codec (attestation) and the chain parameters (chain). Imports nothing of bizra but kernels-free
NumPy/Polars code; everything else in engine/ may import it."""

"""The ``bizra run`` batch pipeline: the job (job), the row checks shared with the service
(row_checks), chunks (chunks) and their checkpoint (checkpoint), vote-level reasons
(vote_reasons), output frames (outputs), Dask scale-out (cluster) and the progress bar
(progress)."""

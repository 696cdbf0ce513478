"""Where a loss call's rows are computed besides this process: ``dask`` (a Dask cluster).

Each backend imports its heavy packages lazily and says which extra installs them.
"""

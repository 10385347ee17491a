"""Segmentation by basis: one module per basis, each with the same shape.

Each basis module exposes a ``segment_<basis>(...)`` function (DataFrames in, a result with
``labels`` (customer_id, ``<basis>_segment``), ``profiles`` and ``evidence``) and leaves choosing
the number of segments to :mod:`analysis.segment.selection`.
"""

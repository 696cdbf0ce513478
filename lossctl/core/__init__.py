"""The pure core: NumPy and the standard library only, no I/O, no rendering, no option spellings.

A call's keys (:mod:`.call`), how a loss is declared (:mod:`.registry`), the numerics and
conversions the kernels share, and the computation: :mod:`.prepare` (inputs checked and
laid out), :mod:`.evaluate` (forward, reduction, gradient), :mod:`.explain`, :mod:`.stream`
(large inputs blockwise), :mod:`.expectations` (expected values), :mod:`.information`
(entropies and divergences for ``lossctl info``).
"""

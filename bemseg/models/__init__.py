"""The BEMSeg model family: one module per concept of the paper (section 3).

Modules here register models on import; the registry imports them all (see bemseg.registry).
"""

"""Your own model variants: one file per variant, registered with `@bemseg.register_model`.

See README, "Add your own variant". Every module in this package is imported by the registry.
"""

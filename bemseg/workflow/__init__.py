"""What the Snakemake workflow needs from the package: config checks, the plan of runs, the job wrapper.

Importing it is cheap (no torch), so the Snakefile parses in well under a second.
"""

# Complexity (Table 3): GFLOPs, parameters and FPS of each model, in the paper's convention.


rule complexity:
    """fvcore GFLOPs at 1x3xSxS, trainable and frozen-text parameters, FPS (batch 1)."""
    output:
        "results/complexity/{model}.json",
    params:
        settings={
            "num_classes": config["complexity"]["num_classes"],
            "size": config["complexity"]["size"],
            "repeats": config["complexity"]["fps_repeats"],
        },
    threads: config["threads_per_job"] or 1
    resources:
        **rule_resources(config, "complexity"),
    log:
        log_path("complexity/{model}"),
    benchmark:
        timing_path("complexity/{model}")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/complexity.py"

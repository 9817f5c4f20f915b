# One run = one model trained on one dataset with one seed, then evaluated on the test split, in one
# job (one interpreter start instead of two: the embedded default has 52 runs). Run ids and folders:
# bemseg/workflow/plan.py. To re-evaluate a kept checkpoint otherwise (e.g. multi-scale), use
# `bemseg evaluate --checkpoint RUN/model.pt --out DIR --ms`.


rule train_evaluate:
    """Train (resuming after an interruption), then sliding-window (or multi-scale) test: metrics, confusion matrix."""
    input:
        prepared="results/prepared/{dataset}",
    output:
        summary="results/runs/{dataset}/{run}/seed{seed}/train_summary.json",
        model=checkpoint_output("results/runs/{dataset}/{run}/seed{seed}/model.pt"),
        log_csv="results/runs/{dataset}/{run}/seed{seed}/train_log.csv",
        metrics="results/runs/{dataset}/{run}/seed{seed}/eval/metrics.json",
        confusion="results/runs/{dataset}/{run}/seed{seed}/eval/confusion.csv",
    params:
        config=lambda wc: plan.run_config(config, wc.dataset, wc.run, int(wc.seed)),
    threads: config["threads_per_job"] or 1
    resources:
        gpu=config["gpus_per_job"],
        **rule_resources(config, "train_evaluate"),
    log:
        log_path("train_evaluate/{dataset}/{run}/seed{seed}"),
    benchmark:
        timing_path("train_evaluate/{dataset}/{run}/seed{seed}")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/train_evaluate.py"

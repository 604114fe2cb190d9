"""The text a finished audit prints: its threat model, the score table, warnings, time and memory."""

from __future__ import annotations

from typing import Any

SUMMARY_KEYS = (  # the run's table, headed by metrics.json's own names
    "identity_advantage",
    "victim_identity_rate",
    "identity_as_others",
    "class_accuracy",
    "joint_success",
    "data_like_rate",
    "nn_ssim_victim",
    "nn_ssim_others",
    "diversity_ratio",
)


def threat_line(metrics: dict[str, Any]) -> str:
    """The summary's first line: which threat model its numbers belong to."""
    threat = metrics.get("threat_model") or {"name": "updates-only", "public": None}
    if threat.get("public"):
        return f"threat model: {threat['name']} (the server also holds {threat['public']['description']})"
    return f"threat model: {threat['name']} (the server holds no data, only the clients' updates)"


def summary_text(metrics: dict[str, Any]) -> str:
    """What `run` and `flower-sim` print when the audit is done (metrics.json in a few lines)."""
    lines = []
    if metrics.get("smoke_run"):
        from mganai.report.tables import SMOKE_RUN

        lines.append(SMOKE_RUN.replace("Warning: smoke run", "SMOKE RUN"))
    lines.append(threat_line(metrics))
    if (metrics.get("defense") or {}).get("name", "none") != "none":
        from mganai.report.tables import defense_label

        lines.append(f"defense: {defense_label(metrics)}")
    lines.append(f"FL test accuracy: {metrics['fl']['test_accuracy']:.3f} after {metrics['fl']['rounds']} rounds")
    if "oracle" in metrics:
        o = metrics["oracle"]
        lines.append(
            f"oracle held-out accuracy: identity {o['heldout_identity_accuracy']:.3f}, "
            f"class {o['heldout_class_accuracy']:.3f} (softened images: "
            f"{o['heldout_softened_identity_accuracy']:.3f}, {o['heldout_softened_class_accuracy']:.3f}); "
            f"data-like {o['heldout_data_like_rate']:.3f} (softened {o['heldout_softened_data_like_rate']:.3f})"
        )
        lines.append(f"{'method':<17}" + "".join(f"{k:>{len(k) + 2}}" for k in SUMMARY_KEYS))
        for name, m in metrics["methods"].items():
            lines.append(f"{name:<17}" + "".join(f"{m[k]:>{len(k) + 2}.3f}" for k in SUMMARY_KEYS))
    if "methods" in metrics:
        from mganai.report.tables import advantage_warnings, realism_warnings

        lines += advantage_warnings(metrics) + realism_warnings(metrics)
    fl = metrics["fl"]
    if fl.get("rejected_updates") or fl.get("dropped_updates"):
        absent = fl.get("victim_absent_rounds", [])
        lines.append(
            f"faulty clients: {fl['rejected_updates']} updates rejected, {fl['dropped_updates']} dropped out; "
            f"victim absent in {len(absent)} of {fl['rounds']} rounds"
        )
    timing = metrics["timing"]
    where = f" on {timing['device']}" if "device" in timing else ""
    lines.append(f"time {timing['total_s']:.1f}s{where}, peak memory {timing['peak_rss_mb']:.0f} MiB")
    return "\n".join(lines)

"""The one-screen summary printed after a successful export (the full numbers are in export_report.json)."""

from __future__ import annotations

from typing import Any


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.2f}%"


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _model_lines(r: dict[str, Any]) -> list[str]:
    m, p = r["models"]["fp32"], r["parity"]
    pp = p["preprocess"]
    return [
        f"export OK -> {r['out']}  ({r['arch']}, {len(r['labels'])} labels, {r['seconds']:.1f}s)",
        f"  model.onnx       {_mb(m['bytes'])}  fp32, opset {m['opset']}, dynamic batch, one file, onnx.checker ok",
        f"  parity (model)   max |logit diff| {p['max_abs_diff']:.2e} (tolerance {p['atol']:g}), "
        f"top-1 agreement {p['top1_agreement'] * 100:.2f}%",
        f"                   on {p['real_images']} images from {p['images_source']}",
        f"                   + {p['random_tensors']} random tensors, at batch sizes {p['batch_sizes']}",
        f"  parity (preproc) service vs torchvision on {pp['n']} files ({pp['run_images']} run, "
        f"{pp['generated_images']} generated): max {pp['max_levels']:.3f} 8-bit levels (<= 1),",
        f"                   {pp['bit_exact']}/{pp['n']} bit-exact, model top-1 agreement "
        f"{pp['top1_agreement'] * 100:.2f}%",
    ]


def _int8_lines(r: dict[str, Any]) -> list[str]:
    q, sizes = r["int8"], r["int8"]["bytes"]
    ips = q["images_per_s"]
    return [
        f"  model.int8.onnx  {_mb(r['models']['int8']['bytes'])}  int8 QDQ per-channel "
        f"({_mb(sizes['fp32'])} fp32), calibrated on {q['calibration']}",
        f"                   accuracy FP32 {_pct(q['fp32_accuracy'])} vs INT8 {_pct(q['int8_accuracy'])} "
        f"on {q['evaluated_on']}",
        f"                   gate: {q['gate_basis']} drop {q['drop_points']:.2f} points <= "
        f"{q['max_accuracy_drop']:g}; top-1 agreement {q['top1_agreement'] * 100:.2f}%",
        f"                   images/s (batch {ips['batch']}, {ips['threads']} threads): "
        f"FP32 {ips['fp32']:.1f}, INT8 {ips['int8']:.1f}",
    ]


def _fp16_lines(r: dict[str, Any]) -> list[str]:
    c = r["fp16"]
    size = _mb(r["models"]["fp16"]["bytes"])
    if not c["ran_on_cpu"]:
        return [f"  model.fp16.onnx  {size}  fp16 weights, float32 I/O; not run here: {c['note']}"]
    return [
        f"  model.fp16.onnx  {size}  fp16 weights, float32 I/O, checked on CPU (no GPU here) vs FP32:",
        f"                   max |logit diff| {c['max_abs_diff']:.2e} ({c['max_rel_diff']:.1e} of max |logit|, "
        f"<= {c['rtol']:g}), top-1 agreement {_pct(c['top1_agreement'])} ({c['n']} images)",
    ]


def _calibration_lines(r: dict[str, Any]) -> list[str]:
    c = r.get("calibration") or {}
    if "temperature" not in c:
        return [f"  calibration      none: {c.get('skipped', 'not run')}"]
    lines = [
        f"  calibration      temperature {c['temperature']:.3f} fitted on the {c['fitted_on']}: "
        f"ECE {_pct(c['ece_before'])} -> {_pct(c['ece_after'])}, NLL {c['nll_before']:.4f} -> {c['nll_after']:.4f}"
    ]
    if "test" in c:
        t = c["test"]
        lines.append(
            f"                   on the test split ({t['n']} images): ECE {_pct(t['ece_before'])} -> "
            f"{_pct(t['ece_after'])}; reliability diagram {r['out']}/{c['plot']}"
        )
    else:
        lines.append(f"                   reliability diagram {r['out']}/{c['plot']}")
    return lines


def summary(report: dict[str, Any]) -> str:
    lines = _model_lines(report) + _calibration_lines(report)
    if "int8" in report:
        lines += _int8_lines(report)
    if "fp16" in report:
        lines += _fp16_lines(report)
    lines += [f"  labels: {', '.join(report['labels'])}", f"  report: {report['out']}/export_report.json"]
    return "\n".join(lines)
